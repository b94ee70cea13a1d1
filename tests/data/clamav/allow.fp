# Allow-list by MD5 (md5:size:name): the ClamAV test file clam.exe from Debian's clamav-testfiles
aa15bcf478d165efd2065190eb473bcb:544:clam.exe

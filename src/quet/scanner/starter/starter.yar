/*
  Quét starter rules: used when no signatures are installed, so that a fresh install can prove
  it works. They detect test files only, never real malware.
*/

rule Quet_Test_EICAR
{
    meta:
        description = "EICAR anti-malware test file (harmless)"
        family = "EICAR-Test-File"
        score = 100
    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    condition:
        $eicar at 0 and filesize < 128
}

rule Quet_Test_ClamAV_TestFile
{
    meta:
        description = "The ClamAV project's harmless test program (clam.exe), also when embedded"
        family = "ClamAV-Test-File"
        score = 100
    strings:
        // the code of clam.exe that every unpacked copy carries
        $code = { BB 71 10 40 00 33 C0 50 50 8B F3 53 53 50 B0 29 40 30 04 66 AC 79 F9 BA 31 00 78 0D AD 50 FF 66 70 0E 1F BE 31 00 E9 E5 FF B4 09 CD 21 B4 4C CD 21 }
    condition:
        $code
}

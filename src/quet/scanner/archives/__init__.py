"""Archive extraction for the scanner: zip, tar (plain or compressed), single gzip/bzip2/xz
streams and 7z, with ClamAV-like limits and bomb checks enforced while decompressing."""

from quet.scanner.archives.common import ArchiveLimits, Budget, Member
from quet.scanner.archives.dispatch import archive_kind, extract, walk

__all__ = ["ArchiveLimits", "Budget", "Member", "archive_kind", "extract", "walk"]

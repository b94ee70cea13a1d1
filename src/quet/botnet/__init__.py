"""Botnet IPs: sinkhole and botnet feeds read, de-duplicated per (ip, family, day), attributed to
the organisations that registered the enclosing ranges (and to ASN/ISP and province through
MaxMind databases), counted per day, week and month — one SQL definition run by DuckDB or Spark."""

from quet.botnet.attribute import FileReport, ImportReport, import_files, periods_of
from quet.botnet.eventstore import EventStore
from quet.botnet.feeds import FORMATS, FeedRead, read_feed, sniff

__all__ = [
    "FORMATS",
    "EventStore",
    "FeedRead",
    "FileReport",
    "ImportReport",
    "import_files",
    "periods_of",
    "read_feed",
    "sniff",
]

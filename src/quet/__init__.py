"""Quét: software for a national malware clean-up campaign."""

__version__ = "0.1.0"
__all__ = ["__version__"]

"""The store's SQLAlchemy models; importing this registers every table on Base.metadata."""

from quet.store.models.base import Base, UTCDateTime
from quet.store.models.intel import (
    ImportRunRow,
    IndicatorRow,
    IndicatorSourceRow,
    SightingRow,
    import_runs,
    indicator_sources,
    indicators,
    sightings,
)

__all__ = [
    "Base",
    "ImportRunRow",
    "IndicatorRow",
    "IndicatorSourceRow",
    "SightingRow",
    "UTCDateTime",
    "import_runs",
    "indicator_sources",
    "indicators",
    "sightings",
]

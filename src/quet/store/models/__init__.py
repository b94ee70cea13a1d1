"""The store's SQLAlchemy models; importing this registers every table on Base.metadata."""

from quet.store.models import botnet as botnet  # registers its tables
from quet.store.models import report as report  # registers its tables
from quet.store.models.base import Base, UTCDateTime
from quet.store.models.campaign import Campaign, Participation, Phase
from quet.store.models.daily import OrgDaily
from quet.store.models.device import Device, EnrollmentToken, FindingRow, ScanReport
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
from quet.store.models.netalert import NetAlertRow
from quet.store.models.org import Organisation, OrgAsn, OrgDomain, OrgNetwork
from quet.store.models.people import ApiToken, AuditEntry, LoginSession, User
from quet.store.models.sharing import OrgRollup, ShareReceipt, SharingPeer

__all__ = [
    "ApiToken",
    "AuditEntry",
    "Base",
    "Campaign",
    "Device",
    "EnrollmentToken",
    "FindingRow",
    "ImportRunRow",
    "IndicatorRow",
    "IndicatorSourceRow",
    "LoginSession",
    "NetAlertRow",
    "OrgAsn",
    "OrgDaily",
    "OrgDomain",
    "OrgNetwork",
    "OrgRollup",
    "Organisation",
    "Participation",
    "Phase",
    "ScanReport",
    "ShareReceipt",
    "SharingPeer",
    "SightingRow",
    "UTCDateTime",
    "User",
    "import_runs",
    "indicator_sources",
    "indicators",
    "sightings",
]

"""MISP event JSON (one event, a list, or a search response) and MISP feed folders
(manifest.json + <uuid>.json events + hashes.csv), read as Indicators and written back."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from quet.errors import InputError
from quet.indicators.formats import Format, register
from quet.indicators.formats.stix import exact_filename, filename_regex, line_index
from quet.indicators.model import Indicator, IndicatorType, IssueLog, make

# MISP's threat level is the event's severity; with no better signal we read it as how sure
# the producer is that its IOCs are bad: 1 High, 2 Medium, 3 Low, 4 Undefined.
THREAT_LEVEL_CONFIDENCE = {1: 90, 2: 70, 3: 50, 4: 50}
DEFAULT_CONFIDENCE = 50
# Galaxies whose cluster names a malware family; the first such tag wins.
FAMILY_GALAXIES = ("malpedia", "mitre-malware", "malware", "ransomware", "rat", "banker", "botnet")
ACTOR_GALAXIES = ("threat-actor", "mitre-intrusion-set")
_GALAXY_TAG = re.compile(r'^misp-galaxy:([a-z0-9_-]+)="(.+)"$')
_FAMILY_TAG = re.compile(r'^malware[-_]family[:=]\s*"?([^"]+)"?$', re.IGNORECASE)
_CERTAINTY_TAG = re.compile(r'^osint:certainty="(\d{1,3})"$')
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UUID_KEY = re.compile(r'"uuid"\s*:\s*"([0-9a-fA-F-]{36})"')
_HASHES = {"md5": IndicatorType.MD5, "sha1": IndicatorType.SHA1, "sha256": IndicatorType.SHA256}
_CATEGORY = {
    "ip-dst": "Network activity",
    "domain": "Network activity",
    "url": "Network activity",
}

Obj = Mapping[str, Any]


# --- attribute values ----------------------------------------------------------------------


def _ip_or_cidr(value: str) -> tuple[IndicatorType, str]:
    return (IndicatorType.CIDR if "/" in value else IndicatorType.IPV4), value


def _filename(name: str) -> tuple[IndicatorType, str]:
    if not name.strip():
        raise InputError("empty file name")
    return IndicatorType.FILENAME, filename_regex(name)


def attribute_values(kind: str, value: str) -> list[tuple[IndicatorType, str]]:
    """(type, raw value) pairs a MISP attribute of type `kind` holds; [] for types we do not
    match on (regkey, ssdeep, email, ...). InputError when a composite value is malformed."""
    kind = kind.strip().lower()
    parts = value.split("|")
    if kind in ("ip-src", "ip-dst"):
        return [_ip_or_cidr(value.strip())]
    if kind in ("domain", "hostname"):
        return [(IndicatorType.DOMAIN, value)]
    if kind == "url" or (kind == "uri" and "://" in value):
        return [(IndicatorType.URL, value)]
    if kind in _HASHES:
        return [(_HASHES[kind], value)]
    if kind == "filename":
        return [_filename(value)]
    composite = kind in ("ip-src|port", "ip-dst|port", "hostname|port", "domain|ip")
    composite = composite or kind in ("filename|md5", "filename|sha1", "filename|sha256")
    if (composite or kind == "malware-sample") and len(parts) != 2:
        raise InputError(f"{kind} value is not two '|'-separated parts: {value[:80]!r}")
    if kind in ("ip-src|port", "ip-dst|port"):
        return [_ip_or_cidr(parts[0].strip())]
    if kind == "hostname|port":
        return [(IndicatorType.DOMAIN, parts[0])]
    if kind == "domain|ip":
        return [(IndicatorType.DOMAIN, parts[0]), _ip_or_cidr(parts[1].strip())]
    if kind in ("filename|md5", "filename|sha1", "filename|sha256", "malware-sample"):
        hkind = _HASHES[kind.split("|")[1]] if "|" in kind else IndicatorType.MD5
        name = [_filename(parts[0])] if parts[0].strip() else []
        return [*name, (hkind, parts[1])]
    return []


# --- events --------------------------------------------------------------------------------


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _epoch(value: Any) -> datetime | None:
    try:
        stamp = int(value)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(stamp, UTC) if 0 < stamp < 2**33 else None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _tag_names(obj: Obj) -> list[str]:
    tags = obj.get("Tag")
    if isinstance(tags, dict):
        tags = [tags]
    if not isinstance(tags, list):
        return []
    return [t["name"] for t in tags if isinstance(t, dict) and isinstance(t.get("name"), str)]


def _context(tags: list[str]) -> tuple[str, str, int | None, tuple[str, ...]]:
    """(family, campaign, certainty, other tags) of a tag list; the tags read into family,
    campaign or confidence are not repeated as tags."""
    family = campaign = ""
    certainty: int | None = None
    rest: list[str] = []
    for name in tags:
        galaxy = _GALAXY_TAG.match(name)
        fam = _FAMILY_TAG.match(name)
        cert = _CERTAINTY_TAG.match(name)
        if galaxy and galaxy.group(1) in FAMILY_GALAXIES and not family:
            family = galaxy.group(2)
        elif fam and not family:
            family = fam.group(1).strip()
        elif galaxy and galaxy.group(1) in ACTOR_GALAXIES and not campaign:
            campaign = galaxy.group(2)
        elif cert and certainty is None:
            certainty = min(int(cert.group(1)), 100)
        else:
            rest.append(name)
    return family, campaign, certainty, tuple(dict.fromkeys(rest))


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _event_attributes(event: Obj) -> Iterator[Obj]:
    yield from _dicts(event.get("Attribute"))
    for obj in _dicts(event.get("Object")):
        if not _flag(obj.get("deleted")):
            yield from _dicts(obj.get("Attribute"))


def indicators_from_event(
    event: Obj,
    source: str,
    issues: IssueLog,
    *,
    all_attributes: bool = False,
    lines: Mapping[str, int] | None = None,
) -> Iterator[Indicator]:
    """Indicators of one MISP event (the dict inside {"Event": ...}). Only attributes marked
    `to_ids` are taken unless `all_attributes`; deleted ones never are."""
    lines = lines or {}
    info = event.get("info") if isinstance(event.get("info"), str) else ""
    ev_family, ev_campaign, ev_certainty, ev_tags = _context(_tag_names(event))
    try:
        level = int(event.get("threat_level_id", 4))
    except (TypeError, ValueError):
        level = 4
    ev_confidence = THREAT_LEVEL_CONFIDENCE.get(level, DEFAULT_CONFIDENCE)
    if ev_certainty is not None:
        ev_confidence = ev_certainty
    ev_line = lines.get(str(event.get("uuid")), 0)
    seen: set[tuple[str, str]] = set()  # a hash is often both an attribute and in an object
    for attr in _event_attributes(event):
        if _flag(attr.get("deleted")) or not (all_attributes or _flag(attr.get("to_ids"))):
            continue
        kind, value = attr.get("type"), attr.get("value")
        if not isinstance(kind, str) or not isinstance(value, str):
            continue
        line = lines.get(str(attr.get("uuid")), ev_line)
        try:
            values = attribute_values(kind, value)
        except InputError as exc:
            issues.add(source, line, str(exc))
            continue
        if not values:
            continue
        family, campaign, certainty, tags = _context(_tag_names(attr))
        fields: dict[str, Any] = {
            "name": info,
            "family": family or ev_family,
            "campaign": campaign or ev_campaign,
            "source": source,
            "confidence": ev_confidence if certainty is None else certainty,
            "first_seen": _iso(attr.get("first_seen")) or _epoch(attr.get("timestamp")),
            "last_seen": _iso(attr.get("last_seen")),
            "tags": tuple(dict.fromkeys(ev_tags + tags)),
            "line": line,
        }
        for ikind, raw in values:
            try:
                ind = make(ikind, raw, **fields)
            except InputError as exc:
                issues.add(source, line, f"MISP {kind}: {exc}")
                continue
            if ind.key() not in seen:
                seen.add(ind.key())
                yield ind


def _events(doc: Any) -> Iterator[Obj]:
    """Events of a MISP JSON document: {"Event": e}, a bare e, a list, or {"response": [...]}."""
    if isinstance(doc, dict) and isinstance(doc.get("response"), list):
        doc = doc["response"]
    items = doc if isinstance(doc, list) else [doc]
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("Event"), dict):
            yield item["Event"]
        elif isinstance(item, dict) and ("Attribute" in item or "Object" in item):
            yield item


def _load(path: Path, issues: IssueLog) -> tuple[Any, str] | None:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError as exc:
        raise InputError("no such file", path=source) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=source) from exc
    try:
        return json.loads(text), text
    except json.JSONDecodeError as exc:
        issues.add(source, exc.lineno, f"not JSON: {exc.msg}")
    except RecursionError:
        issues.add(source, 0, "JSON nested too deeply")
    return None


def _line_index(text: str) -> dict[str, int]:
    return line_index(text, _UUID_KEY)


def read_events(
    path: Path, issues: IssueLog, *, all_attributes: bool = False
) -> Iterator[Indicator]:
    """Indicators of every event in a MISP JSON file."""
    loaded = _load(path, issues)
    if loaded is None:
        return
    doc, text = loaded
    events = list(_events(doc))
    if not events:
        issues.add(str(path), 1, "no MISP event in this JSON")
        return
    lines = _line_index(text)
    for event in events:
        yield from indicators_from_event(
            event, str(path), issues, all_attributes=all_attributes, lines=lines
        )


@lru_cache(maxsize=64)
def _manifest_keys(path: Path, mtime_ns: int, size: int) -> frozenset[str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError, RecursionError):
        return frozenset()
    return frozenset(k.lower() for k in doc) if isinstance(doc, dict) else frozenset()


def listed_in_feed(path: Path) -> bool:
    """True when a sibling manifest.json lists this file's event: the feed's manifest reads
    it, so reading it again as a lone event would count every indicator twice."""
    manifest = Path(path).parent / "manifest.json"
    try:
        st = manifest.stat()
    except OSError:
        return False
    return Path(path).stem.lower() in _manifest_keys(manifest, st.st_mtime_ns, st.st_size)


def read_misp(path: Path, issues: IssueLog) -> Iterator[Indicator]:
    """The `misp` format: a MISP event file, unless a sibling manifest.json lists it."""
    if listed_in_feed(path):
        return
    yield from read_events(path, issues)


def read_feed(path: Path, issues: IssueLog, *, all_attributes: bool = False) -> Iterator[Indicator]:
    """The `misp-feed` format: every event a feed's manifest.json lists, from its folder.
    The feed's hashes.csv (MD5s of attribute values, for MISP's cache) holds no indicators."""
    path = Path(path)
    if path.name.lower() != "manifest.json":
        return
    loaded = _load(path, issues)
    if loaded is None:
        return
    manifest, text = loaded
    if not isinstance(manifest, dict):
        issues.add(str(path), 1, "a MISP feed manifest is a JSON object of event UUIDs")
        return
    for event_uuid in manifest:
        if not _UUID.fullmatch(event_uuid):
            issues.add(str(path), 0, f"not an event UUID: {event_uuid[:80]!r}")
            continue
        event_path = path.parent / f"{event_uuid}.json"
        if not event_path.is_file():
            line = text.count("\n", 0, max(text.find(f'"{event_uuid}"'), 0)) + 1
            issues.add(str(path), line, f"event file missing: {event_path.name}")
            continue
        yield from read_events(event_path, issues, all_attributes=all_attributes)


_EVENT_HEAD = re.compile(rb'^\s*[\[{]\s*("Event"\s*:|"response"\s*:|\{\s*"Event"\s*:)')
_EVENT_KEYS = re.compile(rb'"(Attribute|Object|threat_level_id|Orgc)"\s*:')
_MANIFEST_HEAD = re.compile(rb'^\s*\{\s*(\}|"[0-9a-fA-F-]{36}"\s*:\s*\{)')
_HASHES_LINE = re.compile(rb"^[0-9a-f]{32},[0-9a-fA-F-]{36}\s*$")


def _sniff_event(head: bytes, name: str) -> bool:
    if name.lower() == "manifest.json":
        return False
    text = head.lstrip(b"\xef\xbb\xbf")
    if _EVENT_HEAD.match(text):
        return True
    if not text.lstrip().startswith(b"{"):
        return False
    keys = set(_EVENT_KEYS.findall(text))
    return len(keys) >= 2 or (b"Attribute" in keys and b'"to_ids"' in text)


def _sniff_feed(head: bytes, name: str) -> bool:
    low = name.lower()
    if low == "manifest.json":
        return _MANIFEST_HEAD.match(head.lstrip(b"\xef\xbb\xbf")) is not None
    if low == "hashes.csv":
        first = head.splitlines()[0] if head.strip() else b""
        return _HASHES_LINE.match(first) is not None
    return False


# --- writing -------------------------------------------------------------------------------


def _misp_type(ind: Indicator) -> tuple[str, str] | None:
    """(MISP attribute type, value) of an Indicator; None when MISP has no exact type for it."""
    if ind.type in (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR):
        return "ip-dst", ind.value
    if ind.type is IndicatorType.DOMAIN:
        return "domain", ind.value
    if ind.type is IndicatorType.URL:
        return "url", ind.value
    if ind.type.value in _HASHES:
        return ind.type.value, ind.value
    if ind.type is IndicatorType.FILENAME:
        name = exact_filename(ind.value)
        return ("filename", name) if name is not None else None
    return None


def _stamp(moment: datetime | None) -> str:
    return str(int((moment or datetime.now(UTC)).timestamp()))


def _tag(name: str) -> dict[str, Any]:
    return {"name": name, "colour": "#004646", "exportable": True}


def build_event(
    indicators: Iterable[Indicator],
    info: str = "Quét export",
    *,
    event_uuid: str | None = None,
    org: str = "Quét",
) -> dict[str, Any]:
    """A MISP event ({"Event": ...}) with one to_ids attribute per indicator MISP can hold.
    Name goes to the comment (readers take the event's info), family to a misp-galaxy:malpedia tag, confidence to an
    osint:certainty tag; campaign and expires have no attribute field and are left out."""
    ev_uuid = event_uuid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"quet:misp:{info}"))
    now = datetime.now(UTC)
    attributes = []
    for ind in indicators:
        typed = _misp_type(ind)
        if typed is None:
            continue
        kind, value = typed
        tags = [*ind.tags, f'osint:certainty="{max(0, min(ind.confidence, 100))}"']
        if ind.family:
            tags.append(f'misp-galaxy:malpedia="{ind.family}"')
        attr: dict[str, Any] = {
            "uuid": str(uuid.uuid5(uuid.UUID(ev_uuid), f"{kind}|{value}")),
            "type": kind,
            "category": _CATEGORY.get(kind, "Payload delivery"),
            "value": value,
            "to_ids": True,
            "comment": ind.name,
            "deleted": False,
            "disable_correlation": False,
            "timestamp": _stamp(now),
            "Tag": [_tag(t) for t in dict.fromkeys(tags)],
        }
        if ind.first_seen is not None:
            attr["first_seen"] = ind.first_seen.isoformat()
        if ind.last_seen is not None:
            attr["last_seen"] = ind.last_seen.isoformat()
        attributes.append(attr)
    event = {
        "uuid": ev_uuid,
        "info": info,
        "date": date.today().isoformat(),
        "threat_level_id": "4",
        "analysis": "2",
        "published": False,
        "timestamp": _stamp(now),
        "publish_timestamp": "0",
        "Orgc": {"name": org, "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"quet:org:{org}"))},
        "Tag": [],
        "Attribute": attributes,
    }
    return {"Event": event}


def write_misp(indicators: Iterable[Indicator], path: Path) -> int:
    """Write one MISP event JSON; returns the number of attributes written."""
    doc = build_event(indicators, info=f"Quét export: {Path(path).stem}")
    Path(path).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(doc["Event"]["Attribute"])


def write_feed(
    indicators: Iterable[Indicator],
    folder: Path,
    event_info: str = "Quét export",
    *,
    event_uuid: str | None = None,
    org: str = "Quét",
) -> int:
    """Write (or update) a MISP feed folder MISP can fetch as a "MISP Feed": <uuid>.json with
    the event, manifest.json mapping each event UUID to its metadata, and hashes.csv holding
    `md5(value),event_uuid` per attribute. Other events already in the folder are kept in the
    manifest. Returns the number of attributes written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    doc = build_event(indicators, event_info, event_uuid=event_uuid, org=org)
    event = doc["Event"]
    (folder / f"{event['uuid']}.json").write_text(
        json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    manifest_path = folder / "manifest.json"
    manifest: dict[str, Any] = {}
    if manifest_path.is_file():
        try:
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(f"existing manifest is not JSON: {exc}", str(manifest_path)) from exc
        manifest = old if isinstance(old, dict) else {}
    manifest[event["uuid"]] = {
        key: event[key]
        for key in ("Orgc", "Tag", "info", "date", "analysis", "threat_level_id", "timestamp")
    }
    manifest_path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", "utf-8")
    hashes_path = folder / "hashes.csv"
    kept = []
    if hashes_path.is_file():
        kept = [
            line
            for line in hashes_path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.strip().endswith(event["uuid"])
        ]
    for attr in event["Attribute"]:
        digest = hashlib.md5(attr["value"].encode("utf-8"), usedforsecurity=False).hexdigest()
        kept.append(f"{digest},{event['uuid']}")
    hashes_path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    return len(event["Attribute"])


MISP = register(
    Format(
        "misp",
        'MISP event JSON ({"Event": ...}, a list of events or a search response): to_ids '
        "attributes (IPs, domains, URLs, hashes, file names)",
        (".json",),
        _sniff_event,
        read_misp,
        write_misp,
    )
)

MISP_FEED = register(
    Format(
        "misp-feed",
        "MISP feed folder: manifest.json lists the <uuid>.json events beside it (hashes.csv "
        "is MISP's cache index and holds no indicators)",
        (".json", ".csv"),
        _sniff_feed,
        read_feed,
    )
)

"""MaxMind-format databases (GeoLite2/GeoIP2 ASN, City or Country, or any .mmdb with the same
fields) flattened into range rows for the attribution SQL: one row per network of the tree.

Walking a large database in Python takes a while (GeoLite2-City has millions of networks), so
the rows are cached as Parquet under `$QUET_HOME/cache/`, keyed by the file's path, size and
modification time."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import unicodedata
from pathlib import Path
from typing import Any

import maxminddb
import pyarrow as pa
import pyarrow.parquet as pq

from quet import paths
from quet.botnet.feeds import network_parts
from quet.botnet.sql import RANGE_SCHEMA
from quet.errors import InputError

CACHE_VERSION = "2"  # 2: province names mapped to the official Vietnamese names

# GeoLite2 spellings that do not fold to an official name (folded key → folded official key).
_PROVINCE_ALIASES = {
    "thuathienhue": "hue",
    "thuathien": "hue",
    "daclac": "daklak",
    "dacnong": "daknong",
    "vungtau": "bariavungtau",
    "saigon": "hochiminh",
    "hcmc": "hochiminh",
    "tphcm": "hochiminh",
    "baccan": "backan",
}
_PREFIXES = ("thanh pho ", "tinh ", "tp ", "tp. ")
_SUFFIXES = (" city", " province", " municipality")


def province_key(name: str) -> str:
    """A name folded for matching: no diacritics, đ as d, lower case, without the "Thành phố" /
    "Tỉnh" prefix or the " City" / " Province" suffix, letters only."""
    text = unicodedata.normalize("NFD", name.strip().lower().replace("đ", "d"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = " ".join(text.replace("-", " ").split())
    for prefix in _PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
    for suffix in _SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    key = re.sub(r"[^a-z0-9]", "", text)
    return _PROVINCE_ALIASES.get(key, key)


@functools.cache
def _official_names() -> dict[str, str]:
    """Folded key → the official Vietnamese name (the 34 provinces of 2025 win over the 63 of
    2008 where both have a name)."""
    from quet.server.orgdata import provinces

    out: dict[str, str] = {}
    for edition in ("2008", "2025"):
        try:
            records = provinces(edition)
        except Exception:
            continue
        for record in records:
            out[province_key(record.name)] = record.name
    return out


def official_province(name: str) -> str:
    """A MaxMind subdivision name ("Ho Chi Minh", "Hanoi", "Thua Thien-Hue") as the official
    Vietnamese province name ("Thành phố Hồ Chí Minh", "Thành phố Hà Nội", "Thành phố Huế");
    names it does not know are kept as given."""
    if not name.strip():
        return ""
    return _official_names().get(province_key(name), name.strip())


def _name(names: Any) -> str:
    if not isinstance(names, dict):
        return ""
    return str(names.get("en") or names.get("vi") or next(iter(names.values()), ""))


def record_fields(record: Any) -> dict[str, Any]:
    """asn, isp, province, country of one database record (missing fields are empty)."""
    if not isinstance(record, dict):
        return {"asn": None, "isp": "", "province": "", "country": ""}
    asn = record.get("autonomous_system_number")
    isp = record.get("autonomous_system_organization") or record.get("isp") or ""
    country = record.get("country") or record.get("registered_country") or {}
    subs = record.get("subdivisions") or []
    code = str(country.get("iso_code") or "")[:2] if isinstance(country, dict) else ""
    province = ""
    # Provinces are Vietnam's: a foreign region ("Central Singapore") would be a row of its own
    # in the province breakdown, so outside VN only the country is kept.
    if subs and isinstance(subs[0], dict) and code in ("VN", ""):
        raw = _name(subs[0].get("names")) or str(subs[0].get("iso_code") or "")
        province = official_province(raw) if raw else ""
    return {
        "asn": int(asn) if isinstance(asn, int) else None,
        "isp": str(isp)[:200],
        "province": province[:100],
        "country": code,
    }


def read_mmdb(path: Path, kind: str) -> pa.Table:
    """Every network of a .mmdb file as range rows of `kind` ('asn' or 'geo')."""
    rows: dict[str, list[Any]] = {name: [] for name in RANGE_SCHEMA.names}
    try:
        reader = maxminddb.open_database(str(path))
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise InputError(f"not a MaxMind database: {exc}", path=str(path)) from exc
    with reader:
        for network, record in reader:
            fields = record_fields(record)
            if kind == "asn" and fields["asn"] is None:
                continue
            if kind == "geo" and not (fields["province"] or fields["country"]):
                continue
            parts = network_parts(str(network))
            if parts is None:
                continue
            hi, lo, plen = parts
            for name, value in (("kind", kind), ("hi", hi), ("lo", lo), ("plen", plen)):
                rows[name].append(value)
            rows["org_id"].append(None)
            for name in ("asn", "isp", "province", "country"):
                rows[name].append(fields[name])
    return pa.table(rows, schema=RANGE_SCHEMA)


def mmdb_ranges(path: Path, kind: str) -> pa.Table:
    """`read_mmdb` through the Parquet cache."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=str(path))
    st = path.stat()
    key = hashlib.sha256(
        f"{CACHE_VERSION}|{kind}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()
    ).hexdigest()[:24]
    cached = paths.cache_dir() / f"botnet-ranges-{key}.parquet"
    if cached.is_file():
        try:
            return pq.read_table(cached, schema=RANGE_SCHEMA)
        except (pa.ArrowInvalid, OSError):
            cached.unlink(missing_ok=True)
    table = read_mmdb(path, kind)
    tmp = cached.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.replace(cached)
    return table


def org_ranges(networks: list[tuple[int, str]]) -> tuple[pa.Table, list[str]]:
    """Registered ranges (org_id, cidr) as range rows; also the CIDRs that could not be read."""
    rows: dict[str, list[Any]] = {name: [] for name in RANGE_SCHEMA.names}
    bad: list[str] = []
    for org_id, cidr in networks:
        parts = network_parts(cidr)
        if parts is None:
            bad.append(cidr)
            continue
        hi, lo, plen = parts
        for name, value in (("kind", "org"), ("hi", hi), ("lo", lo), ("plen", plen)):
            rows[name].append(value)
        rows["org_id"].append(int(org_id))
        rows["asn"].append(None)
        for name in ("isp", "province", "country"):
            rows[name].append("")
    return pa.table(rows, schema=RANGE_SCHEMA), bad


def lookup(table: pa.Table, ip: str) -> dict[str, Any] | None:
    """The longest-prefix row of `table` holding `ip` (a slow reference for tests and tools)."""
    addr = ipaddress.ip_address(ip)
    best: dict[str, Any] | None = None
    for row in table.to_pylist():
        hi, lo, plen = row["hi"], row["lo"], row["plen"]
        n = ((hi & ((1 << 64) - 1)) << 64) | (lo & ((1 << 64) - 1))
        if plen >= 96 and (n >> 32) == 0xFFFF and addr.version == 4:
            net: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.IPv4Network(
                (n & 0xFFFFFFFF, plen - 96)
            )
        else:
            net = ipaddress.IPv6Network((n, plen))
        if addr in net and (best is None or plen > best["plen"]):
            best = row
    return best

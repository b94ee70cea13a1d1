"""The Indicator model, its types, and normalisation of every value kind we match on."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

from quet.errors import InputError


class IndicatorType(StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    CIDR = "cidr"
    DOMAIN = "domain"
    URL = "url"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    FILENAME = "filename"
    YARA = "yara"


HASH_TYPES = (IndicatorType.MD5, IndicatorType.SHA1, IndicatorType.SHA256)
_HASH_BY_LEN = {32: IndicatorType.MD5, 40: IndicatorType.SHA1, 64: IndicatorType.SHA256}
_HEX = re.compile(r"^[0-9a-f]+$")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


@dataclass(slots=True)
class Indicator:
    """One indicator of compromise, its value normalised for its type."""

    type: IndicatorType
    value: str
    name: str = ""  # detection name, e.g. "Win.Trojan.Agent-123" or a Loki description
    family: str = ""  # e.g. Mirai, Ramnit, Sality
    source: str = ""  # the file or feed it came from
    confidence: int = 50  # 0-100 (Loki's score maps here)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    expires: datetime | None = None
    tags: tuple[str, ...] = ()
    campaign: str = ""
    size: int | None = None  # for hash signatures bound to a file size (ClamAV .hdb)
    fp_regex: str = ""  # for filename regexes: paths that match this are not findings
    line: int = 0  # the line of `source` it was read from

    def key(self) -> tuple[str, str]:
        return (self.type.value, self.value)


@dataclass(slots=True)
class ParseIssue:
    """A line that could not be read: where, and why."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class IssueLog:
    """Collects parse issues; readers report here and go on with the next line."""

    issues: list[ParseIssue] = field(default_factory=list)
    limit: int = 1000  # keep the first N in detail; count all
    count: int = 0

    def add(self, path: str, line: int, message: str) -> None:
        self.count += 1
        if len(self.issues) < self.limit:
            self.issues.append(ParseIssue(path, line, message))

    def __len__(self) -> int:
        return self.count


def hash_type(value: str) -> IndicatorType:
    """The hash type of a hex digest by its length; raises InputError when it is none."""
    v = value.strip().lower()
    kind = _HASH_BY_LEN.get(len(v))
    if kind is None or not _HEX.match(v):
        raise InputError(f"not an MD5, SHA1 or SHA256 hex digest: {value[:80]!r}")
    return kind


def normalise_hash(value: str) -> str:
    v = value.strip().lower()
    hash_type(v)
    return v


def normalise_ip(value: str) -> tuple[IndicatorType, str]:
    try:
        ip = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError as exc:
        raise InputError(f"not an IP address: {value[:80]!r}") from exc
    kind = IndicatorType.IPV4 if ip.version == 4 else IndicatorType.IPV6
    return kind, ip.compressed


def normalise_cidr(value: str) -> str:
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError as exc:
        raise InputError(f"not a CIDR network: {value[:80]!r}") from exc
    return net.compressed


def normalise_domain(value: str) -> str:
    """Lower-case, no trailing dot, IDNA (punycode) for non-ASCII labels; validated by labels."""
    v = value.strip().rstrip(".").lower()
    if v.startswith("*."):
        v = v[2:]
    if not v or len(v) > 253:
        raise InputError(f"not a domain name: {value[:80]!r}")
    try:
        v = v.encode("idna").decode("ascii") if not v.isascii() else v
    except UnicodeError as exc:
        raise InputError(f"not a domain name: {value[:80]!r}") from exc
    labels = v.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise InputError(f"not a domain name: {value[:80]!r}")
    return v


def normalise_url(value: str) -> str:
    """Scheme and host lower-cased, default ports dropped, fragment removed."""
    v = value.strip()
    if "://" not in v:
        v = "http://" + v
    try:
        parts = urlsplit(v)
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        raise InputError(f"not a URL: {value[:80]!r}") from exc
    if not host:
        raise InputError(f"not a URL: {value[:80]!r}")
    scheme = parts.scheme.lower()
    try:
        host = normalise_ip(host)[1] if _looks_like_ip(host) else normalise_domain(host)
    except InputError as exc:
        raise InputError(f"not a URL (bad host): {value[:80]!r}") from exc
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = host if port in (None, default) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _looks_like_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def guess(value: str) -> tuple[IndicatorType, str]:
    """Classify and normalise a bare value (as found in one-per-line IOC lists)."""
    v = value.strip()
    if not v:
        raise InputError("empty value")
    low = v.lower()
    if low in ("",):
        raise InputError("empty value")
    if len(low) in _HASH_BY_LEN and _HEX.match(low):
        return _HASH_BY_LEN[len(low)], low
    if "/" in v and "://" not in v:
        try:
            return IndicatorType.CIDR, normalise_cidr(v)
        except InputError:
            return IndicatorType.URL, normalise_url(v)
    if "://" in v:
        return IndicatorType.URL, normalise_url(v)
    if _looks_like_ip(v.strip("[]")):
        return normalise_ip(v)
    if v.count(":") == 1 and _looks_like_ip(v.split(":")[0]):
        return normalise_ip(v.split(":")[0])  # ip:port, as in Maltrail and Loki C2 lists
    return IndicatorType.DOMAIN, normalise_domain(v)


def make(kind: IndicatorType | str, value: str, **fields: object) -> Indicator:
    """Build an Indicator with `value` normalised for `kind`."""
    kind = IndicatorType(kind)
    if kind in HASH_TYPES:
        v = normalise_hash(value)
        if hash_type(v) is not kind:
            raise InputError(f"{kind.value} expected, got a {hash_type(v).value}: {value[:80]!r}")
    elif kind in (IndicatorType.IPV4, IndicatorType.IPV6):
        kind, v = normalise_ip(value)
    elif kind is IndicatorType.CIDR:
        v = normalise_cidr(value)
    elif kind is IndicatorType.DOMAIN:
        v = normalise_domain(value)
    elif kind is IndicatorType.URL:
        v = normalise_url(value)
    else:
        v = value
    return Indicator(kind, v, **fields)  # type: ignore[arg-type]

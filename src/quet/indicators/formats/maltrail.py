"""Maltrail static trail files (trails/static/<category>/<family>.txt): one domain, IP,
IP:port or URL per line; the family is the file name, references come from '#' comments."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from quet.errors import InputError
from quet.indicators.formats import Format, open_text, register
from quet.indicators.model import (
    Indicator,
    IndicatorType,
    IssueLog,
    guess,
    normalise_ip,
    normalise_url,
)

REF_PREFIX = "ref:"
PORT_PREFIX = "port:"
# Maltrail's own categories (the folder a trail file sits in) and how sure a hit on each is.
CONFIDENCE = {"malware": 80, "suspicious": 50, "mass_scanner": 40}
DEFAULT_CONFIDENCE = 60
NOTE_PATH = "URL path without a host"
NOTE_TLD = "trail for a whole top-level domain"
_INLINE_COMMENT = re.compile(r"\s+#.*$")
_REFERENCE = re.compile(r"^#\s*Reference:\s*(\S+)", re.IGNORECASE)
_PORT = re.compile(r"^(?P<host>[^:/]+):(?P<port>\d{1,5})$")
_NET_TYPES = (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.DOMAIN, IndicatorType.CIDR)


def parse_trail(text: str) -> tuple[IndicatorType, str, str] | str:
    """(type, normalised value, port or '') of one trail, or the note for a trail we skip.

    Raises InputError when the line is not a trail at all. Like Maltrail, a scheme is
    dropped, so `http://1.2.3.4` is the address and `http://evil.com/gate.php` a URL.
    """
    value = _INLINE_COMMENT.sub("", text).strip()
    scheme = ""
    if "://" in value:
        scheme, _, value = value.partition("://")
    value = value.rstrip("/")
    if not value:
        raise InputError(f"empty trail: {text[:80]!r}")
    if value.startswith("/"):
        return NOTE_PATH
    if "/" in value:
        host = value.split("/", 1)[0]
        try:
            kind, norm = guess(value)  # a CIDR such as 10.0.0.0/8 stays one
        except InputError:
            kind = IndicatorType.URL
        if kind is IndicatorType.CIDR:
            return kind, norm, ""
        if not host:
            return NOTE_PATH
        url = f"{scheme or 'http'}://{value}"
        return IndicatorType.URL, normalise_url(url), ""
    if value.startswith(".") and "." not in value[1:]:
        return NOTE_TLD
    value = value.lstrip(".")
    port = ""
    m = _PORT.match(value)
    if m:
        value, port = m.group("host"), m.group("port")
    # guess() reads "1.2.3.4:x" as the address; a colon left here must be IPv6's.
    kind, norm = normalise_ip(value) if ":" in value else guess(value)
    if kind not in _NET_TYPES:
        raise InputError(f"not a domain, IP address or URL: {text[:80]!r}")
    return kind, norm, port


def read_trails(
    path: Path, issues: IssueLog, notes: Counter[str] | None = None
) -> Iterator[Indicator]:
    """Indicators of one trail file. Trails we cannot match on (a bare URL path, a whole
    TLD) are counted in `notes`, not reported as errors."""
    source = str(path)
    family = Path(path).stem
    category = Path(path).parent.name.lower()
    confidence = CONFIDENCE.get(category, DEFAULT_CONFIDENCE)
    name = f"{family} ({category})" if category in CONFIDENCE else family
    base_tags: tuple[str, ...] = (category,) if category in CONFIDENCE else ()
    refs: list[str] = []
    tags = base_tags
    data_since_ref = False
    for lineno, line in open_text(path):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            m = _REFERENCE.match(text)
            if m:
                if data_since_ref:  # a new block of references starts
                    refs = []
                    data_since_ref = False
                refs.append(REF_PREFIX + m.group(1))
                tags = base_tags + tuple(refs)
            continue
        data_since_ref = True
        try:
            parsed = parse_trail(text)
        except InputError as exc:
            issues.add(source, lineno, str(exc))
            continue
        if isinstance(parsed, str):
            if notes is not None:
                notes[parsed] += 1
            continue
        kind, value, port = parsed
        yield Indicator(
            kind,
            value,
            name=name,
            family=family,
            source=source,
            confidence=confidence,
            tags=tags + ((PORT_PREFIX + port,) if port else ()),
            line=lineno,
        )


def _sniff(head: bytes, name: str) -> bool:
    low = name.lower()
    # Loki's lists look alike; their names say what they are.
    if "c2-ioc" in low or "hash-ioc" in low or "filename-ioc" in low:
        return False
    data: list[str] = []
    header = False
    lines = head.decode("utf-8", "replace").splitlines()
    if len(head) >= 4096 and lines:
        lines.pop()  # the last line may be cut by the head limit
    for raw in lines:
        text = raw.strip()
        if not text:
            continue
        if text.startswith("#"):
            low_text = text.lower()
            by_maltrail = "maltrail" in low_text and (
                "developers" in low_text or "stamparm" in low_text
            )
            header = header or by_maltrail or _REFERENCE.match(text) is not None
            continue
        data.append(text)
    if not header or not data:
        return False
    for text in data[:50]:
        try:
            parse_trail(text)
        except InputError:
            return False
    return True


MALTRAIL = register(
    Format(
        "maltrail",
        "Maltrail static trails: one domain, IP, IP:port or URL per line; family = file name",
        (".txt",),
        _sniff,
        read_trails,
    )
)

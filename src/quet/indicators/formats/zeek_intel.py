"""Zeek Intel-framework input files: a `#fields indicator indicator_type meta.source …` TSV,
read into Indicators and written back with meta.source, meta.desc, meta.url and meta.do_notice."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from quet.errors import InputError
from quet.indicators.formats import Format, open_text, register
from quet.indicators.model import (
    HASH_TYPES,
    Indicator,
    IndicatorType,
    IssueLog,
    hash_type,
    normalise_cidr,
    normalise_domain,
    normalise_ip,
    normalise_url,
)

CONFIDENCE = 75  # an analyst-curated intel list; Zeek itself has no score
ALLOW_TAG = "allow"  # meta.whitelist T: the indicator suppresses matches (as ClamAV .fp)
REF_PREFIX = "ref:"  # references (meta.url) travel as tags "ref:<url>"
FIELDS = (
    "indicator",
    "indicator_type",
    "meta.source",
    "meta.desc",
    "meta.url",
    "meta.do_notice",
)
# Zeek types we have no Indicator for: counted as notes, not errors.
SKIPPED_TYPES = frozenset(
    {
        "Intel::EMAIL",
        "Intel::SOFTWARE",
        "Intel::CERT_HASH",
        "Intel::USER_NAME",
        "Intel::PUBKEY_HASH",
        "Intel::JA3",
    }
)
_NAME_REGEX = re.compile(r"^\(\?:\^\|\[\\\\/\]\)(.+)\$$")
_HEX_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")
_UNSET = "-"
_EMPTY = "(empty)"


def filename_regex(name: str) -> str:
    """The filename IOC (a regex on paths) matching a file called exactly `name`."""
    return r"(?:^|[\\/])" + re.escape(name) + "$"


def _plain_name(regex: str) -> str | None:
    """The file name a filename_regex() was built from, or None for any other regex."""
    m = _NAME_REGEX.match(regex)
    if m is None:
        return None
    body = m.group(1)
    plain = re.sub(r"\\(.)", r"\1", body)
    return plain if re.escape(plain) == body else None


def _separator(text: str) -> str:
    """The value of a `#separator` header (`\\x09` escapes decoded); tab when unreadable."""
    value = _HEX_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text.strip())
    return value if len(value) == 1 else "\t"


def _field(cells: list[str], cols: dict[str, int], key: str) -> str:
    i = cols.get(key)
    if i is None or i >= len(cells):
        return ""
    value = cells[i].strip()
    return "" if value in (_UNSET, _EMPTY) else value


def _value(kind_text: str, value: str) -> tuple[IndicatorType, str]:
    """Our type and normalised value for a Zeek indicator; InputError when it is not one."""
    if kind_text == "Intel::ADDR":
        return normalise_ip(value)
    if kind_text == "Intel::SUBNET":
        return IndicatorType.CIDR, normalise_cidr(value)
    if kind_text == "Intel::DOMAIN":
        return IndicatorType.DOMAIN, normalise_domain(value)
    if kind_text == "Intel::URL":
        return IndicatorType.URL, normalise_url(value)
    if kind_text == "Intel::FILE_HASH":
        kind = hash_type(value)
        return kind, value.strip().lower()
    if kind_text == "Intel::FILE_NAME":
        return IndicatorType.FILENAME, filename_regex(value)
    raise InputError(f"unknown indicator_type {kind_text[:40]!r}")


def _confidence(text: str) -> int:
    """meta.cif_confidence (0-10 in CIF v1, 0-100 later) as 0..100; the default when absent."""
    try:
        number = float(text)
    except ValueError:
        return CONFIDENCE
    if number != number:  # NaN
        return CONFIDENCE
    if number <= 10:
        number *= 10
    return int(min(max(number, 0), 100))


def read_intel(
    path: Path, issues: IssueLog, notes: Counter[str] | None = None
) -> Iterator[Indicator]:
    """Indicators of a Zeek intel file. Zeek types with no Indicator kind (EMAIL, SOFTWARE, …)
    are counted in `notes` by type, not reported as errors."""
    source = str(path)
    sep = "\t"
    cols: dict[str, int] | None = None
    for lineno, line in open_text(path):
        if not line.strip():
            continue
        if line.startswith("#"):
            directive, _, rest = line.partition(" ")
            if directive == "#separator":
                sep = _separator(rest)
            elif line.startswith("#fields"):
                names = line.split(sep)[1:] if sep in line else line.split()[1:]
                cols = {}
                for i, name in enumerate(names):
                    cols.setdefault(name.strip(), i)
                if "indicator" not in cols or "indicator_type" not in cols:
                    issues.add(source, lineno, "#fields needs 'indicator' and 'indicator_type'")
                    return
            continue
        if cols is None:
            issues.add(source, lineno, "data before the '#fields' header; not a Zeek intel file")
            return
        cells = line.split(sep)
        value = _field(cells, cols, "indicator")
        kind_text = _field(cells, cols, "indicator_type")
        if not value or not kind_text:
            issues.add(source, lineno, "empty indicator or indicator_type")
            continue
        if kind_text in SKIPPED_TYPES:
            if notes is not None:
                notes[kind_text] += 1
            continue
        try:
            kind, norm = _value(kind_text, value)
        except InputError as exc:
            issues.add(source, lineno, str(exc))
            continue
        tags: list[str] = []
        url = _field(cells, cols, "meta.url")
        if url:
            tags.append(REF_PREFIX + url)
        if _field(cells, cols, "meta.whitelist") in ("T", "t", "true"):
            tags.append(ALLOW_TAG)
        yield Indicator(
            kind,
            norm,
            name=_field(cells, cols, "meta.desc"),
            source=_field(cells, cols, "meta.source") or source,
            confidence=_confidence(_field(cells, cols, "meta.cif_confidence")),
            tags=tuple(tags),
            line=lineno,
        )


def _clean(text: str) -> str:
    """A meta value safe for one TSV cell: no tabs or newlines; '-' when empty."""
    value = re.sub(r"[\t\r\n]+", " ", text).strip()
    return value if value and value not in (_UNSET, _EMPTY) else _UNSET


def _zeek_value(ind: Indicator) -> tuple[str, str] | None:
    """(indicator, indicator_type) for Zeek, or None when Zeek cannot hold this indicator."""
    try:
        if ind.type in (IndicatorType.IPV4, IndicatorType.IPV6):
            return normalise_ip(ind.value)[1], "Intel::ADDR"
        if ind.type is IndicatorType.CIDR:
            return normalise_cidr(ind.value), "Intel::SUBNET"
        if ind.type is IndicatorType.DOMAIN:
            return normalise_domain(ind.value), "Intel::DOMAIN"
        if ind.type is IndicatorType.URL:
            # Zeek matches URLs as host + path, without the scheme.
            return normalise_url(ind.value).split("://", 1)[1], "Intel::URL"
    except InputError:
        return None
    if ind.type in HASH_TYPES:
        return ind.value.lower(), "Intel::FILE_HASH"
    if ind.type is IndicatorType.FILENAME:
        plain = _plain_name(ind.value)
        if plain and not re.search(r"[\t\r\n]", plain):
            return plain, "Intel::FILE_NAME"
    return None  # a filename regex or a YARA rule has no Zeek equivalent


def _desc(ind: Indicator) -> str:
    if ind.family and ind.family.lower() not in ind.name.lower():
        return f"{ind.name} ({ind.family})" if ind.name else ind.family
    return ind.name


def write_intel(indicators: Iterable[Indicator], path: Path) -> int:
    """Write a Zeek intel file (load with Intel::read_files; meta.do_notice needs
    frameworks/intel/do_notice loaded). Sorted and de-duplicated; returns the lines written."""
    rows: dict[tuple[str, str, str], tuple[str, str, str, str, str, str]] = {}
    for ind in indicators:
        zv = _zeek_value(ind)
        if zv is None:
            continue
        value, kind = zv
        source = _clean(ind.source) if ind.source else "quet"
        refs = [t[len(REF_PREFIX) :] for t in ind.tags if t.startswith(REF_PREFIX)]
        url = _clean(refs[0]) if refs else _UNSET
        rows.setdefault((kind, value, source), (value, kind, source, _clean(_desc(ind)), url, "F"))
    with Path(path).open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("#fields\t" + "\t".join(FIELDS) + "\n")
        for key in sorted(rows):
            fh.write("\t".join(rows[key]) + "\n")
    return len(rows)


def _sniff(head: bytes, name: str) -> bool:
    for raw in head.decode("utf-8", "replace").splitlines():
        if raw.startswith("#fields"):
            fields = raw.split()
            return "indicator" in fields and "indicator_type" in fields
        if raw.strip() and not raw.startswith("#"):
            return False
    return False


ZEEK_INTEL = register(
    Format(
        "zeek-intel",
        "Zeek Intel framework input file: #fields indicator indicator_type meta.source ... (TSV)",
        (".intel",),
        _sniff,
        read_intel,
        write_intel,
    )
)

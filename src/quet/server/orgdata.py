"""Organisation records from CSV files and from the vietnam-provinces package: parse, normalise
and order them parents-first. Pure: no database; the import service inserts what this returns."""

from __future__ import annotations

import csv
import ipaddress
import re
import unicodedata
from collections.abc import Iterator, Set
from dataclasses import dataclass, field
from pathlib import Path

from quet.errors import InputError
from quet.indicators.model import IssueLog, normalise_domain

KINDS = ("national", "province", "ministry", "department", "district", "unit")
COLUMNS = (
    "code",
    "name",
    "parent_code",
    "kind",
    "ip_ranges",
    "domains",
    "asns",
    "contact_name",
    "contact_email",
    "contact_phone",
    "sector",
)
NATIONAL_CODE = "VN"
EDITIONS = ("2025", "2008")
_DATA = Path(__file__).parent / "data"

# Header cells are compared without diacritics, case or separators, so "Mã cha", "ma_cha" and
# "MA CHA" all name the same column.
_HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "code": ("ma", "ma_don_vi", "ma_to_chuc", "ma_co_quan"),
    "name": ("ten", "ten_don_vi", "ten_to_chuc", "ten_co_quan"),
    "parent_code": ("parent", "parent_code", "ma_cha", "ma_cap_tren", "ma_don_vi_cap_tren"),
    "kind": ("loai", "cap", "loai_don_vi"),
    "ip_ranges": ("ip", "ips", "ip_range", "cidr", "dai_ip", "dia_chi_ip"),
    "domains": ("domain", "ten_mien"),
    "asns": ("asn", "as"),
    "contact_name": ("contact", "nguoi_lien_he", "lien_he", "ho_ten"),
    "contact_email": ("email", "thu_dien_tu"),
    "contact_phone": ("phone", "dien_thoai", "so_dien_thoai", "sdt"),
    "sector": ("linh_vuc", "nganh", "khoi"),
}
_HEADER: dict[str, str] = {c: c for c in COLUMNS} | {
    alias: col for col, aliases in _HEADER_ALIASES.items() for alias in aliases
}
_KIND_ALIASES: dict[str, str] = {k: k for k in KINDS} | {
    "quoc_gia": "national",
    "trung_uong": "national",
    "tinh": "province",
    "bo": "ministry",
    "so": "department",
    "ban": "department",
    "huyen": "district",
    "quan": "district",
    "xa": "unit",
    "phuong": "unit",
    "don_vi": "unit",
    "co_quan": "unit",
}
# The sector of an organisation (botnet statistics by sector), English or Vietnamese.
SECTORS = ("government", "finance", "education", "health", "energy", "telecom", "other")
_SECTOR_ALIASES: dict[str, str] = {s: s for s in SECTORS} | {
    "nha_nuoc": "government",
    "co_quan_nha_nuoc": "government",
    "chinh_phu": "government",
    "tai_chinh": "finance",
    "ngan_hang": "finance",
    "giao_duc": "education",
    "y_te": "health",
    "nang_luong": "energy",
    "dien_luc": "energy",
    "vien_thong": "telecom",
    "khac": "other",
}
_CODE = re.compile(r"^[\w.:/-]{1,64}$")
_EMAIL = re.compile(r"^[^@\s<>(),;:\"]{1,64}@[^@\s]+$")
_SPLIT = re.compile(r"[;,\s]+")
_MAX_ASN = 2**32 - 1
# A registered range this broad would claim most of the Internet for one organisation.
_MIN_PREFIX = {4: 8, 6: 16}
_MAX_NAME = 300


@dataclass
class OrgRecord:
    """One organisation as read: codes, names, network ownership and a contact."""

    code: str
    name: str
    parent_code: str = ""
    kind: str = "unit"
    ip_ranges: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    asns: list[int] = field(default_factory=list)
    contact_name: str = ""
    contact_email: str = ""
    contact_phone: str = ""
    sector: str | None = None  # None: the file has no sector column (leave it as it is)
    line: int = 0
    source: str = ""


def _fold(text: str) -> str:
    """Lower case, no diacritics, đ as d, runs of separators as one underscore."""
    text = text.strip().lstrip("\ufeff").lower().replace("đ", "d")
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return re.sub(r"[\s_\-./]+", "_", text).strip("_")


def _clean(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def parse_kind(text: str) -> str:
    """The kind named by `text` (English or Vietnamese); ValueError when it names none."""
    folded = _fold(text)
    if not folded:
        return "unit"
    kind = _KIND_ALIASES.get(folded)
    if kind is None:
        raise ValueError(f"unknown kind {text.strip()[:40]!r}; one of: {', '.join(KINDS)}")
    return kind


def parse_sector(text: str) -> str:
    """The sector named by `text` (English or Vietnamese), '' for none; ValueError otherwise."""
    folded = _fold(text)
    if not folded:
        return ""
    sector = _SECTOR_ALIASES.get(folded)
    if sector is None:
        raise ValueError(f"unknown sector {text.strip()[:40]!r}; one of: {', '.join(SECTORS)}")
    return sector


def parse_networks(text: str) -> tuple[list[str], list[str]]:
    """CIDRs from a cell of networks, single addresses and `a-b` ranges; (networks, errors)."""
    text = re.sub(r"\s*-\s*", "-", text.strip())
    nets: list[str] = []
    errors: list[str] = []
    for token in _SPLIT.split(text):
        if not token:
            continue
        try:
            found = _networks(token)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        for net in found:
            if net.prefixlen < _MIN_PREFIX[net.version]:
                errors.append(f"network too broad to belong to one organisation: {token[:80]!r}")
            elif net.compressed not in nets:
                nets.append(net.compressed)
    return nets, errors


def _networks(token: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    if "-" in token:
        first_text, _, last_text = token.partition("-")
        try:
            first = ipaddress.ip_address(first_text)
            last = ipaddress.ip_address(last_text)
        except ValueError:
            raise ValueError(f"not an IP range: {token[:80]!r}") from None
        if first.version != last.version or first > last:  # type: ignore[operator]
            raise ValueError(f"not an IP range (start after end or mixed versions): {token[:80]!r}")
        return list(ipaddress.summarize_address_range(first, last))
    try:
        return [ipaddress.ip_network(token, strict=False)]
    except ValueError:
        raise ValueError(f"not an IP address or CIDR network: {token[:80]!r}") from None


def parse_domains(text: str) -> tuple[list[str], list[str]]:
    """Normalised domains from a cell (URLs give their host); (domains, errors)."""
    domains: list[str] = []
    errors: list[str] = []
    for token in _SPLIT.split(text.strip()):
        if not token:
            continue
        host = token
        if "://" in host:
            host = host.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
        try:
            domain = normalise_domain(host)
        except InputError as exc:
            errors.append(str(exc))
            continue
        if domain not in domains:
            domains.append(domain)
    return domains, errors


def parse_asns(text: str) -> tuple[list[int], list[str]]:
    """AS numbers from a cell: "AS7552", "as 7552" or "7552"; (numbers, errors)."""
    text = re.sub(r"(?i)\bAS\s+(?=\d)", "AS", text.strip())
    asns: list[int] = []
    errors: list[str] = []
    for token in _SPLIT.split(text):
        if not token:
            continue
        digits = token[2:] if token[:2].upper() == "AS" else token
        if not (digits.isascii() and digits.isdigit()) or not 0 < int(digits) <= _MAX_ASN:
            errors.append(f"not an AS number: {token[:40]!r}")
            continue
        if int(digits) not in asns:
            asns.append(int(digits))
    return asns, errors


def parse_email(text: str) -> str:
    """One address with its domain lower-cased; ValueError when it is not an address."""
    value = text.strip()
    if not value:
        return ""
    if not _EMAIL.match(value):
        raise ValueError(f"not an e-mail address: {value[:80]!r}")
    local, _, domain = value.rpartition("@")
    try:
        return f"{local}@{normalise_domain(domain)}"
    except InputError:
        raise ValueError(f"not an e-mail address (bad domain): {value[:80]!r}") from None


def read_org_csv(path: Path, issues: IssueLog) -> list[OrgRecord]:
    """Organisations from a CSV file with a header row; bad cells and rows go to `issues`.

    Raises InputError only when the file cannot be read at all.
    """
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise InputError("no such file", path=source) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=source) from exc
    text = _decode(raw, source, issues)
    if "\x00" in text:
        issues.add(source, 1, "NUL characters removed (is this really a CSV file?)")
        text = text.replace("\x00", "")
    records: list[OrgRecord] = []
    seen: dict[str, int] = {}
    for record in _rows(text, source, issues):
        first = seen.setdefault(record.code, record.line)
        if first != record.line:
            issues.add(
                source, record.line, f"duplicate code {record.code!r} (first on line {first})"
            )
            continue
        records.append(record)
    return records


def _decode(raw: bytes, source: str, issues: IssueLog) -> str:
    # Excel on Vietnamese Windows saves "CSV" as Windows-1258 unless told to use UTF-8.
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1258")
        except UnicodeDecodeError:
            issues.add(source, 1, "neither UTF-8 nor Windows-1258; read as Latin-1, save as UTF-8")
            text = raw.decode("latin-1")
    return unicodedata.normalize("NFC", text)


def _delimiter(text: str) -> str:
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return max((",", ";", "\t"), key=line.count)
    return ","


def _rows(text: str, source: str, issues: IssueLog) -> Iterator[OrgRecord]:
    reader = csv.reader(text.splitlines(keepends=True), delimiter=_delimiter(text))
    cols: dict[str, int] | None = None
    width = 0
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            issues.add(source, start, f"bad CSV: {exc}")
            if reader.line_num < start:
                return  # the reader did not move on: nothing more can be read
            continue
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if cols is None:
            cols = _header(row, source, start, issues)
            if "code" not in cols or "name" not in cols:
                issues.add(
                    source, start, "the header needs a 'code' (mã) and a 'name' (tên) column"
                )
                return
            width = len(row)
            continue
        if len(row) > width and any(c.strip() for c in row[width:]):
            issues.add(source, start, f"{len(row)} cells but {width} header columns; extra ignored")
        cells = {key: row[i] for key, i in cols.items() if i < len(row)}
        record = _record(cells, source, start, issues)
        if record is not None:
            yield record


def _header(row: list[str], source: str, line: int, issues: IssueLog) -> dict[str, int]:
    cols: dict[str, int] = {}
    for i, cell in enumerate(row):
        key = _HEADER.get(_fold(cell))
        if key is None:
            if cell.strip():
                issues.add(source, line, f"unknown column {cell.strip()[:40]!r} ignored")
        elif key in cols:
            issues.add(source, line, f"column {cell.strip()[:40]!r} repeats {key!r}; ignored")
        else:
            cols[key] = i
    return cols


def _record(cells: dict[str, str], source: str, line: int, issues: IssueLog) -> OrgRecord | None:
    def bad(message: str) -> None:
        issues.add(source, line, message)

    code = cells.get("code", "").strip()
    name = _clean(cells.get("name", ""))
    if not code or not name:
        bad("row without " + ("a code" if not code else "a name") + "; rejected")
        return None
    if not _CODE.match(code):
        bad(f"bad code {code[:80]!r} (letters, digits and . - _ : / only, ≤ 64); row rejected")
        return None
    if len(name) > _MAX_NAME:
        bad(f"name longer than {_MAX_NAME} characters; cut")
        name = name[:_MAX_NAME]
    parent = cells.get("parent_code", "").strip()
    if parent and not _CODE.match(parent):
        bad(f"bad parent code {parent[:80]!r}; left empty")
        parent = ""
    try:
        kind = parse_kind(cells.get("kind", ""))
    except ValueError as exc:
        bad(f"{exc}; 'unit' used")
        kind = "unit"
    nets, errors = parse_networks(cells.get("ip_ranges", ""))
    domains, domain_errors = parse_domains(cells.get("domains", ""))
    asns, asn_errors = parse_asns(cells.get("asns", ""))
    for message in (*errors, *domain_errors, *asn_errors):
        bad(f"{message}; left out")
    try:
        email = parse_email(cells.get("contact_email", ""))
    except ValueError as exc:
        bad(f"{exc}; left out")
        email = ""
    sector: str | None = None
    if "sector" in cells:
        try:
            sector = parse_sector(cells["sector"])
        except ValueError as exc:
            bad(f"{exc}; left empty")
            sector = ""
    return OrgRecord(
        code=code,
        name=name,
        parent_code=parent,
        kind=kind,
        ip_ranges=nets,
        domains=domains,
        asns=asns,
        contact_name=_clean(cells.get("contact_name", "")),
        contact_email=email,
        contact_phone=_clean(cells.get("contact_phone", "")),
        sector=sector,
        line=line,
        source=source,
    )


def check_tree(
    records: list[OrgRecord],
    known_codes: Set[str] = frozenset(),
    issues: IssueLog | None = None,
) -> list[OrgRecord]:
    """The records whose parents exist (among them or in `known_codes`) and form no cycle,
    parents first and otherwise in input order; every other record is reported and left out."""
    log = issues if issues is not None else IssueLog()
    by_code: dict[str, OrgRecord] = {}
    for rec in records:
        if rec.code in by_code:
            log.add(rec.source, rec.line, f"duplicate code {rec.code!r}; the first is kept")
        else:
            by_code[rec.code] = rec
    ok: dict[str, bool] = {}
    ordered: list[OrgRecord] = []
    for rec in by_code.values():
        path: list[OrgRecord] = []
        on_path: set[str] = set()
        cur = rec
        while cur.code not in ok:
            if cur.code in on_path:
                cycle = path[path.index(cur) :]
                chain = " → ".join([*(r.code for r in cycle), cur.code])
                for member in cycle:
                    log.add(member.source, member.line, f"parent cycle {chain}; left out")
                    ok[member.code] = False
                break
            path.append(cur)
            on_path.add(cur.code)
            parent = cur.parent_code
            if not parent or (parent not in by_code and parent in known_codes):
                break
            if parent not in by_code:
                log.add(cur.source, cur.line, f"parent {parent!r} of {cur.code!r} does not exist")
                ok[cur.code] = False
                break
            cur = by_code[parent]
        for node in reversed(path):
            if node.code in ok:
                continue
            parent = node.parent_code
            if parent in by_code and not ok[parent]:
                log.add(node.source, node.line, f"parent {parent!r} was left out; so is this")
                ok[node.code] = False
            else:
                ok[node.code] = True
                ordered.append(node)
    return ordered


def national_root() -> OrgRecord:
    """The root of every tree: the national monitoring centre."""
    return OrgRecord(
        code=NATIONAL_CODE,
        name="Trung tâm Giám sát an toàn không gian mạng quốc gia (NCSC)",
        kind="national",
        source="quet",
    )


def provinces(edition: str = "2025") -> list[OrgRecord]:
    """The provinces and centrally-run cities as children of the national root: edition "2025"
    (34, since the merger of 1 July 2025) or "2008" (the 63 before it). Codes are "VN-" and the
    GSO two-digit code (not ISO 3166-2); both editions share the scheme, so mix them never."""
    if edition == "2025":
        return _provinces_2025()
    if edition == "2008":
        issues = IssueLog()
        records = read_org_csv(_DATA / "provinces-2008.csv", issues)
        if issues.count:  # a broken file shipped with the package, not a user's mistake
            raise RuntimeError(f"bad province data: {issues.issues[0]}")
        return records
    raise InputError(f"unknown province edition {edition!r}; one of: {', '.join(EDITIONS)}")


def _provinces_2025() -> list[OrgRecord]:
    import vietnam_provinces
    from vietnam_provinces import Province

    source = f"vietnam-provinces {vietnam_provinces.__version__}"
    return [
        OrgRecord(
            code=f"{NATIONAL_CODE}-{int(p.code):02d}",
            name=unicodedata.normalize("NFC", p.name),
            parent_code=NATIONAL_CODE,
            kind="province",
            source=source,
        )
        for p in sorted(Province.iter_all(), key=lambda p: int(p.code))
    ]

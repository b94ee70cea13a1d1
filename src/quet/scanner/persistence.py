"""Linux persistence places (cron, systemd, rc.local, ld.so.preload, shell profiles, SSH keys) read
from a root folder, and the pure matching of their commands against indicators and heuristics."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import os
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from quet.scanner.result import Finding, Kind

if TYPE_CHECKING:
    from quet.indicators.filenames import FilenameMatcher
    from quet.indicators.model import Indicator
    from quet.indicators.netsets import DomainSet, IPSet

DETAIL_MAX = 300
MAX_FILE_BYTES = 1 << 20  # a profile or crontab bigger than this is read only up to here


@dataclass(slots=True)
class PersistenceEntry:
    """One thing the system runs by itself, and where it is configured."""

    place: str  # "cron", "systemd", "rc.local", "ld.so.preload", "shell-profile",
    # "authorized_keys", "windows-run-key", "windows-service", "windows-task", ...
    path: str  # the file (or registry key) that holds it
    line: int  # line number in that file (0 when not line-based)
    command: str  # the command / value / key line
    targets: list[str] = field(default_factory=list)  # absolute paths it refers to (best effort)


# ---------------------------------------------------------------- command parsing (pure)

_REDIRECTS = {">", ">>", "<", "<<", "<<<", "&>", ">&", "2>", "2>>", "1>", ">|"}
_NOT_TARGET_PREFIXES = ("/dev/", "/proc/", "/sys/")
_ENV_LINE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*=")


def _tokens(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:  # an unclosed quote: fall back to a rough split
        return [t for t in re.split(r"[\s;|&()<>'\"`]+", command) if t]


def shell_targets(command: str, _depth: int = 0) -> list[str]:
    """Absolute paths a shell command line refers to, skipping redirection targets and devices."""
    out: list[str] = []
    after_redirect = False
    for tok in _tokens(command):
        if tok in _REDIRECTS or (tok and set(tok) <= set("<>&|0123456789") and ">" in tok):
            after_redirect = True
            continue
        if after_redirect:
            after_redirect = False
            continue
        if _depth < 2 and any(c.isspace() for c in tok):  # e.g. the script of `sh -c "..."`
            out.extend(shell_targets(tok, _depth + 1))
            continue
        tok = tok.split("=", 1)[1] if _ENV_LINE.match(tok) else tok
        tok = tok.rstrip(";,")
        # A colon means a PATH-like list, not one file.
        if (
            tok.startswith("/")
            and len(tok) > 1
            and ":" not in tok
            and not tok.startswith(_NOT_TARGET_PREFIXES)
        ):
            out.append(tok)
    return list(dict.fromkeys(out))


_CRON_SPECIALS = {
    "@reboot",
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
}


def parse_crontab_line(text: str, has_user: bool) -> tuple[str, str] | None:
    """(user, command) of one crontab line; None for comments, blanks and variable settings.
    Raises ValueError for a line that is none of these."""
    line = text.strip()
    if not line or line.startswith("#") or _ENV_LINE.match(line):
        return None
    nsched = 1 if line.startswith("@") else 5
    fields = line.split(None, nsched + (1 if has_user else 0))
    if nsched == 1 and fields[0].lower() not in _CRON_SPECIALS:
        raise ValueError(f"unknown schedule {fields[0][:40]!r}")
    if len(fields) < nsched + (2 if has_user else 1):
        raise ValueError("too few fields for a crontab line")
    if nsched == 5 and not all(re.fullmatch(r"[0-9A-Za-z*/,\-]+", f) for f in fields[:5]):
        raise ValueError("bad schedule fields")
    user = fields[nsched] if has_user else ""
    return user, fields[-1]


_EXEC_KEYS = (
    "ExecStart",
    "ExecStartPre",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
)


def parse_unit(text: str) -> Iterator[tuple[int, str, str]]:
    """(line, key, command) for each Exec* setting of a systemd unit, prefixes stripped."""
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending:
            start = number
            if not line or line[0] in "#;":
                continue
        if line.endswith("\\"):  # continuation lines are joined with a space, as systemd does
            pending += line[:-1].rstrip() + " "
            continue
        line, pending = pending + line, ""
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or key not in _EXEC_KEYS:
            continue
        command = value.strip().lstrip("-@:+!").strip()
        if command:
            yield start, key, command


# ---------------------------------------------------------------- collection (I/O)


class _Reader:
    """Reads files under a root and reports them by their path on the real system."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.errors: list[str] = []
        self.entries: list[PersistenceEntry] = []
        self._seen: set[tuple[int, int]] = set()

    def show(self, path: Path) -> str:
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return str(path)
        return "/" + rel.as_posix() if rel.parts else "/"

    def under(self, shown: str) -> Path:
        return self.root / shown.lstrip("/")

    def read(self, path: Path) -> str | None:
        """The text of a regular file read once (hard/sym links to one file count once)."""
        try:
            st = path.stat()
            if not path.is_file():
                return None
            if (st.st_dev, st.st_ino) in self._seen:
                return None
            self._seen.add((st.st_dev, st.st_ino))
            with path.open("rb") as fh:
                data = fh.read(MAX_FILE_BYTES)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.errors.append(f"{self.show(path)}: {exc.strerror or exc}")
            return None
        return data.decode("utf-8", errors="replace")

    def listdir(self, folder: Path, pattern: str = "*") -> list[Path]:
        try:
            return sorted(p for p in folder.glob(pattern) if not p.name.startswith("."))
        except OSError as exc:
            self.errors.append(f"{self.show(folder)}: {exc.strerror or exc}")
            return []

    def add(self, place: str, path: Path, line: int, command: str, targets: list[str]) -> None:
        self.entries.append(PersistenceEntry(place, self.show(path), line, command, targets))

    def homes(self) -> list[Path]:
        homes = [self.root / "root"]
        homes.extend(p for p in self.listdir(self.root / "home") if p.is_dir())
        return [h for h in homes if h.is_dir()]


def _cron(r: _Reader) -> None:
    etc = r.root / "etc"
    system = [etc / "crontab", *r.listdir(etc / "cron.d")]
    spool = r.root / "var" / "spool" / "cron"
    users = [*r.listdir(spool / "crontabs"), *r.listdir(spool)]
    for path, has_user in [(p, True) for p in system] + [(p, False) for p in users]:
        text = r.read(path)
        if text is None:
            continue
        for number, raw in enumerate(text.splitlines(), 1):
            try:
                parsed = parse_crontab_line(raw, has_user)
            except ValueError as exc:
                r.errors.append(f"{r.show(path)}:{number}: not a crontab line: {exc}")
                continue
            if parsed is not None:
                r.add("cron", path, number, parsed[1], shell_targets(parsed[1]))
    for period in ("hourly", "daily", "weekly", "monthly"):
        for script in r.listdir(etc / f"cron.{period}"):
            if script.is_file():
                r.add("cron", script, 0, r.show(script), [r.show(script)])


_UNIT_DIRS = (
    "etc/systemd/system",
    "lib/systemd/system",
    "usr/lib/systemd/system",
    "etc/systemd/user",
)


def _systemd(r: _Reader) -> None:
    folders = [r.root / d for d in _UNIT_DIRS]
    folders += [h / ".config" / "systemd" / "user" for h in r.homes()]
    for folder in folders:
        units = [*r.listdir(folder, "*.service"), *r.listdir(folder, "*.timer")]
        units += r.listdir(folder, "*.service.d/*.conf")  # drop-ins can replace ExecStart
        for unit in units:
            text = r.read(unit)
            if text is None:
                continue
            for number, _key, command in parse_unit(text):
                r.add("systemd", unit, number, command, shell_targets(command))


_SHELL_NOISE = {"fi", "done", "esac", "then", "else", "do", "{", "}", ";;", ")"}


def _line_file(r: _Reader, place: str, path: Path) -> None:
    text = r.read(path)
    if text is None:
        return
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or line in _SHELL_NOISE:
            continue
        if place == "rc.local" and line == "exit 0":
            continue
        if place == "ld.so.preload":
            targets = [t for t in re.split(r"[\s:]+", line) if t]
        else:
            targets = shell_targets(line)
        r.add(place, path, number, line, targets)


_PROFILES = (".bashrc", ".profile", ".bash_profile", ".bash_login", ".zshrc", ".zprofile")


def _profiles(r: _Reader) -> None:
    etc = r.root / "etc"
    paths = [etc / "profile", *r.listdir(etc / "profile.d", "*.sh"), etc / "bash.bashrc"]
    paths += [etc / "bashrc", etc / "zsh" / "zshrc"]
    paths += [h / name for h in r.homes() for name in _PROFILES]
    for path in paths:
        _line_file(r, "shell-profile", path)


_KEY_TYPE = re.compile(r"^(ssh-|ecdsa-|sk-)[a-z0-9@.\-]+$")


def split_key_options(text: str) -> tuple[list[str], str]:
    """The options of an authorized_keys line (quotes and \\" respected) and the rest of it."""
    options: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch in ", \t":
            options.append("".join(current))
            current = []
            if ch != ",":
                return options, text[i:].strip()
            continue
        current.append(ch)
    options.append("".join(current))
    return options, ""


def parse_authorized_key(text: str) -> tuple[str, str, list[str]] | None:
    """(summary, forced command, options) of one authorized_keys line; None for comments/blanks.
    The summary replaces the key blob with its SHA256 fingerprint, as ssh-keygen -l shows it."""
    line = text.strip()
    if not line or line.startswith("#"):
        return None
    first = line.split(None, 1)[0]
    options: list[str] = []
    rest = line
    if not _KEY_TYPE.match(first):
        options, rest = split_key_options(line)
    parts = rest.split(None, 2)
    if len(parts) < 2 or not _KEY_TYPE.match(parts[0]):
        raise ValueError("no key type (ssh-rsa, ssh-ed25519, ecdsa-...) found")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the key is not valid base64") from exc
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    comment = parts[2] if len(parts) > 2 else ""
    command = ""
    for opt in options:
        if opt.lower().startswith("command="):
            command = opt.split("=", 1)[1].strip('"').replace('\\"', '"')
    summary = " ".join(x for x in (",".join(options), parts[0], f"SHA256:{digest}", comment) if x)
    return summary, command, options


def _authorized_keys(r: _Reader) -> None:
    for home in r.homes():
        for name in ("authorized_keys", "authorized_keys2"):
            path = home / ".ssh" / name
            text = r.read(path)
            if text is None:
                continue
            for number, raw in enumerate(text.splitlines(), 1):
                try:
                    parsed = parse_authorized_key(raw)
                except ValueError as exc:
                    r.errors.append(f"{r.show(path)}:{number}: not an SSH key line: {exc}")
                    continue
                if parsed is not None:
                    summary, command, _ = parsed
                    r.add("authorized_keys", path, number, summary, shell_targets(command))


def linux_entries(root: Path = Path("/")) -> tuple[list[PersistenceEntry], list[str]]:
    """Every persistence entry under `root`, with paths as the real system names them."""
    r = _Reader(Path(root))
    _cron(r)
    _systemd(r)
    etc = r.root / "etc"
    for path in (etc / "rc.local", etc / "rc.d" / "rc.local"):
        _line_file(r, "rc.local", path)
    _line_file(r, "ld.so.preload", etc / "ld.so.preload")
    _profiles(r)
    _authorized_keys(r)
    return r.entries, r.errors


# ---------------------------------------------------------------- matching (pure)

_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:.])\[?[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}\]?(?![\w:])")
_DOMAIN = re.compile(r"(?<![\w.-])(?:[A-Za-z0-9_-]{1,63}\.)+[A-Za-z][A-Za-z0-9-]{0,62}(?![\w-])")

_SHELL = r"(?:sudo\s+)?(?:/usr)?(?:/bin/)?(?:ba|da|z|k|a)?sh\b"
HEURISTICS: tuple[tuple[str, int, re.Pattern[str]], ...] = (
    (
        "Quet.Heuristic.DownloadExec",
        80,
        re.compile(
            rf"\b(?:curl|wget)\b[^|;&]*\|\s*{_SHELL}"
            rf"|{_SHELL}\s+(?:-c\s+)?[\"']?\$\(\s*(?:curl|wget)\b"
            rf"|{_SHELL}\s+<\(\s*(?:curl|wget)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "Quet.Heuristic.Base64Exec",
        80,
        re.compile(rf"\bbase64\s+(?:-\w*d\w*|--decode)\b[^|;&]*\|\s*{_SHELL}", re.IGNORECASE),
    ),
)
LD_PRELOAD_NAME = "Quet.Heuristic.LdPreload"
LD_PRELOAD_SCORE = 70


def network_values(text: str) -> tuple[list[str], list[str]]:
    """IP literals and domain-looking names in a command, each once, in order."""
    ips: list[str] = []
    for m in _IPV4.finditer(text):
        try:
            ips.append(ipaddress.IPv4Address(m.group()).compressed)
        except ValueError:
            continue
    for m in _IPV6.finditer(text):
        if m.group().count(":") < 2:
            continue
        try:
            ips.append(ipaddress.IPv6Address(m.group().strip("[]")).compressed)
        except ValueError:
            continue
    domains = [m.group().lower() for m in _DOMAIN.finditer(text)]
    return list(dict.fromkeys(ips)), list(dict.fromkeys(domains))


def _detail(entry: PersistenceEntry) -> str:
    text = f"{entry.place} line {entry.line}: {entry.command}"
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"


def _hit(entry: PersistenceEntry, ind: Indicator, fallback: str) -> Finding:
    return Finding(
        kind=Kind.PERSISTENCE,
        name=ind.name or ind.family or fallback,
        path=entry.path,
        indicator=ind.value,
        source=ind.source,
        score=ind.confidence,
        detail=_detail(entry),
    )


def match_entries(
    entries: Iterable[PersistenceEntry],
    filenames: FilenameMatcher,
    c2_ips: IPSet,
    c2_domains: DomainSet,
    min_score: int = 60,
) -> list[Finding]:
    """Findings for entries whose command matches a filename IOC (score at least min_score), names
    a C2 address or domain (by labels), or looks like a download-and-run / LD_PRELOAD hook."""
    findings: list[Finding] = []
    for entry in entries:
        seen: set[tuple[str, str]] = set()
        for ind in filenames.match(entry.command):
            if ind.confidence >= min_score and ind.key() not in seen:
                seen.add(ind.key())
                findings.append(_hit(entry, ind, "Filename IOC"))
        ips, domains = network_values(entry.command)
        hits = [c2_ips.lookup(ip) for ip in ips] + [c2_domains.lookup(d) for d in domains]
        for net in hits:
            if net is not None and net.key() not in seen:
                seen.add(net.key())
                findings.append(_hit(entry, net, "C2 indicator"))
        if entry.place == "ld.so.preload":
            findings.append(_heuristic(entry, LD_PRELOAD_NAME, LD_PRELOAD_SCORE))
        for name, score, pattern in HEURISTICS:
            if pattern.search(entry.command):
                findings.append(_heuristic(entry, name, score))
    return findings


def _heuristic(entry: PersistenceEntry, name: str, score: int) -> Finding:
    return Finding(
        kind=Kind.HEURISTIC, name=name, path=entry.path, score=score, detail=_detail(entry)
    )


def targets(entries: Iterable[PersistenceEntry], root: Path = Path("/")) -> list[str]:
    """Unique referenced files that exist (under `root`), for the file scanner to scan."""
    out: list[str] = []
    for target in dict.fromkeys(t for e in entries for t in e.targets):
        if not os.path.isabs(target) and not re.match(r"^[A-Za-z]:\\", target):
            continue
        real = str(Path(root) / target.lstrip("/")) if str(root) != "/" else target
        if os.path.isfile(real):
            out.append(real)
    return out

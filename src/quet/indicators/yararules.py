"""YARA rule files and folders: find, compile with Loki's external variables, cache the compiled form."""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yara_x

from quet.indicators.model import IssueLog

_RULE_DECL = re.compile(r"^\s*(?:(?:private|global)\s+)*rule\s+\w+", re.MULTILINE)
RULE_EXTENSIONS = (".yar", ".yara", ".rule", ".rules")
# The variables Loki and THOR define, so that rule sets written for them (signature-base) compile.
EXTERNALS: dict[str, str] = {
    "filename": "",
    "filepath": "",
    "extension": "",
    "filetype": "",
    "owner": "",
    "md5": "",
}


@dataclass
class RuleSource:
    path: str
    text: str
    namespace: str


@dataclass
class CompiledRules:
    """Compiled rules plus what a worker process needs to load them again quickly."""

    rules: yara_x.Rules | None
    identity: (
        str  # sha256 over every source and the compiler version: changes when any rule changes
    )
    count: int
    files: list[str] = field(default_factory=list)
    blob_path: Path | None = None  # the serialized rules in the cache, for worker processes
    namespaces: dict[str, str] = field(default_factory=dict)  # namespace -> rule file


def find_rule_files(paths: Iterable[Path], issues: IssueLog) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                found.extend(
                    Path(root) / f for f in sorted(files) if f.lower().endswith(RULE_EXTENSIONS)
                )
        elif path.is_file():
            found.append(path)
        else:
            issues.add(str(path), 0, "no such rule file or folder")
    return found


def read_sources(files: Iterable[Path], issues: IssueLog) -> list[RuleSource]:
    sources: list[RuleSource] = []
    seen: set[str] = set()
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            issues.add(str(path), 0, f"cannot read: {exc.strerror}")
            continue
        # One namespace per file, as `yara -r` callers and Loki do: equal rule names in two files don't clash.
        ns = path.stem
        n = 2
        while ns in seen:
            ns, n = f"{path.stem}_{n}", n + 1
        seen.add(ns)
        sources.append(RuleSource(str(path), text, ns))
    return sources


def identity(sources: Iterable[RuleSource]) -> str:
    h = hashlib.sha256(f"yara-x {yara_x_version()}".encode())
    for src in sources:
        h.update(src.namespace.encode() + b"\0" + src.text.encode("utf-8", "replace") + b"\0")
    return h.hexdigest()


def yara_x_version() -> str:
    try:
        from importlib.metadata import version

        return version("yara-x")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return "unknown"


def compile_sources(sources: list[RuleSource], issues: IssueLog) -> tuple[yara_x.Rules | None, int]:
    """Compile every file; a file that fails is reported (file:line) and left out, the rest compile."""
    rules = _build(sources)
    if rules is None:
        # Something is broken: find which files, one compile each, then build the good ones.
        good: list[RuleSource] = []
        for src in sources:
            compiler = _compiler()
            compiler.new_namespace(src.namespace)
            try:
                compiler.add_source(src.text, origin=src.path)
            except yara_x.CompileError as exc:
                issues.add(src.path, _error_line(str(exc)), f"YARA: {_first_line(str(exc))}")
                continue
            good.append(src)
        sources = good
        rules = _build(sources) if sources else None
    count = sum(len(_RULE_DECL.findall(src.text)) for src in sources) if rules else 0
    return rules, count


def _build(sources: list[RuleSource]) -> yara_x.Rules | None:
    compiler = _compiler()
    try:
        for src in sources:
            compiler.new_namespace(src.namespace)
            compiler.add_source(src.text, origin=src.path)
    except yara_x.CompileError:
        return None
    return compiler.build()


def _compiler() -> yara_x.Compiler:
    compiler = yara_x.Compiler()
    for name, value in EXTERNALS.items():
        compiler.define_global(name, value)
    return compiler


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return text


def _error_line(text: str) -> int:
    # yara-x errors carry "--> origin:LINE:COL"
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("-->"):
            parts = line.rsplit(":", 2)
            if len(parts) == 3 and parts[1].isdigit():
                return int(parts[1])
    return 0


def load(paths: Iterable[Path], issues: IssueLog, cache_dir: Path | None = None) -> CompiledRules:
    """Compile rules from files/folders; with a cache dir, reuse the serialized result when unchanged."""
    files = find_rule_files(paths, issues)
    sources = read_sources(files, issues)
    ident = identity(sources)
    namespaces = {s.namespace: s.path for s in sources}
    if not sources:
        return CompiledRules(None, ident, 0, [])
    blob = cache_dir / f"rules-{ident[:32]}.yarx" if cache_dir else None
    if blob is not None and blob.exists():
        try:
            cached = load_blob(blob)
            meta = blob.with_suffix(".count")
            count = int(meta.read_text()) if meta.exists() else 0
            return CompiledRules(cached, ident, count, [s.path for s in sources], blob, namespaces)
        except Exception:
            blob.unlink(missing_ok=True)
    rules, count = compile_sources(sources, issues)
    if rules is not None and blob is not None:
        buf = io.BytesIO()
        rules.serialize_into(buf)
        blob.parent.mkdir(parents=True, exist_ok=True)
        tmp = blob.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, blob)
        blob.with_suffix(".count").write_text(str(count))
    return CompiledRules(rules, ident, count, [s.path for s in sources], blob, namespaces)


def load_blob(path: Path) -> yara_x.Rules:
    with path.open("rb") as fh:
        return yara_x.Rules.deserialize_from(fh)

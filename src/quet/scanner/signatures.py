"""The signature set a scan uses: YARA rules, hash lists, filename IOCs and C2 addresses, loaded once."""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

from quet import __version__, paths
from quet.errors import SignatureError
from quet.indicators import formats, yararules
from quet.indicators.filenames import FilenameMatcher
from quet.indicators.hashes import HashSet
from quet.indicators.model import HASH_TYPES, IndicatorType, IssueLog
from quet.indicators.netsets import DomainSet, IPSet
from quet.indicators.warninglists import WarninglistSet

STARTER_DIR = Path(__file__).parent / "starter"
C2_TYPES = (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR, IndicatorType.DOMAIN)


@dataclass
class SignatureSet:
    rules: yararules.CompiledRules
    hashes: HashSet = field(default_factory=HashSet)
    filenames: FilenameMatcher = field(default_factory=FilenameMatcher)
    c2_ips: IPSet = field(default_factory=IPSet)
    c2_domains: DomainSet = field(default_factory=DomainSet)
    issues: IssueLog = field(default_factory=IssueLog)
    sources: list[str] = field(default_factory=list)
    starter: bool = False
    load_seconds: float = 0.0
    rule_sources: dict[str, str] = field(default_factory=dict)  # namespace -> file

    @property
    def identity(self) -> str:
        """Identity of what decides a verdict; the cache only needs `rules.identity`."""
        h = hashlib.sha256(self.rules.identity.encode())
        for src in sorted(self.sources):
            h.update(src.encode())
        return h.hexdigest()[:16]

    def summary(self) -> dict[str, object]:
        return {
            "identity": self.identity,
            "rules_identity": self.rules.identity[:16],
            "starter": self.starter,
            "yara_rules": self.rules.count,
            "hashes": len(self.hashes),
            "filename_iocs": len(self.filenames),
            "c2_ips": len(self.c2_ips),
            "c2_domains": len(self.c2_domains),
            "sources": self.sources,
            "load_errors": self.issues.count,
            "load_seconds": round(self.load_seconds, 3),
        }


def installed_dirs() -> list[Path]:
    """Folders of installed signatures: the current update's content, then those added by hand."""
    from quet.bundle.install import current_signatures_dir

    found = []
    updated = current_signatures_dir()
    if updated is not None and updated.is_dir():
        found.append(updated)
    local = paths.signatures_dir()
    if any(not p.name.startswith(".") for p in local.iterdir()):
        found.append(local)
    return found


def load(
    rules: list[Path] | None = None,
    hashes: list[Path] | None = None,
    iocs: list[Path] | None = None,
    use_installed: bool = True,
    cache_dir: Path | None = None,
    warninglists: bool = True,
) -> SignatureSet:
    """Load the installed signatures (or the starter set when none) plus any given on the command line."""
    t0 = time.perf_counter()
    issues = IssueLog()
    rule_paths = list(rules or [])
    data_paths = list(hashes or []) + list(iocs or [])
    starter = False
    if use_installed:
        installed = installed_dirs()
        if installed:
            # Each folder: YARA files in it go to the compiler, everything else to the readers.
            rule_paths += installed
            data_paths += installed
        elif not rule_paths and not data_paths:
            starter = True
            rule_paths.append(STARTER_DIR / "starter.yar")
            data_paths.append(STARTER_DIR / "starter.hsb")
    for p in rule_paths + data_paths:
        if not p.exists():
            raise SignatureError(f"{p}: no such file or folder")
    compiled = yararules.load(rule_paths, issues, cache_dir or paths.cache_dir())
    sigs = SignatureSet(rules=compiled, issues=issues, starter=starter)
    sigs.rule_sources = compiled.namespaces
    sigs.sources = list(dict.fromkeys(str(p) for p in rule_paths + data_paths))
    _load_data(sigs, data_paths, cache_dir or paths.cache_dir(), warninglists)
    loaded = len(sigs.hashes) + len(sigs.filenames) + len(sigs.c2_ips) + len(sigs.c2_domains)
    if compiled.rules is None and not loaded:
        raise SignatureError(
            "no usable signatures were loaded"
            + (f" ({issues.count} errors, first: {issues.issues[0]})" if issues.count else "")
        )
    sigs.load_seconds = time.perf_counter() - t0
    return sigs


def _load_data(
    sigs: SignatureSet, data_paths: list[Path], cache_dir: Path, warninglists: bool = True
) -> None:
    """Hash lists and IOCs, from the compiled cache when no source file changed since."""
    key = _data_key(data_paths) + ("" if warninglists else "-nowl")
    blob = cache_dir / f"sigdata-{key}.pickle"
    if blob.exists():
        try:
            with blob.open("rb") as fh:
                cached = pickle.load(fh)
            sigs.hashes, sigs.filenames, sigs.c2_ips, sigs.c2_domains, data_issues = cached
            for issue in data_issues.issues:
                sigs.issues.add(issue.path, issue.line, issue.message)
            sigs.issues.count += data_issues.count - len(data_issues.issues)
            return
        except Exception:
            blob.unlink(missing_ok=True)
    data_issues = IssueLog()
    benign: WarninglistSet | None = None
    for p in data_paths:
        for ind in formats.read_path(p, data_issues):
            if ind.type in HASH_TYPES:
                if "allow" in ind.tags:
                    sigs.hashes.add_allow(ind)
                else:
                    sigs.hashes.add(ind)
            elif ind.type is IndicatorType.FILENAME:
                sigs.filenames.add(ind)
            elif ind.type in C2_TYPES:
                if benign is None and warninglists:
                    benign = WarninglistSet.default()
                if benign is not None and benign.match(ind) is not None:
                    continue  # known-benign (RFC 1918, public resolvers …): never a C2 hit
                if ind.type is IndicatorType.DOMAIN:
                    sigs.c2_domains.add(ind)
                else:
                    sigs.c2_ips.add(ind)
    sigs.hashes.freeze()
    sigs.filenames.freeze()
    sigs.c2_ips.freeze()
    for issue in data_issues.issues:
        sigs.issues.add(issue.path, issue.line, issue.message)
    sigs.issues.count += data_issues.count - len(data_issues.issues)
    if not data_paths:
        return
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = blob.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("wb") as fh:
            payload = (sigs.hashes, sigs.filenames, sigs.c2_ips, sigs.c2_domains, data_issues)
            pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, blob)
    except (OSError, pickle.PicklingError, TypeError):
        pass  # caching is an optimisation only


def _data_key(data_paths: list[Path]) -> str:
    """Identity of the data sources: every file's path, size and mtime, and Quét's version."""
    h = hashlib.sha256(f"quet {__version__}".encode())
    for top in data_paths:
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for f in files:
            try:
                st = f.stat()
            except OSError:
                continue
            h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]

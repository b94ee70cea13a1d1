"""The benchmark corpus: real files hard-linked (or copied) from system folders, built once and reused.

A manifest beside the corpus folder records what was taken, so a rerun reuses it when it is big enough.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
MAX_FILE = 64 * 2**20  # under the scanner's default --max-size, so every tool reads every file
MANIFEST_VERSION = 1


@dataclass
class Source:
    label: str  # sub-folder of the corpus
    root: Path
    share: float  # fraction of the target size; 0 = all of it; the last source takes what is left
    copy: bool = False  # copy even where a hard link is possible: the source may be edited in place


@dataclass
class Corpus:
    root: Path
    files: int
    nbytes: int
    by_source: dict[str, dict[str, int]]
    linked: int  # hard links (no copy); the rest were copied
    eicar: str
    target_bytes: int
    built_seconds: float = 0.0
    reused: bool = False
    paths: list[str] = field(default_factory=list)  # every file, absolute, sorted

    def manifest(self) -> dict[str, object]:
        return {
            "version": MANIFEST_VERSION,
            "root": str(self.root),
            "files": self.files,
            "bytes": self.nbytes,
            "by_source": self.by_source,
            "linked": self.linked,
            "eicar": self.eicar,
            "target_bytes": self.target_bytes,
            "built_seconds": round(self.built_seconds, 1),
        }


def default_sources(site_packages: Path, repo: Path) -> list[Source]:
    # The two small data folders hold rule sources and samples that the YARA rules really match,
    # so the yara/Quét comparison is made on hits, not only on agreeing silence.
    return [
        Source("clamav-testfiles", Path("/usr/share/clamav-testfiles"), 0),
        Source("quet-tests-data", repo / "tests" / "data", 0, copy=True),
        Source("shared-data", repo.parent / "shared" / "data", 0, copy=True),
        Source("usr-share-doc", Path("/usr/share/doc"), 0.10),
        Source("site-packages", site_packages, 0.22),
        Source("usr-lib", Path("/usr/lib"), 1.0),
    ]


def manifest_path(root: Path) -> Path:
    return root.with_name(root.name + ".manifest.json")


def _usable_name(path: str) -> bool:
    # '!' separates archive members in Quét's paths and newlines break line-based tool output:
    # such names would make the detection comparison ambiguous, not the scan.
    return "!" not in path and path.isprintable()


def _candidates(root: Path) -> list[tuple[str, int]]:
    """Regular files under root, in name order, (path, size); symlinks and special files skipped."""
    out: list[tuple[str, int]] = []
    for dirpath, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_size <= MAX_FILE and _usable_name(path):
                out.append((path, st.st_size))
    return out


def _place(src: str, dst: Path, copy: bool = False) -> bool:
    """Hard-link src at dst when the file system allows (and copy is False); else copy. True when linked."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not copy:
        try:
            os.link(src, dst)
            return True
        except OSError as exc:
            if exc.errno not in (
                errno.EXDEV,
                errno.EPERM,
                errno.EMLINK,
                errno.EACCES,
                errno.ENOTSUP,
            ):
                raise
    shutil.copy2(src, dst)
    return False


def load(root: Path, target_bytes: int) -> Corpus | None:
    """The corpus at root, if its manifest says it was built for at least target_bytes and it is intact."""
    mpath = manifest_path(root)
    if not mpath.exists() or not root.is_dir():
        return None
    try:
        data = json.loads(mpath.read_text())
    except (OSError, ValueError):
        return None
    if data.get("version") != MANIFEST_VERSION or int(data.get("target_bytes", 0)) != target_bytes:
        return None
    paths = list_files(root)
    nbytes = sum(os.path.getsize(p) for p in paths)
    if len(paths) != data["files"] or nbytes != data["bytes"]:
        return None  # something changed under us: rebuild rather than measure the wrong thing
    return Corpus(
        root, len(paths), nbytes, data["by_source"], data["linked"], data["eicar"],
        target_bytes, data.get("built_seconds", 0.0), True, paths,
    )  # fmt: skip


def list_files(root: Path) -> list[str]:
    out: list[str] = []
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        out.extend(os.path.join(dirpath, f) for f in sorted(files))
    return out


def build(root: Path, target_bytes: int, sources: list[Source], log: bool = True) -> Corpus:
    """Fill root with about target_bytes of real files; every source's files are taken in name order."""
    t0 = time.perf_counter()
    if root.exists():
        shutil.rmtree(root)
    manifest_path(root).unlink(missing_ok=True)
    root.mkdir(parents=True)
    eicar = root / "eicar" / "eicar.com"
    eicar.parent.mkdir()
    eicar.write_bytes(EICAR)
    total = len(EICAR)
    linked = 0
    by_source: dict[str, dict[str, int]] = {}
    for i, src in enumerate(sources):
        if not src.root.is_dir():
            print(f"  corpus: {src.root} is missing, skipped", file=sys.stderr)
            continue
        last = i == len(sources) - 1
        if last:
            budget = target_bytes - total
        else:
            budget = int(target_bytes * src.share) if src.share else MAX_FILE * 2**10
        taken = nbytes = 0
        for path, size in _candidates(src.root):
            if nbytes + size > budget:
                continue  # this one does not fit: a smaller one later may
            rel = os.path.relpath(path, src.root)
            if _place(path, root / src.label / rel, src.copy):
                linked += 1
            taken += 1
            nbytes += size
        total += nbytes
        by_source[src.label] = {"files": taken, "bytes": nbytes}
        if log:
            print(
                f"  corpus: {src.label}: {taken:,} files, {nbytes / 1e6:,.0f} MB", file=sys.stderr
            )
    by_source["eicar"] = {"files": 1, "bytes": len(EICAR)}
    paths = list_files(root)
    corpus = Corpus(
        root, len(paths), sum(os.path.getsize(p) for p in paths), by_source, linked,
        str(eicar), target_bytes, time.perf_counter() - t0, False, paths,
    )  # fmt: skip
    manifest_path(root).write_text(json.dumps(corpus.manifest(), indent=2))
    return corpus

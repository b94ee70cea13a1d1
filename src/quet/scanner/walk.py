"""Walking the file system: no symlinks, no pseudo or other file systems, globs, a size cap."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# Pseudo file systems and device trees that hold no files worth scanning and can hang a reader.
SKIP_ROOTS = ("/proc", "/sys", "/dev", "/run", "/var/run", "/var/lib/docker/overlay2")
PSEUDO_FS = {
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs", "debugfs",
    "tracefs", "configfs", "fusectl", "mqueue", "hugetlbfs", "pstore", "bpf", "binfmt_misc",
    "autofs", "efivarfs", "nsfs",
}  # fmt: skip


@dataclass(slots=True)
class FileEntry:
    path: str
    size: int
    dev: int
    ino: int
    mtime_ns: int
    ctime_ns: int
    uid: int


@dataclass
class WalkOptions:
    include: list[str] = field(default_factory=list)  # globs on the path or the name; empty = all
    exclude: list[str] = field(default_factory=list)
    follow_symlinks: bool = False
    one_file_system: bool = True  # stay on the file systems of the given paths
    skip_pseudo: bool = True  # /proc, /sys, /dev, ...


def _matches(path: str, name: str, globs: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(path, g) or fnmatch.fnmatch(name, g) for g in globs)


def _pseudo_mounts() -> set[str]:
    mounts: set[str] = set()
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3 and parts[2] in PSEUDO_FS:
                    mounts.add(parts[1].replace("\\040", " "))
    except OSError:
        pass
    return mounts


def walk(
    roots: Iterable[str | Path],
    options: WalkOptions,
    on_error: Callable[[str, str], None],
) -> Iterator[FileEntry]:
    """Yield every regular file under `roots`, with its stat; errors go to `on_error(path, why)`."""
    skip = set(SKIP_ROOTS) | _pseudo_mounts() if options.skip_pseudo else set()
    seen_dirs: set[tuple[int, int]] = set()  # loops through followed symlinks or bind mounts
    for root in roots:
        top = os.path.abspath(os.fspath(root))
        try:
            st = os.stat(top) if options.follow_symlinks else os.lstat(top)
        except OSError as exc:
            on_error(top, exc.strerror or str(exc))
            continue
        if stat.S_ISREG(st.st_mode):
            name = os.path.basename(top)
            if _wanted(top, name, options):
                yield _entry(top, st)
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue
        root_dev = st.st_dev
        stack = [top]
        while stack:
            current = stack.pop()
            try:
                dst = os.stat(current)
            except OSError as exc:
                on_error(current, exc.strerror or str(exc))
                continue
            if (dst.st_dev, dst.st_ino) in seen_dirs:
                continue
            seen_dirs.add((dst.st_dev, dst.st_ino))
            try:
                it = os.scandir(current)
            except OSError as exc:
                on_error(current, exc.strerror or str(exc))
                continue
            subdirs: list[str] = []
            with it:
                # Name order, so reports and progress are stable from run to run.
                for de in sorted(it, key=lambda d: d.name):
                    path = de.path
                    try:
                        if de.is_symlink() and not options.follow_symlinks:
                            continue
                        if de.is_dir(follow_symlinks=options.follow_symlinks):
                            if path in skip or _matches(path, de.name, options.exclude):
                                continue
                            if options.one_file_system:
                                sd = de.stat(follow_symlinks=options.follow_symlinks)
                                if sd.st_dev != root_dev:
                                    continue
                            subdirs.append(path)
                            continue
                        if not de.is_file(follow_symlinks=options.follow_symlinks):
                            continue  # sockets, fifos, devices: reading them can hang
                        if not _wanted(path, de.name, options):
                            continue
                        fst = de.stat(follow_symlinks=options.follow_symlinks)
                    except OSError as exc:
                        on_error(path, exc.strerror or str(exc))
                        continue
                    yield _entry(path, fst)
            stack.extend(sorted(subdirs, reverse=True))


def _wanted(path: str, name: str, options: WalkOptions) -> bool:
    if options.exclude and _matches(path, name, options.exclude):
        return False
    return not options.include or _matches(path, name, options.include)


def _entry(path: str, st: os.stat_result) -> FileEntry:
    return FileEntry(
        path, st.st_size, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_uid
    )

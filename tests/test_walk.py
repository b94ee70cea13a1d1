"""The walk: what it yields and what it refuses to open."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from quet.scanner import walk as walk_mod
from quet.scanner.walk import WalkOptions, walk


def _walk(root: Path, **kw: object) -> tuple[list[str], list[tuple[str, str]]]:
    errors: list[tuple[str, str]] = []
    paths = [e.path for e in walk([root], WalkOptions(**kw), lambda p, w: errors.append((p, w)))]  # type: ignore[arg-type]
    return paths, errors


def test_regular_files_only_in_stable_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_text("2")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "c.txt").write_text("c")
    os.mkfifo(tmp_path / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    try:
        paths, errors = _walk(tmp_path)
    finally:
        sock.close()
    assert [Path(p).relative_to(tmp_path).as_posix() for p in paths] == [
        "a.txt",
        "c.txt",
        "b/2.txt",
    ]
    assert errors == []


def test_symlink_loop_terminates_when_following(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("x")
    (tmp_path / "d" / "loop").symlink_to(tmp_path / "d")
    paths, _ = _walk(tmp_path, follow_symlinks=True)
    assert [Path(p).name for p in paths] == ["f.txt"]


def test_unreadable_directory_is_reported(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "x").write_text("x")
    paths, errors = _walk(tmp_path / "missing")
    assert paths == []
    assert errors and errors[0][0].endswith("missing")


def test_pseudo_file_systems_are_known() -> None:
    mounts = walk_mod._pseudo_mounts()
    assert "/proc" in mounts
    assert "/proc" in walk_mod.SKIP_ROOTS and "/sys" in walk_mod.SKIP_ROOTS


def test_exclude_prunes_directories(tmp_path: Path) -> None:
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.js").write_text("x")
    (tmp_path / "keep.js").write_text("x")
    paths, _ = _walk(tmp_path, exclude=["*/node_modules"])
    assert [Path(p).name for p in paths] == ["keep.js"]

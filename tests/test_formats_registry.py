"""The format registry: every module registers, has a real sample, and detection works."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import pytest

import quet.indicators.formats as formats
from quet.errors import InputError
from quet.indicators.formats import FORMATS, Format, detect, read_path, register
from quet.indicators.model import IssueLog

DATA = Path(__file__).parent / "data"


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(formats.__path__))


def _module_of(fmt: Format) -> str:
    fn = fmt.read or fmt.write
    assert fn is not None, f"{fmt.name} neither reads nor writes"
    return fn.__module__.rsplit(".", 1)[-1]


def test_every_module_is_registered_with_a_sample() -> None:
    registered = {_module_of(f) for f in FORMATS.values()}
    assert {"clamav", "loki", "csvfile"} <= set(_modules())
    for module in _modules():
        assert module in registered, f"formats/{module}.py registers no Format"
    for fmt in FORMATS.values():
        assert fmt.description and fmt.extensions
        assert all(e.startswith(".") for e in fmt.extensions)
        folder = DATA / fmt.name.split("-")[0]
        if fmt.read is None:
            # Output-only formats keep an example of their output beside the tests.
            assert any(p.is_file() for p in folder.rglob("*")), f"no sample under {folder}"
            continue
        samples = [p for p in folder.rglob("*") if p.is_file() and detect(p) is fmt]
        assert samples, f"no sample detected as {fmt.name} under {folder}"
        issues = IssueLog()
        assert sum(1 for _ in read_path(samples[0], issues)) > 0
        assert len(issues) == 0


def test_duplicate_name_rejected() -> None:
    fmt = FORMATS["csv"]
    with pytest.raises(ValueError, match="already registered"):
        register(Format(fmt.name, "again", (".csv2",), fmt.sniff, fmt.read))
    assert FORMATS["csv"] is fmt


def test_read_folder_recursively(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.hdb").write_bytes((DATA / "clamav" / "alz.hdb").read_bytes())
    (tmp_path / "c2-iocs.txt").write_bytes((DATA / "loki" / "c2-iocs.first500.txt").read_bytes())
    (tmp_path / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    issues = IssueLog()
    inds = list(read_path(tmp_path, issues))
    assert len(inds) == 13 + 474
    assert [(Path(i.path).name, i.line) for i in issues.issues] == [("picture.png", 0)]


def test_forced_format_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "sigs.bin"
    p.write_bytes((DATA / "clamav" / "logo.hsb").read_bytes())
    issues = IssueLog()
    assert len(list(read_path(p, issues, fmt="clamav-hsb"))) == 1
    with pytest.raises(InputError, match="unknown indicator format"):
        list(read_path(p, issues, fmt="nope"))
    with pytest.raises(InputError):
        list(read_path(tmp_path / "missing", issues))
    unknown = tmp_path / "unknown.bin"
    unknown.write_bytes(b"\x00\x01")
    assert detect(unknown) is None
    assert list(read_path(unknown, issues)) == []
    assert issues.issues[-1].line == 0

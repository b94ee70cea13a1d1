"""FilenameMatcher: Loki filename regexes, fp-regexes, the literal pre-filter's soundness."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from quet.indicators.filenames import FilenameMatcher, compile_ioc, required_literal
from quet.indicators.formats.loki import read_filename
from quet.indicators.model import Indicator, IndicatorType, IssueLog

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "loki" / "filename-iocs.first500.txt"


def fn(regex: str, fp: str = "", name: str = "") -> Indicator:
    return Indicator(IndicatorType.FILENAME, regex, name=name or regex, fp_regex=fp)


def loaded() -> tuple[FilenameMatcher, list[Indicator]]:
    issues = IssueLog()
    inds = list(read_filename(SAMPLE, issues))
    assert len(issues) == 0
    m = FilenameMatcher()
    for ind in inds:
        assert m.add(ind)
    m.freeze()
    return m, inds


def test_case_insensitive_and_fp_regex() -> None:
    m = FilenameMatcher()
    assert m.add(fn(r"\\procdump(64)?\.exe", fp=r"SysInternals\\"))
    assert m.add(fn(r"(?i)\\mimikatz\.exe$"))
    assert [i.value for i in m.match(r"C:\Temp\PROCDUMP64.EXE")] == [r"\\procdump(64)?\.exe"]
    assert m.match(r"C:\Tools\sysinternals\procdump.exe") == []
    assert len(m.match(r"D:\x\MimiKatz.exe")) == 1
    assert m.match(r"D:\x\mimikatz.exe.txt") == []
    assert len(m) == 2


def test_bad_regex_is_refused() -> None:
    m = FilenameMatcher()
    assert not m.add(fn(r"(unclosed"))
    assert not m.add(fn(r"ok\.exe", fp="[bad"))
    assert len(m) == 0
    assert m.match("anything") == []
    with pytest.raises(ValueError):
        m.add(Indicator(IndicatorType.MD5, "0" * 32))


def test_inline_flag_in_the_middle_is_accepted() -> None:
    # Python 3.11 rejects global flags past the start; Loki lists have them
    m = FilenameMatcher()
    assert m.add(fn(r"\\temp\\(?i)evil\.dll"))
    assert len(m.match(r"C:\TEMP\EVIL.DLL")) == 1


def test_linux_paths_match_windows_regexes() -> None:
    m, _ = loaded()
    hits = m.match("/mnt/win/Windows/System32/svcstat.exe")
    assert [(h.value, h.name, h.confidence) for h in hits] == [
        (r"ystem32\\svcstat\.exe", "Regin", 80)
    ]
    assert m.match("/home/user/projects/report.odt") == []


def test_real_list_hits_and_fp() -> None:
    m, _ = loaded()
    assert [h.value for h in m.match(r"C:\Windows\System32\drivers\usbclass.sys")] == [
        r"\\usbclass\.sys"
    ]
    tmp = [h.value for h in m.match(r"C:\Users\bob\AppData\Local\Temp\Appabcd.tmp.exe")]
    assert r"\\tmp\.exe" not in tmp  # excluded by its fp-regex
    assert r"\\tmp\.exe" in [h.value for h in m.match(r"C:\Users\bob\Desktop\tmp.exe")]
    # the same path inside a command line
    cmd = r'"C:\Windows\System32\rundll32.exe" C:\ProgramData\x\usbclass.sys,Start'
    assert r"\\usbclass\.sys" in [h.value for h in m.match(cmd)]


@pytest.mark.parametrize(
    ("regex", "literal"),
    [
        (r"\\usbclass\.sys", "\\usbclass.sys"),
        (r"(?i)C:\\TEMP\\MKATZ\.EXE", "c:\\temp\\mkatz.exe"),
        (r"\\procdump(64)?(a)?\.(exe|zip)", "\\procdump"),
        (r"abcd?ef", "abc"),
        (r"ab*cdef", "cdef"),
        (r"abc+", "abc"),
        (r"ab{0,2}cdef", "cdef"),
        (r"ab{2}c", "ab"),
        (r"a|bcdef", ""),
        (r"\x41bc", ""),
        (r"[abc]def\d+gh", "def"),
        (r"(?x) a b c", ""),
        (r"ölfile\.exe", "lfile.exe"),
    ],
)
def test_required_literal(regex: str, literal: str) -> None:
    assert required_literal(regex) == literal


def _sample_regexes() -> list[str]:
    return [i.value for i in read_filename(SAMPLE, IssueLog())]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_generated_match_is_found(data: st.DataObject) -> None:
    # For any regex of the real list and any string it matches (embedded in a path),
    # the pre-filter must not hide it.
    m, inds = loaded()
    ind = data.draw(st.sampled_from(inds))
    text = data.draw(st.from_regex(compile_ioc(ind.value), fullmatch=False))
    assume("/" not in text)
    assert compile_ioc(ind.value).search(text)
    found = m.match(text)
    fp = compile_ioc(ind.fp_regex) if ind.fp_regex else None
    if fp is None or not fp.search(text):
        assert ind in found


_PATHY = st.text(
    alphabet="\\/.:_ -abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ſK"
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_sample_regexes()), min_size=1, max_size=20), _PATHY)
def test_prefilter_equals_naive_search(regexes: list[str], text: str) -> None:
    m = FilenameMatcher()
    for r in regexes:
        m.add(fn(r))
    texts = [text, text.replace("/", "\\")]
    want = {r for r in regexes if any(compile_ioc(r).search(t) for t in texts)}
    assert {i.value for i in m.match(text)} == want

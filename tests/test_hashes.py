"""HashSet: ClamAV size semantics, allow-list, all hash types, duplicates, rebuilds."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from quet.indicators.formats import read_path
from quet.indicators.hashes import HashHit, HashSet
from quet.indicators.model import Indicator, IndicatorType, IssueLog, make

DATA = Path(__file__).parent / "data"
CLAM_EXE_SHA256 = "71e7b604d18aefd839e51a39c88df8383bb4c071dc31f87f00a2b5df580d4495"


def h(kind: str, text: str) -> str:
    return hashlib.new(kind, text.encode()).hexdigest()


def test_size_binds_and_star_matches_any_size() -> None:
    hs = HashSet()
    hs.add(make("sha256", h("sha256", "a"), name="Bound", size=100, source="x.hsb"))
    hs.add(make("sha256", h("sha256", "b"), name="AnySize", size=None))
    hs.freeze()
    assert [x.name for x in hs.lookup("", "", h("sha256", "a"), 100)] == ["Bound"]
    assert hs.lookup("", "", h("sha256", "a"), 101) == []
    assert [x.name for x in hs.lookup("", "", h("sha256", "b"), 7)] == ["AnySize"]
    assert [x.name for x in hs.lookup("", "", h("sha256", "b"), 0)] == ["AnySize"]
    # unknown size (negative): a size-bound signature still counts
    assert [x.name for x in hs.lookup("", "", h("sha256", "a"), -1)] == ["Bound"]


def test_full_hit_record() -> None:
    hs = HashSet()
    hs.add(make("md5", h("md5", "m").upper(), name="Win.Test", source="db.hdb", confidence=130))
    hit = hs.lookup(h("md5", "m").upper(), "", "", 5)
    assert hit == [HashHit(IndicatorType.MD5, h("md5", "m"), "Win.Test", "db.hdb", 100)]


def test_all_three_types_and_empty_inputs() -> None:
    hs = HashSet()
    for kind in ("md5", "sha1", "sha256"):
        hs.add(make(kind, h(kind, "same file"), name=f"N.{kind}"))
    hs.freeze()
    assert hs.counts() == {"md5": 1, "sha1": 1, "sha256": 1}
    assert len(hs) == 3
    hits = hs.lookup(h("md5", "same file"), h("sha1", "same file"), h("sha256", "same file"), 9)
    assert sorted(x.name for x in hits) == ["N.md5", "N.sha1", "N.sha256"]
    assert hs.lookup("", "", "", 9) == []
    assert [x.name for x in hs.lookup("", h("sha1", "same file"), "", 9)] == ["N.sha1"]
    # a digest of the wrong length or not hex is no match, never an error
    assert hs.lookup("zz" * 16, h("sha256", "same file"), "abc", 9) == []


def test_same_hash_several_entries_and_exact_duplicates() -> None:
    hs = HashSet()
    v = h("sha1", "dup")
    hs.add(make("sha1", v, name="A", size=10))
    hs.add(make("sha1", v, name="A", size=10, source="other.hdb"))  # the same signature again
    hs.add(make("sha1", v, name="B", size=10))
    hs.add(make("sha1", v, name="A", size=20))
    hs.add(make("sha1", v, name="C"))
    assert len(hs) == 4
    assert sorted(x.name for x in hs.lookup("", v, "", 10)) == ["A", "B", "C"]
    assert sorted(x.name for x in hs.lookup("", v, "", 20)) == ["A", "C"]
    # the first-added copy of a duplicate is kept
    assert [x.source for x in hs.lookup("", v, "", 20) if x.name == "A"] == [""]


def test_digests_with_zero_bytes() -> None:
    # numpy 'S' arrays strip trailing NULs on item access; lookups must not depend on that
    hs = HashSet()
    zeros = "00" * 32
    near = "00" * 31 + "01"
    hs.add(make("sha256", zeros, name="Zero"))
    hs.add(make("sha256", near, name="Near"))
    assert [x.name for x in hs.lookup("", "", zeros, 1)] == ["Zero"]
    assert [x.name for x in hs.lookup("", "", near, 1)] == ["Near"]
    assert hs.lookup("", "", "00" * 30 + "0100", 1) == []


def test_allow_list() -> None:
    hs = HashSet()
    hs.add_allow(make("md5", h("md5", "good"), size=4))
    hs.add_allow(make("sha256", h("sha256", "fine")))
    hs.add(make("md5", h("md5", "bad"), name="Bad"))
    assert hs.is_allowed(h("md5", "good"), "", "")
    assert hs.is_allowed("", "", h("sha256", "fine"))
    assert not hs.is_allowed(h("md5", "bad"), "", h("sha256", "bad"))
    assert not hs.is_allowed("", "", "")
    assert hs.allow_count() == 2
    assert len(hs) == 1  # allow entries are not signatures


def test_add_after_freeze_reopens() -> None:
    hs = HashSet()
    hs.add(make("md5", h("md5", "1"), name="One"))
    hs.freeze()
    assert len(hs) == 1
    hs.add(make("md5", h("md5", "2"), name="Two"))
    assert [x.name for x in hs.lookup(h("md5", "2"), "", "", 0)] == ["Two"]
    assert [x.name for x in hs.lookup(h("md5", "1"), "", "", 0)] == ["One"]
    assert len(hs) == 2


def test_rejects_non_hash_indicators() -> None:
    hs = HashSet()
    for bad in (
        Indicator(IndicatorType.DOMAIN, "evil.com"),
        Indicator(IndicatorType.MD5, "xyz"),
        Indicator(IndicatorType.SHA1, h("md5", "short")),
    ):
        try:
            hs.add(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad}")


def test_nbytes_is_compact() -> None:
    hs = HashSet()
    for i in range(10_000):
        hs.add(make("sha256", h("sha256", str(i)), name="Same.Name", source="one.hsb"))
    # 32-byte digest + 8 size + 4 + 4 indexes + 1 confidence; strings interned once
    assert 10_000 * 49 <= hs.nbytes() < 10_000 * 49 + 4096


def test_real_clamav_signatures_find_clam_exe() -> None:
    issues = IssueLog()
    hs = HashSet()
    for ind in read_path(DATA / "clamav", issues):
        (hs.add_allow if "allow" in ind.tags else hs.add)(ind)
    assert hs.counts() == {"md5": 0, "sha1": 15, "sha256": 3}
    hits = hs.lookup("", "", CLAM_EXE_SHA256, 544)
    assert [(x.name, Path(x.source).name) for x in hits] == [("ClamAV-Test-File", "clamav.hdb")]
    assert hs.lookup("", "", CLAM_EXE_SHA256, 545) == []
    assert hs.is_allowed("aa15bcf478d165efd2065190eb473bcb", "", "")


entries = st.lists(
    st.tuples(
        st.sampled_from(["md5", "sha1", "sha256"]),
        st.integers(0, 5),  # which content: few values so that collisions happen
        st.one_of(st.none(), st.integers(0, 3)),
        st.sampled_from(["A", "B"]),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(entries, st.integers(0, 5), st.integers(-1, 3), st.booleans())
def test_matches_a_naive_model(
    rows: list[tuple[str, int, int | None, str]], probe: int, size: int, freeze_midway: bool
) -> None:
    hs = HashSet()
    model: set[tuple[str, str, int | None, str]] = set()
    for n, (kind, content, sz, name) in enumerate(rows):
        hs.add(make(kind, h(kind, str(content)), name=name, size=sz))
        model.add((kind, h(kind, str(content)), sz, name))
        if freeze_midway and n == len(rows) // 2:
            hs.freeze()
    got = sorted(
        (x.type.value, x.name)
        for x in hs.lookup(
            h("md5", str(probe)), h("sha1", str(probe)), h("sha256", str(probe)), size
        )
    )
    want = sorted(
        (kind, name)
        for kind, value, sz, name in model
        if value == h(kind, str(probe)) and (sz is None or size < 0 or sz == size)
    )
    assert got == want
    assert len(hs) == len(model)

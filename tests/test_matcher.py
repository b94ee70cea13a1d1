"""The network matcher, driven by tests/data/netwatch/matcher_cases.yaml (indicators, events,
every expected hit), plus the streaming and caching behaviour around it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from quet.errors import InputError
from quet.indicators.model import IndicatorType, make
from quet.indicators.sets import IndicatorSet
from quet.indicators.warninglists import Warninglist, WarninglistSet
from quet.netwatch.matcher import InternalNets, Matcher, match_events
from quet.netwatch.records import NetEvent

CASES = Path(__file__).parent / "data" / "netwatch" / "matcher_cases.yaml"
ALL = yaml.safe_load(CASES.read_text(encoding="utf-8"))


def _iset(rows: list[list[str]]) -> IndicatorSet:
    return IndicatorSet.build(
        make(kind, value, family=family, source="case") for kind, value, family in rows
    )


def _warninglists(spec: Any) -> WarninglistSet | None:
    if spec is None:
        return None
    if spec == "default":
        return WarninglistSet.default()
    return WarninglistSet(
        Warninglist(
            name=w["name"],
            description="",
            type=w["type"],
            matching_attributes=tuple(w.get("matching_attributes", ())),
            entries=list(w["entries"]),
        )
        for w in spec
    )


def _events(rows: list[dict[str, Any]]) -> list[NetEvent]:
    return [NetEvent(**{k: v for k, v in row.items()}, line=i + 1) for i, row in enumerate(rows)]


def _run(case: dict[str, Any], chunk: int = 8192) -> list[tuple[Any, ...]]:
    events = _events(case["events"])
    internal = InternalNets(case["internal"]) if "internal" in case else None
    hits = match_events(
        events,
        _iset(case["indicators"]),
        _warninglists(case.get("warninglists")),
        internal=internal,
        chunk=chunk,
    )
    return [
        (events.index(h.event), h.field, h.value, h.indicator.type.value, h.indicator.value)
        for h in hits
    ]


@pytest.mark.parametrize("case", ALL, ids=[c["name"] for c in ALL])
def test_case(case: dict[str, Any]) -> None:
    expected = sorted(tuple(h) for h in case.get("hits") or [])
    assert sorted(_run(case)) == expected


@pytest.mark.parametrize("case", ALL, ids=[c["name"] for c in ALL])
def test_case_in_chunks_of_one(case: dict[str, Any]) -> None:
    """Chunking is an optimisation only: one event at a time answers the same, in order."""
    whole = _run(case)
    assert _run(case, chunk=1) == whole
    assert [h[0] for h in whole] == sorted(h[0] for h in whole)


def test_cases_cover_what_the_issue_asks() -> None:
    names = " ".join(c["name"] for c in ALL).lower()
    for topic in (
        "labels",
        "longest prefix",
        "ipv6",
        "url",
        "answers",
        "hash",
        "warninglist",
        "udp",
        "one-sided",
        "internal",
    ):
        assert topic in names, topic
    assert any(c.get("warninglists") == "default" for c in ALL)


def test_hit_carries_the_indicator_metadata() -> None:
    iset = IndicatorSet.build(
        [
            make(
                "domain",
                "evil.com",
                name="Evil C2",
                family="Emotet",
                source="feed.csv",
                tags=("c2",),
            )
        ]
    )
    ev = NetEvent("zeek:dns", client="192.168.1.2", query="x.evil.com", source="dns.log", line=7)
    [hit] = match_events([ev], iset)
    assert hit.event is ev
    assert hit.internal_host == "192.168.1.2"
    ind = hit.indicator
    assert (ind.type, ind.value, ind.name, ind.family, ind.source, ind.tags) == (
        IndicatorType.DOMAIN,
        "evil.com",
        "Evil C2",
        "Emotet",
        "feed.csv",
        ("c2",),
    )


def test_inbound_hit_names_the_internal_server() -> None:
    iset = _iset([["ipv4", "198.51.100.7", "Scanner"]])
    ev = NetEvent("zeek:conn", client="198.51.100.7", server="10.9.9.9", proto="tcp")
    [hit] = match_events([ev], iset)
    assert (hit.field, hit.internal_host) == ("client", "10.9.9.9")


def test_streams_a_generator_lazily() -> None:
    iset = _iset([["domain", "evil.com", "E"]])
    pulled = 0

    def gen() -> Any:
        nonlocal pulled
        for i in range(10**9):  # endless in practice: the matcher must not list it all
            pulled += 1
            yield NetEvent("zeek:dns", client="10.0.0.1", query="evil.com" if i == 3 else "ok.org")

    it = match_events(gen(), iset, chunk=16)
    first = next(it)
    assert first.value == "evil.com" and pulled == 16


def test_events_without_any_field_and_bad_values_hit_nothing() -> None:
    iset = _iset(
        [
            ["ipv4", "198.51.100.7", "X"],
            ["domain", "evil.com", "E"],
            ["cidr", "2001:db8::/32", "V6"],
            ["url", "http://evil.com/x", "U"],
        ]
    )
    events = [
        NetEvent("x"),
        NetEvent("x", server="not-an-ip", client="300.1.1.1"),
        NetEvent("x", answers=["", ".", "::::", "1.2.3"], host="[::1", url="http://[bad/x"),
        NetEvent("x", query="..", host=":", url="/only-a-path"),
    ]
    assert list(match_events(events, iset)) == []


def test_internal_nets_reject_bad_cidrs_and_see_mapped_addresses() -> None:
    with pytest.raises(InputError, match="not a CIDR"):
        InternalNets(["10.0.0.0/33"])
    nets = InternalNets(["10.0.0.0/8"])
    assert "10.1.1.1" in nets and "::ffff:10.1.1.1" in nets
    assert "11.1.1.1" not in nets and "junk" not in nets


def test_matcher_caches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import quet.netwatch.matcher as mod

    monkeypatch.setattr(mod, "_CACHE_MAX", 8)
    iset = _iset([["cidr", "198.51.100.0/24", "Net"]])
    m = Matcher(iset)
    events = [NetEvent("c", client="10.0.0.1", server=f"198.51.100.{i}") for i in range(50)]
    hits = m.match_chunk(events)
    assert len(hits) == 50
    assert len(m._found) <= 8

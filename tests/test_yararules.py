"""YARA rule loading: all of the signature-base sample compiles, bad files are reported, the cache works."""

from __future__ import annotations

from pathlib import Path

from conftest import DATA
from quet.indicators import yararules
from quet.indicators.model import IssueLog

SIGBASE = DATA / "yara" / "signature-base"


def test_signature_base_compiles_with_loki_externals(tmp_path: Path) -> None:
    issues = IssueLog()
    compiled = yararules.load([SIGBASE], issues, tmp_path)
    assert issues.count == 0, issues.issues
    assert compiled.rules is not None
    assert compiled.count == 64
    assert len(compiled.files) == 11
    assert compiled.namespaces["gen_webshells_ext_vars"].endswith("gen_webshells_ext_vars.yar")


def test_bad_rule_file_is_reported_with_line_and_the_rest_compile(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "good.yar").write_text('rule good { strings: $a = "abc" condition: $a }')
    (rules / "bad.yar").write_text(
        "rule ok { condition: true }\n\nrule broken { condition: $nope }\n"
    )
    (rules / "notes.txt").write_text("not a rule file")
    issues = IssueLog()
    compiled = yararules.load([rules], issues, None)
    assert compiled.count == 1
    assert len(issues.issues) == 1
    issue = issues.issues[0]
    assert issue.path.endswith("bad.yar")
    assert issue.line == 3
    assert "nope" in issue.message
    assert compiled.rules is not None
    assert [r.identifier for r in compiled.rules.scan(b"xxabcxx").matching_rules] == ["good"]


def test_missing_path_is_an_issue(tmp_path: Path) -> None:
    issues = IssueLog()
    compiled = yararules.load([tmp_path / "missing"], issues, None)
    assert compiled.rules is None
    assert issues.count == 1


def test_compiled_rules_cache_is_reused_and_keyed_by_content(tmp_path: Path) -> None:
    src = tmp_path / "r.yar"
    src.write_text('rule one { strings: $a = "one" condition: $a }')
    cache = tmp_path / "cache"
    first = yararules.load([src], IssueLog(), cache)
    assert first.blob_path is not None and first.blob_path.exists()
    again = yararules.load([src], IssueLog(), cache)
    assert again.identity == first.identity
    assert again.blob_path == first.blob_path
    assert again.rules is not None
    assert [r.identifier for r in again.rules.scan(b"one").matching_rules] == ["one"]
    src.write_text('rule two { strings: $a = "two" condition: $a }')
    changed = yararules.load([src], IssueLog(), cache)
    assert changed.identity != first.identity
    assert changed.rules is not None
    assert [r.identifier for r in changed.rules.scan(b"two").matching_rules] == ["two"]


def test_corrupt_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    src = tmp_path / "r.yar"
    src.write_text('rule one { strings: $a = "one" condition: $a }')
    cache = tmp_path / "cache"
    first = yararules.load([src], IssueLog(), cache)
    assert first.blob_path is not None
    first.blob_path.write_bytes(b"garbage")
    again = yararules.load([src], IssueLog(), cache)
    assert again.rules is not None
    assert [r.identifier for r in again.rules.scan(b"one").matching_rules] == ["one"]


def test_same_file_names_in_two_folders_get_two_namespaces(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.yar").write_text(
            f'rule r {{ strings: $a = "{folder}" condition: $a }}'
        )
    compiled = yararules.load([tmp_path / "a", tmp_path / "b"], IssueLog(), None)
    assert compiled.rules is not None
    assert sorted(compiled.namespaces) == ["x", "x_2"]

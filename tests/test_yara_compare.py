"""Quét's YARA detections equal `yara -r` (Debian's libyara) on the same rules and files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import DATA, EICAR

RULES = DATA / "yara" / "signature-base"
_PLAIN = re.compile(r'^\s*\$\w+\s*=\s*"((?:[^"\\]|\\.){6,})"', re.MULTILINE)


def _rules_without_externals(yara: str, tmp: Path) -> list[Path]:
    """The rule files `yara` compiles without -d defines: the fair common ground."""
    empty = tmp / "empty"
    empty.write_bytes(b"")
    keep = []
    for rule in sorted(RULES.glob("*.yar")):
        proc = subprocess.run([yara, "-w", str(rule), str(empty)], capture_output=True)
        if proc.returncode == 0:
            keep.append(rule)
    return keep


def _corpus(tmp: Path, rules: list[Path], clam: Path | None) -> Path:
    """Files built from the rules' own text strings, so that many rules really fire."""
    root = tmp / "corpus"
    root.mkdir()
    (root / "eicar.com").write_bytes(EICAR)
    n = 0
    for rule in rules:
        strings = _PLAIN.findall(rule.read_text(encoding="utf-8", errors="replace"))
        for i, text in enumerate(strings[:12]):
            body = text.encode("utf-8").decode("unicode_escape").encode("latin-1", "replace")
            (root / f"{rule.stem}-{i}.bin").write_bytes(b"MZ" + b"\0" * 62 + body * 3)
            n += 1
        joined = b"\n".join(s.encode() for s in strings[:40])
        (root / f"{rule.stem}-all.txt").write_bytes(joined)
    if clam is not None:
        for f in sorted(clam.iterdir())[:20]:
            (root / f"clam-{f.name}").write_bytes(f.read_bytes())
    assert n > 20
    return root


def test_yara_detections_identical(tmp_path: Path, yara_cli: str, clam_testfiles: Path) -> None:
    rules = _rules_without_externals(yara_cli, tmp_path)
    assert len(rules) >= 5
    corpus = _corpus(tmp_path, rules, clam_testfiles)

    proc = subprocess.run(
        [yara_cli, "-r", "-w", "-p", "2", *map(str, rules), str(corpus)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    theirs = set()
    for line in proc.stdout.splitlines():
        rule, _, path = line.partition(" ")
        theirs.add((path, rule))

    report = tmp_path / "r.json"
    args = ["--no-installed", "--no-archives", "--no-cache", "--json", str(report)]
    for rule in rules:
        args += ["--rules", str(rule)]
    quet = subprocess.run(
        [sys.executable, "-m", "quet", "scan", *args, str(corpus)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert quet.returncode in (0, 1), quet.stderr
    data = json.loads(report.read_text())
    ours = {(f["path"], f["name"]) for f in data["findings"] if f["kind"] == "yara"}

    assert len(theirs) >= 10, "the corpus should make many rules fire"
    assert ours == theirs, f"only yara: {theirs - ours}; only quet: {ours - theirs}"

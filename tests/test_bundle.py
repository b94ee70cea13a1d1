"""Content bundles: building, manifest checks, the atomic install and what a crash leaves."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quet.bundle import build, install
from quet.bundle.build import BundleError
from quet.cli.bundle import app
from quet.indicators import formats
from quet.indicators.model import IndicatorType, IssueLog, make
from quet.scanner import signatures

DATA = Path(__file__).parent / "data"
HSB = DATA / "clamav" / "1.1.hsb"
IOCS = DATA / "loki" / "filename-iocs.first500.txt"
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

RULE = """
rule Quet_Test_Marker {
    strings: $a = "QUET-BUNDLE-TEST-MARKER"
    condition: $a
}
"""


class Crash(BaseException):
    """Stands in for a kill: not an Exception, so no cleanup handler sees it."""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "marker.yar").write_text(RULE, encoding="utf-8")
    return folder


@pytest.fixture(autouse=True)
def _no_hook() -> object:
    yield
    install.TEST_HOOK = None


def _build(out: Path, version: int, rules: Path, **kw: object) -> build.BundleManifest:
    return build.build_bundle(
        out, version, rules=[rules], hashes=[HSB], iocs=[IOCS], created=CREATED, **kw
    )  # type: ignore[arg-type]


def test_build_manifest_counts_and_hashes(tmp_path: Path, rules_dir: Path) -> None:
    out = tmp_path / "b.tar.gz"
    m = _build(out, 3, rules_dir)
    assert m.version == 3
    assert m.created == "2026-01-02T03:04:05+00:00"
    assert m.counts == {"yara_files": 1, "yara_rules": 1, "hashes": 1, "filename_iocs": 395}
    assert set(m.files) == {
        "compiled/rules.yarx",
        "signatures/hashes.hsb",
        "signatures/iocs/filename-iocs.first500.txt",
        "signatures/yara/marker.yar",
    }
    assert m.compiled == "compiled/rules.yarx"
    yar = m.files["signatures/yara/marker.yar"]
    assert yar.sha256 == hashlib.sha256(RULE.encode()).hexdigest()
    assert yar.size == len(RULE.encode())
    # the IOC file is copied byte for byte
    ioc = m.files["signatures/iocs/filename-iocs.first500.txt"]
    assert ioc.sha256 == hashlib.sha256(IOCS.read_bytes()).hexdigest()
    with tarfile.open(out) as tar:
        names = tar.getnames()
        assert names[0] == "manifest.json"
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["version"] == 3 and manifest["yara_x_version"]
    assert build.read_manifest(out).files == m.files


def test_build_is_deterministic(tmp_path: Path, rules_dir: Path) -> None:
    _build(tmp_path / "a.tar.gz", 1, rules_dir)
    _build(tmp_path / "b.tar.gz", 1, rules_dir)
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()


def test_zstd_bundle_round_trip(tmp_path: Path, rules_dir: Path) -> None:
    out = tmp_path / "b.tar.zst"
    _build(out, 1, rules_dir)
    assert out.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    assert build.read_manifest(out).counts["hashes"] == 1


def test_build_refuses_broken_rules(tmp_path: Path, rules_dir: Path) -> None:
    (rules_dir / "broken.yar").write_text("rule Broken { condition: nope }\n", encoding="utf-8")
    with pytest.raises(BundleError, match="do not compile"):
        _build(tmp_path / "b.tar.gz", 1, rules_dir)
    assert not (tmp_path / "b.tar.gz").exists()


def test_build_with_intel_indicators(tmp_path: Path) -> None:
    intel = [
        make(IndicatorType.IPV4, "203.0.113.7", name="C2", source="feed"),
        make(IndicatorType.DOMAIN, "evil.example", name="C2"),
        make(IndicatorType.SHA256, "a" * 64, name="Trojan.X"),
    ]
    out = tmp_path / "b.tar.gz"
    m = build.build_bundle(out, 1, intel=intel, created=CREATED)
    assert m.counts["intel_indicators"] == 3
    install.install_bundle(out)
    sig = install.current_signatures_dir()
    assert sig is not None
    read = list(formats.read_path(sig / "intel-indicators.csv", IssueLog()))
    assert sorted(i.value for i in read) == sorted(i.value for i in intel)


def test_build_from_intel_store(tmp_path: Path) -> None:
    db = pytest.importorskip("quet.store.db")
    intel = pytest.importorskip("quet.store.intel")
    url = f"sqlite:///{tmp_path / 'intel.sqlite'}"
    engine = db.connect(url)
    intel.import_indicators(
        engine, [make(IndicatorType.DOMAIN, "bad.example", name="C2")], source="test"
    )
    engine.dispose()
    m = build.build_bundle(tmp_path / "b.tar.gz", 1, from_intel=True, db_url=url)
    assert m.counts["intel_indicators"] == 1


def test_nothing_to_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="nothing to bundle"):
        build.build_bundle(tmp_path / "b.tar.gz", 1)


def _repack(src: Path, dest: Path, change: dict[str, bytes | None]) -> None:
    """Copy a bundle, replacing (bytes) or dropping (None) members, manifest untouched."""
    with tarfile.open(src) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for m, data in members:
            if m.name in change:
                if change[m.name] is None:
                    continue
                data = change[m.name]  # type: ignore[assignment]
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    dest.write_bytes(gzip.compress(buf.getvalue()))


def _install_v1(tmp_path: Path, rules_dir: Path) -> tuple[Path, dict[str, str]]:
    b1 = tmp_path / "v1.tar.gz"
    _build(b1, 1, rules_dir)
    install.install_bundle(b1)
    return b1, _tree_hashes()


def _tree_hashes() -> dict[str, str]:
    cur = install.current_dir()
    assert cur is not None
    return {
        p.relative_to(cur).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(cur.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"signatures/hashes.hsb": b"0" * 64 + b":*:Evil\n"}, "does not match the manifest"),
        ({"signatures/hashes.hsb": None}, "in the manifest but not in the bundle"),
        ({"manifest.json": None}, "no manifest.json"),
    ],
)
def test_manifest_mismatch_refused_current_kept(
    tmp_path: Path, rules_dir: Path, change: dict[str, bytes | None], message: str
) -> None:
    _, before = _install_v1(tmp_path, rules_dir)
    good = tmp_path / "v2.tar.gz"
    _build(good, 2, rules_dir)
    bad = tmp_path / "bad.tar.gz"
    _repack(good, bad, change)
    with pytest.raises(BundleError, match=message):
        install.install_bundle(bad)
    assert install.current_version() == 1
    assert _tree_hashes() == before
    assert install.installed_versions() == [1]


def test_extra_file_and_unsafe_path_refused(tmp_path: Path, rules_dir: Path) -> None:
    good = tmp_path / "v1.tar.gz"
    _build(good, 1, rules_dir)
    with tarfile.open(good) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    for name, message in (("signatures/extra.hsb", "not in the manifest"), ("../x", "unsafe")):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for m, data in members:
                tar.addfile(m, io.BytesIO(data))
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
        bad = tmp_path / "bad.tar.gz"
        bad.write_bytes(gzip.compress(buf.getvalue()))
        with pytest.raises(BundleError, match=message):
            build.read_manifest(bad)
    assert not (tmp_path / "x").exists()


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"hello world")
    with pytest.raises(BundleError, match="not a bundle"):
        build.read_manifest(junk)
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(gzip.compress(b"x" * 1000)[:30])
    with pytest.raises(BundleError, match="damaged"):
        build.read_manifest(truncated)


def test_install_switch_keeps_last_good_and_prunes(tmp_path: Path, rules_dir: Path) -> None:
    for v in (1, 2, 3):
        b = tmp_path / f"v{v}.tar.gz"
        _build(b, v, rules_dir)
        res = install.install_bundle(b, source="test")
        assert res.changed and res.version == v
    assert install.current_version() == 3
    assert install.installed_versions() == [2, 3]
    link = install.content_dir() / "current"
    assert link.is_symlink() and os.readlink(link) == "versions/3"
    sig = install.current_signatures_dir()
    assert sig == install.content_dir() / "versions" / "3" / "signatures"
    assert install.read_state()["previous"] == 2
    # same version again: nothing changes
    again = install.install_bundle(tmp_path / "v3.tar.gz")
    assert not again.changed
    # older than current: refused unless asked
    with pytest.raises(BundleError, match="older than the installed"):
        install.install_bundle(tmp_path / "v1.tar.gz")
    assert install.rollback() == 2
    assert install.current_version() == 2


def test_compiled_rules_used_only_for_same_yara_x(tmp_path: Path, rules_dir: Path) -> None:
    _install_v1(tmp_path, rules_dir)
    blob = install.current_compiled_rules()
    assert blob is not None and blob.name == "rules.yarx"
    rules = build.yararules.load_blob(blob)
    assert [r.identifier for r in rules.scan(b"xx QUET-BUNDLE-TEST-MARKER xx").matching_rules] == [
        "Quet_Test_Marker"
    ]
    manifest_path = install.content_dir() / "current" / "manifest.json"
    raw = json.loads(manifest_path.read_text())
    raw["yara_x_version"] = "0.0.1"
    manifest_path.write_text(json.dumps(raw))
    assert install.current_compiled_rules() is None


def test_scanner_can_load_installed_signatures(tmp_path: Path, rules_dir: Path) -> None:
    _install_v1(tmp_path, rules_dir)
    sig = install.current_signatures_dir()
    assert sig is not None
    loaded = signatures.load(rules=[sig], hashes=[sig], use_installed=False)
    assert loaded.rules.count == 1
    assert len(loaded.hashes) == 1
    assert len(loaded.filenames) > 300
    assert loaded.issues.count == 0


CRASH_STEPS = [
    "extract:manifest.json",
    "extract:signatures/hashes.hsb",
    "extracted",
    "renamed",
    "linked",
]


@pytest.mark.parametrize("step", CRASH_STEPS)
def test_crash_before_switch_leaves_current(tmp_path: Path, rules_dir: Path, step: str) -> None:
    _, before = _install_v1(tmp_path, rules_dir)
    b2 = tmp_path / "v2.tar.gz"
    _build(b2, 2, rules_dir)
    seen: list[str] = []

    def hook(name: str) -> None:
        seen.append(name)
        if name == step:
            raise Crash(name)

    install.TEST_HOOK = hook
    with pytest.raises(Crash):
        install.install_bundle(b2)
    install.TEST_HOOK = None
    assert step in seen
    assert install.current_version() == 1
    assert _tree_hashes() == before
    # the next run cleans up what the crash left and installs normally
    res = install.install_bundle(b2)
    assert res.changed and install.current_version() == 2
    leftovers = [p.name for p in install.content_dir().rglob(".*")]
    assert leftovers == []
    assert install.installed_versions() == [1, 2]


@pytest.mark.parametrize("step", ["switched", "state"])
def test_crash_after_switch_is_complete(tmp_path: Path, rules_dir: Path, step: str) -> None:
    _install_v1(tmp_path, rules_dir)
    b2 = tmp_path / "v2.tar.gz"
    _build(b2, 2, rules_dir)

    def hook(name: str) -> None:
        if name == step:
            raise Crash(name)

    install.TEST_HOOK = hook
    with pytest.raises(Crash):
        install.install_bundle(b2)
    install.TEST_HOOK = None
    assert install.current_version() == 2
    m = build.read_manifest(b2)
    assert _tree_hashes() == {"manifest.json": _tree_hashes()["manifest.json"]} | {
        n: e.sha256 for n, e in m.files.items()
    }


def test_cli_build_and_verify(tmp_path: Path, rules_dir: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "b.tar.gz"
    args = ["build", "--rules", str(rules_dir), "--hashes", str(HSB), "--iocs", str(IOCS)]
    res = runner.invoke(app, [*args, "--version", "7", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "version 7" in res.output and "yara_rules: 1" in res.output
    res = runner.invoke(app, ["verify", str(out)])
    assert res.exit_code == 0 and "version 7" in res.output
    bad = tmp_path / "bad.tar.gz"
    _repack(out, bad, {"signatures/hashes.hsb": b"changed\n"})
    res = runner.invoke(app, ["verify", str(bad)])
    assert res.exit_code == 2
    assert "does not match the manifest" in res.output
    res = runner.invoke(app, ["build", "--version", "1", "-o", str(tmp_path / "e.tar.gz")])
    assert res.exit_code == 2 and "nothing to bundle" in res.output

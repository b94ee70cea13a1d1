"""Signed updates end to end: a TUF repository served over HTTP on 127.0.0.1 (and copied to a
folder, as on a USB stick), and the attacks TUF exists to stop."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata
from typer.testing import CliRunner

from quet.bundle import build, install, repo, update
from quet.bundle.update import UpdateError
from quet.cli import bundle as bundle_cli
from quet.cli import update as update_cli

RULE = 'rule Quet_V{v} {{ strings: $a = "QUET-UPDATE-V{v}" condition: $a }}\n'


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static HTTP server on 127.0.0.1 for the repository folder (created empty here)."""
    root = tmp_path / "repo"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", root
    srv.shutdown()
    srv.server_close()


class Pub:
    """The publisher's side of a test: keys, bundles, and the repository."""

    def __init__(self, tmp: Path, root: Path) -> None:
        self.tmp, self.repo = tmp, root
        self.keys, self.root_keys = tmp / "keys", tmp / "keys-root"
        repo.init_repo(self.repo, self.keys, self.root_keys)

    def bundle(self, v: int) -> Path:
        rules = self.tmp / f"rules{v}"
        rules.mkdir(exist_ok=True)
        (rules / f"v{v}.yar").write_text(RULE.format(v=v), encoding="utf-8")
        hashes = self.tmp / f"h{v}.hsb"
        hashes.write_text(f"{hashlib.sha256(str(v).encode()).hexdigest()}:*:Test.V{v}\n")
        out = self.tmp / f"v{v}.tar.gz"
        build.build_bundle(out, v, rules=[rules], hashes=[hashes])
        return out

    def publish(self, v: int, expiry: repo.Expiry | None = None) -> repo.RepoInfo:
        return repo.publish(self.repo, self.bundle(v), self.keys, expiry=expiry)

    def meta(self, name: str) -> Path:
        return self.repo / "metadata" / name

    def signer(self, role: str) -> CryptoSigner:
        root = Metadata.from_file(str(self.meta("root.json"))).signed
        folder = self.root_keys if role == "root" else self.keys
        return repo._signers(root, role, [folder])[0]


@pytest.fixture
def pub(tmp_path: Path, server: tuple[str, Path]) -> Pub:
    p = Pub(tmp_path, server[1])
    update.init_root(p.meta("1.root.json"))
    return p


@pytest.fixture
def url(server: tuple[str, Path]) -> str:
    return server[0]


def _files() -> dict[str, str]:
    cur = install.current_dir()
    assert cur is not None
    return {
        p.relative_to(cur).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(cur.rglob("*"))
        if p.is_file()
    }


def _installed_v1(pub: Pub, url: str) -> dict[str, str]:
    pub.publish(1)
    assert update.update(url=url).version == 1
    return _files()


def _refused(url: str | None, match: str, folder: Path | None = None) -> UpdateError:
    with pytest.raises(UpdateError, match=match) as info:
        update.update(url=url, folder=folder)
    return info.value


def _assert_kept(version: int, files: dict[str, str]) -> None:
    assert install.current_version() == version
    assert _files() == files
    last = install.read_state()["last_check"]
    assert last["result"] == "refused" and last["message"]


def test_happy_path_http(pub: Pub, url: str) -> None:
    pub.publish(1)
    out = update.update(url=url)
    assert (out.version, out.previous, out.changed) == (1, None, True)
    sig = install.current_signatures_dir()
    assert sig is not None and (sig / "yara" / "v1.yar").is_file()
    pub.publish(2)
    out = update.update(url=url)
    assert (out.version, out.previous, out.changed) == (2, 1, True)
    assert install.current_version() == 2
    assert install.installed_versions() == [1, 2]
    assert "QUET-UPDATE-V2" in (install.current_dir() / "signatures/yara/v2.yar").read_text()  # type: ignore[operator]
    # nothing new: no download, no change; and a plain update reuses the last source
    again = update.update()
    assert again.version == 2 and not again.changed
    pub.publish(3)
    assert update.update(url=url).version == 3
    assert install.installed_versions() == [2, 3]
    status = update.status()
    assert status["current"] == 3 and status["kept"] == [2, 3]
    assert status["last_check"]["result"] == "installed"
    assert status["source"] == url
    # an operator's rollback holds until something newer than the rolled-back version appears
    assert install.rollback() == 2
    held = update.update(url=url)
    assert (held.version, held.changed) == (2, False)
    assert update.status()["last_check"]["result"] == "held-back"
    pub.publish(4)
    assert update.update(url=url).version == 4
    assert install.installed_versions() == [2, 4]


def test_tampered_target_refused(pub: Pub, url: str) -> None:
    before = _installed_v1(pub, url)
    pub.publish(2)
    for target in (pub.repo / "targets" / "bundles").glob("*.quet-content.tar.gz"):
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    err = _refused(url, r"tampered or mixed-up file.*\[target: bundles/\w+\.quet-content")
    assert "content left at version 1" in str(err)
    _assert_kept(1, before)


def test_rollback_of_timestamp_refused(pub: Pub, url: str) -> None:
    before = _installed_v1(pub, url)
    old_timestamp = pub.meta("timestamp.json").read_bytes()
    pub.publish(2)
    assert update.update(url=url).version == 2
    before = _files()
    # a mirror (or attacker) serves the older, validly signed timestamp
    pub.meta("timestamp.json").write_bytes(old_timestamp)
    _refused(url, r"rollback.*timestamp version 2 must be >= 3")
    _assert_kept(2, before)


def test_rollback_of_snapshot_refused(pub: Pub, url: str) -> None:
    pub.publish(1)
    pub.publish(2)
    assert update.update(url=url).version == 2
    before = _files()
    # a new, validly signed timestamp that points at an older snapshot
    ts = Metadata.from_file(str(pub.meta("timestamp.json")))
    snap_v = ts.signed.snapshot_meta.version
    old = pub.meta(f"{snap_v - 1}.snapshot.json").read_bytes()
    from tuf.api.metadata import MetaFile

    ts.signed.snapshot_meta = MetaFile.from_data(snap_v - 1, old, ["sha256"])
    ts.signed.version += 1
    ts.sign(pub.signer("timestamp"))
    ts.to_file(str(pub.meta("timestamp.json")))
    _refused(url, "rollback.*snapshot")
    _assert_kept(2, before)


def test_expired_timestamp_refused(pub: Pub, url: str) -> None:
    before = _installed_v1(pub, url)
    pub.publish(2, expiry=repo.Expiry(timestamp=timedelta(minutes=-5)))
    _refused(url, "expired metadata.*timestamp")
    _assert_kept(1, before)
    # the publisher re-signs the timestamp: the client moves on
    repo.refresh_timestamp(pub.repo, pub.keys)
    assert update.update(url=url).version == 2


def test_wrong_key_refused(pub: Pub, url: str) -> None:
    before = _installed_v1(pub, url)
    pub.publish(2)
    intruder = CryptoSigner.generate_ed25519()
    ts = Metadata.from_file(str(pub.meta("timestamp.json")))
    ts.signed.version += 1
    ts.sign(intruder)
    ts.to_file(str(pub.meta("timestamp.json")))
    _refused(url, "bad signature.*timestamp")
    _assert_kept(1, before)


def test_targets_signed_by_wrong_key_refused(pub: Pub, url: str) -> None:
    """An attacker holding the online snapshot/timestamp keys but not the targets key."""
    before = _installed_v1(pub, url)
    targets = Metadata.from_file(str(pub.meta("targets.json")))
    snapshot = Metadata.from_file(str(pub.meta("snapshot.json")))
    timestamp = Metadata.from_file(str(pub.meta("timestamp.json")))
    for md in (targets, snapshot, timestamp):
        md.signed.version += 1
    targets.sign(CryptoSigner.generate_ed25519())
    from tuf.api.metadata import MetaFile

    tdata = targets.to_bytes()
    pub.meta(f"{targets.signed.version}.targets.json").write_bytes(tdata)
    snapshot.signed.meta["targets.json"] = MetaFile.from_data(
        targets.signed.version, tdata, ["sha256"]
    )
    snapshot.sign(pub.signer("snapshot"))
    sdata = snapshot.to_bytes()
    pub.meta(f"{snapshot.signed.version}.snapshot.json").write_bytes(sdata)
    timestamp.signed.snapshot_meta = MetaFile.from_data(snapshot.signed.version, sdata, ["sha256"])
    timestamp.sign(pub.signer("timestamp"))
    timestamp.to_file(str(pub.meta("timestamp.json")))
    _refused(url, r"bad signature.*targets was signed by 0/1 keys.*3.targets.json")
    _assert_kept(1, before)


def test_mix_and_match_snapshot_refused(pub: Pub, url: str) -> None:
    before = _installed_v1(pub, url)
    old_snapshot = pub.meta("2.snapshot.json").read_bytes()
    pub.publish(2)
    # the current timestamp names snapshot v3; serve v2's bytes under that name
    pub.meta("3.snapshot.json").write_bytes(old_snapshot)
    _refused(url, r"tampered or mixed-up file.*\[snapshot metadata: 3.snapshot.json\]")
    _assert_kept(1, before)


def test_mix_and_match_targets_refused(pub: Pub, url: str) -> None:
    before = _installed_v1(pub, url)
    pub.publish(2)
    pub.meta("3.targets.json").write_bytes(pub.meta("2.targets.json").read_bytes())
    _refused(url, r"tampered or mixed-up file.*\[targets metadata: 3.targets.json\]")
    _assert_kept(1, before)


def test_bundle_not_matching_its_manifest_refused(
    pub: Pub, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publisher's mistake signed in good faith: TUF passes it, the manifest check stops it."""
    before = _installed_v1(pub, url)
    good = pub.bundle(2)
    manifest = build.read_manifest(good)
    import gzip
    import io
    import tarfile

    with tarfile.open(good) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for m, data in members:
            if m.name == "signatures/hashes.hsb":
                data = b"f" * 64 + b":*:Swapped\n"
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    bad = pub.tmp / "bad.tar.gz"
    bad.write_bytes(gzip.compress(buf.getvalue()))
    monkeypatch.setattr(repo, "read_manifest", lambda path: manifest)
    repo.publish(pub.repo, bad, pub.keys)
    _refused(url, "signatures/hashes.hsb does not match the manifest")
    _assert_kept(1, before)


def test_no_trusted_root(tmp_path: Path, server: tuple[str, Path], url: str) -> None:
    p = Pub(tmp_path, server[1])
    p.publish(1)
    _refused(url, "no trusted root")
    assert install.current_version() is None


def test_root_not_self_signed_refused(tmp_path: Path, server: tuple[str, Path]) -> None:
    p = Pub(tmp_path, server[1])
    md = Metadata.from_file(str(p.meta("1.root.json")))
    md.sign(CryptoSigner.generate_ed25519())
    md.to_file(str(tmp_path / "forged-root.json"))
    with pytest.raises(UpdateError, match="not signed by its own keys"):
        update.init_root(tmp_path / "forged-root.json")
    assert not update.anchor_path().exists()


def test_key_rotation_followed(pub: Pub, url: str) -> None:
    _installed_v1(pub, url)
    old_timestamp = pub.signer("timestamp")
    info = repo.rotate_key(pub.repo, "timestamp", pub.keys, pub.root_keys)
    assert info.root_version == 2
    info = repo.rotate_key(pub.repo, "root", pub.keys, pub.root_keys)
    assert info.root_version == 3
    pub.publish(2)
    assert update.update(url=url).version == 2
    history = sorted(p.name for p in (update.tuf_dir() / "metadata" / "root_history").iterdir())
    assert history == ["1.root.json", "2.root.json", "3.root.json"]
    # the retired timestamp key no longer counts
    ts = Metadata.from_file(str(pub.meta("timestamp.json")))
    ts.signed.version += 1
    ts.sign(old_timestamp)
    ts.to_file(str(pub.meta("timestamp.json")))
    before = _files()
    _refused(url, "bad signature.*timestamp")
    _assert_kept(2, before)


def test_air_gapped_folder(pub: Pub, tmp_path: Path) -> None:
    pub.publish(1)
    stick = tmp_path / "usb"
    shutil.copytree(pub.repo, stick / "quet-repo")
    out = update.update(folder=stick)
    assert out.version == 1 and out.changed
    assert out.source == str(stick / "quet-repo")
    pub.publish(2)
    shutil.rmtree(stick)
    shutil.copytree(pub.repo, stick / "quet-repo")
    assert update.update(folder=stick / "quet-repo").version == 2
    before = _files()
    # the same checks run for a folder: a tampered copy is refused
    pub.publish(3)
    shutil.rmtree(stick)
    shutil.copytree(pub.repo, stick)
    for target in (stick / "targets" / "bundles").glob("*.tar.gz"):
        target.write_bytes(target.read_bytes()[:-10] + b"0123456789")
    _refused(None, "tampered or mixed-up file", folder=stick)
    _assert_kept(2, before)
    with pytest.raises(UpdateError, match="no TUF repository here"):
        update.update(folder=tmp_path / "nowhere")


def _update_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A group, so `update` stays a subcommand."""

    update_cli.register(app)
    return app


def test_cli_publish_and_update(tmp_path: Path, server: tuple[str, Path]) -> None:
    url, repo_dir = server
    runner = CliRunner()
    keys = tmp_path / "keys"
    res = runner.invoke(
        bundle_cli.app,
        ["init-repo", str(repo_dir), "--keys", str(keys), "--expires-timestamp", "2d"],
    )
    assert res.exit_code == 0, res.output
    assert "ROOT KEY" in res.output and (tmp_path / "keys-root").is_dir()
    assert len(list((tmp_path / "keys-root").glob("root.*.pem"))) == 1
    assert not list(keys.glob("root.*.pem"))
    rules = tmp_path / "r"
    rules.mkdir()
    (rules / "a.yar").write_text(RULE.format(v=1))
    out = tmp_path / "b.tar.gz"
    res = runner.invoke(
        bundle_cli.app, ["build", "--rules", str(rules), "--version", "1", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(bundle_cli.app, ["publish", str(repo_dir), str(out), "--keys", str(keys)])
    assert res.exit_code == 0, res.output
    assert "version 1" in res.output
    # publishing the same version again is refused
    res = runner.invoke(bundle_cli.app, ["publish", str(repo_dir), str(out), "--keys", str(keys)])
    assert res.exit_code == 2 and "not newer" in res.output

    app = _update_app()
    res = runner.invoke(app, ["update", "--url", url])
    assert res.exit_code == 2 and "no trusted root" in res.output
    root = repo_dir / "metadata" / "1.root.json"
    res = runner.invoke(app, ["update", "--init-root", str(root), "--url", url])
    assert res.exit_code == 0, res.output
    assert "Content updated to version 1" in res.output
    res = runner.invoke(app, ["update", "--status"])
    assert res.exit_code == 0 and "Version 1" in res.output and "installed" in res.output
    res = runner.invoke(bundle_cli.app, ["refresh-timestamp", str(repo_dir), "--keys", str(keys)])
    assert res.exit_code == 0 and "v3" in res.output
    res = runner.invoke(
        bundle_cli.app, ["rotate-key", "targets", str(repo_dir), "--keys", str(keys)]
    )
    assert res.exit_code == 0 and "root: v2" in res.output
    res = runner.invoke(app, ["update"])
    assert res.exit_code == 0 and "Already up to date: version 1" in res.output
    # a tampered timestamp: refused with a clear message, exit 2
    ts = repo_dir / "metadata" / "timestamp.json"
    raw = json.loads(ts.read_text())
    raw["signed"]["expires"] = "2099-01-01T00:00:00Z"  # changed without re-signing
    ts.write_text(json.dumps(raw))
    res = runner.invoke(app, ["update", "--url", url])
    assert res.exit_code == 2
    assert "Update error" in res.output
    assert "timestamp was signed by 0/1 keys" in res.output
    assert "[timestamp metadata: timestamp.json]" in res.output
    res = runner.invoke(app, ["update", "--status", "--json"])
    assert '"result": "refused"' in res.output


def test_zstd_bundle_published_and_installed(pub: Pub, tmp_path: Path) -> None:
    rules = tmp_path / "zr"
    rules.mkdir()
    (rules / "z.yar").write_text(RULE.format(v=5), encoding="utf-8")
    bundle = tmp_path / "z.tar.zst"
    build.build_bundle(bundle, 5, rules=[rules])
    info = repo.publish(pub.repo, bundle, pub.keys)
    assert info.bundle_version == 5
    assert list((pub.repo / "targets" / "bundles").glob("*.quet-content.tar.zst"))
    out = update.update(folder=pub.repo)
    assert out.version == 5
    assert (install.current_dir() / "signatures" / "yara" / "z.yar").is_file()  # type: ignore[operator]


def test_help_screens() -> None:
    runner = CliRunner()
    res = runner.invoke(_update_app(), ["update", "--help"])
    assert res.exit_code == 0 and "--init-root" in res.output and "--from" in res.output
    for cmd in ("build", "init-repo", "publish", "rotate-key", "refresh-timestamp", "verify"):
        res = runner.invoke(bundle_cli.app, [cmd, "--help"])
        assert res.exit_code == 0, (cmd, res.output)


def test_scanner_uses_updated_content(tmp_path: Path, pub: Pub, url: str) -> None:
    """After `quet update`, a scan with no options uses the bundle's signatures, not the starter."""

    from quet.indicators.formats.clamav import write_hdb
    from quet.indicators.model import Indicator, IndicatorType
    from quet.scanner import engine, signatures

    target = tmp_path / "corpus" / "payload.bin"
    target.parent.mkdir()
    target.write_bytes(b"campaign payload 2026")
    hsb = tmp_path / "campaign.hsb"
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    write_hdb([Indicator(IndicatorType.SHA256, digest, name="Campaign.Payload-1")], hsb)
    bundle_path = tmp_path / "b5.tar.gz"
    build.build_bundle(bundle_path, 5, hashes=[hsb])
    repo.publish(pub.repo, bundle_path, pub.keys)
    assert update.update(url=url).version == 5

    sigs = signatures.load()
    assert not sigs.starter
    result = engine.scan(engine.ScanOptions(paths=[str(target.parent)]), sigs)
    assert [f.name for f in result.findings] == ["Campaign.Payload-1"]

"""The publisher's side: a TUF repository (consistent snapshots) holding content bundles, built
and signed with python-tuf's Metadata API; any static HTTP server or a USB stick can serve it."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_private_key

# Both packages build __all__ at run time, which mypy cannot read: hence the ignores.
from securesystemslib.signer import CryptoSigner, Key, SSlibKey  # type: ignore[attr-defined]
from tuf.api.metadata import (  # type: ignore[attr-defined]
    Metadata,
    MetaFile,
    Role,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from quet.bundle.build import BundleError, read_manifest

ONLINE_ROLES = ("targets", "snapshot", "timestamp")
ROLES = ("root", *ONLINE_ROLES)
LATEST = "latest.json"
BUNDLE_TARGET = "bundles/quet-content.tar.gz"
BUNDLE_TARGET_ZST = "bundles/quet-content.tar.zst"
SPEC_VERSION = "1.0.31"
_SERIALIZER = JSONSerializer(compact=False)
_DURATION = re.compile(r"^\s*(-?\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 86400, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """'365d', '12h', '2w', '90' (days) -> timedelta; anything else is a BundleError."""
    m = _DURATION.match(text)
    if not m:
        raise BundleError(f"bad duration {text!r}: use a number with s, m, h, d or w (e.g. 7d)")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


@dataclass
class Expiry:
    """How long each role's metadata stays valid after it is signed. The timestamp is short so a
    frozen mirror is noticed quickly; long enough that a USB stick carried for days still works."""

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=90)
    snapshot: timedelta = timedelta(days=30)
    timestamp: timedelta = timedelta(days=7)

    def for_role(self, role: str) -> timedelta:
        value: timedelta = getattr(self, role)
        return value

    def to_dict(self) -> dict[str, int]:
        return {k: int(v.total_seconds()) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Expiry:
        out = cls()
        for role in ROLES:
            if role in raw:
                setattr(out, role, timedelta(seconds=int(raw[role])))
        return out


def _expires(delta: timedelta) -> datetime:
    return (datetime.now(UTC) + delta).replace(microsecond=0)


# --- keys -----------------------------------------------------------------------------------


def _key_file(folder: Path, role: str, keyid: str) -> Path:
    return folder / f"{role}.{keyid}.pem"


def _save_signer(folder: Path, role: str, signer: CryptoSigner) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = _key_file(folder, role, signer.public_key.keyid)
    # Private keys are readable by their owner only; created so, never chmod-ed after the fact.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(signer.private_bytes)
    path.with_suffix(".pub.json").write_text(
        json.dumps(signer.public_key.to_dict(), indent=2), encoding="utf-8"
    )
    return path


def _signers(root: Root, role: str, folders: list[Path]) -> list[CryptoSigner]:
    out: list[CryptoSigner] = []
    for keyid in root.roles[role].keyids:
        for folder in folders:
            path = _key_file(folder, role, keyid)
            if not path.is_file():
                continue
            private = load_pem_private_key(path.read_bytes(), None)
            public = root.get_key(keyid)
            assert isinstance(public, SSlibKey)
            out.append(CryptoSigner(private, public))
            break
    need = root.roles[role].threshold
    if len(out) < need:
        where = ", ".join(str(f) for f in folders)
        raise BundleError(
            f"{role}: found {len(out)} of the {need} private key(s) needed to sign in {where} "
            f"(files {role}.<keyid>.pem); is the right key folder (or the offline root key) here?"
        )
    return out


def _retire(folder: Path, role: str, keyid: str) -> None:
    path = _key_file(folder, role, keyid)
    if path.exists():
        path.rename(path.with_name(path.name + ".retired"))


# --- metadata files -------------------------------------------------------------------------


def _meta_dir(repo: Path) -> Path:
    return repo / "metadata"


def _targets_dir(repo: Path) -> Path:
    return repo / "targets"


def _load(repo: Path, role: str) -> Metadata[Any]:
    path = _meta_dir(repo) / f"{role}.json"
    if not path.is_file():
        raise BundleError(f"{repo}: not a quet TUF repository (no metadata/{role}.json)")
    return Metadata.from_file(str(path))


def _sign_and_write(
    repo: Path, md: Metadata[Any], signers: list[CryptoSigner], versioned: bool
) -> bytes:
    md.signatures.clear()
    for signer in signers:
        md.sign(signer, append=True)
    data = md.to_bytes(_SERIALIZER)
    role = md.signed.type
    folder = _meta_dir(repo)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{role}.json"] + ([f"{md.signed.version}.{role}.json"] if versioned else [])
    for name in names:
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)
    return data


def _config_path(keys: Path) -> Path:
    return keys / "repo-config.json"


def load_expiry(keys: Path) -> Expiry:
    try:
        return Expiry.from_dict(json.loads(_config_path(keys).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return Expiry()


@dataclass
class RepoInfo:
    repo: Path
    root_version: int
    targets_version: int
    snapshot_version: int
    timestamp_version: int
    bundle_version: int | None
    root_keyids: dict[str, list[str]]


def info(repo: Path) -> RepoInfo:
    root = _load(repo, "root").signed
    targets = _load(repo, "targets")
    latest = targets.signed.targets.get(LATEST)
    version = latest.custom.get("version") if latest is not None and latest.custom else None
    return RepoInfo(
        repo,
        root.version,
        targets.signed.version,
        _load(repo, "snapshot").signed.version,
        _load(repo, "timestamp").signed.version,
        version,
        {r: list(root.roles[r].keyids) for r in ROLES},
    )


def init_repo(
    repo: Path,
    keys: Path,
    root_keys: Path,
    *,
    expiry: Expiry | None = None,
    root_key_count: int = 1,
    root_threshold: int = 1,
) -> RepoInfo:
    """Create keys and version-1 metadata for an empty repository. Online keys go to `keys`,
    root keys to `root_keys`, which belongs on an offline machine or medium."""
    expiry = expiry or Expiry()
    if (_meta_dir(repo) / "root.json").exists():
        raise BundleError(f"{repo}: a repository already exists here; refusing to overwrite it")
    if not 1 <= root_threshold <= root_key_count:
        raise BundleError("root threshold must be between 1 and the number of root keys")
    root = Root(expires=_expires(expiry.root), consistent_snapshot=True)
    root.spec_version = SPEC_VERSION
    root.roles["root"] = Role([], root_threshold)
    root_signers = [CryptoSigner.generate_ed25519() for _ in range(root_key_count)]
    for signer in root_signers:
        root.add_key(signer.public_key, "root")
        _save_signer(root_keys, "root", signer)
    online: dict[str, CryptoSigner] = {}
    for role in ONLINE_ROLES:
        online[role] = CryptoSigner.generate_ed25519()
        root.add_key(online[role].public_key, role)
        _save_signer(keys, role, online[role])
    _config_path(keys).write_text(json.dumps(expiry.to_dict(), indent=2), encoding="utf-8")
    _sign_and_write(repo, Metadata(root), root_signers, versioned=True)
    targets = Targets(expires=_expires(expiry.targets))
    snapshot = Snapshot(expires=_expires(expiry.snapshot))
    timestamp = Timestamp(expires=_expires(expiry.timestamp))
    for signed in (targets, snapshot, timestamp):
        signed.spec_version = SPEC_VERSION
    _targets_dir(repo).mkdir(parents=True, exist_ok=True)
    _resign(repo, root, Metadata(targets), Metadata(snapshot), Metadata(timestamp),
            [keys], expiry, bump=False)  # fmt: skip
    return info(repo)


def _resign(
    repo: Path,
    root: Root,
    targets: Metadata[Targets],
    snapshot: Metadata[Snapshot],
    timestamp: Metadata[Timestamp],
    folders: list[Path],
    expiry: Expiry,
    bump: bool = True,
) -> None:
    """Sign targets, then a snapshot naming it (length and hash too, against mix-and-match),
    then a timestamp naming that snapshot."""
    if bump:
        for md in (targets, snapshot, timestamp):
            md.signed.version += 1
    targets.signed.expires = _expires(expiry.targets)
    tdata = _sign_and_write(repo, targets, _signers(root, "targets", folders), versioned=True)
    snapshot.signed.meta["targets.json"] = MetaFile.from_data(
        targets.signed.version, tdata, ["sha256"]
    )
    snapshot.signed.expires = _expires(expiry.snapshot)
    sdata = _sign_and_write(repo, snapshot, _signers(root, "snapshot", folders), versioned=True)
    timestamp.signed.snapshot_meta = MetaFile.from_data(snapshot.signed.version, sdata, ["sha256"])
    timestamp.signed.expires = _expires(expiry.timestamp)
    _sign_and_write(repo, timestamp, _signers(root, "timestamp", folders), versioned=False)


def _add_target(repo: Path, path: str, data: bytes, custom: dict[str, Any]) -> TargetFile:
    target = TargetFile.from_data(path, data, ["sha256"])
    target.unrecognized_fields["custom"] = custom
    dirname, _, base = path.rpartition("/")
    dest = _targets_dir(repo) / dirname / f"{target.hashes['sha256']}.{base}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return target


def publish(repo: Path, bundle: Path, keys: Path, *, expiry: Expiry | None = None) -> RepoInfo:
    """Add `bundle` (checked against its manifest first) as the current content and sign new
    targets, snapshot and timestamp metadata with the online keys in `keys`."""
    manifest = read_manifest(bundle)
    expiry = expiry or load_expiry(keys)
    root = _load(repo, "root").signed
    targets: Metadata[Targets] = _load(repo, "targets")
    latest = targets.signed.targets.get(LATEST)
    if latest is not None and latest.custom and manifest.version <= latest.custom["version"]:
        raise BundleError(
            f"{bundle}: version {manifest.version} is not newer than the published version "
            f"{latest.custom['version']}; build with a higher --version"
        )
    data = bundle.read_bytes()
    zst = data[:4] == b"\x28\xb5\x2f\xfd"
    name = BUNDLE_TARGET_ZST if zst else BUNDLE_TARGET
    for old in (BUNDLE_TARGET, BUNDLE_TARGET_ZST):
        targets.signed.targets.pop(old, None)
    bundle_target = _add_target(repo, name, data, {"version": manifest.version})
    pointer = {
        "version": manifest.version,
        "target": name,
        "sha256": bundle_target.hashes["sha256"],
        "length": bundle_target.length,
        "created": manifest.created,
    }
    pointer_bytes = (json.dumps(pointer, indent=2, sort_keys=True) + "\n").encode()
    targets.signed.targets[name] = bundle_target
    targets.signed.targets[LATEST] = _add_target(
        repo, LATEST, pointer_bytes, {"version": manifest.version}
    )
    _resign(repo, root, targets, _load(repo, "snapshot"), _load(repo, "timestamp"),
            [keys], expiry)  # fmt: skip
    return info(repo)


def refresh_timestamp(repo: Path, keys: Path, *, expiry: Expiry | None = None) -> RepoInfo:
    """Re-sign the timestamp (a cron job does this so clients see a fresh, unexpired one)."""
    expiry = expiry or load_expiry(keys)
    root = _load(repo, "root").signed
    timestamp: Metadata[Timestamp] = _load(repo, "timestamp")
    timestamp.signed.version += 1
    timestamp.signed.expires = _expires(expiry.timestamp)
    _sign_and_write(repo, timestamp, _signers(root, "timestamp", [keys]), versioned=False)
    return info(repo)


def rotate_key(
    repo: Path,
    role: str,
    keys: Path,
    root_keys: Path,
    *,
    expiry: Expiry | None = None,
) -> RepoInfo:
    """Replace `role`'s key(s) with a new one in a new root version, signed by the old root
    keys (so clients trust it) and, for root, by the new key too (so it is self-consistent)."""
    if role not in ROLES:
        raise BundleError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    expiry = expiry or load_expiry(keys)
    old_root: Metadata[Root] = _load(repo, "root")
    root = old_root.signed
    old_signers = _signers(root, "root", [root_keys])
    new_signer = CryptoSigner.generate_ed25519()
    old_ids = list(root.roles[role].keyids)
    for keyid in old_ids:
        root.revoke_key(keyid, role)
    key: Key = new_signer.public_key
    root.add_key(key, role)
    root.roles[role].threshold = 1
    root.version += 1
    root.expires = _expires(expiry.root)
    folder = root_keys if role == "root" else keys
    _save_signer(folder, role, new_signer)
    signers = old_signers + ([new_signer] if role == "root" else [])
    _sign_and_write(repo, Metadata(root), signers, versioned=True)
    for keyid in old_ids:
        _retire(folder, role, keyid)
    # Re-sign everything with the keys the new root names, so a client can move on at once.
    _resign(repo, root, _load(repo, "targets"), _load(repo, "snapshot"), _load(repo, "timestamp"),
            [keys], expiry)  # fmt: skip
    return info(repo)


def export_root(repo: Path, dest: Path) -> Path:
    """Copy the current root.json for shipping to clients (`quet update --init-root`)."""
    shutil.copyfile(_meta_dir(repo) / "root.json", dest)
    return dest

"""Install a verified bundle under $QUET_HOME/content: unpack beside the current version, then
switch the `current` symlink in one rename; the previous version is kept as the last good one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quet import paths
from quet.bundle.build import MANIFEST, SIGNATURES, BundleError, BundleManifest, Hook
from quet.bundle.build import extract_verified as _extract
from quet.indicators import yararules

KEEP = 2  # current and the last good one
_STAGING = ".staging-"
_LINK_TMP = ".current.tmp-"

# Tests set this to raise at a named step, standing in for a crash or a power cut there.
TEST_HOOK: Hook | None = None


def _step(name: str) -> None:
    if TEST_HOOK is not None:
        TEST_HOOK(name)


def content_dir() -> Path:
    return paths.sub("content")


def _versions() -> Path:
    path = content_dir() / "versions"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_version() -> int | None:
    """The installed bundle version `current` points at, or None."""
    link = content_dir() / "current"
    try:
        target = os.readlink(link)
    except OSError:
        return None
    name = Path(target).name
    if not name.isdigit() or not (link.parent / target).is_dir():
        return None
    return int(name)


def current_dir() -> Path | None:
    version = current_version()
    return None if version is None else _versions() / str(version)


def current_manifest() -> BundleManifest | None:
    folder = current_dir()
    if folder is None:
        return None
    path = folder / MANIFEST
    try:
        return BundleManifest.from_json(path.read_text(encoding="utf-8"), str(path))
    except (OSError, BundleError):
        return None


def current_signatures_dir() -> Path | None:
    """The signature folder of the installed bundle (resolved, so a switch during a scan does
    not change it under the scanner), or None when no bundle is installed."""
    folder = current_dir()
    if folder is None:
        return None
    sig = folder / SIGNATURES
    return sig if sig.is_dir() else None


def current_compiled_rules() -> Path | None:
    """The bundle's precompiled yara-x rules, only when built by this very yara-x version."""
    manifest = current_manifest()
    folder = current_dir()
    if manifest is None or folder is None or not manifest.compiled:
        return None
    if manifest.yara_x_version != yararules.yara_x_version():
        return None
    blob = folder / manifest.compiled
    return blob if blob.is_file() else None


def _state_path() -> Path:
    return content_dir() / "state.json"


def read_state() -> dict[str, Any]:
    try:
        data = json.loads(_state_path().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@dataclass
class InstallResult:
    version: int
    previous: int | None
    changed: bool


def _clean_leftovers() -> None:
    """Remove what an install killed half-way left behind; `current` never points there."""
    for child in _versions().iterdir():
        if child.name.startswith(_STAGING):
            shutil.rmtree(child, ignore_errors=True)
    for child in content_dir().iterdir():
        if child.name.startswith(_LINK_TMP):
            child.unlink(missing_ok=True)


def _switch(version: int) -> None:
    content = content_dir()
    tmp = content / f"{_LINK_TMP}{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(f"versions/{version}", tmp)
    _step("linked")
    os.replace(tmp, content / "current")  # atomic: readers see the old or the new, never neither
    _fsync_dir(content)
    _step("switched")


def install_bundle(
    archive: Path, *, source: str = "", allow_downgrade: bool = False
) -> InstallResult:
    """Verify and install `archive`; on any failure `current` still points at the last good
    version, untouched. Installing the version already current changes nothing."""
    _clean_leftovers()
    versions = _versions()
    old = current_version()
    staging = Path(tempfile.mkdtemp(prefix=_STAGING, dir=versions))
    try:
        manifest = _extract(archive, staging, hook=TEST_HOOK)
        _step("extracted")
        if old is not None and manifest.version == old:
            shutil.rmtree(staging)
            return InstallResult(old, old, changed=False)
        if old is not None and manifest.version < old and not allow_downgrade:
            raise BundleError(
                f"{archive}: bundle version {manifest.version} is older than the installed "
                f"version {old}; refusing to go back (use rollback for the last good one)"
            )
        final = versions / str(manifest.version)
        if final.exists():  # left by an install killed before its switch
            shutil.rmtree(final)
        os.rename(staging, final)
        _fsync_dir(versions)
        _step("renamed")
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _switch(manifest.version)
    state = read_state()
    state.update(
        current=manifest.version,
        previous=old,
        installed_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
        source=source or str(archive),
    )
    _write_json(_state_path(), state)
    _step("state")
    prune(keep={manifest.version} | ({old} if old is not None else set()))
    _step("pruned")
    return InstallResult(manifest.version, old, changed=True)


def prune(keep: set[int]) -> list[int]:
    """Remove installed versions other than `keep` (never the current one); returns removed."""
    current = current_version()
    removed: list[int] = []
    for child in _versions().iterdir():
        if not child.name.isdigit():
            continue
        version = int(child.name)
        if version in keep or version == current:
            continue
        shutil.rmtree(child, ignore_errors=True)
        removed.append(version)
    return sorted(removed)


def installed_versions() -> list[int]:
    return sorted(int(p.name) for p in _versions().iterdir() if p.name.isdigit() and p.is_dir())


def rollback() -> int:
    """Switch back to the previous (last good) version; returns it."""
    current = current_version()
    older = [v for v in installed_versions() if current is None or v < current]
    if not older:
        raise BundleError("no previous content version is kept; nothing to roll back to")
    target = older[-1]
    _switch(target)
    state = read_state()
    state.update(current=target, previous=current, rolled_back_from=current)
    _write_json(_state_path(), state)
    return target


def record_state(key: str, value: Any) -> None:
    state = read_state()
    state[key] = value
    _write_json(_state_path(), state)


def record_check(data: dict[str, Any]) -> None:
    """Remember the last update check (source, time, outcome) for `quet update --status`."""
    record_state("last_check", data)

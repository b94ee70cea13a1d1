"""The client: fetch the newest bundle through tuf.ngclient (over HTTP, or from a folder such
as a USB stick with the very same checks), then hand it to the installer."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, TargetFile  # type: ignore[attr-defined]
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.updater import Updater
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

from quet import paths
from quet.bundle import install
from quet.bundle.build import BundleError
from quet.bundle.repo import LATEST

_CHUNK = 1 << 16


class UpdateError(BundleError):
    """An update was refused or failed; the installed content was not touched."""


class FolderFetcher(FetcherInterface):
    """Serves file:// URLs from disk, so an air-gapped copy of the repository goes through
    exactly the same TUF verification as a download. A missing file answers like HTTP 404."""

    def _fetch(self, url: str) -> Iterator[bytes]:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise tuf_errors.DownloadError(f"folder fetcher got a non-file URL: {url}")
        path = Path(unquote(parsed.path))
        if not path.is_file():
            raise tuf_errors.DownloadHTTPError(f"{path}: not found", 404)
        fh = path.open("rb")  # opened now, so errors surface here and are wrapped by fetch()

        def chunks() -> Iterator[bytes]:
            with fh:
                yield from iter(lambda: fh.read(_CHUNK), b"")

        return chunks()


class TrackingFetcher(FetcherInterface):
    """Remembers the last URL asked for, so a refusal can name the file TUF rejected."""

    def __init__(self, inner: FetcherInterface) -> None:
        self.inner = inner
        self.last_url = ""

    def _fetch(self, url: str) -> Iterator[bytes]:
        self.last_url = url
        return self.inner.fetch(url)


def _what_file(url: str) -> str:
    """'…/metadata/3.snapshot.json' -> 'snapshot metadata (3.snapshot.json)'."""
    if not url:
        return ""
    path = unquote(urlparse(url).path)
    name = path.rsplit("/", 1)[-1]
    if "/metadata/" in path:
        role = name.removesuffix(".json").rsplit(".", 1)[-1]
        return f" [{role} metadata: {name}]"
    target = path.split("/targets/", 1)[-1]
    return f" [target: {target}]"


def tuf_dir() -> Path:
    return paths.sub("tuf")


def _metadata_dir() -> Path:
    path = tuf_dir() / "metadata"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _targets_dir() -> Path:
    path = tuf_dir() / "targets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def anchor_path() -> Path:
    """The trusted root given once by `quet update --init-root`: the anchor of all trust."""
    return tuf_dir() / "trusted-root.json"


def init_root(root_file: Path) -> int:
    """Trust `root_file` from now on (it must be a self-signed TUF root); forgets metadata
    trusted before, so a new repository can be followed. Returns the root's version."""
    try:
        data = root_file.read_bytes()
    except OSError as exc:
        raise UpdateError(f"{root_file}: cannot read ({exc.strerror})") from exc
    try:
        md: Metadata[Root] = Metadata.from_bytes(data)
        if not isinstance(md.signed, Root):
            raise UpdateError(f"{root_file}: is {md.signed.type} metadata, not a root")
        md.verify_delegate("root", md)
    except tuf_errors.UnsignedMetadataError as exc:
        raise UpdateError(f"{root_file}: root is not signed by its own keys ({exc})") from exc
    except (ValueError, KeyError, TypeError, tuf_errors.RepositoryError) as exc:
        raise UpdateError(f"{root_file}: not TUF root metadata ({exc})") from exc
    shutil.rmtree(_metadata_dir())
    _metadata_dir()
    tmp = anchor_path().with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(anchor_path())
    return md.signed.version


@dataclass
class Source:
    label: str
    metadata_url: str
    targets_url: str
    fetcher: FetcherInterface
    kind: str  # "url" or "folder"


def source_for(url: str | None = None, folder: Path | None = None) -> Source:
    if url and folder:
        raise UpdateError("give --url or --from, not both")
    if folder is not None:
        folder = folder.expanduser().resolve()
        # Accept the repository folder itself, or a stick whose top holds quet-repo/.
        for cand in (folder, folder / "quet-repo"):
            if (cand / "metadata").is_dir():
                base = "file://" + quote(str(cand))
                return Source(
                    str(cand), f"{base}/metadata/", f"{base}/targets/", FolderFetcher(), "folder"
                )
        raise UpdateError(f"{folder}: no TUF repository here (expected a metadata/ folder)")
    if url:
        if not url.startswith(("http://", "https://")):
            raise UpdateError(f"{url}: the update URL must start with http:// or https://")
        base = url.rstrip("/")
        return Source(base, f"{base}/metadata/", f"{base}/targets/", Urllib3Fetcher(), "url")
    last = install.read_state().get("last_source")
    if isinstance(last, dict) and last.get("kind") in ("url", "folder"):
        if last["kind"] == "url":
            return source_for(url=str(last["value"]))
        return source_for(folder=Path(str(last["value"])))
    raise UpdateError("no update source: give --url URL or --from FOLDER")


@dataclass
class UpdateOutcome:
    version: int
    previous: int | None
    changed: bool
    source: str


def _explain(exc: Exception, url: str = "") -> str:
    """Name what TUF refused, in words an operator can act on."""
    if isinstance(exc, tuf_errors.ExpiredMetadataError):
        what = "expired metadata (the repository must re-sign it, or the clock is wrong)"
    elif isinstance(exc, tuf_errors.BadVersionNumberError):
        what = "rollback: metadata older than what this machine already trusts"
    elif isinstance(exc, tuf_errors.UnsignedMetadataError):
        what = "bad signature: metadata not signed by the trusted keys"
    elif isinstance(exc, tuf_errors.LengthOrHashMismatchError):
        what = "tampered or mixed-up file: length or hash differs from the signed metadata"
    elif isinstance(exc, tuf_errors.DownloadHTTPError):
        what = f"download failed (HTTP {exc.status_code})"
    elif isinstance(exc, tuf_errors.DownloadError):
        what = "download failed"
    else:
        what = "repository metadata rejected"
    return f"{what}: {exc}{_what_file(url)}"


def _check(result: str, source: str, message: str = "", version: int | None = None) -> None:
    install.record_check(
        {
            "time": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "source": source,
            "result": result,
            "message": message,
            "version": version,
        }
    )


def _pointer(updater: Updater, tmp: Path) -> tuple[dict[str, Any], TargetFile]:
    info = updater.get_targetinfo(LATEST)
    if info is None:
        raise UpdateError("the repository has no content published yet (no latest.json target)")
    path = updater.download_target(info, str(tmp / "latest.json"))
    try:
        pointer = json.loads(Path(path).read_text(encoding="utf-8"))
        version = int(pointer["version"])
        name = str(pointer["target"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UpdateError(f"latest.json is not a valid pointer ({exc})") from exc
    bundle = updater.get_targetinfo(name)
    if bundle is None:
        raise UpdateError(f"latest.json names {name}, which the signed targets do not list")
    signed_version = (bundle.custom or {}).get("version")
    if signed_version != version or (info.custom or {}).get("version") != version:
        raise UpdateError(
            f"targets: latest.json says version {version} but the signed bundle entry says "
            f"{signed_version}; refusing a mixed-up repository"
        )
    return pointer, bundle


def _remember(src: Source) -> None:
    """A plain `quet update` next time uses the source that last worked."""
    install.record_state("last_source", {"kind": src.kind, "value": src.label})


def update(
    url: str | None = None, folder: Path | None = None, *, allow_downgrade: bool = False
) -> UpdateOutcome:
    """Refresh TUF metadata, download the newest bundle if it is new, verify and install it.
    Anything that fails verification raises UpdateError and leaves the content untouched."""
    src = source_for(url, folder)
    if not anchor_path().is_file():
        raise UpdateError(
            "no trusted root yet: run `quet update --init-root root.json` with the root.json "
            "your campaign distributed (never one taken from the update source itself)"
        )
    current = install.current_version()
    fetcher = TrackingFetcher(src.fetcher)
    try:
        updater = Updater(
            metadata_dir=str(_metadata_dir()),
            metadata_base_url=src.metadata_url,
            target_dir=str(_targets_dir()),
            target_base_url=src.targets_url,
            fetcher=fetcher,
            bootstrap=anchor_path().read_bytes(),
        )
        with tempfile.TemporaryDirectory(prefix="quet-update-") as tmp:
            pointer, bundle = _pointer(updater, Path(tmp))
            version = int(pointer["version"])
            held = install.read_state().get("rolled_back_from")
            if current is not None and isinstance(held, int) and current < version <= held:
                # The operator rolled this version back: wait for a newer one.
                _check("held-back", src.label, f"version {version} was rolled back", version)
                return UpdateOutcome(current, None, False, src.label)
            if current is not None and version == current:
                _check("up-to-date", src.label, version=version)
                _remember(src)
                previous = install.read_state().get("previous")
                return UpdateOutcome(version, previous, False, src.label)
            if current is not None and version < current and not allow_downgrade:
                raise UpdateError(
                    f"the repository offers version {version}, older than the installed "
                    f"{current}; refusing to go back"
                )
            path = updater.find_cached_target(bundle) or updater.download_target(bundle)
        result = install.install_bundle(
            Path(path), source=src.label, allow_downgrade=allow_downgrade
        )
        Path(path).unlink(missing_ok=True)  # installed: the archive is no longer needed
    except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
        message = _explain(exc, fetcher.last_url)
        _check("refused", src.label, message)
        raise UpdateError(f"{message} — content left at version {current}") from exc
    except BundleError as exc:
        _check("refused", src.label, str(exc))
        if isinstance(exc, UpdateError):
            raise
        raise UpdateError(f"{exc} — content left at version {current}") from exc
    _check("installed", src.label, version=result.version)
    _remember(src)
    return UpdateOutcome(result.version, result.previous, result.changed, src.label)


def status() -> dict[str, Any]:
    """What `quet update --status` shows: installed version, its age, source, last check."""
    state = install.read_state()
    manifest = install.current_manifest()
    now = datetime.now(UTC)
    out: dict[str, Any] = {
        "current": install.current_version(),
        "kept": install.installed_versions(),
        "created": manifest.created if manifest else None,
        "age_days": round((now - manifest.created_at).total_seconds() / 86400, 1)
        if manifest
        else None,
        "installed_at": state.get("installed_at"),
        "source": state.get("source"),
        "last_check": state.get("last_check"),
        "trusted_root": anchor_path().is_file(),
        "counts": manifest.counts if manifest else {},
    }
    return out

"""The content bundle format: build a deterministic tar.gz/tar.zst of signatures with a manifest
of sha256 per file, and unpack one while checking every file against that manifest."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from quet import __version__
from quet.errors import QuetError
from quet.indicators import formats, yararules
from quet.indicators.formats.clamav import write_hdb
from quet.indicators.formats.csvfile import write_csv
from quet.indicators.model import HASH_TYPES, Indicator, IndicatorType, IssueLog

MANIFEST = "manifest.json"
SIGNATURES = "signatures"
COMPILED = "compiled/rules.yarx"
FORMAT_VERSION = 1
MAX_UNPACKED = 2 << 30  # a bundle larger than 2 GiB unpacked is a mistake or a bomb
_GZ_MAGIC = b"\x1f\x8b"
_ZST_MAGIC = b"\x28\xb5\x2f\xfd"

Hook = Callable[[str], None]


class BundleError(QuetError):
    """A bundle could not be built, read or verified; the installed content is left as it was."""


@dataclass
class FileEntry:
    sha256: str
    size: int


@dataclass
class BundleManifest:
    version: int
    created: str  # ISO 8601, UTC
    quet_version: str
    yara_x_version: str
    counts: dict[str, int] = field(default_factory=dict)
    files: dict[str, FileEntry] = field(default_factory=dict)
    compiled: str | None = None  # path of the yara-x blob, valid only for yara_x_version
    format: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = MANIFEST) -> BundleManifest:
        try:
            raw = json.loads(text)
            files = {
                str(name): FileEntry(str(e["sha256"]), int(e["size"]))
                for name, e in raw["files"].items()
            }
            manifest = cls(
                version=int(raw["version"]),
                created=str(raw["created"]),
                quet_version=str(raw.get("quet_version", "")),
                yara_x_version=str(raw.get("yara_x_version", "")),
                counts={str(k): int(v) for k, v in raw.get("counts", {}).items()},
                files=files,
                compiled=raw.get("compiled"),
                format=int(raw.get("format", FORMAT_VERSION)),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BundleError(f"{where}: not a valid bundle manifest ({exc})") from exc
        if manifest.format > FORMAT_VERSION:
            raise BundleError(
                f"{where}: bundle format {manifest.format} is newer than this quet "
                f"understands ({FORMAT_VERSION}); upgrade quet"
            )
        if manifest.version < 1:
            raise BundleError(f"{where}: bundle version must be >= 1")
        return manifest

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.created)


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _read_all(paths: Iterable[Path], issues: IssueLog) -> list[Indicator]:
    out: list[Indicator] = []
    for p in paths:
        out.extend(formats.read_path(p, issues))
    return out


def _intel(db_url: str | None) -> list[Indicator]:
    try:  # the intel store is optional: bundles from files alone need no database
        from quet.store import db, intel
    except ImportError as exc:
        raise BundleError(f"--from-intel: the intel store is not available ({exc})") from exc
    engine = db.connect(db_url)
    try:
        return list(intel.iter_indicators(engine))
    finally:
        engine.dispose()


def _stage(
    root: Path,
    rules: list[Path],
    hashes: list[Path],
    iocs: list[Path],
    intel: list[Indicator] | None,
    issues: IssueLog,
) -> dict[str, int]:
    sig = root / SIGNATURES
    counts: dict[str, int] = {}
    ydir = sig / "yara"
    for src in rules:
        if not src.exists():
            raise BundleError(f"{src}: no such rule file or folder")
    files = yararules.find_rule_files(rules, issues)
    for f in files:
        ydir.mkdir(parents=True, exist_ok=True)
        dest = ydir / f.name
        n = 2
        while dest.exists():  # two folders with equal file names: keep both
            dest, n = ydir / f"{f.stem}_{n}{f.suffix}", n + 1
        shutil.copyfile(f, dest)
    counts["yara_files"] = len(files)
    counts["yara_rules"] = 0
    if files:
        # Compile from the staged copies so namespaces match what a client compiles.
        sources = yararules.read_sources(yararules.find_rule_files([ydir], issues), issues)
        before = issues.count
        compiled, count = yararules.compile_sources(sources, issues)
        if issues.count > before or compiled is None:
            raise BundleError(
                f"YARA rules do not compile ({issues.count - before} errors, first: "
                f"{issues.issues[before] if issues.count > before else 'none'}); fix them first"
            )
        counts["yara_rules"] = count
        blob = root / COMPILED
        blob.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        compiled.serialize_into(buf)
        blob.write_bytes(buf.getvalue())
    hash_inds = [i for i in _read_all(hashes, issues) if i.type in HASH_TYPES]
    counts["hashes"] = 0
    if hash_inds:
        sig.mkdir(parents=True, exist_ok=True)
        counts["hashes"] = write_hdb(hash_inds, sig / "hashes.hsb")
    counts["filename_iocs"] = 0
    for src in iocs:
        inds = list(formats.read_path(src, issues))
        counts["filename_iocs"] += sum(1 for i in inds if i.type is IndicatorType.FILENAME)
        (sig / "iocs").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, sig / "iocs" / src.name)
    if intel is not None:
        sig.mkdir(parents=True, exist_ok=True)
        counts["intel_indicators"] = write_csv(intel, sig / "intel-indicators.csv")
    return counts


def build_bundle(
    out: Path,
    version: int,
    *,
    rules: Iterable[Path] = (),
    hashes: Iterable[Path] = (),
    iocs: Iterable[Path] = (),
    from_intel: bool = False,
    db_url: str | None = None,
    intel: Iterable[Indicator] | None = None,
    created: datetime | None = None,
    issues: IssueLog | None = None,
) -> BundleManifest:
    """Build bundle `out` (.tar.gz, or .tar.zst); the same inputs give the same bytes.

    `intel` passes indicators directly (tests, other tools); `from_intel` reads the intel store."""
    if version < 1:
        raise BundleError("bundle version must be >= 1")
    issues = issues if issues is not None else IssueLog()
    intel_list = list(intel) if intel is not None else None
    if from_intel:
        intel_list = (intel_list or []) + _intel(db_url)
    created_at = (created or datetime.now(UTC)).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="quet-bundle-") as tmp:
        root = Path(tmp)
        counts = _stage(root, list(rules), list(hashes), list(iocs), intel_list, issues)
        names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        if not names:
            raise BundleError("nothing to bundle: give --rules, --hashes, --iocs or --from-intel")
        manifest = BundleManifest(
            version=version,
            created=created_at.isoformat(),
            quet_version=__version__,
            yara_x_version=yararules.yara_x_version(),
            counts=counts,
            files={n: FileEntry(_sha256(root / n), (root / n).stat().st_size) for n in names},
            compiled=COMPILED if COMPILED in names else None,
        )
        (root / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        _write_archive(out, root, [MANIFEST, *names], int(created_at.timestamp()))
    return manifest


@contextmanager
def _compressed_writer(out: Path, zst: bool) -> Iterator[IO[bytes]]:
    if zst:
        try:
            from backports.zstd import ZstdFile
        except ImportError as exc:  # pragma: no cover - shipped with py7zr
            raise BundleError("zstandard support is not installed; use .tar.gz") from exc
        with ZstdFile(out, "w") as zfh:
            yield zfh  # type: ignore[misc]
    else:
        with (
            out.open("wb") as raw,
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
        ):
            yield gz  # type: ignore[misc]


def _write_archive(out: Path, root: Path, names: list[str], mtime: int) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        zst = out.name.endswith((".zst", ".tzst"))
        with _compressed_writer(tmp, zst) as fh, tarfile.open(fileobj=fh, mode="w") as tar:
            for name in names:
                info = tarfile.TarInfo(name)
                data = (root / name).read_bytes()
                info.size, info.mtime, info.mode = len(data), mtime, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _open_archive(path: Path) -> Iterator[tarfile.TarFile]:
    try:
        with path.open("rb") as raw:
            magic = raw.read(4)
            raw.seek(0)
            stream: IO[bytes]
            if magic.startswith(_GZ_MAGIC):
                stream = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
            elif magic == _ZST_MAGIC:
                from backports.zstd import ZstdFile

                stream = ZstdFile(raw, "r")  # type: ignore[assignment]
            else:
                raise BundleError(f"{path}: not a bundle (neither gzip nor zstd)")
            with stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                yield tar
    except (tarfile.TarError, OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise BundleError(f"{path}: no such bundle file") from exc
        raise BundleError(f"{path}: damaged bundle archive ({exc})") from exc


def _safe_name(name: str, where: Path) -> str:
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or ".." in parts or name.startswith("/"):
        raise BundleError(f"{where}: unsafe path in bundle: {name!r}")
    return Path(*parts).as_posix()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def extract_verified(archive: Path, dest: Path, hook: Hook | None = None) -> BundleManifest:
    """Unpack `archive` into the empty folder `dest`, fsync every file, and check each against
    the manifest: a file missing, extra, or with another sha256 or size is a BundleError."""
    seen: dict[str, FileEntry] = {}
    total = 0
    with _open_archive(archive) as tar:
        for member in tar:
            name = _safe_name(member.name, archive)
            if member.isdir():
                continue
            if not member.isreg():
                raise BundleError(f"{archive}: {name}: only regular files may be in a bundle")
            total += member.size
            if total > MAX_UNPACKED:
                raise BundleError(f"{archive}: unpacks to more than {MAX_UNPACKED} bytes")
            if name in seen:
                raise BundleError(f"{archive}: {name} appears twice")
            src = tar.extractfile(member)
            assert src is not None  # regular file
            read = src.read
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            h = hashlib.sha256()
            size = 0
            with target.open("wb") as fh:
                for chunk in iter(functools.partial(read, 1 << 20), b""):
                    h.update(chunk)
                    size += len(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            seen[name] = FileEntry(h.hexdigest(), size)
            if hook:
                hook(f"extract:{name}")
    if MANIFEST not in seen:
        raise BundleError(f"{archive}: no {MANIFEST} in bundle")
    manifest = BundleManifest.from_json(
        (dest / MANIFEST).read_text(encoding="utf-8"), f"{archive}:{MANIFEST}"
    )
    _check_files(archive, manifest, {k: v for k, v in seen.items() if k != MANIFEST})
    for folder in sorted({p.parent for p in dest.rglob("*")} | {dest}, reverse=True):
        _fsync_dir(folder)
    return manifest


def _check_files(archive: Path, manifest: BundleManifest, seen: dict[str, FileEntry]) -> None:
    for name, want in sorted(manifest.files.items()):
        got = seen.get(name)
        if got is None:
            raise BundleError(f"{archive}: {name} is in the manifest but not in the bundle")
        if got.sha256 != want.sha256 or got.size != want.size:
            raise BundleError(
                f"{archive}: {name} does not match the manifest "
                f"(sha256 {got.sha256[:16]}…, manifest says {want.sha256[:16]}…)"
            )
    extra = sorted(set(seen) - set(manifest.files))
    if extra:
        raise BundleError(f"{archive}: {extra[0]} is in the bundle but not in the manifest")


def read_manifest(archive: Path) -> BundleManifest:
    """The manifest of a bundle, after checking every file against it."""
    with tempfile.TemporaryDirectory(prefix="quet-verify-") as tmp:
        return extract_verified(archive, Path(tmp))


def manifest_dict(manifest: BundleManifest) -> dict[str, Any]:
    return asdict(manifest)

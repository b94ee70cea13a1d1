"""The quarantine vault: moves a suspect file into an AES-256 zip and never loses it on the way.

Every step is written to an append-only journal, so `Vault.recover()` can repair any crash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import re
import secrets
import signal
import stat
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyzipper

from quet import __version__, paths
from quet.errors import QuarantineError

try:  # POSIX only; elsewhere the vault is guarded by a process-local lock
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

PASSWORD = b"infected"  # the field's convention: AV tools and analysts expect it
PAYLOAD = "payload"
META = "meta.json"
CRASH_ENV = "QUET_QUARANTINE_CRASH_AT"
CRASH_STEPS = ("begin", "written", "renamed", "verified", "removed")
_ID_RE = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{8}$")
_CHUNK = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# Steps after which an operation needs no repair.
_TERMINAL = frozenset({"done", "rolled-back", "deleted", "restore-done", "restore-abandoned"})
# Steps that open a new operation on an id (earlier fields of that id are forgotten).
_OPENING = frozenset({"begin", "restore-begin", "delete-begin"})
_STEPS = _TERMINAL | _OPENING | {"stored", "verified", "removed", "restored"}
_THREAD_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class Entry:
    """What the vault remembers about one quarantined file (also its `meta.json`)."""

    id: str
    original_path: str
    detections: tuple[str, ...]
    quarantined: str  # UTC, ISO 8601
    size: int
    sha256: str
    mode: int
    uid: int
    gid: int
    owner: str | None
    group: str | None
    atime_ns: int
    mtime_ns: int
    nlink: int
    quet_version: str

    @property
    def detection(self) -> str:
        return ", ".join(self.detections)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["detections"] = list(self.detections)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "meta") -> Entry:
        optional: dict[str, Any] = {"owner": None, "group": None, "nlink": 1, "quet_version": ""}
        try:
            raw = {f.name: data.get(f.name, optional.get(f.name)) for f in dataclasses.fields(cls)}
            for name in ("size", "mode", "uid", "gid", "atime_ns", "mtime_ns", "nlink"):
                raw[name] = int(raw[name])
            for name in ("id", "original_path", "quarantined", "sha256", "quet_version"):
                if raw[name] is None:
                    raise KeyError(name)
                raw[name] = str(raw[name])
            raw["detections"] = tuple(str(d) for d in raw["detections"])
            return cls(**raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise QuarantineError(f"{source}: damaged quarantine metadata ({exc!r})") from exc


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")


def _crash_point(step: str) -> None:
    """Test hook: QUET_QUARANTINE_CRASH_AT=<step> kills the process right after that step."""
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def _fsync_dir(path: Path) -> None:
    # Renames and unlinks are only durable once the directory itself is synced.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _hash_fd(fd: int) -> tuple[str, int]:
    os.lseek(fd, 0, os.SEEK_SET)
    digest = hashlib.sha256()
    size = 0
    while chunk := os.read(fd, _CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _open_nofollow(path: Path) -> int:
    flags = os.O_RDONLY | _NOFOLLOW
    noatime = getattr(os, "O_NOATIME", 0)
    if noatime:
        # Reading a file we leave in place should not even touch its access time.
        with contextlib.suppress(PermissionError):
            return os.open(path, flags | noatime)
    return os.open(path, flags)


def _file_sha(path: Path) -> str | None:
    """sha256 of a regular file at `path` (never through a symlink), None when there is none."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        fd = _open_nofollow(path)
    except OSError:
        return None
    try:
        return _hash_fd(fd)[0]
    except OSError:
        return None
    finally:
        os.close(fd)


def _owner_names(uid: int, gid: int) -> tuple[str | None, str | None]:
    owner = group = None
    with contextlib.suppress(ImportError, KeyError):
        import pwd

        owner = pwd.getpwuid(uid).pw_name
    with contextlib.suppress(ImportError, KeyError):
        import grp

        group = grp.getgrgid(gid).gr_name
    return owner, group


def _open_zip(path: Path) -> pyzipper.AESZipFile:
    zf = pyzipper.AESZipFile(path)
    zf.setpassword(PASSWORD)
    return zf


def _zip_payload_sha(path: Path) -> str | None:
    """sha256 of the decrypted payload, None when the zip is missing, partial or damaged."""
    try:
        with _open_zip(path) as zf, zf.open(PAYLOAD) as src:
            digest = hashlib.sha256()
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
            return digest.hexdigest()
    except Exception:  # any damage (truncation, bad MAC, bad zip) means "not a usable copy"
        return None


def _zip_meta(path: Path) -> Entry:
    try:
        with _open_zip(path) as zf:
            data = json.loads(zf.read(META))
    except Exception as exc:
        raise QuarantineError(f"{path}: cannot read quarantine metadata ({exc})") from exc
    return Entry.from_dict(data, str(path))


class Vault:
    """A directory of encrypted entries plus `journal.log`; all operations hold a vault lock."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else paths.vault_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(self.root, 0o700)
        self.journal_path = self.root / "journal.log"
        self._last_recovery: list[tuple[str, str]] = []

    # ----- files of an entry -------------------------------------------------------------
    def zip_path(self, entry_id: str) -> Path:
        return self.root / f"{entry_id}.zip"

    def _part_path(self, entry_id: str) -> Path:
        return self.root / f"{entry_id}.zip.part"

    def _sidecar_path(self, entry_id: str) -> Path:
        return self.root / f"{entry_id}.json"

    def _remove_entry_files(self, entry_id: str) -> None:
        for path in (
            self._part_path(entry_id),
            self.zip_path(entry_id),
            self._sidecar_path(entry_id),
            self.root / f"{entry_id}.json.tmp",
        ):
            _unlink(path)
        _fsync_dir(self.root)

    # ----- locking and journal -----------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise vault operations across threads and processes, then repair past crashes."""
        if fcntl is None:  # pragma: no cover - Windows
            with _THREAD_LOCK:
                self._recover_locked()
                yield
            return
        # flock belongs to the open file description, so each call gets its own descriptor.
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._recover_locked()
            yield
        finally:
            os.close(fd)  # the kernel releases the lock, also when we are killed

    def _log(self, entry_id: str, step: str, **fields: Any) -> None:
        record = {"id": entry_id, "step": step, "time": _now(), **fields}
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        created = not self.journal_path.exists()
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.root)

    def _journal_states(self) -> dict[str, dict[str, Any]]:
        """The last known state of each id's latest operation, in journal order."""
        states: dict[str, dict[str, Any]] = {}
        try:
            text = self.journal_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return states
        for line in text.splitlines():
            try:
                record = json.loads(line)
                entry_id, step = str(record["id"]), str(record["step"])
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a crash: the step it names never completed
            if step not in _STEPS:
                continue  # written by a newer Quét; not ours to interpret
            if step in _OPENING or entry_id not in states:
                states[entry_id] = {}
            states[entry_id].update(record)
        return states

    # ----- recovery ----------------------------------------------------------------------
    def recover(self) -> list[tuple[str, str]]:
        """Finish or roll back operations a crash interrupted; returns (id, action) pairs."""
        with self._locked():
            return self._last_recovery

    def _recover_locked(self) -> None:
        actions: list[tuple[str, str]] = []
        states = self._journal_states()
        for entry_id, state in states.items():
            if state["step"] in _TERMINAL:
                continue
            try:
                actions.append((entry_id, self._recover_one(entry_id, state)))
            except (OSError, QuarantineError, KeyError, TypeError, ValueError) as exc:
                # Left unjournaled on purpose: the next operation tries again.
                actions.append((entry_id, f"error: {exc}"))
        # A reservation made just before "begin" was journaled holds no data.
        for part in self.root.glob("*.zip.part"):
            entry_id = part.name.removesuffix(".zip.part")
            if entry_id not in states or states[entry_id]["step"] in _TERMINAL:
                _unlink(part)
        for tmp in self.root.glob("*.json.tmp"):
            _unlink(tmp)
        self._last_recovery = actions

    def _recover_one(self, entry_id: str, state: dict[str, Any]) -> str:
        step = str(state["step"])
        if step.startswith("restore"):
            return self._recover_restore(entry_id, state)
        if step == "delete-begin":
            self._remove_entry_files(entry_id)
            self._log(entry_id, "deleted", recovered=True)
            return "deleted"
        original, sha = Path(state["original"]), str(state["sha256"])
        if step == "removed":
            self._log(entry_id, "done", recovered=True)
            return "done"
        original_same = _file_sha(original) == sha
        if step == "verified":
            if original_same:
                # Chosen policy: finish the move rather than keep two copies of malware.
                try:
                    os.unlink(original)
                except OSError as exc:
                    self._log(entry_id, "done", recovered=True, kept_original=str(exc))
                    return "kept-both"
                _fsync_dir(original.parent)
                self._log(entry_id, "removed", recovered=True)
                self._log(entry_id, "done", recovered=True)
                return "finished"
            self._log(entry_id, "done", recovered=True, original_present=original.exists())
            return "done"
        if original_same:
            self._remove_entry_files(entry_id)
            self._log(entry_id, "rolled-back", recovered=True)
            return "rolled-back"
        # The original vanished or changed without us removing it: keep any intact copy.
        for candidate in (self.zip_path(entry_id), self._part_path(entry_id)):
            if _zip_payload_sha(candidate) == sha:
                if candidate != self.zip_path(entry_id):
                    os.rename(candidate, self.zip_path(entry_id))
                    _fsync_dir(self.root)
                self._write_sidecar(_zip_meta(self.zip_path(entry_id)))
                self._log(entry_id, "verified", recovered=True)
                self._log(entry_id, "done", recovered=True)
                return "kept"
        self._remove_entry_files(entry_id)
        self._log(entry_id, "rolled-back", recovered=True)
        return "rolled-back"

    def _recover_restore(self, entry_id: str, state: dict[str, Any]) -> str:
        if state.get("tmp"):
            _unlink(Path(state["tmp"]))
        if _file_sha(Path(state["target"])) == state["sha256"]:
            self._remove_entry_files(entry_id)
            self._log(entry_id, "restore-done", recovered=True)
            return "restored"
        self._log(entry_id, "restore-abandoned", recovered=True)
        return "restore-abandoned"

    # ----- quarantine --------------------------------------------------------------------
    def quarantine(
        self,
        path: str | os.PathLike[str],
        detection: str | Sequence[str],
        expected_sha256: str | None = None,
    ) -> Entry:
        """Move `path` into the vault; on any refusal or failure the original stays in place."""
        original = Path(os.path.abspath(path))
        detections = (detection,) if isinstance(detection, str) else tuple(detection)
        with self._locked():
            return self._quarantine_locked(original, detections, expected_sha256)

    def _quarantine_locked(
        self, original: Path, detections: tuple[str, ...], expected: str | None
    ) -> Entry:
        if original.parent.resolve().is_relative_to(self.root.resolve()):
            raise QuarantineError(f"{original}: is inside the quarantine vault")
        try:
            st = os.lstat(original)
        except OSError as exc:
            raise QuarantineError(f"{original}: cannot read ({exc.strerror})") from exc
        if stat.S_ISLNK(st.st_mode):
            raise QuarantineError(f"{original}: is a symbolic link; quarantine its target instead")
        if not stat.S_ISREG(st.st_mode):
            raise QuarantineError(f"{original}: is not a regular file")
        try:
            fd = _open_nofollow(original)
        except OSError as exc:
            raise QuarantineError(f"{original}: cannot open ({exc.strerror})") from exc
        try:
            fst = os.fstat(fd)
            if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
                raise QuarantineError(f"{original}: was replaced while opening it; scan it again")
            sha, size = _hash_fd(fd)
            if expected is not None and sha != expected.lower():
                raise QuarantineError(f"{original}: changed since it was scanned; scan it again")
            entry_id, part_fd = self._reserve_id()
            owner, group = _owner_names(st.st_uid, st.st_gid)
            entry = Entry(
                id=entry_id,
                original_path=str(original),
                detections=detections,
                quarantined=_now(),
                size=size,
                sha256=sha,
                mode=st.st_mode,
                uid=st.st_uid,
                gid=st.st_gid,
                owner=owner,
                group=group,
                atime_ns=st.st_atime_ns,
                mtime_ns=st.st_mtime_ns,
                nlink=st.st_nlink,
                quet_version=__version__,
            )
            self._log(entry_id, "begin", original=str(original), sha256=sha, size=size)
            _crash_point("begin")
            try:
                self._store(entry, fd, part_fd)
                self._verify_stored(entry, st)
            except BaseException as exc:
                self._remove_entry_files(entry_id)
                self._log(entry_id, "rolled-back", error=str(exc))
                if isinstance(exc, QuarantineError | KeyboardInterrupt):
                    raise
                raise QuarantineError(f"{original}: could not be stored ({exc})") from exc
        finally:
            os.close(fd)
        self._remove_original(entry, st)
        return entry

    def _reserve_id(self) -> tuple[str, int]:
        """A fresh id, claimed by creating `<id>.zip.part` exclusively (never two alike)."""
        for _ in range(1000):
            stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
            entry_id = f"{stamp}-{secrets.token_hex(4)}"
            try:
                fd = os.open(self._part_path(entry_id), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            if self.zip_path(entry_id).exists() or self._sidecar_path(entry_id).exists():
                os.close(fd)
                _unlink(self._part_path(entry_id))
                continue
            return entry_id, fd
        raise QuarantineError(f"{self.root}: could not allocate a quarantine id")

    def _store(self, entry: Entry, src_fd: int, part_fd: int) -> None:
        digest = hashlib.sha256()
        with os.fdopen(part_fd, "wb") as out:
            with pyzipper.AESZipFile(
                out, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
            ) as zf:
                zf.setpassword(PASSWORD)
                zf.setencryption(pyzipper.WZ_AES, nbits=256)
                os.lseek(src_fd, 0, os.SEEK_SET)
                with zf.open(PAYLOAD, "w", force_zip64=True) as dst:
                    while chunk := os.read(src_fd, _CHUNK):
                        digest.update(chunk)
                        dst.write(chunk)
                zf.writestr(META, json.dumps(entry.to_dict(), indent=2, sort_keys=True))
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != entry.sha256:
            raise QuarantineError(f"{entry.original_path}: changed while being copied; try again")
        _crash_point("written")
        os.rename(self._part_path(entry.id), self.zip_path(entry.id))
        _fsync_dir(self.root)
        self._write_sidecar(entry)
        self._log(entry.id, "stored")
        _crash_point("renamed")

    def _verify_stored(self, entry: Entry, st: os.stat_result) -> None:
        if _zip_payload_sha(self.zip_path(entry.id)) != entry.sha256:
            raise QuarantineError(f"{entry.original_path}: the vault copy did not verify")
        original = Path(entry.original_path)
        try:
            now = os.lstat(original)
        except OSError as exc:
            raise QuarantineError(f"{original}: vanished during quarantine") from exc
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or _file_sha(
            original
        ) != entry.sha256:
            raise QuarantineError(f"{original}: changed during quarantine; scan it again")
        self._log(entry.id, "verified")
        _crash_point("verified")

    def _remove_original(self, entry: Entry, st: os.stat_result) -> None:
        original = Path(entry.original_path)
        try:
            now = os.lstat(original)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                raise QuarantineError(f"{original}: was replaced during quarantine; scan it again")
            os.unlink(original)
        except (OSError, QuarantineError) as exc:
            # The original is still there and identical, so dropping the copy loses nothing.
            self._remove_entry_files(entry.id)
            self._log(entry.id, "rolled-back", error=str(exc))
            if isinstance(exc, QuarantineError):
                raise
            raise QuarantineError(f"{original}: cannot remove it ({exc.strerror})") from exc
        _fsync_dir(original.parent)
        self._log(entry.id, "removed")
        _crash_point("removed")
        self._log(entry.id, "done")

    def _write_sidecar(self, entry: Entry) -> None:
        # Plain JSON beside the zip so listing never needs to decrypt anything.
        tmp = self.root / f"{entry.id}.json.tmp"
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(entry.to_dict(), out, indent=2, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self._sidecar_path(entry.id))
        _fsync_dir(self.root)

    # ----- reading -----------------------------------------------------------------------
    def _load(self, entry_id: str) -> Entry:
        try:
            data = json.loads(self._sidecar_path(entry_id).read_text(encoding="utf-8"))
            entry = Entry.from_dict(data, str(self._sidecar_path(entry_id)))
            if entry.id == entry_id:
                return entry
        except (OSError, ValueError, QuarantineError):
            pass
        # The sidecar is a convenience; the encrypted meta.json is the authority.
        entry = _zip_meta(self.zip_path(entry_id))
        with contextlib.suppress(OSError):
            self._write_sidecar(entry)
        return entry

    def _get_locked(self, entry_id: str) -> Entry:
        if not _ID_RE.match(entry_id):
            raise QuarantineError(f"{entry_id}: not a quarantine id (see `quet quarantine list`)")
        if not self.zip_path(entry_id).exists():
            raise QuarantineError(
                f"{entry_id}: no such quarantine entry (see `quet quarantine list`)"
            )
        return self._load(entry_id)

    def get(self, entry_id: str) -> Entry:
        with self._locked():
            return self._get_locked(entry_id)

    def list(self) -> list[Entry]:
        """All entries, oldest first; damaged entries are skipped, never fatal."""
        entries: list[Entry] = []
        with self._locked():
            for zpath in self.root.glob("*.zip"):
                entry_id = zpath.name.removesuffix(".zip")
                if not _ID_RE.match(entry_id):
                    continue
                with contextlib.suppress(QuarantineError):
                    entries.append(self._load(entry_id))
        return sorted(entries, key=lambda e: (e.quarantined, e.id))

    def verify(self, entry_id: str) -> bool:
        """True when the entry decrypts to exactly the bytes that were quarantined."""
        with self._locked():
            entry = self._get_locked(entry_id)
            return _zip_payload_sha(self.zip_path(entry_id)) == entry.sha256

    # ----- restore and delete ------------------------------------------------------------
    def restore(
        self, entry_id: str, to: str | os.PathLike[str] | None = None, force: bool = False
    ) -> Path:
        """Put the file back (at `to` or where it was) bit-identical, then drop the entry."""
        with self._locked():
            entry = self._get_locked(entry_id)
            target = Path(os.path.abspath(to if to is not None else entry.original_path))
            if target.is_dir() and not target.is_symlink():
                if to is None:
                    raise QuarantineError(f"{target}: a directory now stands there; use --to")
                target = target / Path(entry.original_path).name
            if os.path.lexists(target):
                if not force:
                    raise QuarantineError(f"{target}: already exists; use --force or --to")
                if target.is_dir() and not target.is_symlink():
                    raise QuarantineError(f"{target}: is a directory; will not overwrite it")
            tmp = target.parent / f".quet-restore-{entry_id}.tmp"
            self._log(
                entry_id, "restore-begin", target=str(target), tmp=str(tmp), sha256=entry.sha256
            )
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                self._extract(entry, tmp)
                self._place(tmp, target, force)
            except BaseException as exc:
                _unlink(tmp)
                self._log(entry_id, "restore-abandoned", error=str(exc))
                if isinstance(exc, QuarantineError | KeyboardInterrupt):
                    raise
                raise QuarantineError(f"{target}: cannot restore there ({exc})") from exc
            _fsync_dir(target.parent)
            self._log(entry_id, "restored")
            self._remove_entry_files(entry_id)
            self._log(entry_id, "restore-done")
            return target

    def _extract(self, entry: Entry, tmp: Path) -> None:
        _unlink(tmp)  # a leftover of an interrupted restore of this very entry
        digest = hashlib.sha256()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            with _open_zip(self.zip_path(entry.id)) as zf, zf.open(PAYLOAD) as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != entry.sha256 or _file_sha(tmp) != entry.sha256:
            raise QuarantineError(f"{entry.id}: the vault copy is damaged; it was kept")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            os.chown(tmp, entry.uid, entry.gid)  # before chmod: chown clears setuid bits
        os.chmod(tmp, stat.S_IMODE(entry.mode))
        os.utime(tmp, ns=(entry.atime_ns, entry.mtime_ns))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _place(tmp: Path, target: Path, force: bool) -> None:
        if force:
            os.replace(tmp, target)
            return
        try:
            # link() fails atomically if the target appeared meanwhile; rename() would clobber.
            os.link(tmp, target)
        except FileExistsError as exc:
            raise QuarantineError(f"{target}: already exists; use --force or --to") from exc
        except OSError:
            if os.path.lexists(target):  # file systems without hard links
                raise QuarantineError(f"{target}: already exists; use --force or --to") from None
            os.rename(tmp, target)
            return
        os.unlink(tmp)

    def delete(self, entry_id: str) -> None:
        """Destroy an entry for good (the file's bytes are gone afterwards)."""
        with self._locked():
            self._get_locked(entry_id)
            self._log(entry_id, "delete-begin")
            self._remove_entry_files(entry_id)
            self._log(entry_id, "deleted")

"""This server's Ed25519 key pair (made once under QUET_HOME/server-keys/, private key 0600) and the
signed envelopes servers exchange: canonical JSON, signature, key id, time sent."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from quet import paths
from quet.errors import InputError, QuetError

PREFIX = "ed25519:"
PRIVATE_FILE = "ed25519.pem"
PUBLIC_FILE = "ed25519.pub"
UPSTREAM_FILE = "upstream.pub"  # the parent server's public key, configured once on a child
SIGNED_FIELDS = ("id", "key_id", "payload", "sent_at")


class EnvelopeError(QuetError):
    """A signed envelope was refused: malformed, unknown key, bad signature, stale or replayed.
    `status` is the HTTP status the server answers with."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


def key_dir() -> Path:
    path = paths.home() / "server-keys"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class ServerKey:
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def public_text(self) -> str:
        return public_text(self.public)

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self.private.sign(data)).decode()


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_text(public: Ed25519PublicKey) -> str:
    """The one-line form people copy between servers: ed25519:<base64 of the 32 raw bytes>."""
    return PREFIX + base64.b64encode(_raw(public)).decode()


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw(public)).hexdigest()[:32]


def parse_public(text: str, where: str = "public key") -> Ed25519PublicKey:
    """Read `ed25519:<base64>` (surrounding blank lines and comments `#` are ignored)."""
    lines = [x.strip() for x in text.splitlines() if x.strip() and not x.strip().startswith("#")]
    value = lines[0] if lines else ""
    if not value.startswith(PREFIX):
        raise InputError(
            f"expected a public key, one line 'ed25519:<base64>', got {value[:40]!r}", where, 1
        )
    try:
        raw = base64.b64decode(value[len(PREFIX) :], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"not an Ed25519 public key ({exc})", where, 1) from exc


def load_or_create(folder: Path | None = None) -> ServerKey:
    """This server's key, created on first use (the private key file is 0600, its folder 0700)."""
    folder = folder or key_dir()
    private_path = folder / PRIVATE_FILE
    if not private_path.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Created 0600 from the start: never readable by others, not even for a moment.
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        (folder / PUBLIC_FILE).write_text(public_text(key.public_key()) + "\n")
    loaded = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise InputError("not an Ed25519 private key", str(private_path))
    return ServerKey(loaded)


def save_upstream(text: str, folder: Path | None = None) -> Path:
    """Remember the parent server's public key (checked first), for pulling its feed."""
    parse_public(text)
    path = (folder or key_dir()) / UPSTREAM_FILE
    path.write_text(text.strip() + "\n")
    return path


def load_upstream(folder: Path | None = None) -> str:
    path = (folder or key_dir()) / UPSTREAM_FILE
    if not path.exists():
        raise InputError(
            "the parent server's public key is not configured: "
            "quet share pull --parent-key <file> (once)",
            str(path),
        )
    return path.read_text().strip()


def canonical(value: Any) -> bytes:
    """The bytes that are signed: sorted keys, no spaces, UTF-8 (a JSON round trip keeps them)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _signed_part(envelope: dict[str, Any]) -> bytes:
    return canonical({k: envelope[k] for k in SIGNED_FIELDS})


def seal(
    key: ServerKey,
    payload: dict[str, Any],
    *,
    sent_at: datetime | None = None,
    envelope_id: str | None = None,
) -> dict[str, Any]:
    """An envelope {id, payload, key_id, sent_at, signature}; the id and time are signed too, so
    neither can be changed to get a replay past the receiver."""
    envelope: dict[str, Any] = {
        "id": envelope_id or uuid.uuid4().hex,
        "key_id": key.key_id,
        "payload": payload,
        "sent_at": (sent_at or datetime.now(UTC)).astimezone(UTC).isoformat(),
    }
    envelope["signature"] = key.sign(_signed_part(envelope))
    return envelope


def check_shape(envelope: Any) -> dict[str, Any]:
    if not isinstance(envelope, dict):
        raise EnvelopeError("the envelope must be a JSON object", 400)
    for name in (*SIGNED_FIELDS, "signature"):
        if name not in envelope:
            raise EnvelopeError(f"the envelope has no {name!r}", 400)
    if not isinstance(envelope["payload"], dict):
        raise EnvelopeError("the envelope's payload must be a JSON object", 400)
    for name in ("id", "key_id", "sent_at", "signature"):
        if not isinstance(envelope[name], str) or not envelope[name]:
            raise EnvelopeError(f"the envelope's {name!r} must be a non-empty string", 400)
    if len(envelope["id"]) > 64:
        raise EnvelopeError("the envelope id is longer than 64 characters", 400)
    return envelope


def sent_time(envelope: dict[str, Any]) -> datetime:
    try:
        when = datetime.fromisoformat(envelope["sent_at"])
    except ValueError as exc:
        raise EnvelopeError(
            f"sent_at is not an ISO time: {envelope['sent_at'][:40]!r}", 400
        ) from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def verify(
    envelope: Any,
    public: Ed25519PublicKey,
    *,
    max_age: timedelta,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The envelope's payload if `public` signed it and it was sent within `max_age` (clocks may
    differ by a minute); raises EnvelopeError otherwise."""
    envelope = check_shape(envelope)
    if envelope["key_id"] != key_id(public):
        raise EnvelopeError("the envelope was signed with another key")
    try:
        signature = base64.b64decode(envelope["signature"], validate=True)
        public.verify(signature, _signed_part(envelope))
    except (binascii.Error, InvalidSignature, ValueError) as exc:
        raise EnvelopeError(
            "bad signature: the envelope was changed or not signed by this key"
        ) from exc
    now = now or datetime.now(UTC)
    when = sent_time(envelope)
    if when < now - max_age:
        raise EnvelopeError(
            f"the envelope is too old (sent {when.isoformat()}): refused as a replay"
        )
    if when > now + timedelta(minutes=1):
        raise EnvelopeError(f"the envelope is from the future ({when.isoformat()}): check clocks")
    payload: dict[str, Any] = envelope["payload"]
    return payload

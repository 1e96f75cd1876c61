"""Payload encryption for Temporal: every workflow and activity payload is AES-256-GCM encrypted.

Message content, LLM rationales and everything else a workflow carries would otherwise sit in plain
text in the history, readable by anyone with Web UI or CLI access, until retention ends. The codec sits
in the data converter of the API's client and of every worker (``data_converter``), so the server only
stores ciphertext. Search attributes are not payloads the codec sees: they stay readable and queryable.

* **Keys** come from ``SAFETY_CODEC__KEYS``: ``id:base64key[,id:base64key...]`` (32-byte keys). The
  first key encrypts; every listed key decrypts. The key id is written into each payload's metadata
  (``encryption-key-id``), so rotation is: put the new key first, keep the old ones while histories
  encrypted with them are retained. In development with no keys set, one key is generated into
  ``<data_dir>/payload-keys`` (mode 0600) on first use; outside development a missing key is refused.
* **Reading.** ``temporal workflow show`` without the codec shows ``binary/encrypted`` payloads; with
  ``--codec-endpoint http://<api>/codec --codec-auth "Bearer <moderator or admin key>"`` it shows them
  decrypted. The Web UI calls ``http://<api>/console/codec`` with the console's session cookie of a signed-in
  moderator or admin (``safety up`` starts the dev server's UI with that endpoint; README: "Reading
  encrypted payloads").
* Payloads without the encrypted encoding (histories written before the codec was on) are passed
  through unchanged on decode, so old workflows keep replaying.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from core.settings import Settings

__all__ = ["ENCODING", "KEY_ID", "AESGCMCodec", "CodecError", "KeyRing", "allowed_origins", "codec_endpoint",
           "ui_codec_endpoint", "ui_console_url",
           "data_converter", "key_ring", "key_spec", "parse_keys"]

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
CIPHER = "encryption-cipher"
_CIPHER_NAME = b"AES-256-GCM"
_NONCE_BYTES = 12
KEY_FILE = "payload-keys"


class CodecError(ValueError):
    """A payload cannot be decrypted (unknown key id, tampered or truncated ciphertext) or keys are bad."""


@dataclass(frozen=True)
class KeyRing:
    """Encryption keys by id; ``current`` encrypts, every key decrypts."""

    current: str
    keys: dict[str, bytes]

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise CodecError(f"current key {self.current!r} is not among the keys")
        for kid, key in self.keys.items():
            if len(key) != 32:
                raise CodecError(f"payload key {kid!r} is {len(key)} bytes; AES-256 needs 32")


def parse_keys(spec: str) -> KeyRing:
    """``id:base64key[,id:base64key...]``, the first one current. Raises ``CodecError`` saying what is wrong."""
    keys: dict[str, bytes] = {}
    order: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        kid, sep, encoded = part.partition(":")
        kid = kid.strip()
        if not sep or not kid or not encoded.strip():
            raise CodecError("SAFETY_CODEC__KEYS must be 'id:base64key[,id:base64key...]' (first key encrypts); "
                             f"got an entry without an id or key ({kid or '?'}:...)")
        if kid in keys:
            raise CodecError(f"SAFETY_CODEC__KEYS lists key id {kid!r} twice")
        try:
            keys[kid] = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError) as err:
            raise CodecError(f"SAFETY_CODEC__KEYS: key {kid!r} is not valid base64") from err
        order.append(kid)
    if not order:
        raise CodecError("SAFETY_CODEC__KEYS is empty; generate a key with "
                         "`python -c 'import base64,os; print(\"k1:\" + base64.b64encode(os.urandom(32)).decode())'`")
    return KeyRing(current=order[0], keys=keys)


def new_key_spec(key_id: str = "dev1") -> str:
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def _dev_key_file(data_dir: Path) -> str:
    """The development key ring in ``<data_dir>/payload-keys``, created (0600) if missing. Two processes
    starting at once agree: the file is created exclusively and the loser reads the winner's."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(new_key_spec() + "\n")
    return path.read_text().strip()


def key_spec(settings: Settings) -> str:
    """The ``SAFETY_CODEC__KEYS`` value in force (the development one included), for a child process that
    must read and write the same payloads but may have another data dir."""
    if settings.codec.keys is not None and settings.codec.keys.get_secret_value().strip():
        return settings.codec.keys.get_secret_value()
    return _dev_key_file(settings.data_dir.resolve())


def key_ring(settings: Settings) -> KeyRing | None:
    """The key ring from settings; None when encryption is off. Development without keys: the data dir's."""
    if not settings.codec.enabled:
        return None
    if settings.codec.keys is not None and settings.codec.keys.get_secret_value().strip():
        return parse_keys(settings.codec.keys.get_secret_value())
    if settings.environment == "development":
        return parse_keys(_dev_key_file(settings.data_dir.resolve()))
    raise CodecError("SAFETY_CODEC__KEYS is not set: outside development payload encryption needs a key from "
                     "the secret store ('id:base64key', 32 bytes); SAFETY_CODEC__ENABLED=false turns encryption off")


class AESGCMCodec(PayloadCodec):
    """AES-256-GCM per payload: a random 96-bit nonce, the key id authenticated as associated data."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self._ciphers = {kid: AESGCM(key) for kid, key in ring.keys.items()}

    @property
    def current_key_id(self) -> str:
        return self._ring.current

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        kid = self._ring.current
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, payload.SerializeToString(), kid.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: kid.encode(), CIPHER: _CIPHER_NAME},
                       data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was on (or by a plain client): readable as is
        kid = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise CodecError(f"payload encrypted with key {kid!r}, which is not in SAFETY_CODEC__KEYS "
                             f"(known: {', '.join(sorted(self._ciphers))}); add the old key back to read it")
        data = payload.data
        if len(data) < _NONCE_BYTES + 16:
            raise CodecError("encrypted payload is truncated")
        try:
            plain = cipher.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], kid.encode())
        except InvalidTag as err:
            raise CodecError(f"encrypted payload failed authentication with key {kid!r} (tampered, or a "
                             "different key under the same id)") from err
        return Payload.FromString(plain)


def codec_endpoint(settings: Settings) -> str:
    """The API's remote codec URL (what ``--ui-codec-endpoint`` and ``temporal --codec-endpoint`` take)."""
    return f"http://{settings.api.host}:{settings.api.port}/codec"


def ui_codec_endpoint(settings: Settings) -> str:
    """The codec URL the Web UI's browser calls (``--ui-codec-endpoint`` of ``safety up``): ``/console/codec``
    under the Web UI's own host name. The console's session cookie is set for the host the operator signs in
    at, with Path=/console and SameSite=Strict; ``localhost:8233`` and ``localhost:8001`` are the same site,
    so a credentialed fetch from the UI carries it (``127.0.0.1`` and ``localhost`` are not the same site)."""
    return f"{ui_console_url(settings)}/codec"


def ui_console_url(settings: Settings) -> str:
    """The console under the Web UI's host name: where to sign in so the Web UI can decrypt."""
    host = urlsplit(settings.temporal.ui_public_url).hostname or "localhost"
    return f"http://{host}:{settings.api.port}/console"


def allowed_origins(settings: Settings) -> set[str]:
    """Browser origins that may call the codec endpoint: the configured ones plus the Web UI's own."""
    ui = settings.temporal.ui_public_url.rstrip("/")
    scheme, _, rest = ui.partition("://")
    return {*settings.codec.cors_origins, f"{scheme}://{rest.split('/')[0]}",
            f"http://localhost:{settings.temporal.ui_port}", f"http://127.0.0.1:{settings.temporal.ui_port}"}


def data_converter(settings: Settings) -> DataConverter:
    """The data converter of every client and worker: pydantic JSON, encrypted when the codec is on."""
    ring = key_ring(settings)
    if ring is None:
        return pydantic_data_converter
    return replace(pydantic_data_converter, payload_codec=AESGCMCodec(ring))

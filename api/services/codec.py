"""Temporal's remote codec protocol: encrypted payloads in, readable ones out (``decode``), or the reverse
(``encode``), with the same AES-256-GCM codec the API's client and every worker use (``core/codec.py``).
Who may call it is decided by ``api.deps.payload_reader``."""

from __future__ import annotations

import base64
import binascii
import logging

from fastapi import HTTPException, status
from temporalio.api.common.v1 import Payload

from api.deps import Services
from api.errors import conflict
from api.schemas import PayloadJSON, PayloadsJSON
from core.codec import AESGCMCodec, CodecError
from core.storage.keys import KeyInfo

log = logging.getLogger(__name__)


def _unprocessable(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def _b64(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise _unprocessable(f"{where} is not valid base64") from err


def _to_payload(p: PayloadJSON, i: int) -> Payload:
    metadata = {k: _b64(v, f"payloads.{i}.metadata.{k[:40].encode('utf-8', 'replace').decode()}")
                for k, v in p.metadata.items()}
    try:
        return Payload(metadata=metadata, data=_b64(p.data, f"payloads.{i}.data"))
    except (ValueError, TypeError) as err:  # e.g. a metadata key that is not valid UTF-8
        raise _unprocessable(f"payloads.{i}: not a valid payload") from err


def _to_json(p: Payload) -> PayloadJSON:
    return PayloadJSON(metadata={k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                       data=base64.b64encode(p.data).decode())


def _codec(services: Services) -> AESGCMCodec:
    codec = services.temporal.data_converter.payload_codec
    if not isinstance(codec, AESGCMCodec):
        raise conflict("payload encryption is off on this server (SAFETY_CODEC__ENABLED=false): payloads are "
                       "already readable")
    return codec


def decode(services: Services, *, body: PayloadsJSON, reader: KeyInfo, namespace: str = "") -> PayloadsJSON:
    """Decrypt; a payload without the codec's encoding (written before encryption was on) passes through."""
    codec = _codec(services)
    out: list[Payload] = []
    for i, p in enumerate(body.payloads):
        try:
            out.append(codec.decrypt(_to_payload(p, i)))
        except CodecError as err:
            raise _unprocessable(f"payloads.{i}: {err}") from err
    log.info("payloads decoded", extra={"key": reader.name, "payloads": len(out), "namespace": namespace[:100]})
    return PayloadsJSON(payloads=[_to_json(p) for p in out])


def encode(services: Services, *, body: PayloadsJSON) -> PayloadsJSON:
    codec = _codec(services)
    return PayloadsJSON(payloads=[_to_json(codec.encrypt(_to_payload(p, i))) for i, p in enumerate(body.payloads)])

"""Temporal's remote codec protocol: the Web UI and ``temporal ... --codec-endpoint`` send encrypted
payloads here and get them back readable (``/codec/decode``), or the reverse (``/codec/encode``).

Only operators see decrypted payloads: an admin API key (``X-API-Key``, or ``Authorization: Bearer
sk_...`` as ``temporal --codec-auth`` sends it) or a moderator JWT (``Authorization: Bearer <jwt>``, as
the Web UI sends its access token). Browsers may call it from the origins in
``SAFETY_CODEC__CORS_ORIGINS`` and the Web UI's own origin; the preflight needs no credentials.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, Security, status
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from temporalio.api.common.v1 import Payload

from api.deps import JWT_KEY_ID, ServicesDep, _api_key_header, _bearer, _rate_limit, authenticate
from core.codec import AESGCMCodec, CodecError, allowed_origins
from core.storage.keys import KeyInfo, Role

log = logging.getLogger(__name__)
router = APIRouter(prefix="/codec", tags=["codec"])
CODEC_PATHS = ("/codec/encode", "/codec/decode")
_MAX_PAYLOADS = 1000
_ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace, X-API-Key"


class PayloadJSON(BaseModel):
    """A ``temporal.api.common.v1.Payload`` in protobuf JSON: metadata values and data are base64."""

    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""


class PayloadsJSON(BaseModel):
    payloads: list[PayloadJSON] = Field(default_factory=list, max_length=_MAX_PAYLOADS)


def _b64(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{where} is not valid base64") from err


def _to_payload(p: PayloadJSON, i: int) -> Payload:
    metadata = {k: _b64(v, f"payloads.{i}.metadata.{k[:40].encode('utf-8', 'replace').decode()}")
                for k, v in p.metadata.items()}
    try:
        return Payload(metadata=metadata, data=_b64(p.data, f"payloads.{i}.data"))
    except (ValueError, TypeError) as err:  # e.g. a metadata key that is not valid UTF-8
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"payloads.{i}: not a valid payload") from err


def _to_json(p: Payload) -> PayloadJSON:
    return PayloadJSON(metadata={k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                       data=base64.b64encode(p.data).decode())


def _cors_headers(request: Request, services: ServicesDep) -> dict[str, str]:
    origin = request.headers.get("origin")
    if not origin or origin not in allowed_origins(services.settings):
        return {}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Methods": "POST, OPTIONS", "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600", "Vary": "Origin"}


async def _operator(request: Request, services: ServicesDep,
                    api_key: Annotated[str | None, Security(_api_key_header)],
                    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None) -> KeyInfo:
    """An admin key or a moderator token; the refusal carries the CORS headers so a browser can show it."""
    cors = _cors_headers(request, services)
    try:
        if not api_key and bearer is not None and bearer.credentials.startswith("sk_"):
            api_key, bearer = bearer.credentials, None  # `temporal --codec-auth "Bearer sk_..."`
        if not api_key and bearer is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                                "the codec endpoint decrypts workflow payloads for operators only: send an admin "
                                "key (X-API-Key, or `--codec-auth 'Bearer <admin key>'` on the temporal CLI) or "
                                "a moderator token (Authorization: Bearer <jwt>)",
                                headers={"WWW-Authenticate": "APIKey, Bearer"})
        key = await authenticate(services, api_key, bearer)
        if key.role != Role.ADMIN and key.id != JWT_KEY_ID:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"role '{key.role}' may not read workflow payloads; use an admin key or a "
                                "moderator token")
        await _rate_limit(services, key)
    except HTTPException as err:
        raise HTTPException(err.status_code, err.detail, headers={**(err.headers or {}), **cors}) from err
    return key


OperatorDep = Annotated[KeyInfo, Depends(_operator)]


def _codec(services: ServicesDep, request: Request) -> AESGCMCodec:
    codec = services.temporal.data_converter.payload_codec
    if not isinstance(codec, AESGCMCodec):
        raise HTTPException(status.HTTP_409_CONFLICT, "payload encryption is off on this server "
                            "(SAFETY_CODEC__ENABLED=false): payloads are already readable",
                            headers=_cors_headers(request, services))
    return codec


@router.options("/encode", include_in_schema=False)
@router.options("/decode", include_in_schema=False)
async def preflight(request: Request, services: ServicesDep) -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=_cors_headers(request, services))


@router.post("/decode", response_model=PayloadsJSON, summary="Decrypt payloads (Temporal remote codec)")
async def decode(body: PayloadsJSON, request: Request, response: Response, services: ServicesDep,
                 key: OperatorDep) -> PayloadsJSON:
    codec = _codec(services, request)
    response.headers.update(_cors_headers(request, services))
    payloads = [_to_payload(p, i) for i, p in enumerate(body.payloads)]
    out: list[Payload] = []
    for i, p in enumerate(payloads):
        try:
            out.append(codec.decrypt(p))
        except CodecError as err:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"payloads.{i}: {err}",
                                headers=_cors_headers(request, services)) from err
    log.info("payloads decoded", extra={"key": key.name, "payloads": len(out),
                                        "namespace": request.headers.get("x-namespace", "")})
    return PayloadsJSON(payloads=[_to_json(p) for p in out])


@router.post("/encode", response_model=PayloadsJSON, summary="Encrypt payloads (Temporal remote codec)")
async def encode(body: PayloadsJSON, request: Request, response: Response, services: ServicesDep,
                 _key: OperatorDep) -> PayloadsJSON:
    codec = _codec(services, request)
    response.headers.update(_cors_headers(request, services))
    payloads = [_to_payload(p, i) for i, p in enumerate(body.payloads)]
    return PayloadsJSON(payloads=[_to_json(codec.encrypt(p)) for p in payloads])

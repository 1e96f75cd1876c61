"""The remote codec endpoints: ``temporal ... --codec-endpoint http://<api>/codec`` and the Temporal Web UI
(``http://<api>/console/codec``, where the browser sends the console's session cookie) turn encrypted
payloads into readable ones here. Who may: ``api.deps.payload_reader``; the work: ``api/services/codec.py``.
The CORS preflight needs no credentials and answers only the Web UI's configured origins.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status

from api.deps import PayloadReader, ServicesDep, codec_cors_headers
from api.schemas import PayloadsJSON
from api.services import codec as svc

router = APIRouter(tags=["codec"])
# The CLI's endpoint, and the Web UI's under /console (the console cookie's path).
PREFIXES = ("/codec", "/console/codec")
CODEC_PATHS = tuple(f"{prefix}/{op}" for prefix in PREFIXES for op in ("encode", "decode"))


async def preflight(request: Request, services: ServicesDep) -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=codec_cors_headers(request, services.settings))


async def decode(body: PayloadsJSON, request: Request, response: Response, services: ServicesDep,
                 reader: PayloadReader) -> PayloadsJSON:
    cors = codec_cors_headers(request, services.settings)
    try:
        out = svc.decode(services, body=body, reader=reader, namespace=request.headers.get("x-namespace", ""))
    except HTTPException as err:
        raise HTTPException(err.status_code, err.detail, headers={**(err.headers or {}), **cors}) from err
    response.headers.update(cors)
    return out


async def encode(body: PayloadsJSON, request: Request, response: Response, services: ServicesDep,
                 _reader: PayloadReader) -> PayloadsJSON:
    cors = codec_cors_headers(request, services.settings)
    try:
        out = svc.encode(services, body=body)
    except HTTPException as err:
        raise HTTPException(err.status_code, err.detail, headers={**(err.headers or {}), **cors}) from err
    response.headers.update(cors)
    return out


for _prefix in PREFIXES:
    router.add_api_route(f"{_prefix}/decode", decode, methods=["POST"], response_model=PayloadsJSON,
                         summary=f"Decrypt payloads (Temporal remote codec, {_prefix})")
    router.add_api_route(f"{_prefix}/encode", encode, methods=["POST"], response_model=PayloadsJSON,
                         summary=f"Encrypt payloads (Temporal remote codec, {_prefix})")
    for _op in ("decode", "encode"):
        router.add_api_route(f"{_prefix}/{_op}", preflight, methods=["OPTIONS"], include_in_schema=False)

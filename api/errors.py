"""The errors the API answers with, shared by every route and service: the documented error responses,
422s in FastAPI's own shape, and the 404/409/503 a service raises. Every message says what to do."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError

from api.schemas import ErrorOut
from core.storage.common import CursorError

# Documented error responses of the moderator, audit and export routes.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut},
    422: {"model": ErrorOut}, 429: {"model": ErrorOut}, 503: {"model": ErrorOut},
}
# Documented error responses of the ingest routes.
INGEST_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 413: {"model": ErrorOut}, 422: {"model": ErrorOut},
    429: {"model": ErrorOut}, 503: {"model": ErrorOut},
}


def invalid(field: str, message: str) -> RequestValidationError:
    """A 422 in the same shape as FastAPI's own query validation errors, naming the field."""
    return RequestValidationError([{"loc": ("query", field), "msg": message, "type": "value_error"}])


def cursor_error(err: CursorError) -> RequestValidationError:
    return invalid("cursor", str(err))


def not_found(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail)


def conflict(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, detail)


def unavailable(detail: str, *, retry_after_s: int = 2) -> HTTPException:
    """503: a dependency is unreachable and nothing was changed; the client retries."""
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail, headers={"Retry-After": str(retry_after_s)})

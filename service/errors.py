"""Every error the API answers, mapped in one place, as {"error": code, "detail": message}.

The library's exceptions say what went wrong and what to change; here they only get a status:
the caller's mistakes are 4xx, a collection whose files are broken is 503, a write the disk
refused (full) is 507, and only a bug is 500.
"""

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from index.errors import (
    Conflict,
    IndexError_,
    InvalidInput,
    ModelMismatch,
    ModelUnavailable,
    NotFitted,
    NotFound,
    StorageError,
    StorageFull,
)

logger = logging.getLogger("whitened_search")

_STATUS: list[tuple[type[IndexError_], int, str]] = [
    (InvalidInput, 422, "invalid_input"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (NotFitted, 409, "not_fitted"),
    (ModelMismatch, 409, "model_mismatch"),
    (StorageFull, 507, "insufficient_storage"),
    (StorageError, 503, "unavailable"),
    (ModelUnavailable, 503, "model_unavailable"),
]

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


_UNPARSABLE = "There was an error parsing the body"


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status, headers=headers)


def status_of(exc: IndexError_) -> tuple[int, str]:
    for kind, status, code in _STATUS:
        if isinstance(exc, kind):
            return status, code
    return 500, "internal"


async def index_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IndexError_)
    status, code = status_of(exc)
    if status >= 500:
        logger.error("%s %s: %s", request.method, request.url.path, exc)
    engine = getattr(request.app.state, "engine", None)
    detail = str(exc) if engine is None else engine.catalog.redact(str(exc))
    return error_response(status, code, detail)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_readable(error) for error in exc.errors()]
    if any(error["type"] == "json_invalid" for error in errors):
        return error_response(400, "malformed_json", errors[0]["msg"], errors=errors)
    detail = "; ".join(f"{error['loc']}: {error['msg']}" for error in errors[:10])
    return error_response(422, "invalid_request", detail, errors=errors)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    code = _CODES.get(exc.status_code, "error")
    if detail == _UNPARSABLE:  # FastAPI's words for JSON its parser gave up on (too deep)
        code, detail = (
            "malformed_json",
            (
                "the body could not be parsed as JSON (nested too deeply?): send a JSON object "
                "shaped as in the API docs"
            ),
        )
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return error_response(exc.status_code, code, detail, headers=headers)


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> str:
    """The methods of the documented path this request's path is an instance of; of several
    (`/documents/delete` is also `/documents/{doc_id}`), the most literal one, as routing picks
    it. Paths outside the schema (the docs page) ask each route whether it would take the
    request with a method: included routers of newer FastAPI releases keep no `methods`."""
    path = request.url.path
    paths = request.app.openapi().get("paths", {}) if request.app.openapi_url else {}
    templates = [t for t in paths if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", t), path)]
    if templates:
        template = min(templates, key=lambda t: t.count("{"))
        return ", ".join(sorted(m.upper() for m in paths[template] if m.upper() in HTTP_METHODS))
    routes = request.app.router.routes
    allowed = [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]
    return ", ".join(sorted(allowed))


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s failed", request.method, request.url.path)
    return error_response(500, "internal", "internal error: see the service log")


def install(app: FastAPI) -> None:
    app.add_exception_handler(IndexError_, index_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)


def _readable(error: Any) -> dict[str, Any]:
    """A pydantic error as {loc: "body.documents[0].text", msg, type}, without echoing input."""
    loc = ""
    for part in error.get("loc", ()):
        if isinstance(part, int):
            loc += f"[{part}]"
        else:
            loc += f".{part}" if loc else str(part)
    msg = error.get("msg", "invalid")
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        msg = f"malformed JSON at character {error['loc'][-1]}: {reason}".rstrip(": ")
        loc = "body"
    elif error.get("type") == "missing":
        msg = "field required"
    elif error.get("type") == "extra_forbidden":
        msg = "unknown field: check its spelling in the API docs"
    return {"loc": loc, "msg": msg, "type": error.get("type", "")}

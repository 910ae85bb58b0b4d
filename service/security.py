"""Optional API key: checked before routing, so a request without it costs no body parsing.

The key goes in `X-API-Key: KEY` or `Authorization: Bearer KEY` and is compared in constant time.
/health and /ready stay open (probes carry no secrets), and so do the OpenAPI docs (the schema is
not secret, and Swagger UI needs it to offer its Authorize button).
"""

import hmac
import logging

from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import error_response

API_KEY_HEADER = "X-API-Key"

# Declared on the API routes for the OpenAPI docs; AuthMiddleware does the checking.
api_key_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)
bearer_scheme = HTTPBearer(auto_error=False)


ACCESS_LOGGER = "uvicorn.access"


class QueryStringRedactor(logging.Filter):
    """Access-log lines carry the path without its query string: a client that puts a key or
    token there (`?api_key=...`) must not have it written to the log. The key is only ever
    accepted in headers; query strings are not needed to read the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, mark, _ = args[2].partition("?")
            if mark:
                record.args = (*args[:2], f"{path}?[query redacted]", *args[3:])
        return True


class AuthMiddleware:
    """Pure ASGI: 401 for a missing or wrong key on every path but the open ones."""

    def __init__(self, app: ASGIApp, api_key: str, open_paths: frozenset[str]) -> None:
        self.app = app
        self._key = api_key.encode()
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await self.app(scope, receive, send)  # CORS preflight carries no credentials
            return
        given = _header(scope, b"x-api-key")
        if given is None:
            scheme, _, token = (_header(scope, b"authorization") or b"").partition(b" ")
            given = token.strip() if scheme.lower() == b"bearer" else None
        if given is None or not hmac.compare_digest(given, self._key):
            response = error_response(
                401,
                "unauthorized",
                f"missing or wrong API key: send it in the {API_KEY_HEADER} header "
                "or as Authorization: Bearer",
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None

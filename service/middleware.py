"""Request body limits, as pure ASGI: size, refused from Content-Length before reading or while
streaming once the bytes received pass the limit, always before a route does any work; and
time, each chunk of the body within `read_timeout` seconds of the previous one (408), so a
client that sends half a body does not hold its connection and request forever."""

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_response


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


class BodyLimitMiddleware:
    """413 for bodies over `max_bytes` (declared or streamed); 400 for a bad Content-Length;
    408 when a chunk of the body takes longer than `read_timeout` seconds."""

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared == -1:
            await error_response(400, "bad_request", "Content-Length is not a number")(
                scope, receive, send
            )
            return
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        overflow = slow = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, overflow, slow
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout)
            except TimeoutError:
                slow = True
                raise _TooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    overflow = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if (overflow or slow) and not started:
                return  # the app's answer to the aborted read; ours is sent below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(_TooLarge, _TooSlow):
            await self.app(scope, limited_receive, guarded_send)
        if overflow and not started:
            await self._refuse(scope, receive, send)
        elif slow and not started:
            await error_response(
                408,
                "request_timeout",
                f"the request body stalled for more than {self.read_timeout:g} s: send it "
                "whole, without pauses",
                headers={"Connection": "close"},
            )(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "too_large",
            f"request body is larger than {self.max_bytes} bytes: send fewer or shorter "
            "documents per request",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when absent, -1 when malformed."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return -1
            return length if length >= 0 else -1
    return None

"""HTTP/1.1 (h11) with a deadline for each request head: a client that opens a connection and
sends half a request line, or dribbles a byte at a time, is disconnected.

uvicorn arms its keep-alive timer only after a response, and any byte received cancels it, so a
thousand connections that each send half a request were held for minutes. Here every connection
must deliver a whole request head within `timeout` seconds of opening (or of the previous
response); bytes that arrive meanwhile do not extend it. The body has its own deadline, per
chunk, in `service.middleware.BodyLimitMiddleware`.
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


def guarded_h11(timeout: float) -> type[H11Protocol]:
    """The h11 protocol class uvicorn should use (`uvicorn.run(..., http=...)`)."""

    class GuardedH11Protocol(H11Protocol):
        _head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._await_head()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not None and not self.cycle.response_complete:
                self._head_arrived()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._await_head()  # the next request on this connection has the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._head_arrived()
            super().connection_lost(exc)

        def _await_head(self) -> None:
            self._head_arrived()
            self._head_deadline = self.loop.call_later(timeout, self._too_slow)

        def _head_arrived(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _too_slow(self) -> None:
            self._head_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedH11Protocol

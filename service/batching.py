"""Micro-batching of concurrent single-text queries: one forward pass serves many callers.

A forward pass over 16 short texts costs little more than over one, so under concurrent load
encoding queries together multiplies throughput. The first caller of a batch waits at most
`window` seconds for company; while a batch is being encoded, new callers gather for the next.
"""

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Request:
    text: str
    done: threading.Event = field(default_factory=threading.Event)
    vector: np.ndarray | None = None
    error: BaseException | None = None


class QueryBatcher:
    """Encodes texts from concurrent callers together; each caller gets its own row.

    Args:
        encode: texts -> float32 (n, d), called by one thread at a time.
        window: seconds the first caller of a batch waits for others (0: no waiting).

    A batch holds at most as many texts as there are concurrent callers, which the server's
    thread pool bounds (40 by default).
    """

    def __init__(self, encode: Callable[[Sequence[str]], np.ndarray], window: float) -> None:
        self._encode = encode
        self.window = window
        self._pending: list[_Request] = []
        self._gathering = False
        self._lock = threading.Lock()
        self._encoding = threading.Lock()

    def encode(self, text: str) -> np.ndarray:
        """The vector of `text`, shape (d,); raises what the encoder raised for its batch."""
        request = _Request(text)
        with self._lock:
            self._pending.append(request)
            lead = not self._gathering
            self._gathering = True
        if lead:
            self._lead()
        request.done.wait()
        if request.error is not None:
            raise request.error
        assert request.vector is not None
        return request.vector

    def _lead(self) -> None:
        """Wait for company, then for the encoder; encode what has gathered by then."""
        time.sleep(self.window)
        with self._encoding:
            with self._lock:
                batch, self._pending = self._pending, []
                self._gathering = False
            try:
                self._answer(batch)
            finally:
                for request in batch:
                    request.done.set()

    def _answer(self, batch: list[_Request]) -> None:
        """Vectors for the batch; if it fails, each text alone, so that one caller's bad text
        fails that caller only (the error names its own text, not a neighbour's position)."""
        try:
            vectors = self._encode([r.text for r in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
            for request in batch:
                self._answer([request])
            return
        for request, vector in zip(batch, vectors, strict=True):
            request.vector = vector

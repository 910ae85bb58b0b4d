"""Prometheus metrics in the text exposition format (version 0.0.4), without a client library.

Request counts and latency histograms are labelled by route template (/collections/{name}/query),
never by the raw path, so the number of series stays bounded whatever clients send.
"""

import bisect
import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "whitened_search"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED = "unmatched"

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Family:
    """One metric family: its samples share a name (plus _bucket/_sum/_count), help and type."""

    name: str
    kind: str  # counter, gauge, histogram
    help: str
    samples: list[Sample]


class Histogram:
    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def samples(self, name: str, labels: Mapping[str, str]) -> list[Sample]:
        out, cumulative = [], 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == math.inf else _number(bound)
            out.append(Sample(f"{name}_bucket", {**labels, "le": le}, cumulative))
        out.append(Sample(f"{name}_sum", labels, self.sum))
        out.append(Sample(f"{name}_count", labels, self.count))
        return out


class Telemetry:
    """Counters and histograms of one process; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[Labels, int] = {}
        self._latency: dict[Labels, Histogram] = {}
        self._encode: dict[Labels, Histogram] = {}
        self._encoded: dict[Labels, int] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (("method", method), ("route", route), ("status", str(status)))
            self._requests[key] = self._requests.get(key, 0) + 1
            self._latency.setdefault(key[:2], Histogram()).observe(seconds)

    def observe_encode(self, operation: str, seconds: float, texts: int) -> None:
        with self._lock:
            key = (("operation", operation),)
            self._encode.setdefault(key, Histogram()).observe(seconds)
            self._encoded[key] = self._encoded.get(key, 0) + texts

    def families(self) -> list[Family]:
        with self._lock:
            requests = [
                Sample(f"{PREFIX}_http_requests_total", dict(k), v)
                for k, v in sorted(self._requests.items())
            ]
            latency = [
                s
                for k, h in sorted(self._latency.items())
                for s in h.samples(f"{PREFIX}_http_request_duration_seconds", dict(k))
            ]
            encode = [
                s
                for k, h in sorted(self._encode.items())
                for s in h.samples(f"{PREFIX}_encode_seconds", dict(k))
            ]
            encoded = [
                Sample(f"{PREFIX}_encoded_texts_total", dict(k), v)
                for k, v in sorted(self._encoded.items())
            ]
        return [
            Family(f"{PREFIX}_http_requests_total", "counter", "HTTP requests.", requests),
            Family(
                f"{PREFIX}_http_request_duration_seconds",
                "histogram",
                "HTTP request latency by route template.",
                latency,
            ),
            Family(
                f"{PREFIX}_encode_seconds",
                "histogram",
                "Seconds spent encoding texts, per call, by operation.",
                encode,
            ),
            Family(f"{PREFIX}_encoded_texts_total", "counter", "Texts encoded.", encoded),
        ]


def render(families: Iterable[Family]) -> str:
    lines = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for sample in family.samples:
            labels = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in sample.labels.items())
            name = f"{sample.name}{{{labels}}}" if labels else sample.name
            lines.append(f"{name} {_number(sample.value)}")
    return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Pure ASGI: counts every HTTP request and its latency by method, route template, status."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.telemetry.observe_request(
                scope["method"], route, status, time.perf_counter() - started
            )


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")

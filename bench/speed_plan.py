"""What a speed run runs with: how much it measures, and the settings the server is given.

Bare encode and the server must run the same model, batch size and backend, or the ingest
against bare encode ratio compares two different things; these functions are the one place
both sides take them from.
"""

import argparse
import dataclasses
from typing import Any

from bench import report
from index.encoder import Encoder
from service.config import ServerSettings


@dataclasses.dataclass(frozen=True)
class Plan:
    """How much of each measurement a run makes: full runs, or a smoke run that only checks."""

    single_queries: int
    batches: int
    bare_queries: int
    seconds: float
    pool: int
    poll: float
    report_queries: int


FULL = Plan(
    single_queries=200,
    batches=20,
    bare_queries=50,
    seconds=20.0,
    pool=2048,
    poll=0.5,
    report_queries=200,
)
SMOKE = Plan(
    single_queries=5, batches=2, bare_queries=3, seconds=0.5, pool=40, poll=0.05, report_queries=20
)


def server_default(name: str) -> Any:
    """The server's default of a setting."""
    return ServerSettings.model_fields[name].default


def bare_encoder(args: argparse.Namespace) -> Encoder:
    """The encoder the server runs: same model, batch size and backend."""
    backend = args.backend or server_default("backend")
    return Encoder(args.model, batch_size=args.batch_size, backend=backend)


def server_settings(args: argparse.Namespace, batch_ms: float | None) -> dict[str, Any]:
    """WHITENED_SEARCH_* of the child: only what this run sets, so older servers still start."""
    settings: dict[str, Any] = {"batch_size": args.batch_size, "max_body_bytes": 512 * report.MiB}
    if args.model:
        settings["model"] = args.model
    if args.backend:
        settings["backend"] = args.backend
    if batch_ms is not None:
        settings["query_batch_ms"] = batch_ms
    return settings


def batching_configs(args: argparse.Namespace) -> list[float | None]:
    """Query-batching windows to measure: as given (None: the server's default), then off."""
    first = args.query_batch_ms
    if not args.compare_batching:
        return [first]
    return [first, 0.0] if first != 0 else [0.0]


def describe_batching(batch_ms: float | None) -> str:
    """How the tables name a batching window."""
    if batch_ms is None:
        return "server default (by backend)"
    return "off" if batch_ms == 0 else f"{batch_ms:g} ms"

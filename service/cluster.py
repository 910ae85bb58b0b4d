"""Shards and encoders on Ray: a shard's process reopens its directory; encoders serve models.

A sharded collection (index.shards) calls its shards through `RemoteShard`; the catalog of the
Ray application (service.cluster_app) makes `ServedEncoder`s, whose models run in the encoder
deployment's replicas.

A shard opens its collection from disk when its process starts, so when the process dies Ray
starts another that reopens it with the single-node crash guarantees (what a write returned for
is there). Meanwhile a call to it waits for the restart, up to CALL_TIMEOUT_S: a query that
times out answers from the other shards and says which are missing (`Answer.missing_shards`); a
write fails with a 503 and is not acknowledged.

Needs the `distributed` extra (Ray Serve); the plain server never imports this.
"""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray import serve
from ray.serve.handle import DeploymentHandle

from index.collection import REFIT_GROWTH, Collection
from index.encoder import Encoder
from index.errors import InvalidInput, ModelUnavailable, StorageError
from index.shards import ShardedCollection, shard_count, shard_path

SHARD_METHODS = frozenset(
    {
        "count",
        "checkpoint",
        "describe",
        "raw_vectors_by_id",
        "existing",
        "add_vectors",
        "delete",
        "get",
        "documents",
        "statistics",
        "extremes",
        "quantize",
        "prepare_fit",
        "commit_fit",
        "abort_fit",
        "propose",
    }
)
"""What a sharded collection asks of a shard (index.shards): nothing else crosses."""
SHARD_ATTRIBUTES = frozenset({"manifest", "kernel"})

CPUS_PER_SHARD = 0.0
"""A shard's CPU reservation: none. A shard mostly waits (its searches take a millisecond) and
its memory, not CPU, limits how many a node holds; Ray spreads shard actors over the nodes. With
a reservation (0.25 each until 2026-12-04) a 2-CPU node beside the encoder held 3 shards, and a
collection's next shard stayed pending until its calls failed."""
UNANSWERED = (TimeoutError, ray.exceptions.GetTimeoutError, ray.exceptions.RayActorError)
"""What a call raises when the other process did not answer (its own errors arrive as they are)."""
CALL_TIMEOUT_S = 30.0
"""A shard call that has not answered by then fails: a query answers without that shard."""


class ShardHost:
    """One shard's collection, opened from its directory when its process starts: the body of a
    Serve replica (`ShardReplica`) and of a plain Ray actor (`ShardActor`) alike."""

    def __init__(self, path: str) -> None:
        self.collection = Collection(path, fits_itself=False)

    def call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if method not in SHARD_METHODS:
            raise InvalidInput(f"a shard does not answer {method!r}")
        return getattr(self.collection, method)(*args, **kwargs)

    def attribute(self, name: str) -> Any:
        if name not in SHARD_ATTRIBUTES:
            raise InvalidInput(f"a shard does not tell {name!r}")
        return getattr(self.collection, name)


ShardReplica = serve.deployment(health_check_period_s=1.0, health_check_timeout_s=10.0)(ShardHost)
ShardActor = ray.remote(max_restarts=-1, max_task_retries=-1)(ShardHost)
"""A plain Ray actor that Ray restarts when its process dies: `bench cluster` measures it
beside the Serve replica (one call costs less; Serve brings health checks and autoscaling)."""

Transport = Callable[..., Any]
"""(a `ShardHost` method, its arguments) -> its answer in the host's process, within a timeout."""


class RemoteShard:
    """A `ShardHost` in another process, with the collection's methods and attributes that a
    sharded collection uses, reached through `transport`."""

    def __init__(self, transport: Transport, label: str) -> None:
        self._transport, self.label = transport, label

    @classmethod
    def serve(
        cls, handle: DeploymentHandle, label: str, timeout_s: float = CALL_TIMEOUT_S
    ) -> "RemoteShard":
        return cls(
            lambda method, *args: getattr(handle, method).remote(*args).result(timeout_s=timeout_s),
            label,
        )

    @classmethod
    def actor(cls, actor: Any, label: str, timeout_s: float = CALL_TIMEOUT_S) -> "RemoteShard":
        return cls(
            lambda method, *args: ray.get(getattr(actor, method).remote(*args), timeout=timeout_s),
            label,
        )

    @property
    def manifest(self) -> Any:
        return self._call("attribute", "manifest")

    @property
    def kernel(self) -> Any:
        return self._call("attribute", "kernel")

    def __getattr__(self, method: str) -> Any:
        if method not in SHARD_METHODS:
            raise AttributeError(method)
        return lambda *args, **kwargs: self._call("call", method, args, kwargs)

    def _call(self, *args: Any) -> Any:
        """The transport's answer; a shard that does not answer is a StorageError (503) that
        says why, while the shard's own errors (NotFound, Conflict, ...) pass as they are."""
        try:
            return self._transport(*args)
        except UNANSWERED as exc:
            raise StorageError(
                f"{self.label} did not answer ({type(exc).__name__}): it is restarting, or the "
                "Ray cluster has no room to start it; retry in a moment"
            ) from exc

    def close(self) -> None:
        """The remote process owns the collection: it closes it when it ends."""


ENCODER_CPUS = 1.0
"""An encoder replica's CPU reservation: its model's threads (the settings' THREADS, default one
per core of its node) do all of a query's and an ingest's arithmetic."""
ENCODE_TIMEOUT_S = 600.0
"""An encode call that has not answered by then fails (an ingest chunk of long texts on a busy
CPU takes tens of seconds; a dead replica's call fails at once and Serve starts another)."""


class EncoderHost:
    """The models of one encoder replica, each loaded once, keyed by the arguments of the
    `Encoder` that asks (model, backend, batch size, threads, export cache)."""

    def __init__(self) -> None:
        self._encoders: dict[tuple[Any, ...], Encoder] = {}

    def shape(self, options: dict[str, Any]) -> tuple[int, int]:
        """(dimension, max_seq_length) of the model, loading it."""
        encoder = self._encoder(options)
        return encoder.dimension, encoder.max_seq_length

    def encode(self, options: dict[str, Any], texts: list[str]) -> np.ndarray:
        return self._encoder(options).encode(texts)

    def _encoder(self, options: dict[str, Any]) -> Encoder:
        # one per key even when concurrent first calls race (Serve runs them in threads); an
        # Encoder loads its model on first use, so the one setdefault drops costs nothing
        return self._encoders.setdefault(tuple(sorted(options.items())), Encoder(**options))


EncoderReplica = serve.deployment(name="encoder")(EncoderHost)
"""The encoder deployment: its replicas (`num_replicas`, or `autoscaling_config` in a Serve
config file, service/serve.yaml) share the encoding of every query and ingest job."""


class RemoteModel:
    """A loaded model (index.encoder.SentenceModel) that runs in the encoder deployment."""

    def __init__(self, handle: DeploymentHandle, options: dict[str, Any]) -> None:
        self._handle, self._options = handle, options
        self.dimension, self.max_seq_length = self._call("shape")

    def encode(self, texts: Sequence[str], batch_size: int, progress: bool) -> np.ndarray:
        return self._call("encode", list(texts))

    def _call(self, method: str, *args: Any) -> Any:
        call = getattr(self._handle, method).remote(self._options, *args)
        try:
            return call.result(timeout_s=ENCODE_TIMEOUT_S)
        except UNANSWERED as exc:
            raise ModelUnavailable(
                f"the encoder deployment did not answer ({type(exc).__name__}): its replicas "
                "are starting or restarting; retry in a moment"
            ) from exc


class ServedEncoder(Encoder):
    """An `Encoder` whose model runs in the encoder deployment's replicas, not in this process:
    what the Ray application's catalog makes (`served_encoders`)."""

    def __init__(self, handle: DeploymentHandle, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handle = handle

    def _load(self) -> RemoteModel:
        options = {
            "model": self.model,
            "batch_size": self.batch_size,
            "backend": self.backend,
            "cache_dir": str(self.cache_dir),
            "threads": self.threads,
        }
        return RemoteModel(self._handle, options)


def served_encoders(handle: DeploymentHandle) -> Callable[..., Encoder]:
    """The catalog's way to make encoders (index.catalog.Placement) over the deployment."""
    return lambda *args, **kwargs: ServedEncoder(handle, *args, **kwargs)


def deploy(
    path: str | Path,
    encoder: Encoder | None = None,
    timeout_s: float = CALL_TIMEOUT_S,
    cpus_per_shard: float = CPUS_PER_SHARD,
) -> ShardedCollection:
    """The sharded collection at `path` with each shard served by its own Ray Serve
    application (`app_name(NAME, I)`, no HTTP route): Serve restarts a replica whose process
    dies."""

    def replica(path: Path, shard: int) -> RemoteShard:
        host = ShardReplica.options(
            name=f"shard-{shard}", ray_actor_options={"num_cpus": cpus_per_shard}
        )
        handle = serve.run(
            host.bind(str(shard_path(path, shard))),
            name=app_name(path.name, shard),
            route_prefix=None,
        )
        return RemoteShard.serve(handle, f"shard {shard} of {path.name}", timeout_s)

    return _sharded(path, encoder, replica)


def deploy_actors(
    path: str | Path,
    encoder: Encoder | None = None,
    refit_growth: float = REFIT_GROWTH,
    timeout_s: float = CALL_TIMEOUT_S,
    cpus_per_shard: float = CPUS_PER_SHARD,
) -> ShardedCollection:
    """`deploy` with plain Ray actors instead of Serve applications (see `ShardActor`); with
    its first three arguments, the catalog's way to open shards (`index.catalog.ShardOpener`)."""

    def actor(path: Path, shard: int) -> RemoteShard:
        host = ShardActor.options(num_cpus=cpus_per_shard, scheduling_strategy="SPREAD").remote(
            str(shard_path(path, shard))
        )
        return RemoteShard.actor(host, f"shard {shard} of {path.name}", timeout_s)

    return _sharded(path, encoder, actor, refit_growth)


def _sharded(
    path: str | Path,
    encoder: Encoder | None,
    host: Callable[[Path, int], RemoteShard],
    refit_growth: float = REFIT_GROWTH,
) -> ShardedCollection:
    """The sharded collection at `path` over one remote host per shard, started by `host`."""
    path = Path(path)
    shards = [host(path, shard) for shard in range(shard_count(path))]
    return ShardedCollection(path.name, shards, encoder, refit_growth)


def app_name(collection: str, shard: int) -> str:
    """The Serve application of a collection's shard."""
    return f"{collection}-shard-{shard}"


def undeploy(sharded: ShardedCollection) -> None:
    """Stop the shards' applications (their directories stay)."""
    for i in range(len(sharded.shards)):
        serve.delete(app_name(sharded.name, i))

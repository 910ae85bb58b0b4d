"""Shards as Ray Serve deployments: each replica owns one shard's directory, reopened on restart.

A sharded collection (index.shards) calls them through their handles.

A replica opens its shard's collection from disk when it starts, so when its process dies Serve
starts another that reopens it with the single-node crash guarantees (what a write returned for
is there). Meanwhile a query answers from the other shards and says which are missing
(`Answer.missing_shards`); a write to the missing shard fails and is not acknowledged.

Needs the `distributed` extra (Ray Serve); the plain server never imports this.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray import serve
from ray.serve.handle import DeploymentHandle

from index.collection import REFIT_GROWTH, Collection
from index.encoder import Encoder
from index.errors import InvalidInput
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
        "prepare_fit",
        "commit_fit",
        "abort_fit",
        "answer",
    }
)
"""What a sharded collection asks of a shard (index.shards): nothing else crosses."""
SHARD_ATTRIBUTES = frozenset({"manifest", "kernel"})

CPUS_PER_SHARD = 0.25
"""A shard's CPU reservation: a shard mostly waits (its searches take a millisecond), so several
share a core, and the encoder keeps the rest: beside the ingress's one CPU
(service.cluster_app.INGRESS_CPUS), four shards fit a 2-CPU node. A reservation only schedules;
more shards than fit stay pending, and their calls time out (CALL_TIMEOUT_S)."""
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

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    @classmethod
    def serve(cls, handle: DeploymentHandle, timeout_s: float = CALL_TIMEOUT_S) -> "RemoteShard":
        return cls(
            lambda method, *args: getattr(handle, method).remote(*args).result(timeout_s=timeout_s)
        )

    @classmethod
    def actor(cls, actor: Any, timeout_s: float = CALL_TIMEOUT_S) -> "RemoteShard":
        return cls(
            lambda method, *args: ray.get(getattr(actor, method).remote(*args), timeout=timeout_s)
        )

    @property
    def manifest(self) -> Any:
        return self._transport("attribute", "manifest")

    @property
    def kernel(self) -> Any:
        return self._transport("attribute", "kernel")

    def __getattr__(self, method: str) -> Any:
        if method not in SHARD_METHODS:
            raise AttributeError(method)
        return lambda *args, **kwargs: self._transport("call", method, args, kwargs)

    def close(self) -> None:
        """The remote process owns the collection: it closes it when it ends."""


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
        return RemoteShard.serve(handle, timeout_s)

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
        host = ShardActor.options(num_cpus=cpus_per_shard).remote(str(shard_path(path, shard)))
        return RemoteShard.actor(host, timeout_s)

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

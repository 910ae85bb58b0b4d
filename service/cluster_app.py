"""The REST API on Ray Serve: the single-node app as ingress, each shard in a Ray actor.

`serve run service.cluster_app:app` deploys one ingress replica running the very FastAPI app of
`python -m service` (`service.app.create_app`: same routes, schemas, errors and auth), configured
by the same WHITENED_SEARCH_* variables, so a client cannot tell the two apart. Its catalog opens
each shard of a sharded collection (`POST /collections` with `shards`) in a Ray actor of its own
(`service.cluster.deploy_actors`): Ray restarts a killed one, which reopens its shard from disk,
and meanwhile queries answer from the other shards with `partial: true`. Plain collections stay
in the ingress process, as on one node.

One ingress replica: it holds the data directory's lock, as the single-node server does.
Needs the `distributed` extra (Ray Serve); the plain server never imports this.
"""

from typing import Any

from fastapi import FastAPI
from ray import serve

from service.app import create_app
from service.cluster import deploy_actors
from service.config import ServerSettings

INGRESS_CPUS = 1.0
"""The ingress encodes every query and ingest: the CPU the shards (service.cluster) leave."""


def build() -> FastAPI:
    """The app, built in the replica's process from its environment's settings."""
    return create_app(ServerSettings(), open_shards=deploy_actors)


Ingress = serve.deployment(name="ingress", num_replicas=1)(serve.ingress(build)())


def application(env: dict[str, str] | None = None) -> Any:
    """The application to deploy, its ingress with `env` (WHITENED_SEARCH_* settings) set."""
    options = {"runtime_env": {"env_vars": env}} if env else {}
    return Ingress.options(ray_actor_options={"num_cpus": INGRESS_CPUS, **options}).bind()


app = application()
"""What `serve run service.cluster_app:app` deploys (settings from the cluster's environment)."""

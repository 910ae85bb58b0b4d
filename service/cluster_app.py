"""The REST API on Ray Serve: the single-node app as ingress, models in an encoder deployment,
each shard in a Ray actor.

`serve run service.cluster_app:app` (or `serve run service/serve.yaml`) deploys one ingress
replica running the very FastAPI app of `python -m service` (`service.app.create_app`: same
routes, schemas, errors and auth), configured by the same WHITENED_SEARCH_* variables, so a client
cannot tell the two apart. Its models run in the encoder deployment (`service.cluster.
EncoderReplica`, replicas or autoscaling from the config), and its catalog opens each shard of a
sharded collection (`POST /collections` with `shards`) in a Ray actor of its own
(`service.cluster.deploy_actors`): Ray restarts a killed one, which reopens its shard from disk,
and meanwhile queries answer from the other shards with `partial: true`. Plain collections stay
in the ingress process, as on one node.

One ingress replica: it holds the data directory's lock, as the single-node server does.
Needs the `distributed` extra (Ray Serve); the plain server never imports this.
"""

from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve.handle import DeploymentHandle

from index.catalog import Placement
from service.app import create_app
from service.cluster import ENCODER_CPUS, EncoderReplica, deploy_actors, served_encoders
from service.config import ServerSettings

INGRESS_CPUS = 0.25
"""The ingress parses requests and merges answers; models run in the encoder deployment
(service.cluster.EncoderReplica), shards in actors (service.cluster.CPUS_PER_SHARD)."""


@serve.deployment(name="ingress", num_replicas=1)
@serve.ingress()
class Ingress:
    """The app, built in the replica's process from its environment's settings, its encoders
    calling the encoder deployment and its shards opened as Ray actors."""

    def __init__(self, encoders: DeploymentHandle) -> None:
        self.placement = Placement(
            open_shards=deploy_actors, make_encoder=served_encoders(encoders)
        )

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(ServerSettings(), self.placement)


def application(env: dict[str, str] | None = None) -> Any:
    """The application to deploy, with `env` (WHITENED_SEARCH_* settings) set in its replicas."""
    options = {"runtime_env": {"env_vars": env}} if env else {}
    encoders = EncoderReplica.options(ray_actor_options={"num_cpus": ENCODER_CPUS, **options})
    ingress = Ingress.options(ray_actor_options={"num_cpus": INGRESS_CPUS, **options})
    return ingress.bind(encoders.bind())


app = application()
"""What `serve run service.cluster_app:app` deploys (settings from the cluster's environment)."""

"""The REST API on Ray Serve (service/cluster_app.py, issue 16): the single-node app as ingress
behind Serve's HTTP proxy, each shard of a sharded collection in a Ray actor. Over real HTTP it
answers as a single-node server with the same settings, and a shard actor killed by SIGKILL is
restarted by Ray while every answer is complete or says `partial`."""

import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.cluster_faults import kill_rounds
from bench.live import LiveServer, free_port

ray = pytest.importorskip("ray", reason="the `distributed` extra (Ray) is not installed")
serve = pytest.importorskip("ray.serve")

from service import cluster_app  # noqa: E402  (needs Ray, skipped above without it)

QUERIES = ["music on stage", "a dog outside", "cooking dinner", "the stock market"]


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The application on a local Ray, Serve's proxy on a free port of 127.0.0.1."""
    data = tmp_path_factory.mktemp("cluster-data")
    ray.init(
        num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, log_to_driver=False
    )
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    env = {"WHITENED_SEARCH_DATA_DIR": str(data)}
    serve.run(cluster_app.application(env), name="whitened-search", route_prefix="/")
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()
    ray.shutdown()


def _wait_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + 120
    while client.get("/ready").status_code != 200:
        assert time.monotonic() < deadline, "the ingress never became ready"
        time.sleep(0.5)


def _load(client: httpx.Client, texts: list[str], shards: int | None) -> None:
    body = {"name": "docs", "index_spec": "Flat"} | ({"shards": shards} if shards else {})
    created = client.post("/collections", json=body)
    assert created.status_code == 201, created.text
    documents = [{"id": f"doc-{i}", "text": text} for i, text in enumerate(texts)]
    added = client.post("/collections/docs/documents", json={"documents": documents})
    assert added.status_code == 201, added.text


def _answers(client: httpx.Client) -> dict:
    response = client.post("/collections/docs/query", json={"texts": QUERIES, "top_k": 10})
    assert response.status_code == 200, response.text
    return response.json()


def _alive(class_name: str) -> list[dict]:
    """Live actors whose class name contains `class_name`."""
    from ray._private.state import actors  # the GCS's table: works without the dashboard

    return [
        a for a in actors().values() if a["State"] == "ALIVE" and class_name in a["ActorClassName"]
    ]


def _shard_actors() -> list[dict]:
    return _alive("ShardHost")


def test_the_api_on_serve_answers_as_one_node_and_survives_a_shard_kill(
    cluster_url: str, tmp_path: Path, corpus: list[str]
) -> None:
    single = LiveServer(tmp_path / "single", tmp_path / "single.log")
    single.start()
    try:
        with single.client(timeout=120) as client:
            _load(client, corpus, None)
            expected = _answers(client)
    finally:
        single.close()
    with httpx.Client(base_url=cluster_url, timeout=120) as client:
        _wait_ready(client)
        _load(client, corpus, 2)
        got = _answers(client)
        assert got["partial"] is False and got["missing_shards"] == []
        for want, have in zip(expected["results"], got["results"], strict=True):
            assert [h["id"] for h in have["hits"]] == [h["id"] for h in want["hits"]]
            for a, b in zip(want["hits"], have["hits"], strict=True):
                assert b["score"] == pytest.approx(a["score"], abs=1e-6)
        info = client.get("/collections/docs").json()
        assert info["shards"] == 2 and info["count"] == len(corpus)
        assert len(_alive(":encoder")) == 1  # the encoder deployment's replica encoded them
        (ingress,) = _alive(":ingress")
        assert "onnxruntime" not in Path(f"/proc/{ingress['Pid']}/maps").read_text()

        victim = _shard_actors()[0]
        os.kill(victim["Pid"], signal.SIGKILL)
        deadline, seen = time.monotonic() + 120, []
        while time.monotonic() < deadline:
            answer = _answers(client)
            seen.append(answer["partial"])
            assert answer["missing_shards"] in ([], [0], [1])
            restarted = [a for a in _shard_actors() if a["ActorID"] == victim["ActorID"]]
            if not answer["partial"] and restarted and restarted[0]["Pid"] != victim["Pid"]:
                break
            time.sleep(0.1)
        assert seen and not seen[-1], "the cluster did not answer completely again after the kill"
        again = _answers(client)
        assert [[h["id"] for h in r["hits"]] for r in again["results"]] == [
            [h["id"] for h in r["hits"]] for r in got["results"]
        ]
        assert client.get("/collections/docs").json()["count"] == len(corpus)


def test_shard_kills_during_writes_ingest_and_queries_lose_nothing(
    cluster_url: str, corpus: list[str]
) -> None:
    """`python -m bench cluster-faults` in small: SIGKILL a shard while a client writes, while
    an ingest job runs, and while one queries; Ray restarts it, every call in between is
    answered, and every acknowledged document is stored."""
    with httpx.Client(base_url=cluster_url, timeout=120) as client:
        _wait_ready(client)
        figures = kill_rounds(client, corpus, kills=3, rng=random.Random(1))
    assert [r["phase"] for r in figures["rounds"]] == ["write", "ingest", "query"]
    assert figures["acknowledged"] > 1000 and figures["lost"] == 0
    assert figures["stored"] == figures["acknowledged"]
    for round_ in figures["rounds"]:
        assert round_["restarted"] and round_["whole_at_end"], round_
        assert round_["calls"]["failed"] == 0, round_["errors"]
        assert round_["whole_after_seconds"] is not None


def test_the_serve_config_file_deploys_this_application() -> None:
    """service/serve.yaml is valid for Serve, imports this app and names its deployments."""
    import yaml
    from ray.serve.schema import ServeDeploySchema

    config = ServeDeploySchema.model_validate(
        yaml.safe_load((Path(cluster_app.__file__).parent / "serve.yaml").read_text())
    )
    (app,) = config.applications
    module, _, attribute = app.import_path.partition(":")
    assert module == cluster_app.__name__ and hasattr(cluster_app, attribute)
    assert {d.name for d in app.deployments} == {"ingress", "encoder"}
    ingress = cluster_app.app._bound_deployment  # Serve keeps the graph in private fields
    (encoder,) = ingress.init_args
    assert {ingress.name, encoder._bound_deployment.name} == {"ingress", "encoder"}

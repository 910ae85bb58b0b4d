"""Shards on Ray Serve (service/cluster.py, issue 16): the same answers as one collection, and a
shard whose process is killed answers again after Serve restarts it, with nothing acknowledged
lost and every answer in between either complete or marked partial."""

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from index import Collection, Document, Encoder, Settings
from index.shards import ShardedCollection

ray = pytest.importorskip("ray", reason="the `distributed` extra (Ray) is not installed")
serve = pytest.importorskip("ray.serve")

from service import cluster  # noqa: E402  (needs Ray, skipped above without it)


@pytest.fixture(scope="module")
def serving() -> Iterator[None]:
    """A local Ray and Serve (no HTTP proxy) for the module."""
    ray.init(
        num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, log_to_driver=False
    )
    serve.start(proxy_location="Disabled")
    yield
    serve.shutdown()
    ray.shutdown()


def _docs(texts: list[str], start: int = 0) -> list[Document]:
    return [Document(text, id=f"doc-{start + i}") for i, text in enumerate(texts)]


def _replica_pids(collection: str, shard: int) -> list[int]:
    from ray._private.state import actors  # the GCS's table: works without the dashboard

    return [
        a["Pid"]
        for a in actors().values()
        if a["State"] == "ALIVE"
        and a["ActorClassName"]
        == f"ServeReplica:{cluster.app_name(collection, shard)}:shard-{shard}"
    ]


def test_two_shard_replicas_answer_as_one_collection_and_survive_a_kill(
    serving: None,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    encoder: Encoder,
    corpus: list[str],
    corpus_vectors: np.ndarray,
) -> None:
    single = Collection.create(tmp_path / "single", encoder.model_id, 384, Settings(), encoder)
    single.add_vectors(_docs(corpus), corpus_vectors)
    ShardedCollection.initialise(tmp_path / "news", encoder.model_id, 384, 2)
    sharded = cluster.deploy(tmp_path / "news", encoder, timeout_s=5.0)
    request.addfinalizer(lambda: cluster.undeploy(sharded))
    written = sharded.add_vectors(_docs(corpus[:150]), corpus_vectors[:150])
    assert written.fitted and written.added == 150
    sharded.add_vectors(_docs(corpus[150:], 150), corpus_vectors[150:])
    sharded.fit()  # the kernel of all 180, as the single collection's
    queries = corpus_vectors[:20] + 0.01
    expected, got = single.answer(queries), sharded.answer(queries)
    assert got.missing_shards == ()
    for want, have in zip(expected.hits, got.hits, strict=True):
        assert [h.id for h in have] == [h.id for h in want]
        assert np.allclose([h.score for h in have], [h.score for h in want], atol=1e-6)

    (pid,) = _replica_pids("news", 0)
    os.kill(pid, signal.SIGKILL)
    answers: list[tuple[float, tuple[int, ...]]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        started = time.monotonic()
        answer = sharded.answer(queries[:2])  # waits for the shard up to timeout_s, else partial
        answers.append((time.monotonic() - started, answer.missing_shards))
        assert answer.missing_shards in ((), (0,))
        if answer.missing_shards == () and _replica_pids("news", 0) not in ([], [pid]):
            break  # a new replica reopened the shard and answered
        time.sleep(0.05)
    assert _replica_pids("news", 0) not in ([], [pid]), "Serve did not restart the killed replica"
    waited = max(seconds for seconds, _ in answers)
    partial = sum(missing == (0,) for _, missing in answers)
    assert partial or waited > 0.3, "no answer noticed the dead shard: the kill proved nothing"
    assert answers[-1][1] == ()
    assert sharded.count() == len(corpus)  # every acknowledged document is still there
    again = sharded.answer(queries)
    assert [[h.id for h in q] for q in again.hits] == [[h.id for h in q] for q in got.hits]
    print(f"after the kill: {len(answers)} answers, {partial} partial, longest {waited:.2f} s")


def test_a_shard_killed_during_writes_loses_no_acknowledged_document(
    serving: None,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    encoder: Encoder,
    corpus_vectors: np.ndarray,
) -> None:
    ShardedCollection.initialise(tmp_path / "wire", encoder.model_id, 384, 2)
    sharded = cluster.deploy(tmp_path / "wire", encoder, timeout_s=5.0)
    request.addfinalizer(lambda: cluster.undeploy(sharded))
    noise = np.random.default_rng(0)
    acknowledged: list[str] = []
    failed = 0
    killed_at = None
    for batch in range(40):
        ids = [f"w{batch}-{i}" for i in range(10)]
        vectors = corpus_vectors[:10] + 0.05 * noise.standard_normal((10, 384))
        if batch == 10:
            (pid,) = _replica_pids("wire", 1)
            os.kill(pid, signal.SIGKILL)
            killed_at = pid
        try:
            sharded.add_vectors([Document(f"text {i}", id=i) for i in ids], vectors, upsert=True)
        except Exception:  # not acknowledged: the client would send it again
            failed += 1
            continue
        acknowledged.extend(ids)
    assert _replica_pids("wire", 1) not in ([], [killed_at]), "the replica was not restarted"
    stored = sharded.get(acknowledged)
    assert [d.id for d in stored] == acknowledged
    assert sharded.count() >= len(acknowledged)
    print(f"writes: {len(acknowledged) // 10} acknowledged, {failed} failed around the kill")


def test_a_killed_shard_actor_is_restarted_and_reopens_its_shard(
    serving: None, tmp_path: Path, encoder: Encoder, corpus_vectors: np.ndarray
) -> None:
    """The plain-actor transport (`deploy_actors`) keeps the same guarantee as the replicas."""
    ShardedCollection.initialise(tmp_path / "plain", encoder.model_id, 384, 2)
    sharded = cluster.deploy_actors(tmp_path / "plain", encoder, timeout_s=30.0)
    sharded.add_vectors(_docs([f"text {i}" for i in range(60)]), corpus_vectors[:60])
    before = sharded.answer(corpus_vectors[:5])
    from ray._private.state import actors

    victim = next(
        a for a in actors().values() if a["State"] == "ALIVE" and "ShardHost" in a["ActorClassName"]
    )
    os.kill(victim["Pid"], signal.SIGKILL)
    after = sharded.answer(corpus_vectors[:5])  # the call is retried on the restarted actor
    assert after.missing_shards == ()
    assert [[h.id for h in q] for q in after.hits] == [[h.id for h in q] for q in before.hits]
    assert sharded.count() == 60
    restarted = [a for a in actors().values() if a["ActorID"] == victim["ActorID"]]
    assert restarted and restarted[0]["Pid"] != victim["Pid"]


def test_a_shard_that_does_not_answer_is_a_503_that_says_which() -> None:
    """Ray's timeouts and dead actors become StorageError (503, service.errors) naming the
    shard; the shard's own errors, raised in its process, pass unchanged."""
    from index.errors import NotFound, StorageError

    def silent(*args: object) -> None:
        raise ray.exceptions.GetTimeoutError("timed out")

    def missing(*args: object) -> None:
        raise NotFound("no document doc-9")

    with pytest.raises(StorageError, match="shard 1 of news did not answer"):
        cluster.RemoteShard(silent, "shard 1 of news").count()
    with pytest.raises(NotFound, match="doc-9"):
        cluster.RemoteShard(missing, "shard 1 of news").get(["doc-9"])

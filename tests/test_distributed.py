"""The distributed ingest (index/distributed.py, `ingest --ray`) on a real local Ray cluster.

One Ray per module (2 CPUs, a small object store, no dashboard): starting it costs 10-20 s.
Everything is real: the bundled model on the onnx backend in Ray actors, Parquet, FAISS, HTTP.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from bench.live import LiveServer
from index import distributed
from index.collection import Collection
from index.documents import Document
from index.encoder import Encoder
from index.kernel import WhiteningKernel
from index.snapshots import Settings
from service.cli import main as cli

ray = pytest.importorskip("ray", reason="the `distributed` extra (Ray) is not installed")

pytestmark = pytest.mark.slow
SCIFACT_DOCS = 300
"""SciFact abstracts of the exactness test: the relevant ones of the first test queries, topped
up in corpus order (bench.data.load_scifact); the whole corpus would take minutes to encode twice
on 2 cores. All 300 test queries are asked."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray for the module; yields its address (for a CLI run in another process)."""
    ray.init(
        num_cpus=2,
        object_store_memory=200 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
    )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _sentences(data_dir: Path, n: int) -> list[str]:
    path = data_dir / "reuters" / "sentences.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found: set WHITENED_TEST_DATA")
    with path.open(encoding="utf-8") as handle:
        lines = (line.strip() for line in handle)
        return [line for line, _ in zip(filter(None, lines), range(n), strict=False)]


def _covariance(kernel: WhiteningKernel) -> np.ndarray:
    mean = kernel.sum_ / kernel.n_samples_seen_
    return kernel.sum_sq_ / kernel.n_samples_seen_ - np.outer(mean, mean)


def test_distributed_kernel_equals_single_process_fit(
    cluster: str, tmp_path: Path, data_dir: Path, encoder: Encoder
) -> None:
    """Two encoder actors, statistics summed over Parquet files, a collection served over HTTP:
    the same kernel, vectors and top-10 ids as the single-process path on the same texts."""
    from bench.data import load_scifact

    if not (data_dir / "scifact" / "corpus.jsonl").is_file():
        pytest.skip("SciFact not found: set WHITENED_TEST_DATA")
    scifact = load_scifact(data_dir, limit_docs=SCIFACT_DOCS, splits=("test",))
    queries = [load_scifact(data_dir, splits=("test",)).queries[i] for i in _test_rows(data_dir)]
    docs = [{"id": i, "text": t} for i, t in zip(scifact.doc_ids, scifact.documents, strict=True)]
    table = distributed.documents_table(docs)
    options = distributed.EncodeOptions(actors=2, block_rows=100)
    encoded = distributed.encode(table, tmp_path / "encoded", options)
    statistics = distributed.statistics(encoded)

    single = encoder.encode(scifact.documents)  # the service's path: one process, onnx
    reference = WhiteningKernel().fit(single)
    assert statistics.n_samples_seen_ == len(docs)
    mean, ref_mean = statistics.sum_ / len(docs), reference.sum_ / len(docs)
    assert np.abs(mean - ref_mean).max() <= 1e-9 * np.abs(ref_mean).max()
    cov, ref_cov = _covariance(statistics), _covariance(reference)
    assert np.abs(cov - ref_cov).max() <= 1e-9 * np.abs(ref_cov).max()

    settings = Settings(beta=0.5, gamma=0.5, k=128, index_spec="Flat", rescore="off")
    root = tmp_path / "data"
    root.mkdir()
    loaded = distributed.create_and_load(root, "scifact", encoded, statistics, settings)
    stored_ids, stored = loaded.raw_vectors_by_id()
    loaded.close()
    order = {doc_id: row for row, doc_id in enumerate(stored_ids)}
    assert sorted(order) == sorted(scifact.doc_ids)
    raw = stored[[order[doc_id] for doc_id in scifact.doc_ids]]
    ref_kernel = WhiteningKernel(0.5, 0.5, 128).fit(single)
    assert np.abs(loaded.kernel.transform(raw) - ref_kernel.transform(single)).max() <= 1e-6

    baseline = Collection.create(tmp_path / "single", encoder.model_id, 384, settings, encoder)
    # the single-node ingest: the kernel fitted on all stored vectors
    baseline.add_vectors([Document(**doc) for doc in docs], single)
    expected = [[hit.id for hit in hits] for hits in baseline.search(queries, top_k=10)]
    server = LiveServer(root, tmp_path / "server.log").start()
    try:
        answer = httpx.post(
            f"{server.url}/collections/scifact/query",
            json={"texts": queries, "top_k": 10},
            timeout=120,
        ).json()
    finally:
        server.close()
    served = [[hit["id"] for hit in result["hits"]] for result in answer["results"]]
    assert len(served) == len(queries) == 300
    assert served == expected


def _test_rows(data_dir: Path) -> list[int]:
    """Rows of the 300 SciFact test queries in load_scifact's query list."""
    from bench.data import load_scifact

    full = load_scifact(data_dir, splits=("test",))
    rows, _ = full.judged("test")
    return [int(row) for row in rows]


def _actors() -> list[dict]:
    from ray._private.state import actors  # the GCS's table: works without the dashboard

    return [a for a in actors().values() if "_EncodeBatch" in a["ActorClassName"]]


def test_killed_worker_writes_each_document_once(
    cluster: str, tmp_path: Path, data_dir: Path
) -> None:
    """SIGKILL one encoder actor's process (its PID from Ray's actor table) in mid-encode: Ray
    restarts it and retries its blocks; the collection's ids are exactly the input's."""
    texts = _sentences(data_dir, 4000)
    table = distributed.documents_table([{"id": f"s{i}", "text": t} for i, t in enumerate(texts)])
    output = tmp_path / "encoded"
    done: dict[str, distributed.Encoded] = {}
    options = distributed.EncodeOptions(actors=2, block_rows=200)
    worker = threading.Thread(
        target=lambda: done.setdefault("encoded", distributed.encode(table, output, options))
    )
    worker.start()
    deadline = time.monotonic() + 300
    while len(alive := [a for a in _actors() if a["State"] == "ALIVE"]) < 2:
        assert worker.is_alive() and time.monotonic() < deadline, "no encoder actor started"
        time.sleep(0.1)
    time.sleep(3)  # their model is loaded (about 1 s) and blocks are being encoded
    victim = alive[0]
    os.kill(victim["Pid"], signal.SIGKILL)
    assert worker.is_alive(), "the kill came after the encode finished: it proved nothing"
    worker.join(timeout=300)
    assert "encoded" in done
    restarted = [a for a in _actors() if a["ActorID"] == victim["ActorID"]]
    assert restarted and restarted[0]["NumRestarts"] >= 1

    ids = [doc.id for documents, _ in distributed.batches(done["encoded"]) for doc in documents]
    assert len(ids) == len(set(ids)) == len(texts)
    root = tmp_path / "data"
    root.mkdir()
    statistics = distributed.statistics(done["encoded"])
    collection = distributed.create_and_load(
        root, "news", done["encoded"], statistics, Settings(k=64)
    )
    stored = collection.raw_vectors_by_id()[0]
    assert sorted(stored) == sorted(table.column("id").to_pylist())
    assert collection.kernel.n_samples_seen_ == len(texts)
    collection.close()


def test_cli_ingest_on_a_cluster_address(cluster: str, tmp_path: Path) -> None:
    """`whitened-search ingest FILE --collection NAME --create --ray ADDRESS` in another process
    joins the running cluster; the collection it loads answers queries like a normal one."""
    texts = [f"{s} report number {i}." for i, s in enumerate(_topical() * 4)]
    source = tmp_path / "news.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    command = [
        sys.executable, "-m", "service.cli", "ingest", str(source), "--collection", "news",
        "--create", "--ray", cluster, "--data-dir", str(tmp_path / "data"), "--actors", "1",
        "--encoded", str(tmp_path / "encoded"), "--k", "32",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"news: {len(texts)} added" in done.stdout
    collection = Collection(tmp_path / "data" / "news", Encoder())
    assert collection.count() == len(texts) and collection.kernel.k_ == 32
    hits = collection.search(["The stock market fell sharply on Monday."], top_k=3)[0]
    assert "stock market" in hits[0].text
    collection.close()


def _topical() -> list[str]:
    from tests.service.service_support import TOPICS

    return [text.rstrip(".") for texts in TOPICS.values() for text in texts]


def test_bad_input_names_the_line_and_loads_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed line stops the run before Ray or the data directory is touched."""
    source = tmp_path / "docs.jsonl"
    lines = [{"id": "a", "text": "first"}, {"id": "b", "text": "second"}]
    source.write_text("\n".join(map(json.dumps, lines)) + '\n{"id": "c", "text": \n')
    data = tmp_path / "data"
    argv = ["ingest", str(source), "-c", "news", "--create", "--ray", "--data-dir", str(data)]
    assert cli(argv) == 1
    assert f"{source}:3: not valid JSON" in capsys.readouterr().err
    assert not (data / "news").exists() and not (tmp_path / "news.encoded").exists()


def test_repeated_ids_load_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "docs.jsonl"
    lines = [{"id": "a", "text": "first"}, {"id": "b", "text": "second"}, {"id": "a", "text": "x"}]
    source.write_text("\n".join(map(json.dumps, lines)) + "\n")
    data = tmp_path / "data"
    argv = ["ingest", str(source), "-c", "news", "--create", "--ray", "--data-dir", str(data)]
    assert cli(argv) == 1
    assert "document ids repeat" in capsys.readouterr().err
    assert not (data / "news").exists()

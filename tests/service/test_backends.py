"""The server's encoder backend over HTTP: collections record it, and a server whose backend's
vectors do not compare with a collection's refuses to query or write it, saying what to run."""

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from service_support import corpus, wait_job, wait_ready

from service import ServerSettings, create_app


def _client(data_dir: Path, backend: str) -> TestClient:
    return TestClient(create_app(ServerSettings(data_dir=data_dir, backend=backend)))


def test_collections_take_only_backends_whose_vectors_compare(tmp_path: Path) -> None:
    with _client(tmp_path, "onnx-int8") as client:
        wait_ready(client)
        assert client.post("/collections", json={"name": "int8"}).status_code == 201
        added = client.post("/collections/int8/documents", json={"documents": corpus()})
        assert added.status_code == 201, added.text
        assert client.get("/collections/int8").json()["backend"] == "onnx-int8"
        hits = client.post("/collections/int8/query", json={"text": "a guitar concert"}).json()
        assert hits["results"][0]["hits"][0]["metadata"]["topic"] == "music"
    with _client(tmp_path, "onnx") as client:
        wait_ready(client)
        refused = client.post("/collections/int8/query", json={"text": "a guitar concert"})
        assert refused.status_code == 409
        assert "WHITENED_SEARCH_BACKEND=onnx-int8" in refused.json()["detail"]
        write = client.post("/collections/int8/documents", json={"documents": [{"text": "x y"}]})
        assert write.status_code == 409
        assert client.get("/collections/int8/documents/music-0").status_code == 200
        assert client.post("/collections", json={"name": "fp32"}).status_code == 201
        client.post("/collections/fp32/documents", json={"documents": corpus()})
    with _client(tmp_path, "torch") as client:  # torch reads what onnx wrote: same vectors
        wait_ready(client)
        hits = client.post("/collections/fp32/query", json={"text": "a guitar concert"}).json()
        assert hits["results"][0]["hits"][0]["metadata"]["topic"] == "music"


def test_ingest_jobs_of_an_onnx_server_encode_with_openvino_and_store_the_same_vectors(
    tmp_path: Path,
) -> None:
    """Issue 14: bulk through OpenVINO (faster on long texts), queries through ONNX Runtime;
    a job's stored vectors are OpenVINO's and compare with ONNX's."""
    documents = corpus()
    settings = ServerSettings(data_dir=tmp_path)
    assert (settings.backend, settings.bulk_backend()) == ("onnx", "openvino")
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        assert client.post("/collections", json={"name": "news"}).status_code == 201
        accepted = client.post("/collections/news/ingest", json={"documents": documents})
        assert accepted.status_code == 202, accepted.text
        job = wait_job(client, accepted.json()["job"]["id"])
        assert job["state"] == "done" and job["processed"] == len(documents)
        engine = client.app.state.engine
        collection = engine.catalog.get("news")
        ids, stored = collection.raw_vectors_by_id()
        texts = {d["id"]: d["text"] for d in documents}
        bulk = engine.catalog.encoder(None, "openvino").encode([texts[i] for i in ids])
        query = engine.catalog.encoder(None, "onnx").encode([texts[i] for i in ids])
        assert np.abs(stored - bulk).max() < 1e-6
        assert float(np.min(np.sum(stored * query, axis=1))) > 0.9999
        assert client.get("/collections/news").json()["backend"] == "onnx"
        hits = client.post("/collections/news/query", json={"text": "a guitar concert"}).json()
        assert hits["results"][0]["hits"][0]["metadata"]["topic"] == "music"


def test_an_ingest_backend_whose_vectors_differ_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="INGEST_BACKEND 'onnx-int8'"):
        ServerSettings(backend="onnx", ingest_backend="onnx-int8")
    assert ServerSettings(backend="onnx-int8").bulk_backend() == "onnx-int8"
    assert ServerSettings(backend="torch", ingest_backend="onnx").bulk_backend() == "onnx"

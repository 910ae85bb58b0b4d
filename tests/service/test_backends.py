"""The server's encoder backend over HTTP: collections record it, and a server whose backend's
vectors do not compare with a collection's refuses to query or write it, saying what to run."""

from pathlib import Path

from fastapi.testclient import TestClient
from service_support import corpus, wait_ready

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

"""A sharded collection through the same REST API (issue 16): created with `shards`, it answers,
describes, pages, tunes and reports as one collection with the same settings does, and the
answer says it is complete (`partial: false`). Shards here open in the server's process; on Ray
each is an actor of its own (tests/test_cluster.py)."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from service_support import wait_ready

from service import ServerSettings, create_app

TEXTS = [
    "A man is playing the guitar.",
    "A woman is slicing an onion in the kitchen.",
    "The child is riding a horse at the park.",
    "An old farmer is reading a newspaper.",
    "A young chef is cooking pasta.",
    "The pilot is flying a small plane.",
    "Someone plays music on a piano.",
    "A dog runs along the river.",
    "Two kids build a sandcastle on the beach.",
    "A cyclist climbs a steep mountain road.",
    "The baker pulls bread out of the oven.",
    "A girl is painting a fence white.",
]
QUERIES = ["music instrument", "cooking food", "an animal outside"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = ServerSettings(data_dir=tmp_path_factory.mktemp("data"), ingest_chunk=5)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        documents = [{"id": f"doc-{i}", "text": t} for i, t in enumerate(TEXTS)]
        for name, shards in (("single", None), ("sharded", 3)):
            body = {"name": name, "index_spec": "Flat"} | ({"shards": shards} if shards else {})
            assert client.post("/collections", json=body).status_code == 201
            added = client.post(f"/collections/{name}/documents", json={"documents": documents})
            assert added.status_code == 201, added.text
        yield client


def _query(client: TestClient, name: str) -> dict:
    response = client.post(f"/collections/{name}/query", json={"texts": QUERIES, "top_k": 5})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_sharded_collection_answers_as_one_collection(client: TestClient) -> None:
    single, sharded = _query(client, "single"), _query(client, "sharded")
    assert sharded["partial"] is False and sharded["missing_shards"] == []
    assert single["partial"] is False and sharded["fitted_at"] is not None
    for want, have in zip(single["results"], sharded["results"], strict=True):
        assert [h["id"] for h in have["hits"]] == [h["id"] for h in want["hits"]]
        for a, b in zip(want["hits"], have["hits"], strict=True):
            assert b["score"] == pytest.approx(a["score"], abs=1e-6)


def test_describe_counts_every_shard_and_names_them(client: TestClient) -> None:
    single = client.get("/collections/single").json()
    sharded = client.get("/collections/sharded").json()
    assert sharded["shards"] == 3 and single["shards"] is None
    assert sharded["count"] == sharded["indexed"] == single["count"] == len(TEXTS)
    assert sharded["fitted_on"] == single["fitted_on"] == len(TEXTS)
    assert sharded["k"] == single["k"] and sharded["settings"] == single["settings"]
    listed = {c["name"]: c for c in client.get("/collections").json()["collections"]}
    assert listed["sharded"]["count"] == len(TEXTS) and listed["sharded"]["fitted"]


def test_documents_page_across_shards_get_and_delete_by_id(client: TestClient) -> None:
    ids: list[str] = []
    for offset in range(0, len(TEXTS), 5):
        page = client.get("/collections/sharded/documents", params={"offset": offset, "limit": 5})
        assert page.status_code == 200, page.text
        ids += [doc["id"] for doc in page.json()["documents"]]
    assert sorted(ids) == sorted(f"doc-{i}" for i in range(len(TEXTS)))
    assert client.get("/collections/sharded/documents/doc-4").json()["text"] == TEXTS[4]
    missing = client.get("/collections/sharded/documents/nope")
    assert missing.status_code == 404 and "nope" in missing.text


def test_refit_and_compression_report_see_every_shard(client: TestClient) -> None:
    fitted = client.post("/collections/sharded/fit", json={"beta": 0.5, "gamma": 0.25, "k": 8})
    assert fitted.status_code == 200, fitted.text
    client.post("/collections/single/fit", json={"beta": 0.5, "gamma": 0.25, "k": 8})
    single, sharded = _query(client, "single"), _query(client, "sharded")
    for want, have in zip(single["results"], sharded["results"], strict=True):
        assert [h["id"] for h in have["hits"]] == [h["id"] for h in want["hits"]]
    assert client.get("/collections/sharded").json()["k"] == 8
    body = {"ks": [8, 4], "specs": ["Flat", "SQ8"], "rescore": [False], "n_queries": 5}
    reports = [client.post(f"/collections/{n}/report", json=body) for n in ("single", "sharded")]
    assert all(r.status_code == 200 for r in reports), reports[1].text
    single_rows, sharded_rows = (r.json()["rows"] for r in reports)
    assert len(sharded_rows) == 4  # every shard's vectors, seen as one collection's
    for want, have in zip(single_rows, sharded_rows, strict=True):
        assert (have["k"], have["index_spec"]) == (want["k"], want["index_spec"])
        assert have["bytes_per_vector"] == want["bytes_per_vector"]


def test_codes_of_a_sharded_collection_are_served_where_shards_train_alike(
    client: TestClient,
) -> None:
    """SQ8 shards train on every shard's range, so their codes compare (tests/test_shards.py
    checks they are one collection's); shards of an IVF spec train their own lists, and their
    codes are refused with the way out."""
    documents = [{"id": f"doc-{i}", "text": t} for i, t in enumerate(TEXTS)]
    for name, spec in (("sq", "SQ8"), ("ivf", "IVF2,Flat")):
        body = {"name": name, "index_spec": spec, "shards": 3}
        assert client.post("/collections", json=body).status_code == 201
        added = client.post(f"/collections/{name}/documents", json={"documents": documents})
        assert added.status_code == 201, added.text
    pairs = [{"text1": "a dog", "text2": "a cat"}]
    served = client.post("/similarity", json={"pairs": pairs, "collection": "sq", "codes": True})
    assert served.status_code == 200 and served.json()["space"] == "index", served.text
    refused = client.post("/similarity", json={"pairs": pairs, "collection": "ivf", "codes": True})
    assert refused.status_code == 422 and "codes=false" in refused.text


def test_shards_out_of_range_are_refused(client: TestClient) -> None:
    for shards in (0, 257, "two"):
        response = client.post("/collections", json={"name": "bad", "shards": shards})
        assert response.status_code == 422 and "shards" in response.text
    assert client.get("/collections/bad").status_code == 404

"""The API through HTTP (in-process app): collections, documents, jobs, fit, tune, search, ops.

One app and data directory for the module; each test makes its own collections.
"""

import math
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from service_support import TOPICS, corpus, filler, wait_job, wait_ready

from index import DEFAULT_MODEL_ID, Collection
from index.metrics import ndcg_at_k
from index.tuning_split import held_out_split
from service import ServerSettings, create_app


def make(client: TestClient, name: str, documents: list | None = None, **settings) -> dict:
    response = client.post("/collections", json={"name": name, **settings})
    assert response.status_code == 201, response.text
    if documents:
        added = client.post(f"/collections/{name}/documents", json={"documents": documents})
        assert added.status_code == 201, added.text
        return added.json()
    return response.json()


def top_ids(client: TestClient, name: str, text: str, top_k: int = 3, **extra) -> list[str]:
    response = client.post(
        f"/collections/{name}/query", json={"text": text, "top_k": top_k, **extra}
    )
    assert response.status_code == 200, response.text
    return [hit["id"] for hit in response.json()["results"][0]["hits"]]


def test_health_and_ready(app_client: TestClient) -> None:
    assert app_client.get("/health").json() == {"status": "ok"}
    ready = app_client.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] and body["model_loaded"] and body["status"] == "ready"
    assert body["unavailable"] == {}


def test_no_api_key_by_default(app_client: TestClient) -> None:
    assert app_client.get("/collections").status_code == 200
    assert app_client.get("/metrics").status_code == 200


def test_create_list_describe_delete(app_client: TestClient) -> None:
    info = make(app_client, "crud", k=64, beta=0.5)
    assert info["name"] == "crud" and info["count"] == 0 and not info["fitted"]
    assert info["dimension"] == 384 and info["raw_bytes_per_vector"] == 4 * 384
    assert info["settings"] == {
        "beta": 0.5,
        "gamma": 0.0,
        "k": 64,
        "index_spec": "SQ8",
        "rescore": "kernel",
        "rescore_k": None,
        "candidates": None,
        "shortlist": None,
    }
    names = [c["name"] for c in app_client.get("/collections").json()["collections"]]
    assert "crud" in names
    assert app_client.get("/collections/crud").json()["settings"]["k"] == 64
    assert app_client.delete("/collections/crud").status_code == 204
    assert app_client.get("/collections/crud").status_code == 404
    assert app_client.delete("/collections/crud").status_code == 404


def test_add_fits_and_describes(app_client: TestClient) -> None:
    written = make(app_client, "sync", corpus(), k=128, index_spec="Flat")
    assert written["added"] == 30 and written["replaced"] == 0 and written["count"] == 30
    assert written["fitted"] and written["fit_error"] is None
    assert written["ids"] == [d["id"] for d in corpus()]
    assert written["encode_seconds"] > 0 and written["index_seconds"] > 0
    info = app_client.get("/collections/sync").json()
    assert info["fitted"] and info["k"] == 128 and info["indexed"] == 30
    assert 0 < info["explained_energy"] <= 1 and info["fitted_at"]
    assert info["index_bytes_per_vector"] >= 4 * 128


def test_query_finds_the_topic(app_client: TestClient) -> None:
    make(app_client, "topics", corpus())
    for topic, question in [
        ("music", "someone performs with an instrument"),
        ("cooking", "preparing food in a kitchen"),
        ("finance", "prices on the stock exchange"),
        ("animals", "pets and wild creatures"),
        ("sports", "an athlete wins a competition"),
    ]:
        ids = top_ids(app_client, "topics", question, top_k=3)
        assert sum(doc_id.startswith(topic) for doc_id in ids) >= 2, (topic, ids)
    response = app_client.post(
        "/collections/topics/query", json={"texts": ["guitar concert", "bank rates"], "top_k": 5}
    )
    results = response.json()["results"]
    assert [r["query"] for r in results] == ["guitar concert", "bank rates"]
    for result in results:
        scores = [hit["score"] for hit in result["hits"]]
        assert len(scores) == 5 and scores == sorted(scores, reverse=True)
        assert all(-1.0001 <= s <= 1.0001 for s in scores)
    hit = results[0]["hits"][0]
    assert set(hit) == {"id", "score", "score_kind", "text", "metadata"}
    assert hit["metadata"]["topic"] == "music"
    assert hit["score_kind"] == "kernel_cosine"  # the default: SQ8 codes, re-scored in kernel space
    assert "encode;dur=" in response.headers["server-timing"]


def test_filter(app_client: TestClient) -> None:
    make(app_client, "filtered", corpus())
    ids = top_ids(app_client, "filtered", "a guitar", top_k=10, filter={"topic": "finance"})
    assert len(ids) == 6 and all(i.startswith("finance") for i in ids)
    ids = top_ids(app_client, "filtered", "a guitar", top_k=10, filter={"topic": "music", "n": 0})
    assert ids == ["music-0"]
    assert top_ids(app_client, "filtered", "x", filter={"topic": "nope"}) == []


def test_upsert_get_list_and_delete(app_client: TestClient) -> None:
    make(app_client, "docs", corpus())
    base = "/collections/docs"
    doc = {"id": "music-0", "text": "The volcano erupted and lava covered the village."}
    conflict = app_client.post(f"{base}/documents", json={"documents": [doc]})
    assert conflict.status_code == 409 and "upsert" in conflict.json()["detail"]
    assert app_client.get(f"{base}/documents/music-0").json()["text"].startswith("A man")
    upsert = app_client.post(f"{base}/documents", json={"documents": [doc], "upsert": True})
    assert upsert.status_code == 201 and upsert.json()["replaced"] == 1
    assert upsert.json()["count"] == 30
    assert app_client.get(f"{base}/documents/music-0").json() == {
        "id": "music-0",
        "text": doc["text"],
        "metadata": {},
    }
    assert top_ids(app_client, "docs", "a volcanic eruption", top_k=1) == ["music-0"]

    page = app_client.get(f"{base}/documents", params={"offset": 0, "limit": 5}).json()
    assert page["count"] == 30 and len(page["documents"]) == 5

    slash = {"id": "a/b c", "text": "An id with a slash and a space."}
    assert app_client.post(f"{base}/documents", json={"documents": [slash]}).status_code == 201
    assert app_client.get(f"{base}/documents/a%2Fb%20c").json()["id"] == "a/b c"
    assert app_client.delete(f"{base}/documents/a%2Fb%20c").status_code == 204
    assert app_client.get(f"{base}/documents/a%2Fb%20c").status_code == 404

    missing = app_client.post(f"{base}/documents/delete", json={"ids": ["cooking-0", "nope"]})
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    assert app_client.get(f"{base}/documents/cooking-0").status_code == 200  # all or nothing
    deleted = app_client.post(f"{base}/documents/delete", json={"ids": ["cooking-0", "cooking-1"]})
    assert deleted.json() == {"deleted": 2, "count": 28}
    assert app_client.delete(f"{base}/documents/cooking-2").status_code == 204
    ids = top_ids(app_client, "docs", "slicing onions and frying eggs", top_k=27)
    assert not {"cooking-0", "cooking-1", "cooking-2"} & set(ids)


def test_generated_ids_are_returned(app_client: TestClient) -> None:
    written = make(app_client, "noids", [{"text": "first text"}, {"text": "second text"}])
    assert len(written["ids"]) == 2 and len(set(written["ids"])) == 2
    got = app_client.get(f"/collections/noids/documents/{written['ids'][1]}").json()
    assert got["text"] == "second text"


def test_one_document_then_more_fits_later(app_client: TestClient) -> None:
    first = make(app_client, "growing", [{"id": "a", "text": "just one"}])
    assert not first["fitted"] and first["fit_error"]
    assert app_client.post("/collections/growing/query", json={"text": "x"}).status_code == 409
    more = app_client.post(
        "/collections/growing/documents", json={"documents": [{"id": "b", "text": "and two"}]}
    )
    assert more.json()["fitted"]
    assert len(top_ids(app_client, "growing", "one", top_k=5)) == 2


def test_fit_error_keeps_the_documents(app_client: TestClient) -> None:
    """γ > 0 with k above the rank of 3 documents cannot fit: the write still stands."""
    docs = [{"id": str(i), "text": t} for i, t in enumerate(["a cat", "a dog", "a bird"])]
    written = make(app_client, "whitened", docs, gamma=1.0, k=100)
    assert written["added"] == 3 and not written["fitted"]
    assert "k=100" in written["fit_error"]
    fitted = app_client.post("/collections/whitened/fit", json={"k": 2})
    assert fitted.status_code == 200 and fitted.json()["collection"]["k"] == 2


def test_ingest_job_fits_on_the_whole_corpus(app_client: TestClient) -> None:
    make(app_client, "job")
    docs = corpus() + filler(70)
    response = app_client.post("/collections/job/ingest", json={"documents": docs})
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["ids"] == [d["id"] for d in docs]
    assert accepted["job"]["state"] in ("queued", "running", "done")
    job = wait_job(app_client, accepted["job"]["id"])
    assert job["state"] == "done", job
    assert job["processed"] == job["total"] == job["added"] == 100
    assert job["fitted"] and job["error"] is None and job["encode_seconds"] > 0
    # chunks of 16 were committed without fitting; the kernel saw all 100 documents
    kernel = app_client.app.state.engine.collections.get("job").kernel
    assert kernel.n_samples_seen_ == 100
    assert app_client.get("/collections/job").json()["count"] == 100
    assert top_ids(app_client, "job", "a drummer and a band", top_k=1)[0].startswith("music")
    listed = app_client.get("/jobs").json()["jobs"]
    assert accepted["job"]["id"] in [j["id"] for j in listed]

    conflict = app_client.post("/collections/job/ingest", json={"documents": docs[:3]})
    assert conflict.status_code == 409  # refused before any chunk is written
    upsert = app_client.post(
        "/collections/job/ingest", json={"documents": docs[:20], "upsert": True}
    )
    job = wait_job(app_client, upsert.json()["job"]["id"])
    assert job["state"] == "done" and job["replaced"] == 20 and not job["fitted"]
    assert app_client.get("/collections/job").json()["count"] == 100
    assert app_client.get("/jobs/nope").status_code == 404


def test_fit_changes_kernel_without_reencoding(app_client: TestClient) -> None:
    make(app_client, "refit", corpus())
    before = app_client.get("/collections/refit").json()
    assert before["k"] == 128  # the server's default
    fitted = app_client.post(
        "/collections/refit/fit", json={"beta": 1.0, "gamma": 0.5, "k": 16, "index_spec": "HNSW32"}
    )
    assert fitted.status_code == 200, fitted.text
    info = fitted.json()["collection"]
    assert info["k"] == 16 and info["settings"]["index_spec"] == "HNSW32"
    assert info["settings"]["beta"] == 1.0 and info["fitted_at"]
    assert top_ids(app_client, "refit", "a guitar and a piano", top_k=1)[0].startswith("music")
    embedded = app_client.post("/collections/refit/embed", json={"texts": ["hi"]}).json()
    assert embedded["dimension"] == 16


def test_tune_pairs_and_apply(app_client: TestClient) -> None:
    make(app_client, "tuned", corpus())
    pairs = []
    for topic, texts in TOPICS.items():
        pairs.append({"text1": texts[0], "text2": texts[1], "score": 3.0})
        other = next(t for t in TOPICS if t != topic)
        pairs.append({"text1": texts[2], "text2": TOPICS[other][3], "score": 0.5})
        pairs.append({"text1": texts[4], "text2": texts[4].replace(".", "!"), "score": 5.0})
    body = {"pairs": pairs, "betas": [0, 1], "gammas": [0, 0.5], "ks": [8, 16, 24], "apply": True}
    response = app_client.post("/collections/tuned/tune", json=body)
    assert response.status_code == 200, response.text
    tuned = response.json()
    assert tuned["metric"] == "spearman" and tuned["applied"]
    assert len(tuned["points"]) + len(tuned["skipped"]) == 2 * 2 * 3
    best = tuned["best"]
    assert best["score"] == max(p["score"] for p in tuned["points"])
    settings = tuned["collection"]["settings"]
    assert (settings["beta"], settings["gamma"], settings["k"]) == (
        best["beta"],
        best["gamma"],
        best["k"],
    )
    assert app_client.get("/collections/tuned").json()["k"] == best["k"]
    assert "| beta | gamma |" in tuned["table"]


def test_apply_serves_the_chosen_point_whole_even_its_defaults(app_client: TestClient) -> None:
    """A refit before a tune set candidates, rescore_k and a shortlist; the tuner's chosen point
    uses the defaults (null), and after apply the collection must serve those, not the old."""
    make(app_client, "reapplied", corpus())
    earlier = {"candidates": 7, "rescore_k": 200, "shortlist": 5}
    refit = app_client.post("/collections/reapplied/fit", json=earlier)
    assert refit.status_code == 200, refit.text
    assert refit.json()["collection"]["settings"]["candidates"] == 7
    queries = [
        {"text": "playing music on stage", "relevant": ["music-0", "music-3"]},
        {"text": "cooking dinner", "relevant": ["cooking-2", "cooking-3"]},
    ]
    body = {"queries": queries, "ks": [16], "betas": [0], "gammas": [0], "apply": True}
    tuned = app_client.post("/collections/reapplied/tune", json=body)
    assert tuned.status_code == 200, tuned.text
    chosen = tuned.json()["chosen"]
    assert chosen["candidates"] is None
    served = app_client.get("/collections/reapplied").json()["settings"]
    assert (served["candidates"], served["rescore_k"]) == (None, chosen["rescore_k"])
    assert served["shortlist"] is None  # tuned without one: served without one
    reset = app_client.post("/collections/reapplied/fit", json={"candidates": 9})
    assert reset.json()["collection"]["settings"]["candidates"] == 9
    reset = app_client.post("/collections/reapplied/fit", json={"candidates": None})
    assert reset.json()["collection"]["settings"]["candidates"] is None  # null: the default
    kept = app_client.post("/collections/reapplied/fit", json={"k": 16}).json()
    kept = kept["collection"]["settings"]
    assert kept["rescore_k"] == chosen["rescore_k"]  # left out: kept
    refused = app_client.post("/collections/reapplied/fit", json={"beta": None})
    assert refused.status_code in (400, 422) and "beta" in refused.text


def test_tune_queries_without_apply(app_client: TestClient) -> None:
    make(app_client, "retrieval", corpus())
    queries = [
        {"text": "playing music on stage", "relevant": ["music-0", "music-3"]},
        {"text": "cooking dinner", "relevant": {"cooking-2": 2, "cooking-3": 1}},
        {"text": "the economy and markets", "relevant": ["finance-0", "finance-2"]},
    ]
    body = {"queries": queries, "ks": [16, 64], "betas": [0], "gammas": [0], "k_eval": 5}
    response = app_client.post("/collections/retrieval/tune", json=body)
    assert response.status_code == 200, response.text
    tuned = response.json()
    assert tuned["metric"] == "ndcg@5" and not tuned["applied"] and tuned["collection"] is None
    assert tuned["best"]["score"] > 0.5
    assert app_client.get("/collections/retrieval").json()["k"] == 128  # unchanged


def test_tune_needs_a_kernel(app_client: TestClient) -> None:
    make(app_client, "empty-tune")
    pairs = [{"text1": "a", "text2": "b", "score": 1}, {"text1": "c", "text2": "d", "score": 2}]
    response = app_client.post("/collections/empty-tune/tune", json={"pairs": pairs})
    assert response.status_code == 409 and "no kernel" in response.json()["detail"]


def test_embed_and_similarity(app_client: TestClient) -> None:
    make(app_client, "rotation", corpus(), k=384, index_spec="Flat")  # a pure rotation
    texts = ["A man is playing a guitar.", "Stocks fell."]
    raw = app_client.post(
        "/collections/rotation/embed", json={"texts": texts, "space": "raw"}
    ).json()
    assert raw["space"] == "raw" and raw["dimension"] == 384 and len(raw["vectors"]) == 2
    kernel = app_client.post("/collections/rotation/embed", json={"texts": texts}).json()
    assert kernel["space"] == "kernel" and kernel["dimension"] == 384
    assert math.isclose(np.linalg.norm(kernel["vectors"][0]), 1.0, rel_tol=1e-5)

    pairs = [
        {"text1": "A man is playing a guitar.", "text2": "A man plays music."},
        {"text1": "A cat sleeps.", "text2": "Interest rates rose."},
    ]
    plain = app_client.post("/similarity", json={"pairs": pairs}).json()
    assert plain["space"] == "raw" and plain["collection"] is None
    assert plain["scores"][0] > plain["scores"][1]
    rotated = app_client.post("/similarity", json={"pairs": pairs, "collection": "rotation"})
    rotated = rotated.json()
    assert rotated["space"] == "kernel"
    # a rotation keeps every cosine
    assert np.allclose(rotated["scores"], plain["scores"], atol=1e-5)
    a, b = np.asarray(raw["vectors"])
    cosine = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    cross = app_client.post(
        "/similarity", json={"pairs": [{"text1": texts[0], "text2": texts[1]}]}
    ).json()
    assert math.isclose(cross["scores"][0], cosine, abs_tol=1e-5)


def test_metrics(app_client: TestClient) -> None:
    make(app_client, "measured", corpus()[:4])
    top_ids(app_client, "measured", "music")
    text = app_client.get("/metrics")
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    body = text.text
    assert "# TYPE whitened_search_http_requests_total counter" in body
    assert (
        'whitened_search_http_requests_total{method="POST",'
        'route="/collections/{name}/query",status="200"}'
    ) in body
    assert "# TYPE whitened_search_http_request_duration_seconds histogram" in body
    assert (
        'whitened_search_http_request_duration_seconds_bucket{method="POST",'
        'route="/collections/{name}/query",le="+Inf"}'
    ) in body
    assert 'whitened_search_documents{collection="measured"} 4' in body
    assert 'whitened_search_encode_seconds_count{operation="query"}' in body
    assert "whitened_search_ready 1" in body
    app_client.get("/no/such/path")
    assert 'route="unmatched",status="404"' in app_client.get("/metrics").text
    for line in body.splitlines():  # every sample line is `name{labels} number`
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1].replace("+Inf", "inf"))


def test_openapi_has_examples(app_client: TestClient) -> None:
    spec = app_client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in [
        "/collections",
        "/collections/{name}/documents",
        "/collections/{name}/ingest",
        "/collections/{name}/query",
        "/collections/{name}/fit",
        "/collections/{name}/tune",
        "/collections/{name}/embed",
        "/similarity",
        "/jobs/{job_id}",
        "/health",
        "/ready",
        "/metrics",
    ]:
        assert path in paths, path
    schemas = spec["components"]["schemas"]
    for name in ["CollectionCreate", "DocumentsAdd", "QueryIn", "TuneIn", "FitIn", "SimilarityIn"]:
        assert schemas[name].get("examples"), name
    assert app_client.get("/docs").status_code == 200


@pytest.mark.parametrize("limit", [1, 2])
def test_ingest_of_one_or_two_documents(app_client: TestClient, limit: int) -> None:
    name = f"tiny-{limit}"
    make(app_client, name)
    docs = filler(limit, prefix=name)
    job = app_client.post(f"/collections/{name}/ingest", json={"documents": docs}).json()["job"]
    job = wait_job(app_client, job["id"])
    assert job["state"] == "done" and job["processed"] == limit
    assert job["fitted"] == (limit == 2)
    assert (job["fit_error"] is None) == (limit == 2)


def test_deleting_a_collection_stops_its_job(app_client: TestClient) -> None:
    make(app_client, "doomed")
    docs = filler(300, prefix="doomed")
    job = app_client.post("/collections/doomed/ingest", json={"documents": docs}).json()["job"]
    assert app_client.delete("/collections/doomed").status_code == 204
    make(app_client, "doomed")  # a new collection under the same name
    job = wait_job(app_client, job["id"])
    assert job["state"] == "failed" and "closed or deleted" in job["error"], job
    assert job["processed"] < 300
    assert app_client.get("/collections/doomed").json()["count"] == 0


@pytest.mark.parametrize(
    ("damaged", "reason"),
    [
        ("manifest.json", "unreadable"),
        ("snapshots/*/kernel.npz", "kernel"),
        ("snapshots/*/index.npz", "unreadable"),
        ("documents.sqlite", "not a database"),
    ],
)
def test_a_broken_collection_is_reported_and_the_others_serve(
    tmp_path: Path, damaged: str, reason: str
) -> None:
    Collection.initialise(tmp_path / "good", DEFAULT_MODEL_ID, 384)
    with TestClient(create_app(ServerSettings(data_dir=tmp_path))) as client:  # a fitted "bad"
        wait_ready(client)
        assert client.post("/collections", json={"name": "bad", "k": 8}).status_code == 201
        added = client.post("/collections/bad/documents", json={"documents": corpus()[:10]})
        assert added.status_code == 201 and added.json()["fitted"]
    for path in (tmp_path / "bad").glob(damaged):
        path.write_bytes(b"\0garbage" * 100)  # same name, damaged content
    with TestClient(create_app(ServerSettings(data_dir=tmp_path))) as client:
        ready = wait_ready(client)
        assert ready["status"] == "degraded" and list(ready["unavailable"]) == ["bad"]
        assert not ready["ready"] and client.get("/ready").status_code == 503
        assert reason in ready["unavailable"]["bad"], ready["unavailable"]
        query = client.post("/collections/bad/query", json={"text": "a guitar"})
        assert query.status_code == 503 and reason in query.json()["detail"]
        listed = client.get("/collections").json()
        assert [c["name"] for c in listed["collections"]] == ["good"]
        assert list(listed["unavailable"]) == ["bad"]
        broken = client.get("/collections/bad")
        assert broken.status_code == 503 and broken.json()["error"] == "unavailable"
        docs = {"documents": [{"text": "one"}, {"text": "two"}]}
        assert client.post("/collections/good/documents", json=docs).status_code == 201
        assert "whitened_search_collections_unavailable 1" in client.get("/metrics").text


def test_the_held_out_score_tune_reports_is_what_the_applied_collection_serves(
    app_client: TestClient,
) -> None:
    """Issue 18: apply, then query the held-out examples: the same nDCG as tune reported."""
    make(app_client, "served", corpus())
    docs = corpus()
    queries = [
        {"text": f"Something about {doc['text'].lower()}", "relevant": [doc["id"]]}
        for doc in docs[::2]
    ] + [
        {"text": topic, "relevant": [d["id"] for d in docs if d["metadata"]["topic"] == topic]}
        for topic in ("music", "cooking", "finance", "animals", "sports")
    ]
    body = {
        "queries": queries,
        "betas": [0, 0.5],
        "gammas": [0, 0.5],
        "ks": [16, 32],
        "k_eval": 5,
        "specs": ["SQ8", "Flat", "BFlat"],
        "spaces": ["kernel", "raw"],
        "candidates": [None, 25],
        "held_out": 0.4,
        "apply": True,
    }
    tuned = app_client.post("/collections/served/tune", json=body).json()
    chosen = tuned["chosen"]
    assert tuned["n_held_out"] == 8 and tuned["n_train"] == 12
    assert chosen["train"] == max(p["train"] for p in tuned["pipelines"])
    assert chosen["held_out"] is not None and tuned["held_out_raw"] is not None
    assert {p["candidates"] for p in tuned["pipelines"]} == {None, 25}
    settings = tuned["collection"]["settings"]
    names = ("beta", "gamma", "k", "index_spec", "rescore", "rescore_k", "candidates")
    assert {name: settings[name] for name in names} == {name: chosen[name] for name in names}
    described = tuned["collection"]["index_bytes_per_vector"]
    assert chosen["bytes_per_vector"] == pytest.approx(described, rel=0.01)
    mask = held_out_split(len(queries), 0.4)
    held = [q for q, out in zip(queries, mask, strict=True) if out]
    answers = app_client.post(
        "/collections/served/query", json={"texts": [q["text"] for q in held], "top_k": 5}
    ).json()["results"]
    rankings = [[hit["id"] for hit in answer["hits"]] for answer in answers]
    served = ndcg_at_k(rankings, [dict.fromkeys(q["relevant"], 1.0) for q in held], 5)
    assert abs(served - chosen["held_out"]) <= 0.01
    assert [p["bytes_per_vector"] for p in tuned["pareto"]] == sorted(
        p["bytes_per_vector"] for p in tuned["pareto"]
    )

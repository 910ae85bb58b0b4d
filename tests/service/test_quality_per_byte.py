"""Quantized indexes, re-scoring and the compression report over HTTP."""

import numpy as np
import pytest
from fastapi.testclient import TestClient
from service_support import corpus, filler, wait_job


def _create(client: TestClient, name: str, **settings) -> None:
    assert client.post("/collections", json={"name": name, **settings}).status_code == 201
    docs = {"documents": corpus() + filler(60)}
    assert client.post(f"/collections/{name}/documents", json=docs).status_code == 201


def _query(client: TestClient, name: str, **extra) -> list[dict]:
    body = {"text": "someone performs with an instrument", "top_k": 5, **extra}
    response = client.post(f"/collections/{name}/query", json=body)
    assert response.status_code == 200, response.text
    return response.json()["results"][0]["hits"]


def test_rescoring_is_per_query_and_says_which_scores_it_returns(app_client: TestClient) -> None:
    _create(app_client, "codes", k=64, index_spec="BFlat", rescore=False)
    plain = _query(app_client, "codes")
    rescored = _query(app_client, "codes", rescore=True, candidates=50)
    assert {h["score_kind"] for h in plain} == {"sign_agreement"}
    assert {h["score_kind"] for h in rescored} == {"raw_cosine"}
    # Re-scored scores are raw cosines: the same as /similarity without a collection.
    pairs = [{"text1": "someone performs with an instrument", "text2": h["text"]} for h in rescored]
    raw = app_client.post("/similarity", json={"pairs": pairs}).json()["scores"]
    assert np.allclose([h["score"] for h in rescored], raw, atol=1e-5)
    assert rescored[0]["id"].startswith("music")
    info = app_client.get("/collections/codes").json()
    assert info["settings"]["rescore"] == "off" and info["index_bytes_per_vector"] < 4 * 64
    assert info["disk_bytes_per_document"] > info["raw_bytes_per_vector"]


def test_defaults_compress_and_rescore(app_client: TestClient) -> None:
    _create(app_client, "defaults")
    info = app_client.get("/collections/defaults").json()
    assert info["settings"] == {
        "beta": 0.0,
        "gamma": 0.0,
        "k": 128,
        "index_spec": "SQ8",
        "rescore": "kernel",
        "rescore_k": None,
        "candidates": None,
        "shortlist": None,
    }
    assert info["index_bytes_per_vector"] < 4 * 128  # SQ8: about k bytes and an id
    assert info["rescore_k_effective"] == 384  # β=γ=0 at d: raw cosine, through the kernel
    kernel_hits = _query(app_client, "defaults")
    assert {h["score_kind"] for h in kernel_hits} == {"kernel_cosine"}
    raw_hits = _query(app_client, "defaults", rescore="raw")
    assert [h["id"] for h in raw_hits] == [h["id"] for h in kernel_hits]
    for raw, kernel in zip(raw_hits, kernel_hits, strict=True):
        assert abs(raw["score"] - kernel["score"]) < 1e-5
    assert {h["score_kind"] for h in _query(app_client, "defaults", rescore=False)} == {
        "quantized_cosine"
    }
    refit = app_client.post("/collections/defaults/fit", json={"rescore": False})
    assert refit.json()["collection"]["settings"]["rescore"] == "off"


def test_similarity_through_the_index_codes(app_client: TestClient) -> None:
    _create(app_client, "sq8", k=128, index_spec="SQ8")
    pairs = [
        {"text1": "A man is playing a guitar.", "text2": "A man plays music."},
        {"text1": "A cat sleeps.", "text2": "Interest rates rose."},
    ]
    kernel = app_client.post("/similarity", json={"pairs": pairs, "collection": "sq8"}).json()
    codes = app_client.post(
        "/similarity", json={"pairs": pairs, "collection": "sq8", "codes": True}
    ).json()
    assert codes["space"] == "index" and kernel["space"] == "kernel"
    # SQ8 learns each coordinate's range from the corpus (90 documents here): close, not equal.
    assert np.allclose(codes["scores"], kernel["scores"], atol=0.05)
    assert codes["scores"] != kernel["scores"] and codes["scores"][0] > codes["scores"][1]
    refused = app_client.post("/similarity", json={"pairs": pairs, "codes": True})
    assert refused.status_code == 422 and "codes needs a collection" in refused.text


def test_compression_report(app_client: TestClient) -> None:
    _create(app_client, "report", k=128)
    body = {"ks": [128, 32], "specs": ["Flat", "RaBitQ"], "n_queries": 30}
    response = app_client.post("/collections/report/report", json=body)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["n_documents"] == 90 and report["n_queries"] == 30 and report["metric"] is None
    rows = {(r["k"], r["index_spec"], r["rescore"]): r for r in report["rows"]}
    assert set(rows) == {(k, s, on) for k in (128, 32) for s in ("Flat", "RaBitQ") for on in (0, 1)}
    assert (
        rows[(32, "RaBitQ", False)]["bytes_per_vector"]
        < rows[(32, "Flat", False)]["bytes_per_vector"]
    )
    assert all(0 <= r["recall_at_10"] <= 1 and r["latency_ms"] > 0 for r in report["rows"])
    assert "| 32 | RaBitQ | on |" in report["table"]
    # The smallest index that keeps recall@10 ≥ 0.99 re-scored as this collection re-scores.
    reaching = [r for r in report["rows"] if r["rescore"] and r["recall_at_10"] >= 0.99]
    assert report["smallest"] == min(reaching, key=lambda r: r["bytes_per_vector"])
    labelled = {
        "ks": [64],
        "specs": ["Flat"],
        "queries": [{"text": "playing music on stage", "relevant": ["music-0", "music-3"]}],
    }
    with_labels = app_client.post("/collections/report/report", json=labelled).json()
    assert with_labels["metric"] == "nDCG@10"
    assert all(0 < r["metric"] <= 1 for r in with_labels["rows"])
    # The report builds its indexes beside the collection: the collection is unchanged.
    assert app_client.get("/collections/report").json()["k"] == 128


def test_report_and_tune_run_as_jobs_whose_result_is_the_answer(app_client: TestClient) -> None:
    """Issue 18 item 4: 202, poll GET /jobs/{id}, the answer kept with the job."""
    _create(app_client, "jobs", k=64)
    body = {"ks": [64, 32], "specs": ["Flat"], "n_queries": 30}
    accepted = app_client.post("/collections/jobs/report/jobs", json=body)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["kind"] == "report" and accepted.json()["total"] == 1
    job = wait_job(app_client, accepted.json()["id"])
    assert job["state"] == "done" and job["processed"] == job["total"] == 2, job  # 2 indexes
    direct = app_client.post("/collections/jobs/report", json=body).json()
    assert [(r["k"], r["index_spec"], r["rescore"]) for r in job["result"]["rows"]] == [
        (r["k"], r["index_spec"], r["rescore"]) for r in direct["rows"]
    ]
    assert [r["recall_at_10"] for r in job["result"]["rows"]] == [
        r["recall_at_10"] for r in direct["rows"]
    ]
    queries = [
        {"text": "playing music on stage", "relevant": ["music-0", "music-3"]},
        {"text": "cooking dinner", "relevant": ["cooking-2", "cooking-3"]},
    ]
    tune = {"queries": queries, "ks": [32], "betas": [0], "gammas": [0], "k_eval": 5}
    tune |= {"specs": ["Flat", "SQ8"]}
    accepted = app_client.post("/collections/jobs/tune/jobs", json=tune)
    assert accepted.status_code == 202, accepted.text
    job = wait_job(app_client, accepted.json()["id"])
    assert job["state"] == "done", job
    assert job["processed"] == job["total"] == 3, job  # the sweep, then each spec
    assert (
        job["result"]["chosen"]
        == app_client.post("/collections/jobs/tune", json=tune).json()["chosen"]
    )
    assert app_client.post("/collections/nope/tune/jobs", json=tune).status_code == 404
    assert app_client.get("/jobs").json()["jobs"][0]["kind"] == "tune"


def test_bad_quality_requests_get_4xx(app_client: TestClient) -> None:
    _create(app_client, "bad-q", k=64)
    for body, status in [
        ({"text": "x", "candidates": 10**6}, 422),
        ({"text": "x", "top_k": 20, "rescore": True, "candidates": 5}, 422),
        ({"text": "x", "candidates": 0}, 422),
    ]:
        response = app_client.post("/collections/bad-q/query", json=body)
        assert response.status_code == status, (body, response.text)
        assert "candidates" in response.text
    for body in [
        {"specs": ["Nonsense"]},
        {"ks": [0]},
        {"specs": ["BFlat"], "ks": [12]},
        {"queries": [{"text": "x", "relevant": ["nope"]}], "ks": [64]},
    ]:
        response = app_client.post("/collections/bad-q/report", json=body)
        assert 400 <= response.status_code < 500, (body, response.text)


def test_a_shortlist_is_a_setting_that_serves_the_same_top_hits(app_client: TestClient) -> None:
    """Issue 18's 8-byte setting over the API: fast-scan PQ at k=64, every document a candidate,
    20 of them re-scored after their codes chose them: the hits of a collection without one."""
    _create(app_client, "short", k=64, index_spec="PQ16x4fs", candidates=90, shortlist=20)
    _create(app_client, "long", k=64, index_spec="PQ16x4fs", candidates=90)
    settings = app_client.get("/collections/short").json()["settings"]
    assert (settings["shortlist"], settings["candidates"]) == (20, 90)
    short, long = _query(app_client, "short"), _query(app_client, "long")
    assert [h["id"] for h in short] == [h["id"] for h in long]
    assert [h["score"] for h in short] == pytest.approx([h["score"] for h in long], abs=1e-6)
    huge = _query(app_client, "short", shortlist=10**18)  # found by asking: no 10**18 rows
    assert [h["id"] for h in huge] == [h["id"] for h in long]
    refused = app_client.post("/collections/short/fit", json={"shortlist": 0})
    assert refused.status_code == 422 and "shortlist" in refused.text
    assert app_client.get("/collections/short").json()["shortlist_bytes_per_vector"] == 128
    dropped = app_client.post("/collections/short/fit", json={"shortlist": None}).json()
    assert dropped["collection"]["settings"]["shortlist"] is None
    assert dropped["collection"]["shortlist_bytes_per_vector"] is None


def test_a_query_asking_for_codes_a_collection_lacks_gets_a_4xx_that_says_what_to_do(
    app_client: TestClient,
) -> None:
    _create(app_client, "no-codes", k=64)
    body = {"text": "a song", "top_k": 3, "shortlist": 50}
    response = app_client.post("/collections/no-codes/query", json=body)
    assert response.status_code in (400, 422), response.text
    assert "refit it with a shortlist" in response.text
    body["shortlist"] = 0
    assert app_client.post("/collections/no-codes/query", json=body).status_code == 422

"""STS-B through the API: ingest the sentences, tune on dev pairs with max_k=128 and apply,
then score the test pairs with `similarity` through the collection's kernel.

The issue's check ingests all 15,487 unique STS-B sentences; to keep the suite short this test
ingests the 2,552 unique test-split sentences (the data README: β=γ=0, k=128 fitted on them gives
82.17). Set WHITENED_TEST_STSB_ALL=1 to ingest every split's sentences instead.
"""

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_support import SHARED_DATA, wait_job

from index.metrics import spearman

pytestmark = [pytest.mark.data, pytest.mark.slow]

STSB = SHARED_DATA / "stsb"
RAW_SPEARMAN = 82.03  # data README, all-MiniLM-L6-v2 raw cosine on the test split


def read_pairs(path: Path) -> list[tuple[str, str, float]]:
    """Tab-separated; score and sentences are fields 4, 5 and 6 (some rows have more fields)."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        pairs.append((fields[5], fields[6], float(fields[4])))
    return pairs


@pytest.fixture(scope="module")
def splits() -> dict[str, list[tuple[str, str, float]]]:
    if not (STSB / "sts-test.csv").exists():
        pytest.skip(f"STS-B not found in {STSB} (set WHITENED_TEST_DATA to ../shared/data)")
    return {name: read_pairs(STSB / f"sts-{name}.csv") for name in ("train", "dev", "test")}


def test_stsb_tune_apply_and_similarity(app_client: TestClient, splits: dict) -> None:
    used = ("train", "dev", "test") if os.environ.get("WHITENED_TEST_STSB_ALL") else ("test",)
    sentences = sorted({s for split in used for a, b, _ in splits[split] for s in (a, b)})
    assert app_client.post("/collections", json={"name": "stsb"}).status_code == 201
    documents = [{"id": f"s{i}", "text": text} for i, text in enumerate(sentences)]
    submitted = app_client.post("/collections/stsb/ingest", json={"documents": documents})
    assert submitted.status_code == 202, submitted.text
    job = wait_job(app_client, submitted.json()["job"]["id"], timeout=900)
    assert job["state"] == "done" and job["fitted"], job

    dev = [{"text1": a, "text2": b, "score": s} for a, b, s in splits["dev"]]
    test = splits["test"]
    validation = [{"text1": a, "text2": b, "score": s} for a, b, s in test]
    body = {"pairs": dev, "max_k": 128, "apply": True, "validation": {"pairs": validation}}
    tuned = app_client.post("/collections/stsb/tune", json=body)
    assert tuned.status_code == 200, tuned.text
    best = tuned.json()["chosen"]
    assert best["k"] <= 128 and tuned.json()["collection"]["k"] == best["k"]
    assert tuned.json()["n_train"] == len(dev) and tuned.json()["n_held_out"] == len(test)

    pairs = [{"text1": a, "text2": b} for a, b, _ in test]
    answer = app_client.post("/similarity", json={"pairs": pairs, "collection": "stsb"})
    assert answer.status_code == 200, answer.text
    score = 100 * spearman(answer.json()["scores"], [s for _, _, s in test])
    print(f"\nSTS-B test Spearman×100 through the tuned kernel {best}: {score:.2f}")
    assert score >= RAW_SPEARMAN - 0.5, (score, best)
    # issue 18: what tune reported for the examples it never chose on is what is served
    assert abs(score - 100 * best["held_out"]) <= 0.01, (score, best)
    assert abs(100 * tuned.json()["held_out_raw"] - RAW_SPEARMAN) <= 0.01

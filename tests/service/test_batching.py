"""Query micro-batching: concurrent single queries share forward passes, each gets its own row."""

import threading
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
from service_support import LiveServer, corpus

from index import Encoder
from service.batching import QueryBatcher

QUERIES = [f"query number {i} about {topic}" for i, topic in enumerate(["cats", "stocks"] * 8)]


class Recording:
    """The real encoder, remembering the size of every batch it was given."""

    def __init__(self, encoder: Encoder, fail_on: str | None = None) -> None:
        self.encoder = encoder
        self.fail_on = fail_on
        self.batches: list[int] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(len(texts))
        if self.fail_on in texts:
            raise ValueError(f"cannot encode {self.fail_on!r}")
        return self.encoder.encode(texts)


def _concurrently(batcher: QueryBatcher, texts: list[str]) -> list[object]:
    results: list[object] = [None] * len(texts)
    start = threading.Barrier(len(texts))

    def call(i: int) -> None:
        start.wait()
        try:
            results[i] = batcher.encode(texts[i])
        except ValueError as exc:
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_queries_share_batches_and_get_their_own_vectors(encoder: Encoder) -> None:
    recording = Recording(encoder)
    results = _concurrently(QueryBatcher(recording, window=0.01), QUERIES)
    expected = encoder.encode(QUERIES)
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert sum(recording.batches) == len(QUERIES)
    assert len(recording.batches) < len(QUERIES) // 2, recording.batches


def test_without_company_a_query_is_encoded_alone(encoder: Encoder) -> None:
    recording = Recording(encoder)
    batcher = QueryBatcher(recording, window=0.001)
    for text in QUERIES[:3]:
        np.testing.assert_allclose(batcher.encode(text), encoder.encode([text])[0], atol=1e-5)
    assert recording.batches == [1, 1, 1]


def test_one_bad_text_fails_only_its_own_caller(encoder: Encoder) -> None:
    """Issue 17 item 13: one caller's bad text failed every caller of its batch, each told of
    another request's position."""
    recording = Recording(encoder, fail_on=QUERIES[0])
    results = _concurrently(QueryBatcher(recording, window=0.05), QUERIES[:4])
    assert isinstance(results[0], ValueError) and "cannot encode" in str(results[0])
    expected = encoder.encode(QUERIES[1:4])
    for got, want in zip(results[1:], expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert max(recording.batches) > 1  # they did share a batch first
    batcher = QueryBatcher(recording, window=0.0)
    assert batcher.encode(QUERIES[1]).shape == (384,)  # the batcher still works afterwards
    with pytest.raises(ValueError, match="cannot encode"):
        batcher.encode(QUERIES[0])


def test_a_blank_query_is_refused_before_batching_and_its_neighbours_answer(
    tmp_path: Path,
) -> None:
    """Issue 17 item 13 over HTTP: a whitespace-only `text` passed the schema into the batcher."""
    server = LiveServer(tmp_path / "data", tmp_path / "log", query_batch_ms=50).start()
    try:
        with server.client() as client:
            client.post("/collections", json={"name": "b", "k": 16})
            client.post("/collections/b/documents", json={"documents": corpus()})
        texts = ["   ", *QUERIES[:5]]
        answers: list[httpx.Response | None] = [None] * len(texts)
        start = threading.Barrier(len(texts))

        def ask(i: int) -> None:
            with server.client() as client:
                start.wait()
                answers[i] = client.post("/collections/b/query", json={"text": texts[i]})

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(texts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        server.close()
    blank, *others = answers
    assert blank is not None and blank.status_code == 422
    assert "empty or only whitespace" in blank.json()["detail"]
    assert all(a is not None and a.status_code == 200 for a in others), others

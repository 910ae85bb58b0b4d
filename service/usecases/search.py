"""Query a collection, embed texts, and score the similarity of text pairs."""

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from index import InvalidInput
from index.collection import Answer
from index.validation import check_texts, unit_rows
from service.usecases.context import Context


class Search:
    """Read-only use cases: they encode texts and go through a collection's kernel and index."""

    def __init__(self, context: Context) -> None:
        self._context = context

    def query(
        self,
        name: str,
        texts: Sequence[str],
        top_k: int = 10,
        where: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> tuple[Answer, float, float]:
        """Hits per text, best first, and the kernel that answered; encode and search seconds."""
        context = self._context
        context.check_count(len(texts), "texts")
        texts = check_texts(texts)  # a query needs text; documents may be empty
        most = context.settings.max_top_k
        if top_k > most:
            raise InvalidInput(f"top_k={top_k} is above the limit {most}")
        overrides = dict(overrides or {})
        context.check_candidates(overrides.get("candidates"))
        collection = context.catalog.get(name)
        context.require_kernel(collection)
        encoder = collection.require_encoder()
        vectors, encode_seconds = context.encode(encoder, texts, "query", batched=True)
        started = time.perf_counter()
        answer = collection.answer(vectors, top_k, where, **overrides)
        return answer, encode_seconds, time.perf_counter() - started

    def embed(self, name: str, texts: Sequence[str], space: str) -> np.ndarray:
        """Raw vectors of `texts` (d dims), or through the collection's kernel (k dims)."""
        context = self._context
        context.check_count(len(texts), "texts")
        collection = context.catalog.get(name)
        if space == "kernel":
            context.require_kernel(collection)
        vectors, _ = context.encode(collection.require_encoder(), texts, "embed")
        return collection.transform(vectors) if space == "kernel" else vectors

    def similarity(
        self,
        pairs: Sequence[tuple[str, str]],
        collection_name: str | None = None,
        codes: bool = False,
    ) -> np.ndarray:
        """Cosine of each pair: raw, through a collection's kernel, or of its index's codes."""
        context = self._context
        context.check_count(len(pairs), "pairs")
        collection = None if collection_name is None else context.catalog.get(collection_name)
        if collection is not None:
            context.require_kernel(collection)
        encoder = context.catalog.encoder() if collection is None else collection.require_encoder()
        texts = [a for a, _ in pairs] + [b for _, b in pairs]
        vectors, _ = context.encode(encoder, texts, "similarity")
        if collection is None:
            vectors = unit_rows(vectors)
        else:
            vectors = collection.quantize(vectors) if codes else collection.transform(vectors)
        n = len(pairs)
        return np.einsum("ij,ij->i", vectors[:n], vectors[n:], dtype=np.float64)

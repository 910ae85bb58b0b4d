"""Refit a collection's kernel, tune it on labelled data, report what compression costs, and run
tunes and reports as background jobs (minutes at 100,000 documents)."""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from index import InvalidInput
from index.catalog import Stored
from index.compression import CompressionReport
from index.tuning_results import ServedTuning
from index.tuning_served import tune_served_pairs, tune_served_retrieval
from index.tuning_split import HELD_OUT_FRACTION, held_out_split
from service.jobs import Job, JobHandle
from service.usecases.context import Context, Progress


@dataclass(frozen=True)
class Tuned:
    """A tune's result, whether it was applied (and the collection after), and its seconds."""

    result: ServedTuning
    applied: bool
    info: dict[str, Any] | None
    encode_seconds: float
    tune_seconds: float
    fit_seconds: float


class Tuning:
    """The kernel's use cases: fit, tune and report."""

    def __init__(self, context: Context) -> None:
        self._context = context

    def fit(self, name: str, changes: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
        """Refit from the stored raw vectors with the settings `changes` (others kept); queries
        use the old kernel until the switch."""
        collection = self._context.catalog.get(name)
        if collection.count() < 2:
            raise InvalidInput(
                f"collection {name} holds {collection.count()} document(s): fitting needs 2"
            )
        self._context.check_candidates(changes.get("candidates"))
        result = collection.fit(**changes)
        return collection.describe(), result.index_seconds

    def background(
        self,
        kind: str,
        name: str,
        answer: Callable[[Progress], dict[str, Any]],
        candidates: Sequence[int | None] = (),
    ) -> Job:
        """Run `answer` (a tune or report) as a job whose result is its answer, its steps
        (indexes built and measured) as the job's processed and total; an unknown collection
        or `candidates` above the limit are a 4xx now, not a failed job later."""
        self._context.catalog.get(name)
        for value in candidates:
            self._context.check_candidates(value)

        def work(handle: JobHandle) -> None:
            def progress(done: int, total: int) -> None:
                handle.check_stop()
                handle.update(processed=done, total=total)

            result = answer(progress)
            handle.update(result=result, processed=handle.job.total)

        return self._context.jobs.submit(kind, name, 1, work)

    def tune(
        self,
        name: str,
        *,
        pairs: Sequence[tuple[str, str, float]] | None = None,
        queries: Sequence[tuple[str, Mapping[str, float]]] | None = None,
        validation: Sequence[Any] | None = None,
        held_out: float = HELD_OUT_FRACTION,
        grid: Mapping[str, Any] | None = None,
        specs: Sequence[str] | None = None,
        spaces: Sequence[str] = ("kernel",),
        candidates: Sequence[int | None] = (None,),
        k_eval: int = 10,
        apply: bool = False,
        progress: Progress | None = None,
    ) -> Tuned:
        """Choose β, γ, k (and, for queries, index spec and re-scoring) on labelled pairs or
        queries by what the server would serve; report it on examples never chosen on
        (`validation`, else a seeded `held_out` fraction) beside raw cosine."""
        context = self._context
        examples: list[Any] = list(pairs if pairs is not None else queries or [])
        self._check_examples(pairs, queries)
        self._check_examples(validation, None)
        collection = context.catalog.get(name)
        kernel = context.require_kernel(collection)
        if queries is not None:
            _check_relevant(collection, examples)
            _check_relevant(collection, validation, "validation.queries")
        options = {key: value for key, value in (grid or {}).items() if value is not None}
        if validation is None:
            mask = held_out_split(len(examples), held_out)
            train = [e for e, held in zip(examples, mask, strict=True) if not held]
            validation = [e for e, held in zip(examples, mask, strict=True) if held] or None
        else:
            train = examples
        encoder = collection.require_encoder()
        if pairs is not None:
            texts = [p[0] for p in train] + [p[1] for p in train]
            texts += [p[0] for p in validation or []] + [p[1] for p in validation or []]
            vectors, encode_seconds = context.encode(encoder, texts, "tune")
            started = time.perf_counter()
            n, m = len(train), len(validation or [])
            result = tune_served_pairs(
                kernel,
                (vectors[:n], vectors[n : 2 * n], [p[2] for p in train]),
                None
                if not m
                else (
                    vectors[2 * n : 2 * n + m],
                    vectors[2 * n + m :],
                    [p[2] for p in validation or []],
                ),
                **options,
            )
        else:
            texts = [q for q, _ in train] + [q for q, _ in validation or []]
            vectors, encode_seconds = context.encode(encoder, texts, "tune")
            started = time.perf_counter()
            doc_ids, doc_vectors = collection.raw_vectors_by_id()
            n = len(train)
            result = tune_served_retrieval(
                kernel,
                doc_vectors,
                doc_ids,
                (vectors[:n], [dict(judged) for _, judged in train]),
                None
                if validation is None
                else (vectors[n:], [dict(judged) for _, judged in validation]),
                specs=specs or [collection.manifest.settings.index_spec],
                spaces=spaces,
                candidates=[context.check_candidates(c) for c in candidates],
                k_eval=k_eval,
                progress=progress,
                **options,
            )
        tune_seconds = time.perf_counter() - started
        info, fit_seconds = None, 0.0
        if apply:
            fitted = collection.fit(**result.chosen.settings)
            info, fit_seconds = collection.describe(), fitted.index_seconds
        return Tuned(result, apply, info, encode_seconds, tune_seconds, fit_seconds)

    def report(
        self,
        name: str,
        *,
        pairs: Sequence[tuple[str, str, float]] | None = None,
        queries: Sequence[tuple[str, Mapping[str, float]]] | None = None,
        **options: Any,
    ) -> tuple[CompressionReport, float]:
        """The compression report of a collection (see index.compression), and its seconds."""
        context = self._context
        self._check_examples(pairs, queries)
        context.check_candidates(options.get("candidates"))
        collection = context.catalog.get(name)
        context.require_kernel(collection)
        _check_relevant(collection, queries)
        encoder = collection.require_encoder()
        started = time.perf_counter()
        if pairs is not None:
            n = len(pairs)
            vectors, _ = context.encode(
                encoder, [p[0] for p in pairs] + [p[1] for p in pairs], "report"
            )
            options["pairs"] = (vectors[:n], vectors[n:], [p[2] for p in pairs])
        elif queries is not None:
            options["queries"], _ = context.encode(encoder, [q for q, _ in queries], "report")
            options["relevant"] = [dict(judged) for _, judged in queries]
        result = collection.compression_report(**options)
        return result, time.perf_counter() - started

    def _check_examples(self, pairs: Sequence[Any] | None, queries: Sequence[Any] | None) -> None:
        most = self._context.settings.max_tune_examples
        examples = len(pairs) if pairs is not None else len(queries or [])
        if examples > most:
            raise InvalidInput(
                f"{examples} labelled examples; at most {most} per request: sample them"
            )


def _check_relevant(
    collection: Stored,
    queries: Sequence[tuple[str, Mapping[str, float]]] | None,
    field: str = "queries",
) -> None:
    """Judgments must name stored documents: an unknown id would score as a silent miss."""
    for position, (_, judged) in enumerate(queries or []):
        known = set(collection.existing(list(judged))) if judged else set()
        unknown = sorted(set(judged) - known)
        if unknown:
            raise InvalidInput(
                f"{field}[{position}].relevant names {len(unknown)} document id(s) that "
                f"collection {collection.name} does not hold ({', '.join(unknown[:5])}): "
                "ingest them first, or drop them from the judgments"
            )

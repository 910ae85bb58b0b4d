"""Bodies of fit, tune and report: labelled pairs and queries, the grid, the served points."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from service.schemas.collections import CollectionInfo, SettingsIn
from service.schemas.common import FiniteFloat, K, Request, Text


class FitIn(SettingsIn):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"beta": 0.5, "gamma": 0.25, "k": 128}]}
    )


class FitOut(BaseModel):
    collection: CollectionInfo
    fit_seconds: float


class LabelledPair(Request):
    text1: Text
    text2: Text
    score: FiniteFloat = Field(description="Gold similarity (any scale, e.g. STS-B's 0–5).")


class LabelledQuery(Request):
    text: Text
    relevant: dict[str, FiniteFloat] | list[str] = Field(
        description="Relevant document ids with a grade > 0, or a list of ids (grade 1)."
    )


def relevance(query: LabelledQuery) -> dict[str, float]:
    """A query's judgments as {doc_id: grade}; a bare list of ids means grade 1 each."""
    if isinstance(query.relevant, dict):
        return dict(query.relevant)
    return dict.fromkeys(query.relevant, 1.0)


class TuneIn(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "pairs": [
                        {"text1": "A man plays guitar.", "text2": "A man plays music.", "score": 4},
                        {"text1": "A cat sleeps.", "text2": "Stocks fell today.", "score": 0},
                        {"text1": "A dog runs.", "text2": "A dog is running.", "score": 5},
                    ],
                    "max_k": 128,
                    "apply": True,
                },
                {"queries": [{"text": "guitar music", "relevant": ["a1"]}], "ks": [64, 128]},
            ]
        }
    )

    pairs: list[LabelledPair] | None = Field(None, description="Labelled sentence pairs.")
    queries: list[LabelledQuery] | None = Field(None, description="Queries with judgments.")
    betas: list[FiniteFloat] | None = Field(None, description="Default 0, 0.25, ..., 1.")
    gammas: list[FiniteFloat] | None = Field(None, description="Default 0, 0.25, ..., 1.")
    ks: list[K] | None = Field(None, description="Default 32, 64, 96, 128, 192, 256, d.")
    max_k: K | None = Field(None, description="Largest k tried (default d).")
    k_eval: int = Field(10, ge=1, le=1000, description="nDCG cut-off for queries.")
    specs: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = Field(
        None,
        max_length=6,
        description="Index specs the served pipelines try (queries only; default: the "
        "collection's).",
    )
    spaces: list[Literal["off", "raw", "kernel"]] = Field(
        default_factory=lambda: ["kernel"],
        min_length=1,
        max_length=3,
        description="Re-scoring spaces the served pipelines try (kernel: at k and at every "
        "dimension).",
    )
    candidates: list[Annotated[int, Field(ge=1)] | None] = Field(
        default_factory=lambda: [None],
        min_length=1,
        max_length=6,
        description="Candidates per query the re-scoring pipelines try (null: the default, "
        "max(4·top_k, 40)); e.g. [null, 200, 400] for binary or RaBitQ specs.",
    )
    validation: "TuneValidation | None" = Field(
        None,
        description="Examples scored but never chosen on (of the same kind); default: a seeded "
        "`held_out` fraction of the examples.",
    )
    held_out: float = Field(
        0.3,
        ge=0,
        lt=1,
        description="Fraction held out when no validation is given (none below 10 examples).",
    )
    apply: bool = Field(
        False, description="Refit the collection with the chosen pipeline (kernel, index, rescore)."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> "TuneIn":
        if (self.pairs is None) == (self.queries is None):
            raise ValueError("give either pairs or queries (exactly one of them)")
        if self.validation is not None and (
            (self.pairs is None) != (self.validation.pairs is None)
            or (self.queries is None) != (self.validation.queries is None)
        ):
            raise ValueError("validation must hold examples of the same kind (pairs or queries)")
        return self


class TuneValidation(Request):
    pairs: list[LabelledPair] | None = None
    queries: list[LabelledQuery] | None = None


TuneIn.model_rebuild()


class TuningPointOut(BaseModel):
    beta: float
    gamma: float
    k: int
    score: float


class ServedPointOut(BaseModel):
    beta: float
    gamma: float
    k: int
    index_spec: str | None = Field(description="None for pairs (no index is involved).")
    rescore: str
    rescore_k: int | None
    candidates: int | None = Field(description="Candidates re-scored per query (null: default).")
    bytes_per_vector: float | None = Field(
        description="Resident index memory per vector: codes, per-vector factors, id runs."
    )
    train: float = Field(description="Score on the examples it was chosen on.")
    held_out: float | None = Field(description="Score on examples it never chose on.")


class TuneOut(BaseModel):
    metric: str = Field(description="spearman for pairs, ndcg@k_eval for queries.")
    best: TuningPointOut
    points: list[TuningPointOut]
    skipped: list[tuple[float, float, int]] = Field(
        description="(β, γ, k) not scored: k above the fitted vectors' rank with γ > 0."
    )
    table: str = Field(description="Markdown table of scores × 100.")
    chosen: ServedPointOut = Field(
        description="The pipeline `apply` serves, chosen on the train examples only."
    )
    held_out_raw: float | None = Field(
        None, description="Raw cosine's score on the held-out examples, for comparison."
    )
    pipelines: list[ServedPointOut] = Field(description="Every served pipeline scored.")
    pareto: list[ServedPointOut] = Field(
        description="Pipelines no other beats on both bytes per vector and held-out score."
    )
    n_train: int
    n_held_out: int
    applied: bool
    collection: CollectionInfo | None = Field(None, description="After the refit, if applied.")
    encode_seconds: float
    tune_seconds: float
    fit_seconds: float


class ReportIn(Request):
    """Which settings to measure; labels are optional (without them: recall@10 only)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"ks": [384, 128, 64], "specs": ["Flat", "SQ8", "RaBitQ"], "n_queries": 200}
            ]
        }
    )

    ks: list[K] | None = Field(
        None, min_length=1, max_length=10, description="k values (default 384, 256, 192, 128…)."
    )
    specs: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        default_factory=lambda: ["Flat", "SQ8", "RaBitQ", "BFlat"], min_length=1, max_length=8
    )
    rescore: list[bool] = Field(default_factory=lambda: [False, True], min_length=1, max_length=2)
    n_queries: int = Field(
        200, ge=1, le=2000, description="Documents drawn as queries when no queries are given."
    )
    queries: list[LabelledQuery] | None = Field(
        None, min_length=1, description="Queries with relevant document ids (adds nDCG@10)."
    )
    pairs: list[LabelledPair] | None = Field(
        None, min_length=2, description="Scored pairs (adds Spearman of the codes' cosines)."
    )
    candidates: int | None = Field(None, ge=1, description="Candidates re-scored per query.")
    target_recall: float = Field(
        0.99,
        gt=0,
        le=1,
        description="`smallest` in the answer: the fewest bytes per vector whose recall@10 "
        "against exact raw search reaches this, re-scored as the collection re-scores.",
    )

    @model_validator(mode="after")
    def _one_label_kind(self) -> "ReportIn":
        if self.queries is not None and self.pairs is not None:
            raise ValueError("give queries or pairs, not both")
        return self


class ReportRow(BaseModel):
    k: int
    index_spec: str
    rescore: bool
    bytes_per_vector: float = Field(
        description="Index memory per vector (codes, per-vector factors, links, id runs)."
    )
    recall_at_10: float = Field(description="Against exact search on the raw vectors (0–1).")
    latency_ms: float = Field(description="Median ms of one query: kernel, search, re-scoring.")
    metric: float | None = Field(None, description="nDCG@10 or Spearman when labels are given.")


class ReportOut(BaseModel):
    collection: str
    n_documents: int
    n_queries: int
    metric: str | None
    rows: list[ReportRow]
    smallest: ReportRow | None = Field(
        None,
        description="The fewest bytes per vector reaching target_recall, re-scored as the "
        "collection re-scores (null: no row reaches it).",
    )
    skipped_ks: list[int] = Field(
        default_factory=list,
        description="ks not measured: above the kernel's meaningful components with γ > 0.",
    )
    table: str = Field(description="The rows as a Markdown table.")
    seconds: float

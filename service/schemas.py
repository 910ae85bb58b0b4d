"""Request and response bodies of the HTTP API (pydantic), with examples for the OpenAPI docs.

Requests are strict (no "5" for 5, no true for 1) and forbid unknown fields, so a typo is a 422
that names the field instead of a silently ignored option. Floats must be finite: JSON has no NaN,
but Python's parser accepts the `NaN` and `Infinity` literals, and they are refused here.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from index.catalog import NAME_PATTERN

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Rescore = Literal["off", "raw", "kernel"] | bool
"""Re-scoring space (index.rescoring); true and false, from before spaces, mean raw and off."""
RESCORE_DOC = (
    "Re-score the index's candidates by exact cosine: `kernel` (through the collection's kernel "
    "at `rescore_k` dimensions: what β, γ define), `raw` (the model's cosine) or `off` (the "
    "index's own scores); true/false mean raw/off."
)
RESCORE_K_DOC = (
    "Dimensions of kernel-space re-scoring: from the kernel's k up to d (null: every "
    "meaningful one, d when γ=0; with β=γ=0 that is raw cosine exactly)."
)
CANDIDATES_DOC = (
    "Candidates the index proposes per query for re-scoring (null: max(4·top_k, 40)); binary "
    "and RaBitQ codes need a few hundred to keep raw cosine's quality."
)
Text = Annotated[str, StringConstraints(min_length=1)]
CollectionName = Annotated[
    str,
    Field(
        pattern=f"^{NAME_PATTERN.pattern}$",
        description="1 to 64 letters, digits, '_' or '-', starting with a letter or digit.",
    ),
]
FilterValue = str | bool | int | FiniteFloat
K = Annotated[int, Field(ge=1, description="Output dimension of the kernel (≤ model dimension).")]


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


# ---- collections ------------------------------------------------------------------------------


class SettingsIn(Request):
    """A collection's settings as a request gives them: what is left out is kept (fit) or taken
    from the server's defaults (create); null sets k, rescore_k or candidates to its default
    (every dimension, every meaningful one, a few per hit)."""

    beta: FiniteFloat | None = Field(None, description="β: how much of the mean to subtract.")
    gamma: FiniteFloat | None = Field(None, description="γ: how much to whiten.")
    k: K | None = None
    index_spec: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None,
        description="FAISS index spec: Flat, HNSW32, SQ8, RaBitQ, BFlat, IVF256,PQ16...",
    )
    rescore: Rescore | None = Field(None, description=RESCORE_DOC + " Default: the server's.")
    rescore_k: K | None = Field(None, description=RESCORE_K_DOC)
    candidates: int | None = Field(None, ge=1, description=CANDIDATES_DOC)

    def settings(self) -> dict[str, Any]:
        """The settings given, by name (`index.Settings` fields), for create and fit."""
        return self.model_dump(include=set(SettingsIn.model_fields), exclude_unset=True)


class CollectionCreate(SettingsIn):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "news", "beta": 0.0, "gamma": 0.0, "k": 128, "index_spec": "Flat"}
            ]
        }
    )

    name: CollectionName
    model: str | None = Field(None, description="Model of the collection (default: server's).")


class CollectionSummary(BaseModel):
    name: str
    model_id: str
    dimension: int
    count: int
    fitted: bool
    k: int | None = Field(None, description="Output dimension of the fitted kernel.")
    beta: float
    gamma: float
    index_spec: str


class CollectionList(BaseModel):
    collections: list[CollectionSummary]
    unavailable: dict[str, str] = Field(
        default_factory=dict, description="Collections that failed to open, with the reason."
    )


class CollectionSettings(BaseModel):
    beta: float
    gamma: float
    k: int | None
    index_spec: str
    rescore: str = Field(description="How queries re-score candidates by default.")
    rescore_k: int | None = Field(None, description=RESCORE_K_DOC)
    candidates: int | None = Field(None, description=CANDIDATES_DOC)


class CollectionInfo(BaseModel):
    """`Collection.describe()`: counts, model, kernel and index figures."""

    name: str
    model_id: str
    backend: str = Field(
        description="Encoder backend that created the collection; queries need one whose "
        "vectors compare (torch and onnx do; onnx-int8 only with itself)."
    )
    dimension: int = Field(description="d, the model's vector dimension.")
    count: int = Field(description="Documents stored.")
    settings: CollectionSettings = Field(description="β, γ, k and index spec of the next fit.")
    fitted: bool
    fit_error: str | None = Field(
        None,
        description="Why the collection has no kernel yet (too few documents, or settings it "
        "cannot fit yet); a fit with other settings, or more documents, repairs it.",
    )
    fitted_at: str | None
    fitted_on: int | None = Field(
        None,
        description="Documents the kernel was fitted on; an ingest that ends with twice as "
        "many (REFIT_GROWTH) refits it.",
    )
    refit_due: bool | None = Field(
        None, description="The collection has grown REFIT_GROWTH times past `fitted_on`."
    )
    created_at: str
    raw_bytes_per_vector: int = Field(description="Bytes of each stored raw vector (4·d).")
    k: int | None = Field(None, description="Output dimension of the fitted kernel.")
    rescore_k_effective: int | None = Field(
        None, description="Dimensions kernel-space re-scoring compares (rescore_k, or all)."
    )
    indexed: int | None = Field(None, description="Vectors in the FAISS index.")
    explained_energy: float | None = Field(
        None, description="Share of the corpus' energy (eigenvalue sum) kept by the first k axes."
    )
    rank: int | None = Field(None, description="Meaningful components of the fitted vectors.")
    index_bytes_per_vector: float | None = Field(
        None,
        description="Resident memory per vector of the index (codes, per-vector factors, graph "
        "links, id runs), as of its last "
        "save.",
    )
    disk_bytes_per_document: float | None = Field(
        None, description="All of the collection's files (documents, raw vectors, index) per doc."
    )


# ---- documents --------------------------------------------------------------------------------


class DocumentIn(Request):
    id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        None, description="Your id; a random one is given when absent."
    )
    text: Annotated[str, StringConstraints(min_length=0)] = Field(
        description="Stored whole; the model reads its first 256 tokens (the rest is truncated). "
        "May be empty: it is encoded like any text."
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON object, nested at most 32 levels and at most 64 KiB as JSON; queries "
        "can filter on its keys.",
    )


_DOCUMENTS_EXAMPLE = {
    "documents": [
        {"id": "a1", "text": "A man is playing a guitar.", "metadata": {"lang": "en"}},
        {"id": "a2", "text": "A woman is slicing an onion.", "metadata": {"lang": "en"}},
    ],
    "upsert": False,
}


class DocumentsAdd(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [_DOCUMENTS_EXAMPLE]})

    documents: list[DocumentIn] = Field(min_length=1)
    upsert: bool = Field(False, description="Replace documents whose id exists (else 409).")
    fit: bool = Field(
        True,
        description="Fit the kernel on all documents when the collection has none yet. Send "
        "false for every chunk of a large load split by the client, then POST /fit once.",
    )


class DocumentsIngest(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [_DOCUMENTS_EXAMPLE]})

    documents: list[DocumentIn] = Field(min_length=1)
    upsert: bool = Field(False, description="Replace documents whose id exists (else 409).")


class WriteOut(BaseModel):
    collection: str
    ids: list[str] = Field(description="Ids of the documents written, in order.")
    added: int
    replaced: int
    count: int = Field(description="Documents in the collection after the write.")
    fitted: bool = Field(description="Whether this write fitted the collection's kernel.")
    fit_error: str | None = Field(
        None, description="Why the kernel could not be fitted yet (documents are stored)."
    )
    encode_seconds: float
    index_seconds: float


class DocumentOut(BaseModel):
    id: str
    text: str
    metadata: dict[str, Any]


class DocumentPage(BaseModel):
    documents: list[DocumentOut]
    offset: int
    limit: int
    count: int


class IdsIn(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"ids": ["a1", "a2"]}]})

    ids: list[Annotated[str, StringConstraints(min_length=1)]] = Field(min_length=1)


class DeletedOut(BaseModel):
    deleted: int
    count: int


# ---- jobs -------------------------------------------------------------------------------------


class JobOut(BaseModel):
    id: str
    kind: str
    collection: str
    state: Literal["queued", "running", "done", "failed"]
    total: int
    processed: int = Field(
        description="Ingest: documents committed so far (they survive a crash). Tune and "
        "report: 1 once the answer is in `result`, of total 1."
    )
    added: int
    replaced: int
    fitted: bool
    error: str | None
    fit_error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    encode_seconds: float
    index_seconds: float
    fit_seconds: float
    result: dict[str, Any] | None = Field(
        None, description="Tune and report jobs: the answer the synchronous route gives, once done."
    )


class JobAccepted(BaseModel):
    job: JobOut
    ids: list[str] = Field(description="Ids of the documents queued, in order.")


class JobList(BaseModel):
    jobs: list[JobOut]


# ---- fit and tune -----------------------------------------------------------------------------


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


# ---- search -----------------------------------------------------------------------------------


class QueryIn(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"text": "someone plays an instrument", "top_k": 5, "filter": {"lang": "en"}}
            ]
        }
    )

    text: Text | None = Field(
        None, description="One query (or give texts); past 256 tokens the model truncates it."
    )
    texts: list[Text] | None = Field(None, min_length=1, description="A batch of queries.")
    top_k: int = Field(10, ge=1, description="Hits per query (at most the server's max_top_k).")
    filter: dict[str, FilterValue] | None = Field(
        None, description="Metadata equality: every key must equal its value."
    )
    rescore: Rescore | None = Field(
        None, description=RESCORE_DOC + " Null: the collection's setting."
    )
    rescore_k: K | None = Field(None, description=RESCORE_K_DOC + " Null: the collection's.")
    candidates: int | None = Field(
        None, ge=1, description=CANDIDATES_DOC.replace("(null:", "(null: the collection's, else")
    )

    @model_validator(mode="after")
    def _one_kind(self) -> "QueryIn":
        if (self.text is None) == (self.texts is None):
            raise ValueError("give either text or texts (exactly one of them)")
        return self

    @property
    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])

    def overrides(self) -> dict[str, Any]:
        """This query's own re-scoring choices (`index.snapshots.SEARCH_FIELDS`)."""
        return self.model_dump(include={"rescore", "rescore_k", "candidates"}, exclude_none=True)


class HitOut(BaseModel):
    id: str
    score: float = Field(description="Similarity; score_kind says which.")
    score_kind: Literal[
        "cosine", "quantized_cosine", "sign_agreement", "raw_cosine", "kernel_cosine"
    ] = Field(
        description="cosine: exact, in the kernel's space; quantized_cosine: of the index's "
        "codes; sign_agreement: 1 − 2·Hamming/k of binary codes; kernel_cosine: re-scored "
        "through the collection's kernel at rescore_k dimensions; raw_cosine: re-scored with the "
        "raw vectors."
    )
    text: str
    metadata: dict[str, Any]


class QueryResult(BaseModel):
    query: str
    hits: list[HitOut]


class QueryOut(BaseModel):
    """Only the results and the kernel's identity, so equal queries against one state get equal
    bytes; timings are in Server-Timing."""

    results: list[QueryResult] = Field(description="One entry per query text, in order.")
    fitted_at: str | None = Field(
        None,
        description="When the kernel that answered was fitted (UTC, ms). Every hit of one "
        "response comes from this one kernel and its index: a refit switches both at once.",
    )


class EmbedIn(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"texts": ["A man is playing a guitar."], "space": "kernel"}]
        }
    )

    texts: list[Text] = Field(min_length=1)
    space: Literal["raw", "kernel"] = Field(
        "kernel", description="raw: the model's d-dim vectors; kernel: k-dim, normalised."
    )


class EmbedOut(BaseModel):
    space: Literal["raw", "kernel"]
    dimension: int
    vectors: list[list[float]]


class TextPair(Request):
    text1: Text
    text2: Text


class SimilarityIn(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "pairs": [{"text1": "A man plays guitar.", "text2": "A man plays music."}],
                    "collection": "news",
                }
            ]
        }
    )

    pairs: list[TextPair] = Field(min_length=1)
    collection: CollectionName | None = Field(
        None, description="Score through this collection's kernel; absent: raw cosine."
    )
    codes: bool = Field(
        False,
        description="With a collection: score the index's codes of the kernel vectors (what a "
        "query without re-scoring compares), not the float kernel vectors.",
    )

    @model_validator(mode="after")
    def _codes_need_a_collection(self) -> "SimilarityIn":
        if self.codes and self.collection is None:
            raise ValueError("codes needs a collection: name the collection whose index to use")
        return self


class SimilarityOut(BaseModel):
    space: Literal["raw", "kernel", "index"]
    collection: str | None
    scores: list[float]


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


# ---- operations -------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    status: Literal["starting", "ready", "degraded", "failed"]
    model_loaded: bool
    models: dict[str, str] = Field(description="Each model and its state: loaded, or an error.")
    collections_open: int
    unavailable: dict[str, str] = Field(description="Collections that failed to open and why.")


class ErrorOut(BaseModel):
    error: str = Field(description="A short code: invalid_request, not_found, conflict...")
    detail: str = Field(description="What went wrong and what to change.")
    errors: list[dict[str, Any]] | None = Field(
        None, description="For invalid requests: each field and its problem."
    )

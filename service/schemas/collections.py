"""Bodies of the collection routes: create, list, describe; `SettingsIn` holds the kernel's
fields once, for create and fit alike."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.schemas.common import (
    CANDIDATES_DOC,
    RESCORE_DOC,
    RESCORE_K_DOC,
    SHORTLIST_DOC,
    CollectionName,
    FiniteFloat,
    K,
    Request,
    Rescore,
)


class SettingsIn(Request):
    """A collection's settings as a request gives them: what is left out is kept (fit) or taken
    from the server's defaults (create); null sets k, rescore_k, candidates or shortlist to its
    default (every dimension, every meaningful one, a few per hit, none)."""

    beta: FiniteFloat | None = Field(None, description="β: how much of the mean to subtract.")
    gamma: FiniteFloat | None = Field(None, description="γ: how much to whiten.")
    k: K | None = None
    index_spec: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None,
        description="FAISS index spec: Flat, HNSW32, SQ8, RaBitQ, BFlat, RR,PQ28x4fs, IVF256,PQ16",
    )
    rescore: Rescore | None = Field(None, description=RESCORE_DOC + " Default: the server's.")
    rescore_k: K | None = Field(None, description=RESCORE_K_DOC)
    candidates: int | None = Field(None, ge=1, description=CANDIDATES_DOC)
    shortlist: int | None = Field(None, ge=1, description=SHORTLIST_DOC)

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
    shards: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Split the collection into this many shards (by a hash of each id), fitted "
        "as one kernel; fixed at create. Default: one collection, not sharded.",
    )


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
    shortlist: int | None = Field(None, description=SHORTLIST_DOC)


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
    shortlist_bytes_per_vector: int | None = Field(
        None,
        description="Bytes of each vector's shortlist code (one a dimension), kept on disk "
        "beside the raw vectors and read for each candidate; absent without a shortlist.",
    )
    disk_bytes_per_document: float | None = Field(
        None, description="All of the collection's files (documents, raw vectors, index) per doc."
    )
    shards: int | None = Field(None, description="Shards of a sharded collection (else absent).")

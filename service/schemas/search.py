"""Bodies of query, embed and similarity."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.schemas.common import (
    CANDIDATES_DOC,
    RESCORE_DOC,
    RESCORE_K_DOC,
    SHORTLIST_DOC,
    CollectionName,
    FilterValue,
    K,
    Request,
    Rescore,
    Text,
)


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
    shortlist: int | None = Field(
        None,
        ge=1,
        description="Of a collection that keeps shortlist codes: how many candidates this query "
        "re-scores. Null: the collection's setting. " + SHORTLIST_DOC.split(". ")[0] + ".",
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
        fields = {"rescore", "rescore_k", "candidates", "shortlist"}
        return self.model_dump(include=fields, exclude_none=True)


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
    partial: bool = Field(
        False,
        description="A sharded collection answered without some of its shards (down, or past "
        "their timeout): the hits are the best of the others. Always false for one collection.",
    )
    missing_shards: list[int] = Field(
        default_factory=list, description="The shards that did not answer (when partial)."
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

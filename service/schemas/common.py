"""What every request and answer shares: strict requests, finite floats, names, texts, the
re-scoring fields' docs, and the error body.

Requests are strict (no "5" for 5, no true for 1) and forbid unknown fields, so a typo is a 422
that names the field instead of a silently ignored option. Floats must be finite: JSON has no NaN,
but Python's parser accepts the `NaN` and `Infinity` literals, and they are refused here.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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
SHORTLIST_DOC = (
    "Keep SQ8 codes of the kernel vectors (128 dimensions, on disk) and re-score only this many "
    "of a query's candidates, the best by their codes (null: no codes; re-score every "
    "candidate). For indexes of a few bytes a vector, which need thousands of candidates: "
    "PQ16x4fs at k=64 with 6400 candidates and a shortlist of 100. Takes a fit."
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


class ErrorOut(BaseModel):
    error: str = Field(description="A short code: invalid_request, not_found, conflict...")
    detail: str = Field(description="What went wrong and what to change.")
    errors: list[dict[str, Any]] | None = Field(
        None, description="For invalid requests: each field and its problem."
    )

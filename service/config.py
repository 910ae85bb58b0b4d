"""The service's settings: one pydantic-settings class, read from WHITENED_SEARCH_* variables.

Every field can be set in the environment with the prefix, e.g. WHITENED_SEARCH_DATA_DIR=/srv/ws
or WHITENED_SEARCH_API_KEY=...; list fields take JSON (["a","b"]) or a comma-separated string.
"""

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from index.collection import REFIT_GROWTH
from index.encoder import DEFAULT_BACKEND, DEFAULT_BATCH_SIZE, Backend, require_compatible
from index.errors import ModelMismatch
from index.snapshots import Settings

DEFAULTS = Settings()
"""The library's collection defaults: the server's start from them (one owner)."""

ENV_PREFIX = "WHITENED_SEARCH_"
OTHER_PROGRAMS = {
    "URL": "the CLI's server address",
    "IMAGE": "the image docker compose runs",
    "RAY_IMAGE": "the image docker-compose.ray.yml runs",
}
"""Variables of the prefix read by the product's other programs, not by the server."""
QUERY_BATCH_MS_BY_BACKEND = {"torch": 2.0, "onnx": 0.0, "openvino": 0.0, "onnx-int8": 0.0}
"""Measured with 16 concurrent clients (README): batching pays only where a forward pass has a
large fixed cost (torch); ONNX Runtime has almost none, so a batch only adds padding."""
INGEST_BACKEND_BY_BACKEND: dict[str, Backend] = {"onnx": "openvino"}
"""Measured (README's encoders paragraph, issue 14): OpenVINO ran the same ONNX export faster on
long texts in bulk on two of the three hosts measured (level on the third), but answered one
query over HTTP slower than ONNX Runtime; so an `onnx` server ingests through `openvino` (the
same vectors) and answers queries through `onnx`."""
MiB = 1024 * 1024


class ServerSettings(BaseSettings):
    """Where the data lives, the defaults of new collections, limits, network and security."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    data_dir: Path = Field(
        Path("data"), description="Directory of the collections (relative paths: to the cwd)."
    )
    model: str | None = Field(
        None,
        description="Default sentence-transformers model of new collections: a local directory "
        "or hub name. None: the bundled all-MiniLM-L6-v2 (no download).",
    )
    allowed_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Other models a client may name when creating a collection (the default "
        "model is always allowed). Empty: only the default, so clients cannot make the server "
        "load or download arbitrary models.",
    )
    beta: float = Field(
        DEFAULTS.beta, allow_inf_nan=False, description="Default β of new collections."
    )
    gamma: float = Field(
        DEFAULTS.gamma, allow_inf_nan=False, description="Default γ of new collections."
    )
    k: int | None = Field(
        DEFAULTS.k,
        ge=1,
        description="Default k of new collections (capped at the model's dimension; None: d).",
    )
    index_spec: str = Field(
        DEFAULTS.index_spec, min_length=1, description="Default FAISS factory spec."
    )
    rescore: Literal["off", "raw", "kernel"] = Field(
        DEFAULTS.rescore,
        description="How new collections re-score the index's candidates by default: `kernel` "
        "(exact cosine through the collection's kernel at `rescore_k` dimensions: what β, γ "
        "define; with β=γ=0 and all dimensions it is raw cosine), `raw` (the model's cosine) "
        "or `off` (the index's scores). Queries can say otherwise.",
    )

    api_key: SecretStr | None = Field(
        None,
        description="When set, every route but /health and /ready needs it in the X-API-Key "
        "header or as Authorization: Bearer. Empty or unset: no authentication.",
    )
    max_texts_per_request: int = Field(
        2048,
        ge=1,
        description="Most texts, documents or pairs in one synchronous request (documents, "
        "query, embed, similarity).",
    )
    max_ingest_documents: int = Field(
        200_000, ge=1, description="Most documents in one background ingest job."
    )
    max_tune_examples: int = Field(
        20_000, ge=1, description="Most labelled pairs or queries in one tune request."
    )
    max_body_bytes: int = Field(
        32 * MiB, ge=1024, description="Largest request body; larger ones get 413 unread."
    )
    max_top_k: int = Field(1000, ge=1, description="Largest top_k of a query.")
    read_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a client has to send a request's head (from connecting, or from "
        "the previous response) and each chunk of its body; slower clients are disconnected "
        "(head) or answered 408 (body).",
    )
    ingest_chunk: int = Field(
        4096,
        ge=1,
        description="Documents per committed chunk of a background ingest job: the encoder sorts "
        "a chunk by length, and a larger chunk pads less (1,024 short sentences padded 8% more "
        "tokens than 10,000 and their ingest job encoded up to 20% slower than a bare encode; "
        "4,096 matched it). A crash loses at most the chunk being encoded.",
    )
    refit_growth: float = Field(
        REFIT_GROWTH,
        ge=1.0,
        description="An ingest (job or CLI run) that ends with this many times the documents "
        "the kernel was fitted on refits it (a kernel fitted on the first chunks of an "
        "interrupted first ingest would otherwise serve the whole corpus).",
    )
    batch_size: int = Field(DEFAULT_BATCH_SIZE, ge=1, description="Encoder batch size.")
    backend: Backend = Field(
        DEFAULT_BACKEND,
        description="Encoder backend: `onnx` (ONNX Runtime fp32, the same vectors as `torch`, "
        "faster), `openvino` (the same export run by OpenVINO: faster on long texts in bulk on "
        "two of the three hosts measured), `torch` (sentence-transformers) or `onnx-int8` "
        "(faster still; slightly different vectors, so its collections take no other backend).",
    )
    ingest_backend: Backend | None = Field(
        None,
        description="Encoder backend of ingest jobs (bulk encoding). None: `openvino` where "
        "`backend` is `onnx` (the same vectors; faster on long texts in bulk on two of the "
        "three hosts measured), else `backend`. Its vectors must compare with `backend`'s (the "
        "fp32 backends all do).",
    )
    model_cache_dir: Path | None = Field(
        None,
        description="Where ONNX exports of the models are kept (made once from the local model "
        "files). None: $XDG_CACHE_HOME/whitened-search, else ~/.cache/whitened-search.",
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="Intra-op threads of the encoder (None: one per core).",
    )
    query_batch_ms: float | None = Field(
        None,
        ge=0,
        le=1000,
        allow_inf_nan=False,
        description="Single-text queries arriving within this many milliseconds are encoded as "
        "one batch; 0 turns batching off. None: by backend, where it pays: 2 ms for torch "
        "(1.6x the queries/s at 16 clients here), off for the exported ones (a batch pads "
        "every text to the longest; their queries/s halved).",
    )

    def collection_settings(
        self, dimension: int, given: Mapping[str, Any] | None = None
    ) -> Settings:
        """A new collection's settings: those `given`, else this server's defaults (a default
        k above the model's `dimension` becomes the dimension: `Settings.for_dimension`), for
        collections created over HTTP and by `ingest --ray` alike."""
        defaults = Settings(
            beta=self.beta,
            gamma=self.gamma,
            k=self.k,
            index_spec=self.index_spec,
            rescore=self.rescore,
        ).for_dimension(dimension)
        return defaults.updated(**(given or {}))

    def bulk_backend(self) -> Backend:
        """The backend of ingest jobs in force: the setting, else the one for `backend`."""
        if self.ingest_backend is not None:
            return self.ingest_backend
        return INGEST_BACKEND_BY_BACKEND.get(self.backend, self.backend)

    def query_batch_seconds(self) -> float:
        """The query-batching window in force: the setting, else the backend's default."""
        if self.query_batch_ms is not None:
            return self.query_batch_ms / 1000
        return QUERY_BATCH_MS_BY_BACKEND[self.backend] / 1000

    host: str = Field("127.0.0.1", description="Address `serve` listens on.")
    port: int = Field(8000, ge=0, le=65535, description="Port `serve` listens on.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed by CORS; empty: CORS off."
    )
    docs: bool = Field(True, description="Serve the OpenAPI docs at /docs, /redoc.")
    log_level: str = Field("info", description="uvicorn's log level for `serve`.")

    @model_validator(mode="after")
    def _no_unknown_variables(self) -> "ServerSettings":
        """A misspelt variable (WHITENED_SEARCH_BACKNED=torch) would be ignored silently: the
        server refuses to start instead, naming the nearest setting."""
        known = {name.upper() for name in type(self).model_fields} | set(OTHER_PROGRAMS)
        for variable in sorted(os.environ):
            name = variable[len(ENV_PREFIX) :]
            if variable.startswith(ENV_PREFIX) and name not in known:
                nearest = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0)
                raise ValueError(
                    f"unknown setting {variable}: did you mean {ENV_PREFIX}{nearest[0]}? "
                    "Unset it, or see the settings table in the README"
                )
        return self

    @model_validator(mode="after")
    def _ingest_vectors_compare(self) -> "ServerSettings":
        """Ingest jobs and queries must give vectors that compare: refuse to start otherwise."""
        try:
            require_compatible(self.backend, self.bulk_backend(), "WHITENED_SEARCH_BACKEND")
        except ModelMismatch:
            raise ValueError(
                f"INGEST_BACKEND {self.ingest_backend!r} gives other vectors than BACKEND "
                f"{self.backend!r}: leave INGEST_BACKEND unset, or pick an fp32 backend "
                "(onnx, openvino, torch) for both"
            ) from None
        return self

    @field_validator("rescore", mode="before")
    @classmethod
    def _rescore_was_a_flag(cls, value: Any) -> Any:
        """RESCORE=true/false, from before re-scoring spaces: raw and off."""
        flags = {"true": "raw", "1": "raw", "false": "off", "0": "off"}
        if isinstance(value, bool):
            return "raw" if value else "off"
        return flags.get(value.strip().lower(), value) if isinstance(value, str) else value

    @field_validator("allowed_models", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator(
        "api_key",
        "k",
        "model",
        "model_cache_dir",
        "threads",
        "query_batch_ms",
        "ingest_backend",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        """An empty variable is the setting's default (K= is every dimension), as the README's
        settings table says, not a value to parse."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

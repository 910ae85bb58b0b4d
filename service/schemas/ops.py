"""Bodies of /health and /ready."""

from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    status: Literal["starting", "ready", "degraded", "failed"]
    model_loaded: bool
    models: dict[str, str] = Field(description="Each model and its state: loaded, or an error.")
    collections_open: int
    unavailable: dict[str, str] = Field(description="Collections that failed to open and why.")

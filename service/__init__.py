"""whitened-search's HTTP service: a thin FastAPI layer over the `index` library.

`create_app` builds the application; `python -m service` or `whitened-search serve` runs it.
The names are imported on first use, so the CLI's client commands start without FastAPI.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.app import create_app
    from service.config import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from service.app import create_app

        return create_app
    if name == "Settings":
        from service.config import Settings

        return Settings
    raise AttributeError(f"module 'service' has no attribute {name!r}")

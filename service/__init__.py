"""whitened-search's HTTP service: a thin FastAPI layer over the `index` library.

`create_app` builds the application; `python -m service` or `whitened-search serve` runs it.
The names are imported on first use, so the CLI's client commands start without FastAPI.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.app import create_app
    from service.config import ServerSettings

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from service.app import create_app

        return create_app
    if name == "ServerSettings":
        from service.config import ServerSettings

        return ServerSettings
    raise AttributeError(f"module 'service' has no attribute {name!r}")

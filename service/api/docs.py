"""The API docs pages (/docs: Swagger UI, /redoc: ReDoc) with their scripts served by the app.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank offline, behind a
firewall and in the Docker image. The assets here come from the installed `fastapi-offline`
package (Swagger UI 5, ReDoc 2 and a favicon) and are served under /docs/assets: the pages
reference no other host. ReDoc gets no Google fonts for the same reason.
"""

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse

ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))
ASSETS = {path.name: path for path in ASSETS_DIR.iterdir() if path.is_file()}
ASSETS_URL = "/docs/assets"
DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
REDOC_URL = "/redoc"


def install(app: FastAPI) -> frozenset[str]:
    """Serve the docs pages and their assets on `app` (made with docs_url=redoc_url=None).

    Returns:
        every path these pages need, for the API key's open paths (the pages hold no secrets).
    """
    assert app.openapi_url is not None, "the docs need the OpenAPI schema"
    openapi_url = app.openapi_url

    def local(request: Request, path: str) -> str:
        """`path` under the request's root path (a proxy in front may mount the app below /)."""
        return f"{request.scope.get('root_path', '')}{path}"

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=local(request, openapi_url),
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=local(request, OAUTH2_REDIRECT_URL),
            swagger_js_url=local(request, f"{ASSETS_URL}/swagger-ui-bundle.js"),
            swagger_css_url=local(request, f"{ASSETS_URL}/swagger-ui.css"),
            swagger_favicon_url=local(request, f"{ASSETS_URL}/favicon.png"),
            swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=local(request, openapi_url),
            title=f"{app.title} - ReDoc",
            redoc_js_url=local(request, f"{ASSETS_URL}/redoc.standalone.js"),
            redoc_favicon_url=local(request, f"{ASSETS_URL}/favicon.png"),
            with_google_fonts=False,
        )

    @app.get(f"{ASSETS_URL}/{{name}}", include_in_schema=False)
    def asset_file(name: str) -> FileResponse:
        """One of the package's files, by name only (a route, not a mount: no path is joined
        from the request, and a 405 here lists GET like any other route's)."""
        if name not in ASSETS:
            raise HTTPException(404, f"no docs asset {name!r}")
        return FileResponse(ASSETS[name])

    assets = {f"{ASSETS_URL}/{name}" for name in ASSETS}
    return frozenset({openapi_url, DOCS_URL, OAUTH2_REDIRECT_URL, REDOC_URL, *assets})

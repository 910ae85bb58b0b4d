"""The docs pages work offline (issue 17 item 11): /docs and /redoc reference only assets the
server itself serves, and a real headless browser with every other host unreachable renders
every route of the schema from them."""

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_support import LiveServer

from service import ServerSettings, create_app

KEY = "docs-Key_123"
PAGES = ("/docs", "/redoc")
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An app with an API key (the pages and their assets must not need it); the pages touch no
    collection, so the app's lifespan (the model, the data directory) is not started."""
    settings = ServerSettings(data_dir=tmp_path_factory.mktemp("docs"), api_key=KEY)
    yield TestClient(create_app(settings))


def references(html: str) -> list[str]:
    """The URLs a page loads: src, href, ReDoc's spec-url and Swagger UI's schema url."""
    pattern = r"""(?:src|href|spec-url)="([^"]+)"|url: '([^']+)'"""
    return [a or b for a, b in re.findall(pattern, html)]


@pytest.mark.parametrize("page", PAGES)
def test_docs_reference_only_local_assets(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200, response.text
    html = response.text
    assert "http://" not in html and "https://" not in html, "the page names another host"
    urls = references(html)
    assert any(url.endswith(".js") for url in urls), urls
    assert "/openapi.json" in urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, (url, asset.text[:200])
        assert len(asset.content) > 100, url
        suffix = Path(url).suffix
        if suffix in CONTENT_TYPES:
            assert CONTENT_TYPES[suffix] in asset.headers["content-type"], url


def test_docs_assets_keep_the_rest_behind_the_key(client: TestClient) -> None:
    assert client.get("/docs/assets/nothing.js").status_code == 401
    assert client.get("/collections").status_code == 401
    refused = client.post("/docs/assets/swagger-ui.css")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET"


def test_only_the_packaged_assets_are_served(tmp_path: Path) -> None:
    client = TestClient(create_app(ServerSettings(data_dir=tmp_path)))
    for name in ("nothing.js", "..%2F__init__.py", "%2E%2E%2Fcore.py", "..%2F..%2Fapp.py"):
        response = client.get(f"/docs/assets/{name}")
        assert response.status_code == 404, (name, response.text[:200])


def test_no_docs_when_they_are_off(tmp_path: Path) -> None:
    client = TestClient(create_app(ServerSettings(data_dir=tmp_path, docs=False)))
    for path in (*PAGES, "/openapi.json", "/docs/assets/swagger-ui-bundle.js"):
        assert client.get(path).status_code == 404, path


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="needs Debian's chromium (apt-get install chromium) for a real browser",
)
def test_docs_render_every_route_offline_in_a_headless_browser(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "data", tmp_path / "server.log").start()
    try:
        with live.client() as http:
            paths = set(http.get("/openapi.json").json()["paths"])
        swagger = browse(f"{live.url}/docs", tmp_path)
        rendered = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', swagger))
        assert rendered == paths, (paths - rendered, swagger[-2000:])
        redoc = browse(f"{live.url}/redoc", tmp_path)
        missing = [path for path in paths if path not in redoc]
        assert not missing, (missing, redoc[-2000:])
    finally:
        live.stop()


def browse(url: str, tmp_path: Path) -> str:
    """The DOM of `url` after its scripts ran, in headless chromium that can resolve no host but
    127.0.0.1 (so a CDN reference leaves the page blank, as it is offline)."""
    command = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--virtual-time-budget=15000",
        "--dump-dom",
        url,
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("page", PAGES)
def test_docs_behind_a_proxy_prefix_reference_assets_under_it(tmp_path: Path, page: str) -> None:
    client = TestClient(create_app(ServerSettings(data_dir=tmp_path)), root_path="/search")
    urls = references(client.get(page).text)
    assert urls and all(url.startswith("/search/") for url in urls), urls

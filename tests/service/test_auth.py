"""The optional API key: off by default, and when set, needed everywhere but /health and /ready;
never logged; CORS off unless origins are configured."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_support import LiveServer, wait_ready

from service import ServerSettings, create_app

KEY = "s3cret-Key_123"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = ServerSettings(data_dir=tmp_path_factory.mktemp("auth"), api_key=KEY)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        yield client


ROUTES = [
    ("GET", "/collections", None),
    ("POST", "/collections", {"name": "locked"}),
    ("GET", "/collections/locked", None),
    ("DELETE", "/collections/locked", None),
    ("POST", "/collections/locked/documents", {"documents": [{"text": "a"}]}),
    ("POST", "/collections/locked/ingest", {"documents": [{"text": "a"}]}),
    ("GET", "/collections/locked/documents/a", None),
    ("POST", "/collections/locked/query", {"text": "a"}),
    ("POST", "/collections/locked/fit", {}),
    ("POST", "/collections/locked/tune", {"pairs": []}),
    ("POST", "/collections/locked/embed", {"texts": ["a"]}),
    ("POST", "/similarity", {"pairs": [{"text1": "a", "text2": "b"}]}),
    ("GET", "/jobs", None),
    ("GET", "/jobs/x", None),
    ("GET", "/metrics", None),
    ("GET", "/no/such/route", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong"},
        {"X-API-Key": KEY[:-1]},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer{KEY}"},
    ],
    ids=["none", "wrong", "prefix", "basic", "bearer-wrong", "no-space"],
)
def test_refused_without_the_key(
    client: TestClient, method: str, path: str, body: object, headers: dict[str, str]
) -> None:
    response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "API key" in response.json()["detail"]
    assert KEY not in response.text


def test_refused_before_the_body_is_read(client: TestClient) -> None:
    response = client.post(
        "/collections/x/query", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers", [{"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}], ids=["header", "bearer"]
)
def test_accepted_with_the_key(client: TestClient, headers: dict[str, str]) -> None:
    name = "open-" + next(iter(headers)).lower()
    created = client.post("/collections", json={"name": name}, headers=headers)
    assert created.status_code == 201
    added = client.post(
        f"/collections/{name}/documents",
        json={"documents": [{"text": "a guitar"}, {"text": "a violin"}]},
        headers=headers,
    )
    assert added.status_code == 201
    query = client.post(f"/collections/{name}/query", json={"text": "music"}, headers=headers)
    assert query.status_code == 200 and len(query.json()["results"][0]["hits"]) == 2
    assert client.get("/metrics", headers=headers).status_code == 200
    assert client.get("/collections/nope", headers=headers).status_code == 404


def test_probes_and_docs_stay_open(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert "security" in spec["paths"]["/collections"]["get"]
    assert "security" not in spec["paths"]["/health"]["get"]


def test_key_never_shown(client: TestClient) -> None:
    settings = client.app.state.settings
    assert KEY not in repr(settings) and KEY not in str(settings.model_dump())


def test_every_route_of_the_schema_needs_the_key(client: TestClient) -> None:
    """Driven by the OpenAPI schema itself, so a new route cannot be forgotten here."""
    open_paths = {"/health", "/ready"}
    checked = 0
    for path, operations in client.app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in operations:
            response = client.request(method.upper(), concrete, json={})
            if path in open_paths:
                assert response.status_code != 401, (method, path)
            else:
                assert response.status_code == 401, (method, path, response.text)
                checked += 1
    assert checked >= 15


def test_cors_is_off_by_default(client: TestClient) -> None:
    preflight = client.options(
        "/collections",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    simple = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


@pytest.mark.slow
def test_key_never_logged_by_a_live_server(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "data", tmp_path / "server.log", api_key=KEY, log_level="debug")
    live.start()
    try:
        with live.client() as client:
            wrong = "wrong-" + KEY[::-1]
            assert client.get("/collections", headers={"X-API-Key": wrong}).status_code == 401
            bearer = {"Authorization": f"Bearer {KEY}"}
            assert client.get("/collections", headers=bearer).status_code == 200
            assert client.get(f"/collections?key={KEY[:3]}", headers={"X-API-Key": KEY}).is_success
            # issue 17 item 12: a key sent in the query string is not accepted, nor logged
            for leak in (f"api_key={KEY}", f"token={KEY}", f"x={KEY}", f"API-KEY={wrong}"):
                assert client.get(f"/collections?{leak}").status_code == 401
            assert (
                client.post("/collections/x/query", headers={"X-API-Key": wrong}).status_code == 401
            )
        live.stop()
    finally:
        live.close()
    log = live.log.read_text()
    assert "GET /collections" in log  # requests are logged, without their headers
    assert KEY not in log and wrong not in log

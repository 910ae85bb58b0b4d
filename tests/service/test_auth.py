"""The optional API key: off by default, and when set, needed everywhere but /health and /ready."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from service_support import wait_ready

from service import Settings, create_app

KEY = "s3cret-Key_123"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("auth"), api_key=KEY)
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

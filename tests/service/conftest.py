"""Fixtures of the service tests. Apps are module-scoped: each loads the model once (about 2 s
after the first import), and the corpora are a few dozen short sentences."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from service_support import wait_ready

from service import ServerSettings, create_app


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One in-process app per test module, on a fresh data directory, ready."""
    settings = ServerSettings(data_dir=tmp_path_factory.mktemp("data"), ingest_chunk=16)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        yield client

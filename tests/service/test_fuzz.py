"""Schemathesis drives every route of the OpenAPI schema, in-process through the ASGI app, with
generated valid and invalid input: no answer is a 5xx, and every answer conforms to the schema
(status codes, content types, bodies). WHITENED_SEARCH_FUZZ_EXAMPLES=N sets the examples per route.

Hand-written hostile requests are in test_bad_input.py; this finds the ones nobody thought of.
"""

import os
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.python import asgi
from service_support import corpus, wait_ready

from index.catalog import NAME_PATTERN
from index.data_dir import LOCK_FILE
from service import Settings, create_app

EXAMPLES = int(os.environ.get("WHITENED_SEARCH_FUZZ_EXAMPLES", "20"))
KEY = "fuzz-key"  # the key is on: fuzzed requests send it, and must pass the middleware
# Two checks are left out. positive_data_acceptance: some schema-valid input is refused by design
# (limits that are server settings, blank texts, k above a collection's rank, "exactly one of
# text or texts"), each with a 422 that says what to change (test_bad_input.py checks them).
# ignored_auth: its probes open a second lifespan on the data directory, which the lock refuses;
# test_auth.py sends every route of this same schema without the key instead.
EXCLUDED = [checks.positive_data_acceptance, checks.ignored_auth]
SEEN: Counter[int] = Counter()  # status codes of every fuzzed request


# The app is built at import (schemathesis needs it when it collects the cases) for a fresh data
# directory; building touches no file: its lifespan, started by the fixture below, creates it.
DATA_DIR = Path(tempfile.gettempdir()) / f"whitened-fuzz-{uuid.uuid4().hex}" / "data"
APP = create_app(
    Settings(
        data_dir=DATA_DIR,
        max_texts_per_request=8,
        max_top_k=50,
        max_body_bytes=256 * 1024,
        max_ingest_documents=16,
        max_tune_examples=8,
        ingest_chunk=8,
        api_key=KEY,
    )
)
schema = schemathesis.openapi.from_dict(APP.openapi())


@pytest.fixture(scope="module")
def client() -> Iterator[asgi.ASGIClient]:
    """APP running with one fitted collection `fuzz`; small limits, so fuzzing reaches them.

    TestClient runs the lifespan for the whole module: schemathesis' pytest plugin would stop a
    lifespan it started after each test (and load the model again for the next).
    """
    try:
        with TestClient(APP, headers={"X-API-Key": KEY}) as running:
            wait_ready(running)
            assert running.post("/collections", json={"name": "fuzz", "k": 4}).status_code == 201
            added = running.post("/collections/fuzz/documents", json={"documents": corpus()[:8]})
            assert added.status_code == 201
            session = asgi.get_client(APP)
            session.headers["X-API-Key"] = KEY
            yield session
    finally:
        shutil.rmtree(DATA_DIR.parent, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_route_answers_within_its_schema(case: Any, client: asgi.ASGIClient) -> None:
    response = case.call_and_validate(session=client, excluded_checks=EXCLUDED)
    SEEN[response.status_code] += 1


def test_fuzzing_ran_and_nothing_escaped(client: asgi.ASGIClient) -> None:
    print(f"\nfuzzed requests by status: {dict(sorted(SEEN.items()))}")
    assert sum(SEEN.values()) >= 100
    assert not [status for status in SEEN if status >= 500]
    for path in DATA_DIR.iterdir():  # only collections (whatever names were fuzzed) and the lock
        assert path.name == LOCK_FILE or NAME_PATTERN.fullmatch(path.name), path
    assert list(DATA_DIR.parent.iterdir()) == [DATA_DIR]

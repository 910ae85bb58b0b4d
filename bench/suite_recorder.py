"""A pytest plugin that keeps what a run of the suite did: each test's outcome, seconds, figures.

The figures are what tests record with `record_property` (kills, requests by status).

`python -m bench suite` loads it (`-p bench.suite_recorder`) and names the file in
SUITE_RESULT_ENV; without that variable it does nothing, so a plain `pytest` is untouched.
"""

import json
import os
from pathlib import Path
from typing import Any

import pytest

SUITE_RESULT_ENV = "WHITENED_SUITE_RESULT"
"""Where the recorder writes its JSON (set by bench.suite for the child pytest)."""


class Recorder:
    """Folds the setup, call and teardown reports of each test into one outcome and its seconds.
    A test is a list entry, not a key: schemathesis runs one test function per route under one
    node id."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tests: list[dict[str, Any]] = []
        self.running: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "setup" or report.nodeid not in self.running:
            test = {"id": report.nodeid, "outcome": "passed", "seconds": 0.0}
            self.tests.append(test)
            self.running[report.nodeid] = test
        test = self.running[report.nodeid]
        test["seconds"] += report.duration
        if report.failed:
            test["outcome"] = "failed" if report.when == "call" else "error"
        elif report.skipped and test["outcome"] == "passed":
            test["outcome"] = "skipped"
            test["reason"] = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        if report.user_properties:
            test.setdefault("figures", {}).update(dict(report.user_properties))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.path.write_text(
            json.dumps({"exit_status": int(exitstatus), "tests": self.tests}, default=str),
            encoding="utf-8",
        )


def pytest_configure(config: pytest.Config) -> None:
    if path := os.environ.get(SUITE_RESULT_ENV):
        config.pluginmanager.register(Recorder(Path(path)), "whitened-suite-recorder")

"""`python -m bench suite`: the README's test command, timed, and what it saw kept as a result.

The README says how long the suite takes here (the bar is 15 minutes on 2 cores) and what the
fault and fuzz tests saw; those figures are rendered from bench/results/suite.json, which this
writes, rather than copied from a log. The suite runs as the README runs it (`python -m pytest`
from the repository root, in a child process) plus the recorder plugin (bench.suite_recorder);
the wall seconds are the child's, start-up and collection included. `--smoke` runs one small
test file: the suite's own smoke test runs that.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import data, report
from bench.peers_passes import now
from bench.suite_recorder import SUITE_RESULT_ENV

ROOT = Path(__file__).resolve().parents[1]
SMOKE_TESTS = ["tests/test_index_spec.py"]
SLOWEST = 10
"""Tests the table lists, slowest first."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tests", nargs="*", help="test paths (default: the whole suite)")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else report.RESULTS_DIR
    tests = SMOKE_TESTS if args.smoke else args.tests
    env = dict(os.environ)
    if args.data:
        env[data.ENV_VAR] = args.data
    load_start, started = os.getloadavg(), now()
    with tempfile.TemporaryDirectory() as tmp:
        env[SUITE_RESULT_ENV] = str(Path(tmp) / "tests.json")
        began = time.perf_counter()
        command = [sys.executable, "-m", "pytest", "-p", "bench.suite_recorder", *tests]
        status = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
        seconds = time.perf_counter() - began
        recorded = json.loads(Path(env[SUITE_RESULT_ENV]).read_text(encoding="utf-8"))
    figures = {
        "command": " ".join(["python -m pytest", *tests]),
        "smoke": args.smoke,
        "started": started,
        "finished": now(),
        "seconds": seconds,
        "exit_status": status,
        "host": report.host(),
        "load_average": [load_start, os.getloadavg()],
        "tests": recorded["tests"],
    }
    report.write_json(out / "suite.json", figures)
    print(report.write_text(out / "suite.md", "# The test suite\n\n" + markdown(figures)))
    return status


def markdown(figures: dict[str, Any]) -> str:
    """One sentence of counts and time, the slowest tests, and the figures tests recorded."""
    tests = figures["tests"]
    counts = Counter(test["outcome"] for test in tests)
    host = figures["host"]
    head = (
        f"{'**SMOKE RUN.** ' if figures['smoke'] else ''}`{figures['command']}` "
        f"(`bench/results/suite.json`, finished {figures['finished']}; {host['cores']} cores, "
        f"{host['cpu']} {host['family_model_stepping']}; load average "
        f"{figures['load_average'][0][0]:.1f} at the start): "
        f"**{', '.join(f'{n} {outcome}' for outcome, n in sorted(counts.items()))} in "
        f"{report.format_seconds(figures['seconds'])}**, exit status {figures['exit_status']}."
    )
    slowest = sorted(tests, key=lambda test: -test["seconds"])[:SLOWEST]
    table = report.markdown_table(
        ["slowest tests (setup, call and teardown)", "seconds"],
        [[f"`{test['id']}`", f"{test['seconds']:.1f}"] for test in slowest],
    )
    notes = [
        f"{test['outcome']} `{test['id']}`: {test.get('reason', '')}".rstrip(": ")
        for test in tests
        if test["outcome"] != "passed"
    ]
    notes += [
        f"`{test['id']}` saw: "
        + "; ".join(f"{name}: {_plain(value)}" for name, value in test["figures"].items())
        for test in tests
        if test.get("figures")
    ]
    return "\n\n".join([head, table, "\n".join(f"- {line}" for line in notes)]).rstrip()


def _plain(value: Any) -> str:
    """A recorded figure as prose: a dict as `key value, ...`."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {count}" for key, count in value.items())
    return f"{value:,}" if isinstance(value, int) else str(value)

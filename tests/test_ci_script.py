"""`.ci/run` must exit non-zero when any step fails (the README's promise)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("failing", ["scripts/setup.sh", "tests/docker/smoke.sh"])
def test_ci_exits_non_zero_when_a_step_fails(tmp_path: Path, failing: str) -> None:
    """`setup.sh && pytest` under set -e went on to the smoke test when the set-up failed, and
    the smoke test's 0 became CI's: a run with no tests passed."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    steps = {"scripts/setup.sh": "exit 0", "tests/docker/smoke.sh": "exit 0"}
    steps[failing] = "exit 3"
    for step, body in steps.items():
        (tmp_path / step).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / step).write_text(body + "\n")
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").write_text("#!/bin/sh\nexit 0\n")  # stands for the passing pytest
    (venv / "python").chmod(0o755)
    done = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, timeout=30)
    assert done.returncode == 3, (failing, done.returncode, done.stderr)

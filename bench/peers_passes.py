"""The passes of one peers run, kept on disk after each one so that a stopped run resumes.

A run of 100,000 sentences takes hours (each system ingests them three times), longer than a
machine is often free: after every system's pass its rows go to `<result>.partial.json`
(replaced whole, so a kill leaves the last complete one), and `--resume` starts from there,
skipping the passes it holds and trying a failed peer again. The run's identity (corpus,
sizes, model, encoder, repeats, host) must match, so a partial file never mixes two kinds of
run or two machines; the final result file replaces it.
"""

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import report


@dataclass
class Passes:
    """Rows measured so far, failed peers, and the times the run was started or resumed."""

    path: Path
    identity: dict[str, Any]
    """What a resumed run must share with the partial file it continues (corpus, sizes, model,
    encoder, repeats, chunk, host)."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    """Peer name -> why its pass failed in this run, which does not run it again. Not kept on
    disk: a resumed run tries the peer again, as what failed may be fixed by then (a pass that
    outran the harness's deadline, `Bench.deadline_seconds`)."""
    loads: list[list[float]] = field(default_factory=list)
    started: list[str] = field(default_factory=list)

    @classmethod
    def begin(cls, path: Path, identity: dict[str, Any], resume: bool) -> "Passes":
        """A new run, or with `resume` the one whose partial file is at `path`."""
        fresh = {"loads": [list(os.getloadavg())], "started": [now()]}
        if not resume:
            return cls(path, identity, **fresh)
        if not path.is_file():
            raise SystemExit(f"bench peers --resume: no partial run at {path}: run without it")
        kept = json.loads(path.read_text(encoding="utf-8"))
        keys = sorted(identity.keys() | kept["identity"].keys())
        differ = [key for key in keys if kept["identity"].get(key) != identity.get(key)]
        if differ:
            raise SystemExit(
                f"bench peers --resume: {path} is a run with other {', '.join(differ)}: pass the "
                "same options, or run without --resume (which starts afresh)"
            )
        return cls(
            path,
            identity,
            kept["rows"],
            loads=kept["loads"] + fresh["loads"],
            started=kept["started"] + fresh["started"],
        )

    def done(self, repetition: int, system: str) -> bool:
        return any(row["repetition"] == repetition and row["run"] == system for row in self.rows)

    def add(self, rows: list[dict[str, Any]]) -> None:
        """One system's pass measured: kept on disk before the next starts."""
        self.rows += rows
        self._save()

    def finish(self) -> None:
        """The result file is written: the partial one has served."""
        self.path.unlink(missing_ok=True)

    def _save(self) -> None:
        kept = {
            "identity": self.identity,
            "rows": self.rows,
            "loads": self.loads,
            "started": self.started,
        }
        report.write_json(self.path, kept)  # replaced whole: a kill leaves the last pass kept


def now() -> str:
    """The minute, as the result files say when a run started, resumed and finished."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

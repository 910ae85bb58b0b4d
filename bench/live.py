"""A real server in a child process: `python -m service` on 127.0.0.1 and a free port (a test and
benchmark harness: it lives beside the benchmarks, outside the installed product).

Shared by the tests (restarts, SIGKILL) and the benchmarks (HTTP figures, the server's peak RSS),
so both drive the service exactly as a user would.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.drivers.peer_server import free_port
from service.config import ENV_PREFIX

ROOT = Path(__file__).resolve().parents[1]


def wait_job(
    client: httpx.Client, job_id: str, timeout: float = 120.0, interval: float = 0.05
) -> dict[str, Any]:
    """Poll GET /jobs/{id} every `interval` s until the job is done or failed; TimeoutError
    after `timeout` s. Benchmarks poll every 0.5 s: polling competes with the job for the CPU."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['state']} after {timeout} s: {job}")
        time.sleep(interval)


class ServerFailed(RuntimeError):
    """The server exited, never became ready, or did not shut down cleanly; says why (log tail)."""


class LiveServer:
    """`python -m service` on 127.0.0.1 and a free port, over `data_dir`, logging to `log`.

    Args:
        settings: WHITENED_SEARCH_* settings by lower-case name (`ingest_chunk=25`).
        inherit_settings: also pass on the WHITENED_SEARCH_* variables of this process (a
            benchmark compares backends that way); by default they are dropped, so tests see
            only the settings they name.
        preexec: run in the child before it starts (resource limits of the full-disk test).
        ray: serve through Ray Serve on a local Ray started by the server (`serve --ray`);
            its Ray processes are the server's descendants (`tree_rss`).
    """

    def __init__(
        self,
        data_dir: Path,
        log: Path,
        inherit_settings: bool = False,
        preexec: Callable[[], None] | None = None,
        ray: bool = False,
        **settings: Any,
    ) -> None:
        self.data_dir = data_dir
        self.preexec = preexec
        self.log = log
        self.inherit_settings = inherit_settings
        self.settings = settings
        self.ray = ray
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if self.inherit_settings or not k.startswith(ENV_PREFIX)
        }
        for key, value in self.settings.items():
            env[f"{ENV_PREFIX}{key.upper()}"] = (
                value if isinstance(value, str) else json.dumps(value)
            )
        return env

    def launch(self) -> "LiveServer":
        """Start the process and return at once (the fault tests kill it while it starts)."""
        command = [
            sys.executable,
            "-m",
            "service",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "info",
            *(["--ray"] if self.ray else []),
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=self.preexec,
            )
        return self

    def start(self, timeout: float = 120.0) -> "LiveServer":
        """Launch and wait until /ready answers 200."""
        self.launch()
        assert self.process is not None
        with httpx.Client(base_url=self.url, timeout=5) as client:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServerFailed(f"server exited: {self.log.read_text()[-3000:]}")
                try:
                    if client.get("/ready").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise ServerFailed(f"server not ready: {self.log.read_text()[-3000:]}")

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, **{"timeout": 120, **kwargs})

    def peak_rss(self) -> int:
        """Peak resident memory of the running server in bytes (VmHWM of /proc/<pid>/status)."""
        return self._status_bytes("VmHWM")

    def rss(self) -> int:
        """Resident memory of the running server now, in bytes (VmRSS of /proc/<pid>/status)."""
        return self._status_bytes("VmRSS")

    def tree_rss(self) -> int:
        """Resident memory now of the server and every process it started (a local Ray's), in
        bytes."""
        total = 0
        for pid in self._tree():
            try:
                total += status_bytes(pid, "VmRSS")
            except (OSError, ValueError):  # ended, or a zombie without memory
                continue
        return total

    def _tree(self) -> set[int]:
        """The server's pid and its descendants'."""
        if self.process is None:
            raise ServerFailed("the server is not running")
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # it ended meanwhile
                continue
            parents[int(stat.parent.name)] = int(fields[1])
        tree, grown = {self.process.pid}, True
        while grown:
            more = {pid for pid, parent in parents.items() if parent in tree} - tree
            tree |= more
            grown = bool(more)
        return tree

    def _status_bytes(self, field: str) -> int:
        if self.process is None:
            raise ServerFailed("the server is not running")
        return status_bytes(self.process.pid, field)

    def stop(self) -> None:
        """SIGTERM and wait: uvicorn shuts down gracefully (the app checkpoints and unlocks),
        then re-raises the signal, so the exit status is -SIGTERM."""
        assert self.process is not None
        logged = self.log.stat().st_size
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=60)
        tail = self.log.read_bytes()[logged:].decode(errors="replace")
        if status not in (0, -signal.SIGTERM):
            raise ServerFailed(f"server exited with status {status}: {tail}")
        if "Application shutdown complete" not in tail or "Traceback" in tail:
            raise ServerFailed(f"server did not shut down cleanly: {tail}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no shutdown code runs
        self.process.wait(timeout=30)

    def close(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if not self.ray:
            self.kill()
            return
        tree = self._tree()  # Ray's processes: interrupted, the server stops the Ray it began
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        for pid in tree - {self.process.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # what outlived it


def status_bytes(pid: int, field: str) -> int:
    """A kB memory field of /proc/<pid>/status (VmRSS: now, VmHWM: peak), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no {field} in /proc/{pid}/status")

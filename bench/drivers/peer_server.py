"""A peer's own HTTP server on 127.0.0.1, for the HTTP-against-HTTP rows of the peers table.

txtai's API (`txtai.api` on uvicorn) and Chroma's server (`chroma run`) are started by their
drivers over the directory the in-process pass wrote, queried over HTTP as their users would,
and stopped; the server's peak resident memory is read from /proc before it stops, as ours is.
Standard library only, like driver.py.
"""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

STARTUP_SECONDS = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One server process, ready once `ready_path` answers 200; its log beside the workdir."""

    def __init__(self, command: list[str], log: Path, ready_path: str, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [part.replace("{port}", str(self.port)) for part in command],
                env={**os.environ, **env},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self._wait(ready_path)

    def _wait(self, path: str) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self._tail()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"server not ready in {STARTUP_SECONDS:.0f} s: {self._tail()}")

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=60) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]

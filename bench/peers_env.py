"""The peers' virtual environments: what each holds, whether it is ready, and making it.

The peers (txtai, Chroma, LanceDB, Qdrant's client and Qdrant Edge) never enter the project's
dependencies: each gets its own environment under bench/.peers/, made by `python -m bench peers
--setup` and stamped with what was installed, so a run can say exactly why a peer is skipped and
how to make it. Those that take vectors from the client (LanceDB, both Qdrants) also hold
sentence-transformers, with which their drivers encode (bench/drivers/sentence_encoder.py).
"""

import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import chroma_model
from index.encoder import bundled_model_path

log = logging.getLogger(__name__)

PEERS_DIR = Path(__file__).resolve().parent / ".peers"
TORCH = "torch==2.13.0"
"""Installed first in every environment: the CPU build where PIP_FIND_LINKS offers it; a later
install that let pip choose would pull a multi-GB CUDA build."""
SENTENCE_TRANSFORMERS = "sentence-transformers==6.3.0"
"""In every environment, the same version: the shared encoder of `--encoder shared`
(bench/drivers/sentence_encoder.py), and the client-side encoder of the stores that take vectors."""


@dataclass(frozen=True)
class Peer:
    """A system beside ours: the packages of its environment and the driver that runs it."""

    name: str
    requirements: tuple[str, ...]
    driver: str
    http: bool = False
    """Has a server of its own to measure over HTTP beside ours (txtai's API, `chroma run`)."""
    chroma_model: bool = False
    """Runs with HOME set to its own folder, where `--setup` puts the ONNX model files that Chroma's
    default embedding function would download (bench.chroma_model)."""

    def home(self, peers_dir: Path) -> Path:
        return peers_dir / self.name

    def user_home(self, peers_dir: Path) -> Path:
        return self.home(peers_dir) / "home"

    def python(self, peers_dir: Path) -> Path:
        return self.home(peers_dir) / "bin" / "python"

    def stamp(self) -> str:
        """What a complete environment's `.installed` file holds: every requirement, in order."""
        return "\n".join((TORCH, *self.requirements)) + "\n"

    def missing(self, peers_dir: Path) -> str | None:
        """Why this peer cannot run (no environment, or an outdated one), else None."""
        stamp = self.home(peers_dir) / ".installed"
        if not self.python(peers_dir).is_file() or not stamp.is_file():
            state = "has no virtual environment"
        elif stamp.read_text(encoding="utf-8") != self.stamp():
            state = "has a virtual environment with other versions"
        elif (
            self.chroma_model
            and not (chroma_model.model_folder(self.user_home(peers_dir)) / "model.onnx").is_file()
        ):
            state = "lacks the ONNX files of its default embedding function"
        else:
            return None
        where = "" if peers_dir == PEERS_DIR else f" --peers-dir {peers_dir}"
        return (
            f"{self.name} skipped: it {state} at {self.home(peers_dir)}; create it with "
            f"`.venv/bin/python -m bench peers --setup{where}` (a few minutes, downloads from PyPI)"
        )


PEERS = (
    Peer(
        "txtai",
        ("txtai[api]==9.14.0", "faiss-cpu==1.15.1", SENTENCE_TRANSFORMERS),
        "txtai",
        http=True,
    ),
    Peer(
        "chroma", ("chromadb==1.5.9", SENTENCE_TRANSFORMERS), "chroma", http=True, chroma_model=True
    ),
    Peer("lancedb", ("lancedb==0.40.0", SENTENCE_TRANSFORMERS), "lancedb"),
    Peer("qdrant", ("qdrant-client==1.20.0", SENTENCE_TRANSFORMERS), "qdrant"),
    Peer("qdrant-edge", ("qdrant-edge-py==0.9.0", SENTENCE_TRANSFORMERS), "qdrant_edge"),
)


class SetupFailed(RuntimeError):
    """A peer's environment could not be made as the benchmark needs it."""


def setup(peer: Peer, peers_dir: Path) -> None:
    """Create the peer's venv: pip, then torch (CPU) first, then its packages; check torch."""
    home, python = peer.home(peers_dir), peer.python(peers_dir)
    if peer.missing(peers_dir) is None:
        log.info("%s: environment up to date at %s", peer.name, home)
        return
    log.info("%s: creating %s (pip installs; minutes)", peer.name, home)
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for packages in (["--upgrade", "pip"], [TORCH], list(peer.requirements)):
        subprocess.run([*pip, *packages], check=True)
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    )
    installed = {row["name"].lower(): row["version"] for row in json.loads(listed.stdout)}
    torch = installed.get("torch", "")
    cuda = sorted(name for name in installed if name.startswith("nvidia-"))
    if not torch.startswith(TORCH.split("==")[1]) or cuda:
        raise SetupFailed(
            f"{peer.name}: torch {torch or 'missing'} with {cuda or 'no'} CUDA packages in {home}: "
            f"the CPU build of {TORCH} is needed (set PIP_FIND_LINKS to where its wheel is), "
            "delete the folder and run --setup again"
        )
    if peer.chroma_model:
        folder = chroma_model.export(Path(bundled_model_path()), peer.user_home(peers_dir))
        log.info("%s: its default embedding function's files are in %s", peer.name, folder)
    (home / ".installed").write_text(peer.stamp(), encoding="utf-8")
    log.info("%s: ready (torch %s)", peer.name, torch)

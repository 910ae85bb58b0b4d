"""Helpers of the service tests: a small topical corpus, polling, and a real server process
(`bench.live`, shared with the benchmarks).

Everything is real: the bundled model, FAISS, files on disk, HTTP.
"""

import os
import time
from pathlib import Path
from typing import Any

import httpx

from bench.drivers.peer_server import free_port as free_port
from bench.live import ROOT as ROOT
from bench.live import LiveServer as LiveServer
from bench.live import wait_job as wait_job

SHARED_DATA = Path(os.environ.get("WHITENED_TEST_DATA", ROOT.parent / "shared" / "data"))

TOPICS: dict[str, list[str]] = {
    "music": [
        "A man is playing a guitar on stage.",
        "She practises the piano every evening.",
        "The orchestra performed a symphony by Beethoven.",
        "A drummer keeps the rhythm for the band.",
        "The singer released a new album of love songs.",
        "He tunes his violin before the concert.",
    ],
    "cooking": [
        "A woman is slicing an onion in the kitchen.",
        "Bake the bread for forty minutes in a hot oven.",
        "The chef seasons the soup with salt and pepper.",
        "He is frying eggs and bacon for breakfast.",
        "Stir the sauce until it thickens.",
        "Chop the garlic and add it to the pan.",
    ],
    "finance": [
        "The stock market fell sharply on Monday.",
        "The central bank raised interest rates again.",
        "Shares of the tech company dropped after earnings.",
        "Investors moved their money into government bonds.",
        "Inflation reached its highest level in a decade.",
        "The currency weakened against the dollar.",
    ],
    "animals": [
        "A dog is running through the park.",
        "The cat sleeps on the warm windowsill.",
        "A herd of elephants crossed the river.",
        "Birds are building a nest in the tree.",
        "The horse galloped across the field.",
        "A small fish swims near the coral reef.",
    ],
    "sports": [
        "The striker scored a goal in the final minute.",
        "She won the marathon in record time.",
        "The tennis player served an ace to win the match.",
        "The basketball team lost in overtime.",
        "Cyclists raced up the mountain pass.",
        "The swimmer broke the world record.",
    ],
}


def corpus() -> list[dict[str, Any]]:
    """30 documents, ids like music-0, metadata {"topic": ..., "n": position in topic}."""
    return [
        {"id": f"{topic}-{n}", "text": text, "metadata": {"topic": topic, "n": n}}
        for topic, texts in TOPICS.items()
        for n, text in enumerate(texts)
    ]


def filler(n: int, prefix: str = "filler") -> list[dict[str, Any]]:
    """n distinct short documents (for volume: jobs, concurrency, crashes)."""
    subjects = ["The old man", "A young girl", "The teacher", "My neighbour", "A tourist"]
    verbs = ["reads", "paints", "writes about", "photographs", "talks about"]
    objects = ["the sea", "a mountain", "the city at night", "an old castle", "a busy market"]
    docs = []
    for i in range(n):
        s, v, o = subjects[i % 5], verbs[(i // 5) % 5], objects[(i // 25) % 5]
        docs.append({"id": f"{prefix}-{i}", "text": f"{s} {v} {o}, number {i}."})
    return docs


def wait_ready(client: Any, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = client.get("/ready")
            if response.status_code in (200, 503) and response.json()["status"] != "starting":
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready after {timeout} s")

"""The shared encoder by itself (`bench peers --encoder shared`): each query encoded alone, as the
peers' drivers encode it (bench/drivers/sentence_encoder.py), nothing stored or searched; or, with
`"path": "ours"` in the job, through ours' encoder (index.encoder.Encoder, torch backend, the
shared threads and batch) called from a pool thread, as the server's threadpool calls it.

Run after every system's pass with the project's interpreter (the same torch and
sentence-transformers as the peers' environments, bench.peers_env), so each pass's query latency
is read against what the encoder alone took minutes from it: this host's speed drifts by more
than the systems differ, and the difference is what the system adds around the encoder. The two
paths, run back to back, say what ours' encoding code (text cut, hop to its torch thread) adds to
the bare encoder. Before the queries, the job's documents (the corpus's first ones,
bench.peers_drivers.ENCODER_SAMPLE) are encoded as an ingest chunk is, and nothing is kept: the
ingest time is the encoder's alone, to read each system's ingest rate against.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import driver


class EncoderAlone(driver.System):
    packages = ("sentence-transformers", "torch")

    def __init__(self, job: driver.Job) -> None:
        self.encode: Callable[[list[str]], object]
        if job.get("path") == "ours":
            from index.encoder import Encoder

            ours = Encoder(
                batch_size=job["encoder_batch"], backend="torch", threads=job["encoder_threads"]
            )
            pool = ThreadPoolExecutor(1)
            self.encode = lambda texts: pool.submit(ours.encode, texts).result()
        else:
            encoder = driver.shared_encoder(job)
            if encoder is None:
                raise SystemExit("encoder_driver.py times the shared encoder: the job has none")
            self.encode = encoder.encode
        self.encode(["warm up"])  # ours loads its model on first use; torch's first pass is slow

    def ingest(self, ids: list[str], texts: list[str]) -> None:
        self.encode(texts)  # and nothing stored

    def finish(self) -> None:
        """Nothing to make durable: the encoder alone stores nothing."""

    def search(self, text: str, top_k: int) -> list[str]:
        self.encode([text])
        return []


if __name__ == "__main__":
    driver.main(EncoderAlone)

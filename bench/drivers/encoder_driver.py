"""The shared encoder by itself (`bench peers --encoder shared`): each query encoded alone, as the
peers' drivers encode it (bench/drivers/sentence_encoder.py), nothing stored or searched.

Run after every system's pass with the project's interpreter (the same torch and
sentence-transformers as the peers' environments, bench.peers_env), so each pass's query latency
is read against what the encoder alone took minutes from it: this host's speed drifts by more
than the systems differ, and the difference is what the system adds around the encoder.
"""

import driver


class EncoderAlone(driver.System):
    packages = ("sentence-transformers", "torch")

    def __init__(self, job: driver.Job) -> None:
        encoder = driver.shared_encoder(job)
        if encoder is None:
            raise SystemExit("encoder_driver.py measures the shared encoder: the job names none")
        self.encoder = encoder

    def ingest(self, ids: list[str], texts: list[str]) -> None:
        raise NotImplementedError("the encoder alone stores nothing")

    def finish(self) -> None:
        raise NotImplementedError("the encoder alone stores nothing")

    def search(self, text: str, top_k: int) -> list[str]:
        self.encoder.encode([text])
        return []


if __name__ == "__main__":
    driver.main(EncoderAlone)

"""What every benchmark run needs from its command line: where to write, the data, the encoder."""

import argparse
from dataclasses import dataclass
from pathlib import Path

from bench import data, report
from bench.cache import EmbeddingCache
from index.encoder import Encoder


@dataclass(frozen=True)
class RunContext:
    out: Path
    root: Path
    encoder: Encoder
    cache: EmbeddingCache


def from_args(args: argparse.Namespace) -> RunContext:
    """The output folder, data folder, encoder and embedding cache that the common flags name."""
    return RunContext(
        out=Path(args.out) if args.out else report.RESULTS_DIR,
        root=Path(args.data) if args.data else data.data_dir(),
        encoder=Encoder(args.model, batch_size=args.batch_size),
        cache=EmbeddingCache(args.cache_dir, enabled=not args.no_cache),
    )

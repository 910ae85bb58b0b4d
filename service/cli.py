"""`whitened-search`: the command line's arguments, and each command run with failures in one line.

    whitened-search serve [--host H] [--port P] [--data-dir DIR]
    whitened-search ingest FILE --collection NAME [--create] [--upsert] [--url URL]
    whitened-search query TEXT --collection NAME [--top-k N] [--filter KEY=VALUE] [--url URL]

`serve` and `export-model` run here (`service.cli_serve`); `ingest` and `query` are clients of a
running server (--url, default $WHITENED_SEARCH_URL or http://127.0.0.1:8000;
`service.cli_client`), and `ingest --ray` loads straight into a data directory
(`service.cli_ray`).
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from index.encoder import BACKENDS
from service.cli_client import URL_VARIABLE, ingest, query
from service.cli_error import CliError
from service.cli_serve import export_model, serve
from service.sources import FORMATS


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CliError as exc:
        print(f"whitened-search: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("whitened-search: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whitened-search",
        description="Semantic search with a whitening-compressed FAISS index.",
        epilog="ServerSettings come from WHITENED_SEARCH_* environment variables (see the README); "
        "the API key from WHITENED_SEARCH_API_KEY, never from the command line.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("serve", help="run the HTTP service")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8000)")
    p.add_argument("--data-dir", help="directory of the collections (default ./data)")
    p.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--backend", choices=BACKENDS, help="encoder backend (default onnx)")
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="serve the same API on Ray Serve, models in an encoder deployment and each shard of "
        "a sharded collection in a Ray actor (the `distributed` extra; docs/SCALING.md): on the "
        "cluster at ADDRESS (`auto`: the one `ray start` began on this machine), or without "
        "ADDRESS on a local Ray",
    )
    p.set_defaults(run=serve)

    p = commands.add_parser(
        "export-model",
        help="build the ONNX files of the server's model now (else made on first use)",
    )
    p.add_argument(
        "--backend", choices=BACKENDS[1:], action="append", help="default: every exported one"
    )
    p.set_defaults(run=export_model)

    def client_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--collection", "-c", required=True, help="collection name")
        p.add_argument("--url", help=f"server URL (default ${URL_VARIABLE} or the serve address)")

    p = commands.add_parser(
        "ingest",
        help="add the documents of a file to a collection, through a running server",
        description="Read FILE (.jsonl: {text, id?, metadata?} per line; .txt: a text per line; "
        ".csv/.tsv/.parquet: a 'text' column, optional 'id', other columns as metadata) and add "
        "it in "
        "batches. A collection without a kernel gets one fitted on the whole file at the end.",
    )
    p.add_argument("file", type=Path, help="the file to read")
    client_options(p)
    p.add_argument("--create", action="store_true", help="create the collection if missing")
    p.add_argument("--upsert", action="store_true", help="replace documents whose id exists")
    p.add_argument("--format", choices=FORMATS, help="default: suffix")
    p.add_argument("--id-field", default="id", help="field of the id (jsonl, csv; default id)")
    p.add_argument(
        "--text-field",
        action="append",
        metavar="NAME",
        help="field of the text (default text); repeat to join several with a space, e.g. "
        "--id-field _id --text-field title --text-field text for a BEIR corpus.jsonl",
    )
    p.add_argument("--batch", type=_positive, default=256, help="documents per request")
    p.add_argument("--beta", type=float, help="β of a collection made by --create")
    p.add_argument("--gamma", type=float, help="γ of a collection made by --create")
    p.add_argument("--k", type=_positive, help="k of a collection made by --create")
    p.add_argument("--index-spec", help="FAISS spec of a collection made by --create")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    ray = p.add_argument_group(
        "distributed (needs the `distributed` extra; see docs/SCALING.md)",
        "With --ray the file is encoded on a Ray cluster and loaded straight into --data-dir "
        "(no server may run on it meanwhile); `serve` then serves the collection.",
    )
    ray.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="encode on the Ray cluster at ADDRESS (`auto`: the one `ray start` began on this "
        "machine); without ADDRESS, on a local Ray started for this run",
    )
    ray.add_argument("--data-dir", help="data directory to load into (default ./data)")
    ray.add_argument("--actors", type=_positive, default=2, help="encoder actors (default 2)")
    ray.add_argument("--cpus-per-actor", type=float, default=1.0, help="default 1")
    ray.add_argument("--gpus-per-actor", type=float, default=0.0, help="default 0")
    ray.add_argument(
        "--encoded",
        type=Path,
        help="directory of the Parquet output (default ./NAME.encoded); a finished one of the "
        "same documents is loaded again without re-encoding",
    )
    p.set_defaults(run=ingest)

    p = commands.add_parser("query", help="search a collection, through a running server")
    p.add_argument("text", help="the query text")
    client_options(p)
    p.add_argument("--top-k", "-k", type=_positive, default=10, help="hits to show (default 10)")
    p.add_argument(
        "--filter", action="append", metavar="KEY=VALUE", help="metadata equality (repeatable)"
    )
    p.add_argument("--json", action="store_true", help="print the API's JSON answer")
    p.set_defaults(run=query)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive")
    return value


if __name__ == "__main__":
    sys.exit(main())

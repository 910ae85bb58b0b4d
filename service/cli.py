"""`whitened-search`: serve the API, or ingest a file and query a collection through it.

    whitened-search serve [--host H] [--port P] [--data-dir DIR]
    whitened-search ingest FILE --collection NAME [--create] [--upsert] [--url URL]
    whitened-search query TEXT --collection NAME [--top-k N] [--filter KEY=VALUE] [--url URL]

`ingest` and `query` are clients of a running server (--url, default $WHITENED_SEARCH_URL or
http://127.0.0.1:8000): the server process owns its data directory (it holds a lock on it, keeps
the FAISS index in memory and writes the snapshots), so nothing else may write there beside it.
Going through the API also means the CLI works against a server in a container or on another
host, and `query` answers at once instead of loading the model itself.
"""

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from index.encoder import BACKENDS
from service.sources import FORMATS

URL_VARIABLE = "WHITENED_SEARCH_URL"


class CliError(Exception):
    """A failure to report in one line, without a traceback."""


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


# ---- serve ------------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from index.data_dir import DataDirBusy, DataDirLock
    from service.app import create_app
    from service.config import ServerSettings
    from service.protocol import guarded_h11

    overrides = {
        key: value
        for key, value in (
            ("host", args.host),
            ("port", args.port),
            ("data_dir", args.data_dir),
            ("log_level", args.log_level),
            ("backend", args.backend),
        )
        if value is not None
    }
    try:
        settings = ServerSettings(**overrides)
    except ValidationError as exc:  # one line per problem, without pydantic's decoration
        problems = "; ".join(
            ".".join(str(part).upper() for part in error["loc"])
            + ": " * bool(error["loc"])
            + str(error["msg"]).removeprefix("Value error, ")
            for error in exc.errors()
        )
        raise CliError(f"invalid settings: {problems}") from exc
    root = Path(settings.data_dir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    probe = DataDirLock(root)
    try:  # say it clearly now, rather than as a traceback from the app's startup
        probe.acquire()
    except DataDirBusy as exc:
        raise CliError(str(exc)) from exc
    probe.release()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
        http=guarded_h11(settings.read_timeout),
    )
    return 0


# ---- client commands --------------------------------------------------------------------------


class Client:
    """A thin JSON client of the API that turns failures into CliError."""

    def __init__(self, url: str, api_key: str | None, timeout: float = 600.0) -> None:
        import httpx

        headers = {"X-API-Key": api_key} if api_key else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self._errors = (httpx.TransportError,)

    def request(self, method: str, path: str, body: Any = None, allow: tuple[int, ...] = ()) -> Any:
        try:
            response = self._http.request(method, path, json=body)
        except self._errors as exc:
            raise CliError(
                f"cannot reach whitened-search at {self.url} ({exc}): start it with "
                f"`whitened-search serve`, or pass --url (or set {URL_VARIABLE})"
            ) from exc
        if response.status_code in allow:
            return None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise CliError(f"{method} {path}: {response.status_code}: {detail}")
        return response.json() if response.content else None

    def close(self) -> None:
        self._http.close()


def ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from service.sources import SourceError, read_documents

    try:
        documents = read_documents(
            args.file, args.format, args.id_field, args.text_field or ["text"]
        )
    except SourceError as exc:
        raise CliError(str(exc)) from exc
    if args.ray is not None:
        from service.cli_ray import ingest_on_ray

        return ingest_on_ray(args, documents, _given_settings(args))
    client = _client(args)
    name = args.collection
    info = client.request("GET", f"/collections/{name}", allow=(404,))
    if info is None:
        if not args.create:
            raise CliError(f"no collection named {name!r}: pass --create to create it")
        info = client.request("POST", "/collections", {"name": name, **_given_settings(args)})
        print(f"created collection {name}", file=sys.stderr)
    fit_at_end = not info["fitted"]
    started = time.perf_counter()
    added = replaced = 0
    with tqdm(total=len(documents), unit="doc", desc=f"ingest {name}", disable=args.quiet) as bar:
        try:
            for start in range(0, len(documents), args.batch):
                chunk = documents[start : start + args.batch]
                body = {"documents": chunk, "upsert": args.upsert, "fit": not fit_at_end}
                result = client.request("POST", f"/collections/{name}/documents", body)
                added += result["added"]
                replaced += result["replaced"]
                bar.update(len(chunk))
        except (CliError, KeyboardInterrupt):
            bar.close()
            print(
                f"stopped after {added + replaced} of {len(documents)} documents; "
                "those are stored (re-run with --upsert to resume with the same ids)",
                file=sys.stderr,
            )
            raise
    info = client.request("GET", f"/collections/{name}")
    # fit on the whole corpus rather than on the first chunk, and refit a kernel that saw only
    # a fraction of it (an earlier run that was interrupted)
    if (not info["fitted"] and info["count"] >= 2) or info.get("refit_due"):
        try:
            info = client.request("POST", f"/collections/{name}/fit", {})["collection"]
        except CliError as exc:  # the documents are stored; say why there is no kernel
            print(f"the kernel could not be fitted: {exc}", file=sys.stderr)
    seconds = time.perf_counter() - started
    kernel = f"k={info['k']}" if info.get("fitted") else "no kernel yet"
    print(
        f"{name}: {added} added, {replaced} replaced in {seconds:.1f} s; "
        f"{info['count']} documents, {kernel}"
    )
    client.close()
    return 0


def query(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"text": args.text, "top_k": args.top_k}
    if args.filter:
        body["filter"] = dict(_filter_item(item) for item in args.filter)
    client = _client(args)
    answer = client.request("POST", f"/collections/{args.collection}/query", body)
    client.close()
    if args.json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
        return 0
    for hit in answer["results"][0]["hits"]:
        print(f"{hit['score']:.4f}\t{hit['id']}\t{hit['text']}")
    return 0


def _filter_item(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise CliError(f"--filter takes KEY=VALUE, got {item!r}")
    try:  # numbers and booleans as JSON, anything else as a string
        value = json.loads(raw)
        if isinstance(value, list | dict) or value is None:
            value = raw
    except ValueError:
        value = raw
    return key, value


def _given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The collection settings given on the command line (for a collection --create makes)."""
    names = ("beta", "gamma", "k", "index_spec")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _client(args: argparse.Namespace) -> Client:
    from service.config import ServerSettings

    settings = ServerSettings()
    url = args.url or os.environ.get(URL_VARIABLE)
    if not url:
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        url = f"http://{host}:{settings.port}"
    key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    return Client(url, key)


# ---- export-model -----------------------------------------------------------------------------


def export_model(args: argparse.Namespace) -> int:
    """Export once, e.g. while building an image, so that no server pays for it at start."""
    from index.encoder import Encoder
    from service.config import ServerSettings

    settings = ServerSettings()
    for backend in args.backend or BACKENDS[1:]:
        encoder = Encoder(settings.model, backend=backend, cache_dir=settings.model_cache_dir)
        print(f"{backend}: dimension {encoder.dimension}, files in {encoder.export_dir()}")
    return 0


# ---- arguments --------------------------------------------------------------------------------


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

"""`whitened-search ingest` and `query`: clients of a running server, through its HTTP API.

The server process owns its data directory (it holds a lock on it, keeps the FAISS index in memory
and writes the snapshots), so nothing else may write there beside it. Going through the API also
means these commands work against a server in a container or on another host, and `query` answers
at once instead of loading the model itself.
"""

import argparse
import json
import os
import sys
import time
from typing import Any

from service.cli_error import CliError, server_settings

URL_VARIABLE = "WHITENED_SEARCH_URL"


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
    settings = server_settings()
    url = args.url or os.environ.get(URL_VARIABLE)
    if not url:
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        url = f"http://{host}:{settings.port}"
    key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    return Client(url, key)

"""The CLI's Ray side: `ingest FILE --ray` (encode on a Ray cluster, then load into the data
directory) and `serve --ray` (the same API on Ray Serve, shards in Ray actors).

Apart from service/cli_client.py and service/cli_serve.py because it needs the `distributed`
extra (pyarrow, Ray), which the other commands never do; the CLI imports it only for `--ray`.
"""

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from index import distributed
from index.collection import Collection
from index.data_dir import DataDirBusy, DataDirLock
from index.errors import IndexError_
from service.cli_error import CliError
from service.config import ENV_PREFIX, ServerSettings


def ingest_on_ray(
    args: argparse.Namespace, documents: list[dict[str, Any]], given: dict[str, Any]
) -> int:
    """Encode on a Ray cluster into Parquet, then load it into the data directory directly.

    The server must not run on that directory meanwhile (its lock says so): a bulk load writes
    the collection's files itself. `serve` then serves the collection as usual.
    """
    settings = ServerSettings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    root = Path(settings.data_dir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    lock = DataDirLock(root)
    try:
        lock.acquire()
    except DataDirBusy as exc:
        raise CliError(f"{exc} (a --ray ingest writes the collection itself)") from exc
    name = args.collection
    try:
        if not (root / name).exists() and not args.create:
            raise CliError(f"no collection named {name!r} in {root}: pass --create to create it")
        table = distributed.documents_table(documents)
        options = distributed.EncodeOptions(
            model=settings.model,
            backend=settings.backend,
            actors=args.actors,
            cpus_per_actor=args.cpus_per_actor,
            gpus_per_actor=args.gpus_per_actor,
        )
        started = time.perf_counter()
        try:
            distributed.connect(None if args.ray == "local" else args.ray)
        except ConnectionError as exc:
            raise CliError(f"cannot join the Ray cluster at {args.ray}: {exc}") from exc
        encoded = distributed.encode(table, args.encoded or Path(f"{name}.encoded"), options)
        kernel = distributed.statistics(encoded)
        print(f"encoded {encoded.documents} documents into {encoded.directory}", file=sys.stderr)
        if (root / name).exists():
            collection = Collection(root / name)
            added = distributed.load(collection, encoded, kernel, upsert=args.upsert)
        else:
            collection = distributed.create_and_load(
                root,
                name,
                encoded,
                kernel,
                settings.collection_settings(encoded.dimension, given),
            )
            added = encoded.documents
        info = collection.describe()
        collection.close()
    except IndexError_ as exc:
        raise CliError(str(exc)) from exc
    finally:
        lock.release()
    print(
        f"{name}: {added} added in {time.perf_counter() - started:.1f} s on Ray; "
        f"{info['count']} documents, k={info.get('k')}"
    )
    return 0


def serve_on_ray(settings: ServerSettings, overrides: dict[str, Any], address: str) -> int:
    """Deploy service.cluster_app on the Ray cluster at `address` (or a local one) with Serve's
    HTTP proxy on the settings' host and port, and block until interrupted.

    The ingress replica reads its settings from the WHITENED_SEARCH_* variables of this process,
    with the command line's overrides and the data directory made absolute, so it serves what
    `serve` without --ray would."""
    from ray import serve

    from service import cluster_app

    env = {key: value for key, value in os.environ.items() if key.startswith(ENV_PREFIX)}
    given = overrides | {"data_dir": str(Path(settings.data_dir).expanduser().resolve())}
    env |= {f"{ENV_PREFIX}{key.upper()}": str(value) for key, value in given.items()}
    try:
        distributed.connect(None if address == "local" else address)
    except ConnectionError as exc:
        raise CliError(f"cannot join the Ray cluster at {address}: {exc}") from exc
    serve.start(http_options={"host": settings.host, "port": settings.port})
    print(
        f"serving {given['data_dir']} on Ray Serve at http://{settings.host}:{settings.port}",
        file=sys.stderr,
    )
    serve.run(cluster_app.application(env), name="whitened-search", route_prefix="/", blocking=True)
    return 0

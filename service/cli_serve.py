"""`whitened-search serve` and `export-model`: the commands that run the server's side here.

They read ServerSettings and own this machine's data directory and model files, unlike `ingest`
and `query`, which only talk to a running server (`service.cli_client`).
"""

import argparse
import logging
from pathlib import Path

from index.encoder import BACKENDS
from service.cli_error import CliError, server_settings


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from index.data_dir import DataDirBusy, DataDirLock
    from service.app import create_app
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
    settings = server_settings(**overrides)
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
    if args.ray is not None:
        from service.cli_ray import serve_on_ray  # the `distributed` extra, only for --ray

        return serve_on_ray(settings, overrides, args.ray)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
        http=guarded_h11(settings.read_timeout),
    )
    return 0


def export_model(args: argparse.Namespace) -> int:
    """Export once, e.g. while building an image, so that no server pays for it at start."""
    from index.encoder import Encoder

    settings = server_settings()
    for backend in args.backend or BACKENDS[1:]:
        encoder = Encoder(settings.model, backend=backend, cache_dir=settings.model_cache_dir)
        print(f"{backend}: dimension {encoder.dimension}, files in {encoder.export_dir()}")
    return 0

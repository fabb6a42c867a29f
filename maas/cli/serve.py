"""`maas serve`: the API under uvicorn."""

from __future__ import annotations

import os
from pathlib import Path

import click

from maas.cli.common import fail, load_settings
from maas.settings import Settings, SettingsOverrides

# How long a worker may take to start (import, load the network, join the database) and, once serving, to
# answer the supervisor's ping. uvicorn's 5 s default killed every new worker of a loaded 2-core machine
# before it had started, and started the next one, over and over (seen under `maas bench load`).
WORKER_TIMEOUT_S = 60


@click.command()
@click.option(
    "--network", "network_dir", type=click.Path(), default=None, help="Network directory (default: MAAS_NETWORK_DIR)."
)
@click.option("--host", default=None, help="Default: MAAS_HOST or 127.0.0.1.")
@click.option("--port", type=int, default=None, help="Default: MAAS_PORT or 8000.")
@click.option("--workers", type=int, default=1, show_default=True, help="API worker processes.")
def serve(network_dir: str | None, host: str | None, port: int | None, workers: int) -> None:
    """Run the API (uvicorn) on MAAS_DATABASE_URL, or an embedded PostgreSQL when it is unset."""
    overrides: SettingsOverrides = {}
    if network_dir is not None:
        if not Path(network_dir, "manifest.json").exists():
            fail(f"{network_dir}: not a network directory (build one with `maas network build`)")
        overrides["network_dir"] = Path(network_dir).resolve()
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = load_settings(**overrides)
    if workers > 1:
        serve_in_workers(settings, workers)
    else:
        run_app(settings)


def run_app(settings: Settings) -> None:
    """The API of `settings` in this process, until it is stopped."""
    import uvicorn

    from maas.app import create_app
    from maas.logs import install, log_config

    install()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        log_config=log_config(),
        server_header=False,
    )


def serve_in_workers(settings: Settings, workers: int) -> None:
    """The API in `workers` uvicorn worker processes, until it is stopped."""
    import uvicorn

    from maas.logs import log_config

    # The one place settings travel through the environment: uvicorn starts each worker as a fresh
    # process that imports the app factory by name (maas.app:app_from_env, which reads
    # Settings.from_env()), and a worker inherits nothing from this process but its environment.
    # Of the settings, only the network directory can come from an option rather than from MAAS_*
    # variables the workers already see; host and port are the parent's socket, not the workers'.
    if settings.network_dir is not None:
        os.environ["MAAS_NETWORK_DIR"] = str(settings.network_dir)
    if settings.database_url is None:
        # The supervisor is a user of the embedded server too, so that it runs until the supervisor
        # ends, whichever workers restart meanwhile (each worker joins it as well).
        from maas.db.database import DatabaseError, embedded_url

        try:
            embedded_url(settings.data_dir)
        except DatabaseError as exc:
            fail(str(exc))
    uvicorn.run(
        "maas.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        timeout_worker_healthcheck=WORKER_TIMEOUT_S,
        log_level="info",
        log_config=log_config(),  # redacts secrets (tokens in socket URLs) in every worker process
        server_header=False,  # no `server: uvicorn` banner
    )

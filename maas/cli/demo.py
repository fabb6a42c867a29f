"""`maas demo`: the bundled region prepared and served (the preparation itself is maas/demo.py)."""

from __future__ import annotations

from pathlib import Path

import click

from feeds.model import FeedError
from feeds.osm import OsmError
from maas.cli.common import err_console, fail, load_settings
from maas.cli.serve import run_app
from maas.settings import SettingsOverrides
from routing.builder import BuildError
from routing.network import NetworkError


@click.command()
@click.option("--out", type=click.Path(), help="Where to build the demo network (default: a cache folder).")
@click.option("--rebuild", is_flag=True, help="Build again even if an up-to-date network exists.")
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="Start the API afterwards (--no-serve only prepares and prints).",
)
@click.option("--port", type=int, default=None, help="Default: MAAS_PORT or 8000.")
def demo(out: str | None, rebuild: bool, serve: bool, port: int | None) -> None:
    """The bundled Herrenberg region: network, database (embedded unless MAAS_DATABASE_URL is set),
    a small Rufbus fleet with demo bookings, then the API with demo tokens for every role."""
    import asyncio

    from maas.db.database import DatabaseError
    from maas.demo import default_demo_dir, prepare_service, run_demo

    try:
        manifest_out = Path(out) if out else None
        run_demo(manifest_out, rebuild, err_console)
        overrides: SettingsOverrides = {"network_dir": (manifest_out or default_demo_dir()).resolve()}
        if port:
            overrides["port"] = port
        settings = load_settings(**overrides)
        err_console.print("preparing the service (database, fleet, demo bookings) ...")
        access = asyncio.run(prepare_service(settings))
    except (BuildError, FeedError, NetworkError, OsmError, DatabaseError) as exc:
        fail(str(exc))
    base = f"http://{settings.host}:{settings.port}"
    click.echo(f"\nAPI: {base}  (OpenAPI: {base}/schema, health: {base}/health, metrics: {base}/metrics)")
    click.echo(
        "database: "
        + ("MAAS_DATABASE_URL" if settings.database_url else f"embedded PostgreSQL in {settings.data_dir / 'postgres'}")
    )
    click.echo("demo bookings:")
    for line in access.bookings:
        click.echo(f"  {line}")
    click.echo("demo tokens (send as 'Authorization: Bearer <token>'):")
    for role, token in access.tokens.items():
        click.echo(f"  {role}: {token}")
    click.echo(f"try: curl -H 'Authorization: Bearer <rider token>' {base}/bookings")
    if serve:
        run_app(settings)

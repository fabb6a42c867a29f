"""`maas demo`: the bundled region prepared and served (the preparation itself is maas/demo.py)."""

from __future__ import annotations

from pathlib import Path

import click

from feeds.model import FeedError
from feeds.osm import OsmError
from maas.cli.common import err_console, fail, json_encoder, load_settings
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
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print only {"network", "now", "tokens"} as JSON on stdout; everything else goes to stderr.',
)
def demo(out: str | None, rebuild: bool, serve: bool, port: int | None, as_json: bool) -> None:
    """The bundled Herrenberg region: network, database (embedded unless MAAS_DATABASE_URL is set),
    a small Rufbus fleet with demo bookings, then the API with demo tokens for every role. Its
    timetables are moved by whole weeks to run this week and the next ones."""
    import asyncio
    import datetime as dt
    import zoneinfo

    from maas.db.database import DatabaseError
    from maas.demo import default_demo_dir, prepare_service, run_demo

    try:
        manifest_out = Path(out) if out else None
        manifest = run_demo(manifest_out, rebuild, err_console, summary=err_console if as_json else None)
        overrides: SettingsOverrides = {"network_dir": (manifest_out or default_demo_dir()).resolve()}
        if port:
            overrides["port"] = port
        settings = load_settings(**overrides)
        err_console.print("preparing the service (database, fleet, demo bookings) ...")
        access = asyncio.run(prepare_service(settings))
    except (BuildError, FeedError, NetworkError, OsmError, DatabaseError) as exc:
        fail(str(exc))
    if as_json:
        now = dt.datetime.now(zoneinfo.ZoneInfo(manifest.timezone)).isoformat(timespec="seconds")
        console = {
            "url": f"http://{settings.host}:{settings.port}/console/",
            "login": access.operator_login,
            "password": access.operator_password,
        }
        answer = {"network": str(settings.network_dir), "now": now, "tokens": access.tokens, "console": console}
        click.echo(json_encoder.encode(answer).decode())

    def say(text: str) -> None:  # with --json, stdout carries the JSON alone
        click.echo(text, err=as_json)

    base = f"http://{settings.host}:{settings.port}"
    say(f"\nAPI: {base}  (OpenAPI: {base}/schema, health: {base}/health, metrics: {base}/metrics)")
    say(
        "database: "
        + ("MAAS_DATABASE_URL" if settings.database_url else f"embedded PostgreSQL in {settings.data_dir / 'postgres'}")
    )
    say(
        f"operator console: {base}/console/  (sign in as {access.operator_login!r},"
        f" password {access.operator_password!r})"
    )
    say("demo bookings:")
    for line in access.bookings:
        say(f"  {line}")
    say("demo tokens (send as 'Authorization: Bearer <token>'):")
    for role, token in access.tokens.items():
        say(f"  {role}: {token}")
    say(f"try: curl -H 'Authorization: Bearer <rider token>' {base}/bookings")
    if serve:
        run_app(settings)

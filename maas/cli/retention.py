"""`maas retention run`: the retention job of the service definition's rules, now, in this process."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from maas.cli.common import err_console, fail, json_encoder, load_settings, table_console, with_connection

if TYPE_CHECKING:
    from maas.db import Connection
    from maas.retention import RetentionReport

# (field of RetentionReport, what it counts, what happened to it)
ROWS = [
    ("positions", "GPS fixes older than positions_days", "removed"),
    ("position_hours", "hourly aggregates of them", "written"),
    ("latest_positions", "latest vehicle positions that old", "removed"),
    ("riders", "riders past personal_days since their last ride", "pseudonymised"),
    ("phone_bookings", "phone bookings of callers past personal_days", "pseudonymised"),
    ("audit_entries", "audit entries of those phone bookings", "pseudonymised"),
    ("caller_journeys", "journeys booked for callers past personal_days", "pseudonymised"),
    ("offers", "offers expired over a day ago", "removed"),
    ("itineraries", "itineraries expired over a day ago", "removed"),
]


@click.group()
def retention() -> None:
    """Personal data kept only as long as the service definition's rules.retention says."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would be removed or pseudonymised; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def retention_run(dry_run: bool, as_json: bool) -> None:
    """Apply rules.retention to the database of MAAS_DATABASE_URL (or the embedded one) now: GPS fixes
    older than positions_days become hourly aggregates, riders' and phone callers' names and numbers are
    pseudonymised personal_days after their last ride. A running service does the same every every_s."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from maas.retention import run_retention

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err_console, transient=True) as progress:
        task = progress.add_task("reading the rules")

        def show(step: str, rows: int) -> None:
            progress.update(task, description=f"{step}: {rows} rows")

        async def work(conn: Connection) -> RetentionReport | None:
            return await run_retention(conn, dry_run=dry_run, progress=show)

        report = with_connection(load_settings(), work)
    if report is None:
        fail("another process is running the retention job right now; try again in a minute")
    if as_json:
        click.echo(json_encoder.encode(report).decode())
        return
    _print(report)


def _print(report: RetentionReport) -> None:
    from rich.table import Table

    title = "retention (dry run: nothing changed)" if report.dry_run else "retention"
    table = Table(title=title)
    table.add_column("what")
    table.add_column("rows", justify="right")
    table.add_column("")
    for field, what, done in ROWS:
        table.add_row(what, str(getattr(report, field)), f"would be {done}" if report.dry_run else done)
    console = table_console()
    console.print(table)
    console.print(
        f"positions before {report.positions_before:%Y-%m-%d %H:%M} UTC,"
        f" names and numbers of last rides before {report.personal_before:%Y-%m-%d %H:%M} UTC"
    )

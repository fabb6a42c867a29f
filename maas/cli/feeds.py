"""`maas feeds validate`: a GTFS feed's or GBFS system's validation report."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import msgspec
from rich.console import Console

from feeds.gbfs import GbfsError, load_gbfs
from feeds.gtfs import GtfsError, validate_gtfs
from feeds.model import ValidationReport
from maas.cli.common import json_encoder


@click.group()
def feeds() -> None:
    """Read and validate the outside world's formats."""


def _gbfs_report(path: str) -> ValidationReport:
    report = ValidationReport(feed_id=Path(path).name, source=path)
    try:
        for system in load_gbfs(path):
            report.findings.extend(system.report.findings)
    except GbfsError as exc:
        report.add("error", "gbfs_unusable", path, str(exc))
    return report


@feeds.command("validate")
@click.argument("path", type=click.Path())
@click.option("--feed-id", help="Feed id (default: the file name without extensions).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
def feeds_validate(path: str, feed_id: str | None, as_json: bool) -> None:
    """Validate a GTFS feed (zip or directory) or a GBFS directory; exit status 1 when it has errors."""
    target = Path(path)
    is_gbfs = target.is_dir() and ((target / "gbfs.json").exists() or (target / "manifest.json").exists())
    if is_gbfs or path.startswith(("http://", "https://")):
        report = _gbfs_report(path)
    else:
        try:
            report = validate_gtfs(path, feed_id)
        except GtfsError as exc:
            report = ValidationReport(feed_id=feed_id or target.name, source=path)
            report.add("error", "unreadable", target.name, str(exc))
    if as_json:
        payload = {
            "feed_id": report.feed_id,
            "source": report.source,
            "valid": report.ok,
            "errors": len(report.errors),
            "warnings": len(report.warnings),
            "findings": report.findings,
        }
        click.echo(msgspec.json.format(json_encoder.encode(payload)).decode())
    else:
        console = Console(soft_wrap=True)
        for finding in report.findings:
            colour = "red" if finding.severity == "error" else "yellow"
            console.print(f"[{colour}]{finding}[/]", highlight=False)
        console.print(f"{report.source}: {len(report.errors)} errors, {len(report.warnings)} warnings")
    sys.exit(0 if report.ok else 1)

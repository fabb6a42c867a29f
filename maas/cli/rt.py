"""`maas rt replay`: recorded GTFS-Realtime messages posted to a running service, one or a folder in order."""

from __future__ import annotations

import time
from pathlib import Path

import click
import msgspec

from feeds.gtfs_rt import RealtimeFeedError, with_header_timestamp
from maas.api.transit import GtfsRtStoredOut
from maas.cli.common import fail, json_encoder

DEFAULT_URL = "http://127.0.0.1:8000"
_stored = msgspec.json.Decoder(GtfsRtStoredOut)


@click.group()
def rt() -> None:
    """GTFS-Realtime: feed recorded messages to a running service."""


def _files(path: Path, interval: float | None) -> list[Path]:
    if not path.is_dir():
        return [path]
    if interval is None:
        fail(f"{path} is a folder: give --interval to replay its .pb files one after the other")
    files = sorted(p for p in path.iterdir() if p.suffix == ".pb" and p.is_file())
    if not files:
        fail(f"{path}: no .pb files to replay")
    return files


def _summary(stored: GtfsRtStoredOut) -> str:
    kinds = " and ".join(kind.replace("_", " ") for kind in stored.kinds)
    line = f"stored as {stored.feed_id}'s latest {kinds} (version {stored.version})"
    applied = stored.applied
    if applied is not None and applied.used:
        line += (
            f": {applied.realtime_runs} trip runs retimed, {applied.cancelled_runs} cancelled,"
            f" {applied.unknown_trips} unknown trips, {applied.unknown_stops} unknown stops"
        )
    elif applied is not None:
        line += f": the router ignores it ({applied.ignored})"
    return line


@rt.command("replay")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--feed", "feed_id", required=True, help="The GTFS feed id the messages are for, as in the network.")
@click.option("--url", default=DEFAULT_URL, envvar="MAAS_URL", show_default=True, help="The service (or MAAS_URL).")
@click.option(
    "--token",
    envvar="MAAS_TOKEN",
    default=None,
    help="Bearer token of an operator, an admin or the feed's agency (or MAAS_TOKEN; see `maas user create`).",
)
@click.option(
    "--interval",
    type=float,
    default=None,
    help="Seconds between messages: PATH may then be a folder, whose .pb files are posted in name order.",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Stamp each message with the current time, so that the service does not ignore a recording as stale.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the service's answer to each message as a JSON line.")
def replay(
    path: Path, feed_id: str, url: str, token: str | None, interval: float | None, fresh: bool, as_json: bool
) -> None:
    """Post recorded GTFS-Realtime messages (.pb files) to a running service, as their producer would:
    POST /realtime/gtfs-rt/FEED; prints how each was stored and applied."""
    import httpx

    if not token:
        fail("give --token (or set MAAS_TOKEN): an operator's, an admin's or the feed's agency's")
    files = _files(path, interval)
    endpoint = f"{url.rstrip('/')}/realtime/gtfs-rt/{feed_id}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-protobuf"}
    with httpx.Client(timeout=60) as http:
        for k, file in enumerate(files):
            if k and interval:
                time.sleep(interval)
            body = file.read_bytes()
            if fresh:
                try:
                    body = with_header_timestamp(body, int(time.time()), str(file))
                except RealtimeFeedError as exc:
                    fail(str(exc))
            try:
                answer = http.post(endpoint, headers=headers, content=body)
            except httpx.HTTPError as exc:
                fail(f"cannot post to {endpoint}: {exc}")
            if answer.status_code != 201:
                detail = answer.text
                if answer.headers.get("content-type", "").startswith("application/problem+json"):
                    detail = str(msgspec.json.decode(answer.content).get("detail", detail))
                fail(f"{file}: {answer.status_code} {detail}")
            stored = _stored.decode(answer.content)
            click.echo(json_encoder.encode(stored).decode() if as_json else f"{file.name}: {_summary(stored)}")

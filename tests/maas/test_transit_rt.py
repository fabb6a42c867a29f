"""GTFS-Realtime over HTTP on the served Herrenberg network: a posted delay shows in /plan (in every worker
process), what is not GTFS-Realtime is a 4xx problem, agencies post for their own feeds only, vehicles are
listed, and the poller stores what configured URLs serve and survives those that fail."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import socket
import time
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from google.transit import gtfs_realtime_pb2 as pb
from litestar.testing import TestClient

from maas.app import create_app
from maas.db.feeds import claim_feed
from maas.settings import GtfsRtSource, Settings
from tests.conftest import shared
from tests.helpers import S1_TRIP, delayed_s1, s1_message, s1_vehicles, serve_directory
from tests.maas.conftest import Users, execute

pytestmark = pytest.mark.usefixtures("no_stored_realtime")

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
S1 = "vvs-s1-only"
EHNINGEN = f"stop:{S1}:de:08115:5773:1:1"
BOEBLINGEN = f"stop:{S1}:de:08115:7100:2:3"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _s1_legs(client: TestClient | httpx.Client, headers: dict[str, str], depart: str) -> list[dict[str, Any]]:
    answer = client.get(
        "/plan", headers=headers, params={"from": EHNINGEN, "to": BOEBLINGEN, "depart": depart, "max_walk_m": 0}
    )
    assert answer.status_code == 200, answer.text
    return [leg for it in answer.json()["itineraries"] for leg in it["legs"] if leg["mode"] == "transit"]


def test_a_posted_delay_shows_in_plans(client: TestClient, users: Users) -> None:
    _, operator = users.make("operator")
    _, rider = users.make("rider")
    (before,) = _s1_legs(client, rider, "2020-10-06T07:50:00+02:00")[:1]
    assert before["trip"] == f"{S1}:{S1_TRIP}" and before["departure"] == "2020-10-06T07:55:00+02:00"
    assert (before["realtime"], before["delay_s"]) == (False, None)
    assert before["scheduled_departure"] == before["departure"]
    posted = client.post(f"/realtime/gtfs-rt/{S1}", headers={**operator, **PROTOBUF}, content=delayed_s1())
    assert posted.status_code == 201, posted.text
    stored = posted.json()
    assert (stored["feed_id"], stored["kinds"], stored["trip_updates"]) == (S1, ["trip_updates"], 1)
    assert stored["applied"]["used"] and stored["applied"]["realtime_runs"] == 1
    (leg,) = _s1_legs(client, rider, "2020-10-06T07:50:00+02:00")[:1]
    assert leg["trip"] == f"{S1}:{S1_TRIP}" and leg["realtime"] and leg["delay_s"] == 360
    assert leg["departure"] == "2020-10-06T08:01:00+02:00"
    assert leg["scheduled_departure"] == "2020-10-06T07:55:00+02:00"
    # Three minutes after the timetable's departure the rider still catches it.
    (late,) = _s1_legs(client, rider, "2020-10-06T07:58:00+02:00")[:1]
    assert late["trip"] == f"{S1}:{S1_TRIP}" and late["departure"] == "2020-10-06T08:01:00+02:00"
    # A later message without the delay replaces it.
    on_time = client.post(f"/realtime/gtfs-rt/{S1}", headers={**operator, **PROTOBUF}, content=delayed_s1(0))
    assert on_time.status_code == 201 and on_time.json()["version"] > stored["version"]
    (leg,) = _s1_legs(client, rider, "2020-10-06T07:50:00+02:00")[:1]
    assert leg["departure"] == "2020-10-06T07:55:00+02:00" and leg["realtime"] and leg["delay_s"] == 0


def test_a_real_message_for_another_day_is_stored_and_applied_as_stale(client: TestClient, users: Users) -> None:
    _, admin = users.make("admin")
    body = shared("rt", "caltrain-trip-updates.pb").read_bytes()
    posted = client.post(f"/realtime/gtfs-rt/{S1}", headers={**admin, **PROTOBUF}, content=body)
    assert posted.status_code == 201, posted.text
    stored = posted.json()
    assert stored["header_timestamp"] == "2023-11-08T01:05:34+00:00" and stored["trip_updates"] == 19
    assert not stored["applied"]["used"] and "stale" in stored["applied"]["ignored"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "detail"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "application/x-protobuf", 422, "not a GTFS-Realtime"),
        (b"", "application/x-protobuf", 422, "empty"),
        (shared("rt", "caltrain.gtfs.zip").read_bytes(), "application/x-protobuf", 422, "not a GTFS-Realtime"),
        (b'{"header": {}}', "application/json", 415, "application/x-protobuf"),
    ],
    ids=["html", "empty", "a zip", "json"],
)
def test_what_is_not_gtfs_realtime_is_a_problem(
    client: TestClient, users: Users, body: bytes, content_type: str, status: int, detail: str
) -> None:
    _, operator = users.make("operator")
    answer = client.post(f"/realtime/gtfs-rt/{S1}", headers={**operator, "Content-Type": content_type}, content=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert detail in answer.json()["detail"]


def test_differential_messages_and_unknown_feeds_are_refused(client: TestClient, users: Users) -> None:
    _, operator = users.make("operator")
    message = s1_message()
    message.header.incrementality = pb.FeedHeader.DIFFERENTIAL
    answer = client.post(
        f"/realtime/gtfs-rt/{S1}", headers={**operator, **PROTOBUF}, content=message.SerializeToString()
    )
    assert answer.status_code == 422 and "DIFFERENTIAL" in answer.json()["detail"]
    answer = client.post("/realtime/gtfs-rt/caltrain", headers={**operator, **PROTOBUF}, content=delayed_s1())
    assert answer.status_code == 404 and "no GTFS feed 'caltrain'" in answer.json()["detail"]


def test_agencies_post_for_their_own_feeds_only(client: TestClient, users: Users, settings: Settings) -> None:
    owner = f"s-bahn-{secrets.token_hex(3)}"
    execute(settings, "DELETE FROM feed_owners WHERE feed_id = $1", S1)

    async def claim() -> None:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await claim_feed(conn, S1, owner)
        finally:
            await conn.close()

    asyncio.run(claim())
    try:
        _, own = users.make("agency", agency=owner)
        _, other = users.make("agency", agency="another-agency")
        _, rider = users.make("rider")
        answer = client.post(f"/realtime/gtfs-rt/{S1}", headers={**other, **PROTOBUF}, content=delayed_s1())
        assert answer.status_code == 403, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "not agency another-agency's" in answer.json()["detail"]
        assert (
            client.post(f"/realtime/gtfs-rt/{S1}", headers={**rider, **PROTOBUF}, content=delayed_s1()).status_code
            == 403
        )
        answer = client.post(f"/realtime/gtfs-rt/{S1}", headers={**own, **PROTOBUF}, content=delayed_s1())
        assert answer.status_code == 201, answer.text
    finally:
        execute(settings, "DELETE FROM feed_owners WHERE feed_id = $1 AND agency = $2", S1, owner)


def test_transit_vehicles_are_the_latest_fresh_positions(client: TestClient, users: Users) -> None:
    _, operator = users.make("operator")
    _, rider = users.make("rider")
    assert client.get("/transit/vehicles", headers=rider).json() == {"vehicles": []}
    # Real positions of 2021 (King County Metro) are stored, but too old to show.
    stale = shared("rt", "king-county-metro-vp-2.pb").read_bytes()
    answer = client.post(f"/realtime/gtfs-rt/{S1}", headers={**operator, **PROTOBUF}, content=stale)
    assert answer.status_code == 201 and answer.json()["kinds"] == ["vehicle_positions"]
    assert answer.json()["vehicle_positions"] == 570 and answer.json()["applied"] is None
    assert client.get("/transit/vehicles", headers=rider).json() == {"vehicles": []}
    answer = client.post(f"/realtime/gtfs-rt/{S1}", headers={**operator, **PROTOBUF}, content=s1_vehicles())
    assert answer.status_code == 201, answer.text
    (vehicle,) = client.get("/transit/vehicles", headers=rider, params={"feed_id": S1}).json()["vehicles"]
    assert vehicle["feed_id"] == S1 and vehicle["vehicle_id"] == "430-117" and vehicle["label"] == "S1 Kirchheim"
    assert vehicle["trip"] == f"{S1}:{S1_TRIP}" and vehicle["stop"] == f"{S1}:de:08115:5773:1:1"
    assert vehicle["current_status"] == "STOPPED_AT"
    assert vehicle["lat"] == pytest.approx(48.6582) and vehicle["lon"] == pytest.approx(8.9408)
    assert vehicle["bearing"] == pytest.approx(62.0) and vehicle["speed_mps"] == pytest.approx(13.5)
    assert dt.datetime.fromisoformat(vehicle["timestamp"]) > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    assert client.get("/transit/vehicles", headers=rider, params={"feed_id": "other"}).json() == {"vehicles": []}
    # Vehicle positions do not replace the feed's trip updates.
    client.post(f"/realtime/gtfs-rt/{S1}", headers={**operator, **PROTOBUF}, content=delayed_s1())
    client.post(f"/realtime/gtfs-rt/{S1}", headers={**operator, **PROTOBUF}, content=s1_vehicles())
    (leg,) = _s1_legs(client, rider, "2020-10-06T07:50:00+02:00")[:1]
    assert leg["delay_s"] == 360
    assert client.get("/transit/vehicles").status_code == 401


def test_every_worker_process_plans_on_the_posted_message(server: str, users: Users) -> None:
    _, operator = users.make("operator")
    _, rider = users.make("rider")
    posted = httpx.post(f"{server}/realtime/gtfs-rt/{S1}", headers={**operator, **PROTOBUF}, content=delayed_s1())
    assert posted.status_code == 201, posted.text
    # New connections land on either worker; every one answers with the delay.
    for _ in range(12):
        with httpx.Client(base_url=server, timeout=30) as http:
            (leg,) = _s1_legs(http, rider, "2020-10-06T07:50:00+02:00")[:1]
            assert leg["departure"] == "2020-10-06T08:01:00+02:00" and leg["delay_s"] == 360


def test_the_poller_stores_what_configured_urls_serve_and_survives_bad_ones(
    settings: Settings, users: Users, tmp_path: Path
) -> None:
    (tmp_path / "vehicles.pb").write_bytes(s1_vehicles())
    (tmp_path / "broken.pb").write_bytes(b"<html>Service Unavailable</html>")
    (tmp_path / "huge.pb").write_bytes(delayed_s1() + b"\x00" * 5000)
    _, rider = users.make("rider")
    refused = _url_nobody_listens_on()
    with serve_directory(tmp_path) as base:
        polling = msgspec.structs.replace(
            settings,
            gtfs_rt=(
                GtfsRtSource(feed_id=S1, url=f"{base}/broken.pb"),
                GtfsRtSource(feed_id=S1, url=f"{refused}/tu.pb"),
                GtfsRtSource(feed_id=S1, url=f"{base}/missing.pb"),
                GtfsRtSource(feed_id=S1, url=f"{base}/huge.pb"),
                GtfsRtSource(feed_id=S1, url=f"{base}/vehicles.pb"),
            ),
            gtfs_rt_interval_s=1,
            gtfs_rt_max_bytes=4000,
        )
        with TestClient(create_app(polling)) as app, _logged("maas.transit_rt") as warnings:
            vehicles: list[dict[str, Any]] = []
            deadline = time.monotonic() + 20
            while not vehicles and time.monotonic() < deadline:
                time.sleep(0.2)
                vehicles = app.get("/transit/vehicles", headers=rider).json()["vehicles"]
            assert [v["vehicle_id"] for v in vehicles] == ["430-117"]
            # It goes on polling: the file served changes, the stored message follows.
            (tmp_path / "vehicles.pb").write_bytes(s1_vehicles(vehicle_id="430-118"))
            deadline = time.monotonic() + 20
            while vehicles[0]["vehicle_id"] == "430-117" and time.monotonic() < deadline:
                time.sleep(0.2)
                vehicles = app.get("/transit/vehicles", headers=rider).json()["vehicles"]
            assert [v["vehicle_id"] for v in vehicles] == ["430-118"]
            assert app.get("/health").status_code == 200
    logged = "\n".join(warnings)
    assert "broken.pb for vvs-s1-only" in logged and "not a GTFS-Realtime FeedMessage" in logged
    assert "tu.pb for vvs-s1-only" in logged and "missing.pb" in logged and "404" in logged
    assert "huge.pb: larger than 4000 bytes" in logged


@contextlib.contextmanager
def _logged(name: str) -> Iterator[list[str]]:
    """The messages logged at WARNING and above by logger `name` while the block runs (the app's logging
    configuration replaces the root handlers that pytest's caplog listens on)."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect(logging.WARNING)
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def _url_nobody_listens_on() -> str:
    """The base URL of a local port nothing listens on (taken and closed at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"

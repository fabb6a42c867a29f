"""Helpers several test modules share: the named places of the test region, what a sound itinerary is,
and how an agency uploads and publishes a feed over HTTP."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import json
import threading
import time
import uuid
import zoneinfo
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import pytest
import shapely
from google.transit import gtfs_realtime_pb2 as pb

from routing.oracles import earliest_arrival_reference, latest_departure_reference
from routing.plan import BIKE_RENT_S, BIKE_RETURN_S, Itinerary, Plan, Router
from routing.raptor import Raptor, ServiceDays
from routing.spatial import haversine_m
from tests.conftest import HERRENBERG

if TYPE_CHECKING:
    from litestar.testing import TestClient

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEBRINGEN = {"lat": 48.5627, "lon": 8.8481}
HERRENBERG_BAHNHOF = {"lat": 48.5935, "lon": 8.8630}
KUPPINGEN = {"lat": 48.6113, "lon": 8.8430}
BUILD_TIMEOUT_S = 180  # a publish builds a network in a child process: 10-30 s on the test region


def named_places() -> list[tuple[str, float, float]]:
    """The region's test locations (stadtnavi's list): name, latitude, longitude."""
    with (HERRENBERG / "od" / "stadtnavi-test-locations.csv").open() as fh:
        return [(r[0], float(r[1]), float(r[2])) for r in csv.reader(fh) if r]


def places_in_region() -> list[tuple[str, float, float]]:
    """Those of the named places inside the Herrenberg region's area."""
    area = json.loads((HERRENBERG / "herrenberg-and-around.geojson").read_text())
    polygon = shapely.geometry.shape(area["features"][0]["geometry"])
    return [r for r in named_places() if polygon.contains(shapely.Point(r[2], r[1]))]


def decode_polyline(text: str) -> np.ndarray:
    """Points of an encoded polyline, written independently of the encoder under test."""
    values, shift, acc = [], 0, 0
    for ch in text:
        b = ord(ch) - 63
        acc |= (b & 0x1F) << shift
        shift += 5
        if b < 0x20:
            values.append(~(acc >> 1) if acc & 1 else acc >> 1)
            shift, acc = 0, 0
    return np.cumsum(np.array(values, dtype=np.int64).reshape(-1, 2), axis=0) / 1e5


def assert_sound(it: Itinerary, depart: dt.datetime, max_walk_m: float = 1000.0) -> None:
    """The itinerary is physically sound: legs connect in space and time at plausible speeds, drawn where they go."""
    assert it.legs
    assert it.departure >= depart
    assert it.departure == it.legs[0].departure and it.arrival == it.legs[-1].arrival
    for before, after in zip(it.legs, it.legs[1:], strict=False):
        assert (before.to.lat, before.to.lon) == (after.from_.lat, after.from_.lon), "legs connect in space"
        assert after.departure >= before.arrival, "legs connect in time"
    for leg in it.legs:
        seconds = (leg.arrival - leg.departure).total_seconds()
        assert seconds >= 0, "no leg goes back in time"
        straight = float(haversine_m(leg.from_.lat, leg.from_.lon, leg.to.lat, leg.to.lon))
        if leg.mode == "walk":
            assert leg.distance_m + 1 >= straight
            assert leg.distance_m <= 2.0 * max(seconds, 1.0) + 1, "nobody walks faster than 2 m/s"
        elif leg.mode == "transit":
            assert leg.route and leg.trip
            assert straight <= 45.0 * max(seconds, 60.0), "no bus or train is faster than 160 km/h"
        elif leg.mode == "bike_share":
            assert leg.system and leg.route is None and leg.trip is None
            assert leg.from_.station and leg.to.station and leg.from_.station != leg.to.station
            assert leg.from_.station.startswith(f"{leg.system}:") and leg.to.station.startswith(f"{leg.system}:"), (
                "a bike goes back to a station of its own system"
            )
            assert leg.distance_m + 1 >= straight and seconds > 0
            assert 5.0 / 3.6 < leg.distance_m / seconds < 30.0 / 3.6, "a rented bike rides at 5-30 km/h"
        else:
            assert leg.mode == "on_demand" and leg.route is None
            assert straight <= 36.0 * max(seconds, 60.0), "no minibus is faster than 130 km/h"
        points = decode_polyline(leg.geometry)
        assert np.allclose(points[0], (leg.from_.lat, leg.from_.lon), atol=2e-5)
        assert np.allclose(points[-1], (leg.to.lat, leg.to.lon), atol=2e-5)
        if leg.mode in ("walk", "bike_share") and leg.distance_m > 150:
            drawn = haversine_m(points[:-1, 0], points[:-1, 1], points[1:, 0], points[1:, 1]).sum()
            assert 0.6 * leg.distance_m <= drawn <= 1.3 * leg.distance_m + 50, "the drawn walk is the walked way"
    transit = [leg for leg in it.legs if leg.mode == "transit"]
    assert it.transfers == max(len(transit) - 1, 0)
    walks = [leg.distance_m for leg in it.legs if leg.mode == "walk"]
    assert it.walk_m == pytest.approx(sum(walks), abs=0.5)
    for k, leg in enumerate(it.legs):
        if leg.mode != "bike_share":
            continue
        before, after = it.legs[k - 1], it.legs[k + 1]
        assert before.mode == "walk" and after.mode == "walk", "one walks to and from a bike-share station"
        assert before.distance_m <= max_walk_m and after.distance_m <= max_walk_m
        assert (leg.departure - before.arrival).total_seconds() >= BIKE_RENT_S, "unlocking takes time"
        assert (after.departure - leg.arrival).total_seconds() >= BIKE_RETURN_S, "docking takes time"


def answers_in_threads(router: Router, calls: list[Callable[[Router], Plan]], threads: int = 8) -> list[bytes]:
    """The JSON answer of every call on `router`, the calls shared out to `threads` threads that start at once."""
    barrier = threading.Barrier(threads)
    answers: list[bytes] = [b""] * len(calls)

    def work(first: int) -> None:
        # Together from the first call on, so that the router's lazily built parts are raced for too.
        barrier.wait()
        for k in range(first, len(calls), threads):
            answers[k] = msgspec.json.encode(calls[k](router))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    return answers


def oracle_labels(raptor: Raptor, days: ServiceDays, stop: int, time: int, *, forward: bool) -> np.ndarray:
    """The pure-Python oracle's labels for a search of `raptor` from `stop` at `time` (forward) or to it by then
    (backward), with up to 3 transfers, footpaths and 60 s change times, as the tests run the kernel."""
    reference = earliest_arrival_reference if forward else latest_departure_reference
    return reference(
        raptor.timetable,
        np.array([stop], np.int32),
        np.array([time], np.int32),
        4,
        days.trip_active,
        days.day_offset,
        raptor.change_times(60),
        np.ones(raptor.timetable.n_stops, np.uint8),
        True,
    )


# -- feeds: edited copies and a local HTTP server -----------------------------------------------


def edit_line(file_line: int, column: str, value: str) -> Callable[[str], str]:
    """An edit for derive_feed: set `column` of the CSV line `file_line` (1 is the header) to `value`."""

    def edit(text: str) -> str:
        lines = text.splitlines()
        header = lines[0].split(",")
        cells = lines[file_line - 1].split(",")
        cells[header.index(column)] = value
        lines[file_line - 1] = ",".join(cells)
        return "\n".join(lines) + "\n"

    return edit


def copy_feed(source: Path, target: Path) -> Path:
    """A writable copy of a feed directory (the shared data is read-only)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.json"):
        (target / path.name).write_bytes(path.read_bytes())
    return target


def edit_json(path: Path, edit: Any) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    edit(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The size-limit tests hang up on purpose; the broken pipe that follows is expected.
        pass


@contextlib.contextmanager
def serve_http(handler: Any) -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    with serve_http(functools.partial(QuietHandler, directory=str(directory))) as base:
        yield base


def point_discovery_at(directory: Path, base_url: str) -> None:
    """Rewrite gbfs.json in `directory` so that every feed URL is `<base_url>/<name>.json`."""

    def rewrite(doc: dict[str, Any]) -> None:
        blocks = [doc["data"]] if "feeds" in doc["data"] else list(doc["data"].values())
        for block in blocks:
            for feed in block["feeds"]:
                feed["url"] = f"{base_url}/{feed['name']}.json"

    edit_json(directory / "gbfs.json", rewrite)


def upload_feed(client: TestClient, headers: dict[str, str], path: Path, **params: str) -> dict[str, Any]:
    """The feed version an agency's upload of the zip at `path` (a raw body) made; `params` such as feed_id."""
    answer = client.post(
        "/feeds", headers={**headers, "Content-Type": "application/zip"}, params=params, content=path.read_bytes()
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def wait_for_publish(
    client: TestClient, headers: dict[str, str], version_id: str, timeout_s: float = BUILD_TIMEOUT_S
) -> dict[str, Any]:
    """The feed version once it is no longer publishing (published or failed)."""
    deadline = time.monotonic() + timeout_s
    while (version := client.get(f"/feeds/{version_id}", headers=headers).json())["status"] == "publishing":
        assert time.monotonic() < deadline, f"still publishing after {timeout_s} s"
        time.sleep(0.25)
    return version


def publish_feed(
    client: TestClient, headers: dict[str, str], version_id: str, timeout_s: float = BUILD_TIMEOUT_S
) -> dict[str, Any]:
    """Publish a feed version and wait for its build to end; the version as it then is."""
    answer = client.post(f"/feeds/{version_id}/publish", headers=headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "publishing"
    return wait_for_publish(client, headers, version_id, timeout_s)


def active_network(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    """The one active network of GET /networks."""
    networks = client.get("/networks", headers=headers).json()
    assert sum(n["active"] for n in networks) == 1, networks
    return next(n for n in networks if n["active"])


def soon(hours: float) -> str:
    """The time `hours` from now (negative: ago), as the API takes it."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).isoformat()


def vehicle_on_shift(
    client: TestClient,
    operator: dict[str, str],
    seats: int = 3,
    wheelchair_places: int = 0,
    depot: dict[str, float] = HERRENBERG_BAHNHOF,
    hours: float = 8,
    starts: dt.datetime | None = None,
) -> str:
    """A new vehicle with a shift from `starts` (default: half an hour ago) for `hours`, added over
    HTTP; its id."""
    vehicle = client.post(
        "/vehicles",
        headers=operator,
        json={
            "name": f"rufbus-{uuid.uuid4().hex[:6]}",
            "seats": seats,
            "wheelchair_places": wheelchair_places,
            "depot": depot,
        },
    )
    assert vehicle.status_code == 201, vehicle.text
    begin = starts or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    shift = client.post(
        "/shifts",
        headers=operator,
        json={
            "vehicle_id": vehicle.json()["id"],
            "starts_at": begin.isoformat(),
            "ends_at": (begin + dt.timedelta(hours=hours)).isoformat(),
        },
    )
    assert shift.status_code == 201, shift.text
    return str(vehicle.json()["id"])


# -- GTFS-Realtime messages made with the reference bindings, for the S1 of the Herrenberg network ------

S1_TRIP = "67.T0.10-1-j20-1.21.R"  # vvs-s1-only: Herrenberg 07:46, Ehningen 07:55 on 2020-10-06


def s1_message() -> pb.FeedMessage:
    """An empty FeedMessage stamped now."""
    message = pb.FeedMessage()
    message.header.gtfs_realtime_version = "2.0"
    message.header.timestamp = int(time.time())
    return message


def delayed_s1(delay_s: int = 360) -> bytes:
    """A fresh TripUpdates message: the 07:46 S1 from Herrenberg on 2020-10-06, `delay_s` late from its first stop."""
    message = s1_message()
    update = message.entity.add(id="s1-late").trip_update
    update.trip.trip_id = S1_TRIP
    update.trip.start_date = "20201006"
    update.stop_time_update.add(stop_sequence=1).departure.delay = delay_s
    return message.SerializeToString()


def s1_vehicles(vehicle_id: str = "430-117") -> bytes:
    """A fresh VehiclePositions message: one S1 train at Ehningen, one without a fix, one at (0, 0)."""
    message = s1_message()
    train = message.entity.add(id="v1").vehicle
    train.vehicle.id, train.vehicle.label = vehicle_id, "S1 Kirchheim"
    train.trip.trip_id, train.trip.route_id = S1_TRIP, "10-1-j20-1"
    train.position.latitude, train.position.longitude, train.position.bearing = 48.6582, 8.9408, 62.0
    train.position.speed = 13.5
    train.stop_id, train.current_status = "de:08115:5773:1:1", pb.VehiclePosition.STOPPED_AT
    train.timestamp = int(time.time()) - 5
    message.entity.add(id="v2").vehicle.vehicle.id = "no-fix"
    lost = message.entity.add(id="v3").vehicle
    lost.vehicle.id = "null-island"
    lost.position.latitude, lost.position.longitude = 0.0, 0.0
    return message.SerializeToString()

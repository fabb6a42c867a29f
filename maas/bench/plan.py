"""`maas bench plan`: door-to-door plans whose on-demand legs are live offers of a booked fleet, against
the same requests planned without on-demand rides, in one run.

The fleet lives on the network's busiest service day: vehicles on shift from 06:00 to 22:00 at
random bus stops, rides booked between random stops through the day, and the clock at 06:00 so
that every request lies ahead. The requests run from random street corners in the service area to
others and to random stops of the timetable, leaving between 07:00 and 19:00. The live plan is what `GET /plan` computes
(optimistic router, exact check of every ride, later trains for rides that miss theirs), in process,
without the database round trips.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import zoneinfo
from pathlib import Path

import numpy as np
import shapely
from rich.console import Console
from rich.table import Table

from maas.demo import demo_region
from routing.dispatch.dispatcher import Dispatcher
from routing.dispatch.drive_times import DriveTimes
from routing.dispatch.model import Passengers, Request, Vehicle
from routing.network import NetworkError, load_network
from routing.ondemand import DriveTimeEstimator, OnDemandService
from routing.plan import Endpoint, PlanError, PlanRequest, Router
from routing.plan.live import FleetRides, LiveRules, plan_with_fleet

BOARDING_S, CHANGE_S = 60, 180


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = (float(p) for p in np.percentile(np.asarray(values), [50, 95, 99]))
    return p50, p95, p99


def bench_plan(
    directory: Path, vehicles: int, booked: int, plans: int, area_file: Path | None, seed: int, console: Console
) -> None:
    net = load_network(directory)
    if "drive" not in net.streets or "walk" not in net.streets:
        raise NetworkError(f"{directory}: live on-demand plans need a network built with --osm")
    tt, manifest = net.timetable, net.manifest
    local = zoneinfo.ZoneInfo(manifest.timezone)
    per_day = np.unpackbits(np.asarray(tt.service_days), axis=1, bitorder="little")[np.asarray(tt.trip_service)].sum(
        axis=0
    )
    date = manifest.first_date + dt.timedelta(days=int(np.argmax(per_day)))
    area = _area(area_file)
    polygon = shapely.geometry.shape(area)
    service = OnDemandService(
        name="bench",
        area=area,
        detour_factor=1.0,
        pickup_delay_s=BOARDING_S + CHANGE_S,
        max_ride_s=3600,
        start=dt.time(0),
        end=dt.time(23, 59, 59),
    )
    plain_router = Router(net)
    live_router = Router(net, DriveTimeEstimator(net, service))
    drive = net.streets["drive"]
    times = DriveTimes(drive)
    rng = np.random.default_rng(seed)
    snapped = np.asarray(net.snaps["drive"].node)
    inside = shapely.contains_xy(polygon, np.asarray(tt.stop_lon), np.asarray(tt.stop_lat))
    stops = sorted({int(n) for n in snapped[inside] if n >= 0 and times.routable[n]})
    if len(stops) < 2:
        raise NetworkError(f"{directory}: fewer than two bus stops lie inside the service area")
    day = dt.datetime.combine(date, dt.time(0), local)
    fleet = [
        Vehicle(
            id=f"bus-{k}",
            seats=8,
            wheelchair_places=1,
            depot_node=int(rng.choice(stops)),
            shift_start_s=(day + dt.timedelta(hours=6)).timestamp(),
            shift_end_s=(day + dt.timedelta(hours=22)).timestamp(),
        )
        for k in range(vehicles)
    ]
    dispatcher = Dispatcher(drive, fleet, times=times)
    now = day + dt.timedelta(hours=6)
    confirmed = 0
    for k in range(booked):
        a, b = (int(x) for x in rng.choice(stops, size=2, replace=False))
        pickup = day + dt.timedelta(seconds=float(rng.uniform(7 * 3600, 20 * 3600)))
        ride = Request(id=f"booked-{k}", origin_node=a, destination_node=b, earliest_pickup_s=pickup.timestamp())
        quote = dispatcher.quote(ride, now.timestamp())
        if quote.offers:
            dispatcher.book(quote.offers[0], ride, now.timestamp())
            confirmed += 1
    rides = FleetRides(live_router, LiveRules(change_s=CHANGE_S))
    served_stops = np.unique(np.asarray(tt.pattern_stops))
    # Doors: street corners of the drive graph inside the area (a random point in a rural box lies in
    # a field more often than not).
    drive_lat, drive_lon = np.asarray(drive.node_lat), np.asarray(drive.node_lon)
    doors = np.flatnonzero(shapely.contains_xy(polygon, drive_lon, drive_lat) & times.routable)
    timed: dict[str, list[float]] = {"plain": [], "live": []}
    offered = its = 0
    for _ in range(plans):
        a, b = (int(x) for x in rng.choice(doors, size=2))
        origin = Endpoint(lat=float(drive_lat[a]), lon=float(drive_lon[a]))
        if rng.random() < 0.5:  # to a stop: a train or bus ride away, often beyond the streets
            destination = Endpoint(stop=str(tt.stop_id[int(rng.choice(served_stops))]))
        else:
            destination = Endpoint(lat=float(drive_lat[b]), lon=float(drive_lon[b]))
        depart = day + dt.timedelta(seconds=float(rng.uniform(7 * 3600, 19 * 3600)))
        request = PlanRequest(origin=origin, destination=destination, depart=depart, bike_share=False)
        try:
            t0 = time.perf_counter()
            plain_router.plan(request)
            t1 = time.perf_counter()
            plain, served = plan_with_fleet(rides, request, None, Passengers(), dispatcher, now)
            t2 = time.perf_counter()
        except PlanError:
            continue
        timed["plain"].append((t1 - t0) * 1000)
        timed["live"].append((t2 - t1) * 1000)
        offered += bool(served)
        its += len(plain) + len(served)
    if not timed["live"]:
        raise NetworkError(f"{directory}: no request could be planned")
    table = Table(
        title=(
            f"plans: {directory}, service day {date}, {vehicles} vehicles, {confirmed} of {booked} rides booked, "
            f"{len(timed['live'])} requests"
        )
    )
    for col in ("what", "p50 ms", "p95 ms", "p99 ms", "mean ms"):
        table.add_column(col, justify="left" if col == "what" else "right")
    for key, label in (("plain", "reference: walk + transit only"), ("live", "with live on-demand offers")):
        p50, p95, p99 = _percentiles(timed[key])
        table.add_row(label, f"{p50:.1f}", f"{p95:.1f}", f"{p99:.1f}", f"{np.mean(timed[key]):.1f}")
    ratio = [float(np.percentile(timed["live"], q) / np.percentile(timed["plain"], q)) for q in (50, 95, 99)]
    table.add_row(
        "live / reference", *(f"{r:.1f}x" for r in ratio), f"{np.mean(timed['live']) / np.mean(timed['plain']):.1f}x"
    )
    console.print(table)
    console.print(
        f"{offered} of {len(timed['live'])} plans offered a ride of the live fleet; {its} itineraries in all",
        highlight=False,
    )


def _area(area_file: Path | None) -> dict[str, object]:
    path = area_file or demo_region() / "herrenberg-and-around.geojson"
    data = json.loads(path.read_text())
    geometry: dict[str, object] = data["features"][0]["geometry"] if data.get("type") == "FeatureCollection" else data
    return geometry

"""`maas bench router`: RAPTOR kernel query times against the pure-Python oracle, and door-to-door plans."""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from pathlib import Path

import msgspec
import numpy as np
from rich.console import Console
from rich.table import Table

from routing.network import load_network
from routing.oracles import earliest_arrival_reference
from routing.plan import Endpoint, PlanError, PlanRequest, Router
from routing.raptor import Raptor

# The oracle's rounds (trips per journey); the kernel runs the same number for the ratio.
ORACLE_ROUNDS = 7


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = (float(p) for p in np.percentile(np.asarray(values), [50, 95, 99]))
    return p50, p95, p99


def bench_router(directory: Path, queries: int, oracle_queries: int, seed: int, console: Console) -> None:
    """Earliest-arrival kernel times on random stop queries, the oracle on a subset, door-to-door plans."""
    net = load_network(directory)
    manifest = net.manifest
    tt = net.timetable
    raptor = Raptor(tt, manifest.first_date, manifest.timezone)
    per_day = np.unpackbits(np.asarray(tt.service_days), axis=1, bitorder="little")[np.asarray(tt.trip_service)].sum(
        axis=0
    )
    date = manifest.first_date + dt.timedelta(days=int(np.argmax(per_day)))
    days = raptor.service_days(date)
    served = np.unique(np.asarray(tt.pattern_stops))
    rng = np.random.default_rng(seed)
    sources = rng.choice(served, size=queries)
    starts = rng.integers(6 * 3600, 20 * 3600, size=queries)
    times, patterns, stops = [], [], []
    for source, start in zip(sources, starts, strict=True):
        t0 = time.perf_counter()
        result = raptor.earliest_arrival(np.array([source]), np.array([start]), days)
        times.append((time.perf_counter() - t0) * 1000)
        patterns.append(result.patterns_scanned)
        stops.append(result.stops_scanned)
    # The oracle and, for the ratio, the kernel on exactly the oracle's queries and options. One
    # kernel query is too short to time alone: after each oracle query the kernel runs all of
    # them once (not one query repeated, which would train caches and branch predictors on it),
    # so both see the same machine load, and its total is the mean of those passes.
    change = raptor.change_times(60)
    queries_same = [
        (np.array([s], np.int32), np.array([t], np.int32))
        for s, t in zip(sources[:oracle_queries], starts[:oracle_queries], strict=True)
    ]
    oracle_times, kernel_passes, agree = [], [], 0
    for source, start in queries_same:
        t0 = time.perf_counter()
        expected = earliest_arrival_reference(
            tt,
            source,
            start,
            ORACLE_ROUNDS,
            days.trip_active,
            days.day_offset,
            change,
            np.ones(tt.n_stops, np.uint8),
            True,
        )
        oracle_times.append((time.perf_counter() - t0) * 1000)
        result = raptor.earliest_arrival(source, start, days, max_transfers=ORACLE_ROUNDS - 1)
        agree += result.labels.tolist() == expected.tolist()
        t0 = time.perf_counter()
        for query in queries_same:
            raptor.earliest_arrival(*query, days, max_transfers=ORACLE_ROUNDS - 1)
        kernel_passes.append((time.perf_counter() - t0) * 1000)
    table = Table(title=f"router: {directory}, {tt.arrival.shape[0]} stop times, service day {date}")
    for col in ("what", "queries", "p50 ms", "p95 ms", "p99 ms", "patterns / query", "stop visits / query"):
        table.add_column(col, justify="left" if col == "what" else "right")
    p50, p95, p99 = _percentiles(times)
    table.add_row(
        "earliest arrival, kernel",
        str(queries),
        f"{p50:.3f}",
        f"{p95:.3f}",
        f"{p99:.3f}",
        f"{np.mean(patterns):.0f}",
        f"{np.mean(stops):.0f}",
    )
    if oracle_times:
        o50, o95, o99 = _percentiles(oracle_times)
        table.add_row(
            f"reference: pure-Python oracle ({agree} agree)",
            str(len(oracle_times)),
            f"{o50:.1f}",
            f"{o95:.1f}",
            f"{o99:.1f}",
            "",
            "",
        )
        ratio = float(np.sum(oracle_times) / np.mean(kernel_passes))
        table.add_row("oracle / kernel (same queries, total time)", "", f"{ratio:.0f}x", "", "", "", "")
    if "walk" in net.streets:
        router = Router(net)
        lat0, lat1 = np.percentile(net.streets["walk"].node_lat, [20, 80])
        lon0, lon1 = np.percentile(net.streets["walk"].node_lon, [20, 80])
        plan_times: dict[bool, list[float]] = {False: [], True: []}
        local = zoneinfo.ZoneInfo(manifest.timezone)
        for _ in range(max(queries // 10, 20)):
            request = PlanRequest(
                origin=Endpoint(lat=float(rng.uniform(lat0, lat1)), lon=float(rng.uniform(lon0, lon1))),
                destination=Endpoint(lat=float(rng.uniform(lat0, lat1)), lon=float(rng.uniform(lon0, lon1))),
                depart=dt.datetime.combine(date, dt.time(int(rng.integers(6, 20)), 0), local),
            )
            # The same request without and with bike share (which only costs where the network has stations).
            try:
                for bike_share in (False, True):
                    t0 = time.perf_counter()
                    router.plan(msgspec.structs.replace(request, bike_share=bike_share))
                    plan_times[bike_share].append((time.perf_counter() - t0) * 1000)
            except PlanError:
                continue
        for bike_share, label in ((False, "door-to-door plan (walk + transit)"), (True, "  the same with bike share")):
            if plan_times[bike_share]:
                d50, d95, d99 = _percentiles(plan_times[bike_share])
                table.add_row(label, str(len(plan_times[bike_share])), f"{d50:.2f}", f"{d95:.2f}", f"{d99:.2f}", "", "")
    console.print(table)

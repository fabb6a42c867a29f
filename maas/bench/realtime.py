"""`maas bench realtime`: applying a GTFS-Realtime message to a network, and plans with and without its overlay."""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from feeds.gtfs_rt import read_feed_message_file
from maas.bench.api import BenchError
from routing.network import load_network
from routing.plan import Endpoint, PlanError, PlanRequest, Router
from routing.raptor import Raptor

APPLY_RUNS = 20


def _ms(values: list[float], q: float) -> str:
    return f"{float(np.percentile(np.asarray(values), q)) * 1000:.2f}"


def bench_realtime(
    directory: Path, message_file: Path, feed_id: str, queries: int, seed: int, console: Console
) -> None:
    """Time applying `message_file` as feed `feed_id`'s trip updates (as of its own header time), against building
    a Raptor of the timetable alone; then plans between stops its retimed runs serve, without and with it."""
    t0 = time.perf_counter()
    net = load_network(directory)
    load_s = time.perf_counter() - t0
    message = read_feed_message_file(message_file)
    if message.timestamp is None:
        raise BenchError(f"{message_file}: the message has no header timestamp to apply it at")
    router = Router(net)
    index = router.realtime_index.get()
    apply_s, raptor_s = [], []
    for _ in range(APPLY_RUNS):
        t0 = time.perf_counter()
        overlay = index.apply({feed_id: message}, now_s=message.timestamp, max_age_s=3600)
        apply_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        Raptor(net.timetable, net.manifest.first_date, net.manifest.timezone)
        raptor_s.append(time.perf_counter() - t0)
    (report,) = overlay.feeds
    if not report.used:
        raise BenchError(f"{message_file}: not applied to {directory} ({report.ignored})")
    tt, base = overlay.timetable, overlay.base
    table = Table(
        title=f"realtime: {message_file.name} on {directory} ({base.arrival.shape[0]} stop times):"
        f" {report.realtime_runs} runs retimed, {report.cancelled_runs} cancelled, {report.unknown_trips} unknown trips,"
        f" {tt.n_patterns - base.n_patterns} realtime patterns"
    )
    for col in ("what", "runs", "p50 ms", "p95 ms"):
        table.add_column(col, justify="left" if col == "what" else "right")
    table.add_row("apply the message (overlay and its Raptor)", str(APPLY_RUNS), _ms(apply_s, 50), _ms(apply_s, 95))
    table.add_row("reference: a Raptor of the timetable alone", str(APPLY_RUNS), _ms(raptor_s, 50), _ms(raptor_s, 95))
    table.add_row("reference: loading the network", "1", f"{load_s * 1000:.2f}", "")
    # Plans between stops of the retimed runs, around the message's time: where the overlay matters.
    retimed = np.flatnonzero(np.arange(tt.n_trips) >= base.n_trips)
    if len(retimed):
        live = router.with_realtime(overlay)
        patterns = np.unique(overlay.raptor.trip_pattern[retimed])
        stops = np.unique(
            np.concatenate(
                [
                    np.asarray(tt.pattern_stops[tt.pattern_stop_offsets[p] : tt.pattern_stop_offsets[p + 1]])
                    for p in patterns
                ]
            )
        )
        rng = np.random.default_rng(seed)
        zone = zoneinfo.ZoneInfo(net.manifest.timezone)
        plan_s: dict[bool, list[float]] = {False: [], True: []}
        changed = 0
        for _ in range(queries):
            a, b = (str(tt.stop_id[s]) for s in rng.choice(stops, size=2, replace=False))
            depart = dt.datetime.fromtimestamp(message.timestamp + int(rng.integers(-1800, 1800)), zone)
            request = PlanRequest(origin=Endpoint(stop=a), destination=Endpoint(stop=b), depart=depart)
            try:
                answers = []
                for realtime, planner in ((False, router), (True, live)):
                    t0 = time.perf_counter()
                    answers.append(planner.plan(request))
                    plan_s[realtime].append(time.perf_counter() - t0)
            except PlanError:
                continue
            changed += [it.arrival for it in answers[0].itineraries] != [it.arrival for it in answers[1].itineraries]
        for realtime, label in ((False, "plan between their stops, timetable"), (True, "  the same, with the overlay")):
            if plan_s[realtime]:
                table.add_row(label, str(len(plan_s[realtime])), _ms(plan_s[realtime], 50), _ms(plan_s[realtime], 95))
        table.add_row("plans whose arrivals the overlay changed", str(changed), "", "")
    console.print(table)

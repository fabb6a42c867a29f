"""`maas bench dispatch`: quote latency on a booked fleet against the pure-Python insertion oracle."""

from __future__ import annotations

import random
import time
from pathlib import Path

import msgspec
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from routing.dispatch.darp import DarpError
from routing.dispatch.dispatcher import Dispatcher
from routing.dispatch.drive_times import DriveTimes
from routing.dispatch.model import DRIVING, Passengers, Request, Vehicle
from routing.network import load_network
from routing.oracles import best_pair_reference


def bench_quotes(
    directory: Path,
    vehicles: int,
    requests: int,
    quotes: int,
    oracle_quotes: int,
    reoptimize_s: float,
    seed: int,
    console: Console,
) -> None:
    """Quote latency (insertion into the live plans) with a booked fleet on a network's drive graph,
    against the pure-Python oracle on a few of the same quotes; then one re-optimisation."""
    network = load_network(directory)
    drive = network.streets.get("drive")
    if drive is None or drive.n_nodes == 0:
        raise DarpError(f"{directory}: the network has no drive graph (build it with --osm)")
    routable = DriveTimes(drive).routable
    stops = sorted({int(n) for n in np.asarray(network.snaps["drive"].node) if n >= 0 and routable[n]})
    if len(stops) < 2:
        raise DarpError(f"{directory}: fewer than two stops lie on the drive graph")
    rng = random.Random(seed)
    hour = 3600.0
    fleet = [
        Vehicle(
            id=f"bus-{k}",
            seats=8,
            wheelchair_places=1,
            depot_node=rng.choice(stops),
            shift_start_s=6 * hour,
            shift_end_s=22 * hour,
        )
        for k in range(vehicles)
    ]
    disp = Dispatcher(drive, fleet)

    def request(name: str) -> Request:
        a, b = rng.sample(stops, 2)
        group = Passengers(seated=rng.choice([1, 1, 1, 2, 3]), wheelchairs=1 if rng.random() < 0.05 else 0)
        return Request(
            id=name,
            origin_node=a,
            destination_node=b,
            passengers=group,
            earliest_pickup_s=rng.uniform(6.5 * hour, 20 * hour),
        )

    booked = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"booking {requests} rides on {vehicles} vehicles", total=requests)
        for k in range(requests):
            wish = request(f"booked-{k}")
            quote = disp.quote(wish, now_s=6 * hour)
            if quote.offers:
                disp.book(quote.offers[0], wish)
                booked += 1
            progress.advance(task)
        # Every place is known now, so the quotes below time the insertion, not new street searches.
        wishes = [request(f"quote-{k}") for k in range(quotes)]
        for wish in wishes:
            disp.times.place(wish.origin_node)
            disp.times.place(wish.destination_node)
        # The same quotes with the service's objective and with added driving alone: time, and what the
        # first offer means for the rider (minutes waited past the asked time) and the fleet.
        served = disp.rules
        measured: dict[str, tuple[list[float], list[float], list[float]]] = {}
        for name, objective in (("rider-first objective", served.objective), ("driving alone", DRIVING)):
            disp.rules = msgspec.structs.replace(served, objective=objective)
            times, waits, added = [], [], []
            task = progress.add_task(f"{quotes} quotes, {name}", total=quotes)
            for wish in wishes:
                start = time.perf_counter()
                quote = disp.quote(wish, now_s=6 * hour)
                times.append(time.perf_counter() - start)
                if quote.offers:
                    first = quote.offers[0]
                    waits.append((first.pickup_estimate_s - (wish.earliest_pickup_s or 0.0)) / 60)
                    added.append(first.added_drive_s / 60)
                progress.advance(task)
            measured[name] = (times, waits, added)
        disp.rules = served
        times = measured["rider-first objective"][0]
        kernel_s, oracle_s, agree = 0.0, 0.0, 0
        task = progress.add_task(f"oracle on {oracle_quotes} quotes", total=oracle_quotes)
        problem = disp.problem()
        for wish in wishes[:oracle_quotes]:
            with disp.trial(wish, now_s=6 * hour) as (p, d):
                # Read inside the trial, which may have grown the slot arrays.
                fixed: np.ndarray = disp.fixed
                start = time.perf_counter()
                found = disp.planner.pair_options(disp.routes, p, d, count=1)
                kernel_s += time.perf_counter() - start
                start = time.perf_counter()
                best = min(
                    best_pair_reference(problem, v, disp.routes[v].tolist(), p, d, fixed)[0] for v in range(vehicles)
                )
                oracle_s += time.perf_counter() - start
            mine = found[0].added_s if found else float("inf")
            agree += mine == best or abs(mine - best) < 1e-6
            progress.advance(task)
    visits = sum(len(r) for r in disp.routes)
    p50, p95, p99 = (float(np.percentile(times, q)) * 1000 for q in (50, 95, 99))
    table = Table(
        title=f"insertion: {directory} drive graph, {vehicles} vehicles, {booked}/{requests} rides "
        f"booked ({visits} planned stops), {len(stops)} virtual stops"
    )
    for col in ("what", "p50 ms", "p95 ms", "p99 ms", "vs oracle"):
        table.add_column(col, justify="left" if col == "what" else "right")
    table.add_row(
        f"quote ({quotes} requests, 3 offers)",
        f"{p50:.3f}",
        f"{p95:.3f}",
        f"{p99:.3f}",
        f"{oracle_s / kernel_s:.0f}x faster" if kernel_s else "",
    )
    plain = [float(np.percentile(measured["driving alone"][0], q)) * 1000 for q in (50, 95, 99)]
    table.add_row(
        "reference: the same quotes weighing driving alone",
        *(f"{x:.3f}" for x in plain),
        f"{p95 / plain[1]:.2f}x its p95" if plain[1] else "",
    )
    table.add_row(
        f"reference: pure-Python oracle ({oracle_quotes} quotes, {agree} agree)",
        f"{1000 * oracle_s / max(oracle_quotes, 1):.1f}",
        "",
        "",
        "1x",
    )
    console.print(table)
    riders = Table(title="the first offer of each quote, by objective (minutes)")
    for col in ("objective", "offers", "wait p50", "wait p95", "added driving mean"):
        riders.add_column(col, justify="left" if col == "objective" else "right")
    for name, (_, waits, added) in measured.items():
        riders.add_row(
            name,
            str(len(waits)),
            f"{np.percentile(waits, 50):.1f}" if waits else "",
            f"{np.percentile(waits, 95):.1f}" if waits else "",
            f"{np.mean(added):.1f}" if added else "",
        )
    console.print(riders)
    if reoptimize_s > 0:
        before = sum(disp.planner.route_cost(v, r) for v, r in enumerate(disp.routes))
        disp.reoptimize(reoptimize_s, seed=seed)
        after = sum(disp.planner.route_cost(v, r) for v, r in enumerate(disp.routes))
        plan = Table(title=f"re-optimisation ({reoptimize_s:g} s, every promise kept)")
        for col in ("driving h before", "driving h after", "saved"):
            plan.add_column(col, justify="right")
        plan.add_row(f"{before / 3600:.1f}", f"{after / 3600:.1f}", f"{100 * (1 - after / before):.1f} %")
        console.print(plan)

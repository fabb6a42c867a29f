"""Dispatcher benchmarks: Cordeau's dial-a-ride instances against their best known solutions."""

from __future__ import annotations

import json
import os
import re
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from routing.dispatch.darp import DarpError, read_darp, solve_darp


def _one_run(path: str, time_limit_s: float, seed: int, workers: int) -> tuple[str, int, float, bool]:
    inst = read_darp(path)
    solution = solve_darp(inst, time_limit_s, seed=seed, workers=workers)
    return inst.name, seed, solution.cost, solution.feasible


def bench_darp(directory: Path, time_limit_s: float, runs: int, workers: int, jobs: int, console: Console) -> None:
    """Solve every instance `runs` times (seeds 0..runs-1) and print the gaps to `bks.json`."""
    paths = sorted(directory.glob("*.txt"), key=lambda p: (tuple(int(x) for x in re.findall(r"\d+", p.stem)), p.stem))
    if not paths:
        raise DarpError(f"{directory}: no instance files (*.txt)")
    bks_path = directory / "bks.json"
    try:
        bks = {name: float(entry["bks"]) for name, entry in json.loads(bks_path.read_text()).items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DarpError(f"{bks_path}: best known solutions cannot be read: {exc}") from exc
    for path in paths:
        read_darp(path)  # a bad file fails before any time is spent
    results: dict[str, list[tuple[float, bool]]] = {p.stem: [] for p in paths}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with (
        Progress(*columns, console=Console(stderr=True), transient=True) as progress,
        ProcessPoolExecutor(max_workers=max(1, jobs)) as pool,
    ):
        task = progress.add_task(f"solving ({time_limit_s:g} s each, {jobs} at a time)", total=len(paths) * runs)
        futures = [pool.submit(_one_run, str(p), time_limit_s, seed, workers) for p in paths for seed in range(runs)]
        for future in as_completed(futures):
            name, _, cost, feasible = future.result()
            results[name].append((cost, feasible))
            progress.advance(task)

    table = Table(
        title=f"dial-a-ride: {directory} ({time_limit_s:g} s per run, {workers} process(es) each, {runs} runs,"
        " checked by routing.dispatch.darp)"
    )
    for col in ("instance", "best known", "mean cost", "best gap %", "mean gap %", "worst gap %", "feasible runs"):
        table.add_column(col, justify="left" if col == "instance" else "right")
    mean_gaps, worst_gaps, infeasible = [], [], 0
    for path in paths:
        name = path.stem
        costs = [c for c, ok in results[name] if ok]
        infeasible += sum(1 for _, ok in results[name] if not ok)
        ok_runs = f"{len(costs)}/{len(results[name])}"
        if name not in bks or not costs:
            table.add_row(name, f"{bks.get(name, float('nan')):.2f}", "-", "-", "-", "-", ok_runs)
            continue
        gaps = [100.0 * (c / bks[name] - 1.0) for c in costs]
        mean_gaps.append(statistics.fmean(gaps))
        worst_gaps.append(max(gaps))
        table.add_row(
            name,
            f"{bks[name]:.2f}",
            f"{statistics.fmean(costs):.2f}",
            f"{min(gaps):.2f}",
            f"{statistics.fmean(gaps):.2f}",
            f"{max(gaps):.2f}",
            ok_runs,
        )
    if mean_gaps:
        table.add_section()
        table.add_row(
            "all",
            "",
            "",
            "",
            f"{statistics.fmean(mean_gaps):.2f}",
            f"{max(worst_gaps):.2f}",
            f"{sum(len(v) for v in results.values()) - infeasible}/{sum(len(v) for v in results.values())}",
        )
    console.print(table)


def default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def bench_insertion(
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
    import random
    import time

    import numpy as np

    from routing.dispatch.dispatcher import Dispatcher
    from routing.dispatch.drive_times import DriveTimes
    from routing.dispatch.insertion import best_pair_reference
    from routing.dispatch.model import Passengers, Request, Vehicle
    from routing.network import load_network

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
        times = []
        task = progress.add_task(f"{quotes} quotes", total=quotes)
        for wish in wishes:
            start = time.perf_counter()
            disp.quote(wish, now_s=6 * hour)
            times.append(time.perf_counter() - start)
            progress.advance(task)
        kernel_s, oracle_s, agree = 0.0, 0.0, 0
        task = progress.add_task(f"oracle on {oracle_quotes} quotes", total=oracle_quotes)
        problem = disp.problem()
        for wish in wishes[:oracle_quotes]:
            with disp.trial(wish, now_s=6 * hour) as (p, d):
                start = time.perf_counter()
                found = disp.planner.pair_options(disp.routes, p, d, count=1)
                kernel_s += time.perf_counter() - start
                start = time.perf_counter()
                best = min(
                    best_pair_reference(problem, v, disp.routes[v].tolist(), p, d, disp.fixed)[0]
                    for v in range(vehicles)
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
    table.add_row(
        f"reference: pure-Python oracle ({oracle_quotes} quotes, {agree} agree)",
        f"{1000 * oracle_s / max(oracle_quotes, 1):.1f}",
        "",
        "",
        "1x",
    )
    console.print(table)
    if reoptimize_s > 0:
        before = sum(disp.planner.route_cost(v, r) for v, r in enumerate(disp.routes))
        disp.reoptimize(reoptimize_s, seed=seed)
        after = sum(disp.planner.route_cost(v, r) for v, r in enumerate(disp.routes))
        plan = Table(title=f"re-optimisation ({reoptimize_s:g} s, every promise kept)")
        for col in ("driving h before", "driving h after", "saved"):
            plan.add_column(col, justify="right")
        plan.add_row(f"{before / 3600:.1f}", f"{after / 3600:.1f}", f"{100 * (1 - after / before):.1f} %")
        console.print(plan)

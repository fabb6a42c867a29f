"""`maas bench darp`: Cordeau's dial-a-ride instances solved against their best known solutions."""

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

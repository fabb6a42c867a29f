"""`maas darp solve`: a dial-a-ride instance in Cordeau's format, planned by the dispatcher's search."""

from __future__ import annotations

import sys

import click

from maas.cli.common import err_console, fail, json_encoder


@click.group()
def darp() -> None:
    """Dial-a-ride instances in Cordeau's format (the dispatcher's benchmark)."""


@darp.command("solve")
@click.argument("instance", type=click.Path())
@click.option("--time-limit", "time_limit", type=float, default=10.0, show_default=True, help="Seconds to search.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the randomised search.")
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Searches side by side (processes, different seeds); the best goes on to OR-Tools "
    "while another search goes on from it.",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"cost", "routes", "feasible"}.')
def darp_solve(instance: str, time_limit: float, seed: int, workers: int, as_json: bool) -> None:
    """Plan every request of INSTANCE with at most its vehicles; routes list node ids, depots omitted."""
    from rich.progress import BarColumn, Progress, TextColumn

    from routing.dispatch.darp import DarpError, read_darp, solve_darp

    try:
        inst = read_darp(instance)
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("best {task.fields[best]:.2f}"))
        with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as progress:
            task = progress.add_task(f"{inst.name}: {time_limit:g} s", total=time_limit, best=float("nan"))
            solution = solve_darp(
                inst,
                time_limit,
                seed,
                workers=max(1, workers),
                progress=lambda elapsed, best: progress.update(task, completed=elapsed, best=best),
            )
    except DarpError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json_encoder.encode(solution).decode())
        return
    state = "feasible" if solution.feasible else "NOT feasible"
    click.echo(f"{inst.name}: cost {solution.cost:.2f}, {len(solution.routes)} routes, {state}")
    for k, route in enumerate(solution.routes):
        click.echo(f"  route {k}: {' '.join(map(str, route))}")
    if not solution.feasible:
        sys.exit(1)

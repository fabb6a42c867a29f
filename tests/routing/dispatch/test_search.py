"""The dial-a-ride search on Cordeau's instances: feasible by the independent checker and close to optimal."""

from __future__ import annotations

import json

import pytest

from routing.dispatch.darp import read_darp, solve_darp, verify_solution
from tests.routing.dispatch.checker import DARP, independent_check

BKS = {name: entry["bks"] for name, entry in json.loads((DARP / "bks.json").read_text()).items()}


@pytest.mark.parametrize("name", ["a2-16", "a3-18", "a4-24"])
def test_small_instances_are_solved_close_to_the_best_known(name: str) -> None:
    inst = read_darp(DARP / f"{name}.txt")
    solution = solve_darp(inst, time_limit_s=1.0, seed=0)
    report = independent_check(name, solution.routes)
    assert solution.feasible and report["feasible"], report["errors"] or report["routes"]
    assert report["total_distance"] == pytest.approx(solution.cost, rel=1e-9)
    assert solution.cost <= BKS[name] * 1.02


def test_verification_catches_a_broken_solution() -> None:
    inst = read_darp(DARP / "a2-16.txt")
    routes = solve_darp(inst, time_limit_s=0.3).routes
    assert verify_solution(inst, routes) is None
    assert "exactly once" in verify_solution(inst, [routes[0]])
    assert "routes for" in verify_solution(inst, [*routes, []] + [[1, 17]] * 2)
    swapped = [list(reversed(routes[0])), *routes[1:]]
    assert "route 0" in verify_solution(inst, swapped)


def test_two_workers_solve_a_larger_instance_checked_independently() -> None:
    # --workers 2: two searches side by side, then OR-Tools and the cool search from the better plan.
    inst = read_darp(DARP / "a5-40.txt")
    solution = solve_darp(inst, time_limit_s=3.0, seed=0, workers=2)
    report = independent_check("a5-40", solution.routes)
    assert solution.feasible and report["feasible"], report["errors"] or report["routes"]
    assert report["total_distance"] == pytest.approx(solution.cost, rel=1e-9)
    assert solution.cost <= BKS["a5-40"] * 1.02


def test_the_cool_search_keeps_its_start_feasible_and_only_improves_it() -> None:
    from routing.dispatch.darp import _polish, darp_problem
    from routing.dispatch.search import Search

    inst = read_darp(DARP / "a6-48.txt")
    start = Search(darp_problem(inst), seed=0).construct()  # regret insertion only: room to improve
    routes = [r.tolist() for r in start.routes]
    before = sum(start.costs)
    cost, polished = _polish(inst, routes, 1.0, seed=1)
    assert verify_solution(inst, [r for r in polished if r]) is None
    assert independent_check("a6-48", [r for r in polished if r])["feasible"]
    assert cost < before

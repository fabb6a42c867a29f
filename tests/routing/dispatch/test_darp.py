"""Cordeau's instances read in both layouts; exact route feasibility against the independent checker."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from routing.dispatch.darp import DarpError, DarpInstance, check_route, read_darp
from tests.routing.dispatch.checker import DARP, INSTANCES, darp_check


@pytest.mark.parametrize("path", INSTANCES, ids=lambda p: p.stem)
def test_every_instance_reads_and_each_request_alone_is_servable(path: Path) -> None:
    inst = read_darp(path)
    m, n = (int(v) for v in re.match(r"a(\d+)-(\d+)", path.stem).groups())
    assert (inst.vehicles, inst.requests) == (m, n)
    assert len(inst.x) == 2 * n + 2
    assert (inst.load[1 : n + 1] > 0).all() and (inst.load[n + 1 : 2 * n + 1] == -inst.load[1 : n + 1]).all()
    for i in range(1, n + 1):
        result = check_route(inst, [i, i + n])
        assert result.feasible, (i, result.reason)
        _assert_witness(inst, [i, i + n], result.start_s)


def _assert_witness(inst: DarpInstance, route: list[int], start: list[float] | None) -> None:
    assert start is not None
    full = [0, *route, inst.end_depot]
    eps = 1e-5
    for k, v in enumerate(full):
        assert inst.earliest[v] - eps <= start[k] <= inst.latest[v] + eps
        if k:
            assert start[k] >= start[k - 1] + inst.service_s[full[k - 1]] + inst.travel(full[k - 1], v) - eps
    pos = {v: k for k, v in enumerate(full)}
    for v in route:
        if v <= inst.requests:
            assert start[pos[v + inst.requests]] - (start[pos[v]] + inst.service_s[v]) <= inst.max_ride_s + eps
    assert start[-1] - start[0] <= inst.max_route_s + eps


def test_the_two_layouts_read_alike(tmp_path: Path) -> None:
    original = read_darp(DARP / "a2-16.txt")
    lines = (DARP / "a2-16.txt").read_text().splitlines()
    header = lines[0].split()
    header[1] = str(2 * int(header[1]))
    short = tmp_path / "a2-16-short.txt"
    short.write_text("\n".join([" ".join(header), *lines[1:-1]]) + "\n")  # no end-depot line
    other = read_darp(short)
    assert other.requests == original.requests
    assert np.allclose(other.x[:-1], original.x[:-1]) and other.x[-1] == original.x[0]


def test_bad_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    for text, message in (
        ("", "header"),
        ("2 16 480 3\n", "header"),
        ("2 x 480 3 30\n", "not a number"),
        ("2 2 480 3 30\n0 0 0 0 0 0 480\n", "node lines"),
    ):
        bad.write_text(text)
        with pytest.raises(DarpError, match=message):
            read_darp(bad)
    with pytest.raises(DarpError, match="cannot be read"):
        read_darp(tmp_path / "missing.txt")


def test_structural_violations_are_explained() -> None:
    inst = read_darp(DARP / "a2-16.txt")
    n = inst.requests
    assert "before its pickup" in check_route(inst, [1 + n, 1]).reason
    assert "never delivered" in check_route(inst, [1]).reason
    assert "capacity" in check_route(inst, [1, 2, 3, 4, 1 + n, 2 + n, 3 + n, 4 + n]).reason
    assert "twice" in check_route(inst, [1, 1, 1 + n]).reason


@pytest.mark.parametrize("name", ["a2-16", "a4-24", "a6-48", "a8-96"])
def test_time_feasibility_agrees_with_the_independent_checker(name: str) -> None:
    inst = read_darp(DARP / f"{name}.txt")
    theirs = darp_check.read_instance(str(DARP / f"{name}.txt"))
    rng = np.random.default_rng(len(name))
    n = inst.requests
    verdicts = []
    # Requests close in time make routes that are sometimes feasible and sometimes not.
    order = np.argsort(inst.earliest[1 : n + 1] + inst.latest[n + 1 : 2 * n + 1])
    for _ in range(300):
        start = int(rng.integers(0, max(n - 3, 1)))
        chosen = (order[start : start + int(rng.integers(2, 4))] + 1).tolist()
        # A random interleaving: the first visit of a request is its pickup, the second its delivery.
        visits = chosen * 2
        rng.shuffle(visits)
        seq, open_ = [], set()
        for v in visits:
            seq.append(v + n if v in open_ else v)
            open_.add(v)
        result = check_route(inst, seq)
        if result.reason and ("capacity" in result.reason):
            continue
        expected = darp_check.schedule_exact(theirs, seq, 1e-6) is not None
        assert result.feasible == expected, (seq, result.reason)
        if result.feasible:
            _assert_witness(inst, seq, result.start_s)
        verdicts.append(result.feasible)
    assert any(verdicts) and not all(verdicts), "the sample holds both feasible and infeasible routes"

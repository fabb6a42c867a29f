"""Pure-Python implementations of the kernels' semantics, written for clarity, not speed: the test oracles.

Tests and benchmarks compare the compiled kernels with these; no production module imports this one
(an import-linter contract checks it), so the query path holds only the fast code.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence

import numpy as np

from routing.dispatch.insertion import fixed_vehicles
from routing.dispatch.model import DRIVING, Problem, Weights
from routing.model import StreetArrays, Timetable
from routing.raptor import NO_DEPARTURE, UNREACHED

# RAPTOR (`routing.raptor.Raptor.earliest_arrival` / `latest_departure`, labels only)


def earliest_arrival_reference(
    tt: Timetable,
    sources: np.ndarray,
    source_times: np.ndarray,
    max_rounds: int,
    trip_active: np.ndarray,
    day_offset: np.ndarray,
    change_s: np.ndarray,
    stop_ok: np.ndarray,
    use_footpaths: bool,
) -> np.ndarray:
    """Pure-Python RAPTOR with the kernel's semantics (labels only): the test oracle.

    Written for clarity, not speed: every trip of every service day is tried at every stop.
    """
    S = tt.n_stops
    inf = UNREACHED
    labels = [[inf] * S for _ in range(max_rounds + 1)]
    ready = [[inf] * S for _ in range(max_rounds + 1)]
    marked: set[int] = set()
    for s, t in zip(sources.tolist(), source_times.tolist(), strict=True):
        if t < labels[0][s]:
            labels[0][s] = ready[0][s] = t
            marked.add(s)
    if use_footpaths:
        for s, t in zip(sources.tolist(), source_times.tolist(), strict=True):
            if labels[0][s] != t:
                continue
            for e in range(int(tt.transfer_offsets[s]), int(tt.transfer_offsets[s + 1])):
                u = int(tt.transfer_to[e])
                a = t + int(tt.transfer_s[e])
                if a < labels[0][u]:
                    labels[0][u] = ready[0][u] = a
                    marked.add(u)
    pattern_of_stop: dict[int, set[int]] = {}
    for p in range(tt.n_patterns):
        for s in tt.pattern_stops[tt.pattern_stop_offsets[p] : tt.pattern_stop_offsets[p + 1]].tolist():
            pattern_of_stop.setdefault(s, set()).add(p)
    for k in range(1, max_rounds + 1):
        labels[k] = list(labels[k - 1])
        ready[k] = list(ready[k - 1])
        transit = [inf] * S
        next_marked: set[int] = set()
        patterns = sorted({p for s in marked for p in pattern_of_stop.get(s, ())})
        for p in patterns:
            s0, s1 = int(tt.pattern_stop_offsets[p]), int(tt.pattern_stop_offsets[p + 1])
            n = s1 - s0
            t0, t1 = int(tt.pattern_trip_offsets[p]), int(tt.pattern_trip_offsets[p + 1])
            base = int(tt.pattern_stop_time_offsets[p])
            current: tuple[int, int] | None = None  # (row, day)
            for i in range(n):
                s = int(tt.pattern_stops[s0 + i])
                if current is not None and stop_ok[s] and tt.pattern_dropoff[s0 + i] != 1:
                    row, day = current
                    a = int(tt.arrival[base + row * n + i]) + int(day_offset[day])
                    transit[s] = min(transit[s], a)
                    labels[k][s] = min(labels[k][s], a)
                    if a + int(change_s[s]) < ready[k][s]:
                        ready[k][s] = a + int(change_s[s])
                        next_marked.add(s)
                r = ready[k - 1][s]
                if r == inf or not stop_ok[s] or tt.pattern_pickup[s0 + i] == 1:
                    continue
                cur_dep = inf
                if current is not None:
                    cur_dep = int(tt.departure[base + current[0] * n + i]) + int(day_offset[current[1]])
                    if r > cur_dep:
                        continue
                best: tuple[int, tuple[int, int] | None] = (cur_dep, None)
                for day in range(len(day_offset)):
                    for row in range(t1 - t0):
                        if not trip_active[day, t0 + row]:
                            continue
                        d = int(tt.departure[base + row * n + i]) + int(day_offset[day])
                        if r <= d < best[0]:
                            best = (d, (row, day))
                if best[1] is not None:
                    current = best[1]
        if use_footpaths:
            for s in range(S):
                if transit[s] == inf:
                    continue
                for e in range(int(tt.transfer_offsets[s]), int(tt.transfer_offsets[s + 1])):
                    u = int(tt.transfer_to[e])
                    a = transit[s] + int(tt.transfer_s[e])
                    labels[k][u] = min(labels[k][u], a)
                    if a < ready[k][u]:
                        ready[k][u] = a
                        next_marked.add(u)
        marked = next_marked
    return np.array(labels, dtype=np.int64)


def latest_departure_reference(
    tt: Timetable,
    targets: np.ndarray,
    target_times: np.ndarray,
    max_rounds: int,
    trip_active: np.ndarray,
    day_offset: np.ndarray,
    change_s: np.ndarray,
    stop_ok: np.ndarray,
    use_footpaths: bool,
) -> np.ndarray:
    """Pure-Python backward RAPTOR with the kernel's semantics (labels only): the test oracle.

    `earliest_arrival_reference` with time running backward: patterns are scanned from their last
    stop, a trip is caught where one may alight from it and ridden back to where it is boarded.
    """
    S = tt.n_stops
    none = NO_DEPARTURE
    labels = [[none] * S for _ in range(max_rounds + 1)]
    ready = [[none] * S for _ in range(max_rounds + 1)]  # latest arrival at a stop to go on from it
    into: dict[int, list[tuple[int, int]]] = {}  # stop -> footpaths (from, seconds) leading to it
    for a in range(S):
        for e in range(int(tt.transfer_offsets[a]), int(tt.transfer_offsets[a + 1])):
            into.setdefault(int(tt.transfer_to[e]), []).append((a, int(tt.transfer_s[e])))
    marked: set[int] = set()
    for s, t in zip(targets.tolist(), target_times.tolist(), strict=True):
        if t > labels[0][s]:
            labels[0][s] = ready[0][s] = t
            marked.add(s)
    if use_footpaths:
        for s, t in zip(targets.tolist(), target_times.tolist(), strict=True):
            if labels[0][s] != t:
                continue
            for u, w in into.get(s, ()):
                if t - w > labels[0][u]:
                    labels[0][u] = ready[0][u] = t - w
                    marked.add(u)
    pattern_of_stop: dict[int, set[int]] = {}
    for p in range(tt.n_patterns):
        for s in tt.pattern_stops[tt.pattern_stop_offsets[p] : tt.pattern_stop_offsets[p + 1]].tolist():
            pattern_of_stop.setdefault(s, set()).add(p)
    for k in range(1, max_rounds + 1):
        labels[k] = list(labels[k - 1])
        ready[k] = list(ready[k - 1])
        boarded = [none] * S
        next_marked: set[int] = set()
        for p in sorted({p for s in marked for p in pattern_of_stop.get(s, ())}):
            s0, s1 = int(tt.pattern_stop_offsets[p]), int(tt.pattern_stop_offsets[p + 1])
            n = s1 - s0
            t0, t1 = int(tt.pattern_trip_offsets[p]), int(tt.pattern_trip_offsets[p + 1])
            base = int(tt.pattern_stop_time_offsets[p])
            current: tuple[int, int] | None = None  # (row, day)
            for i in reversed(range(n)):
                s = int(tt.pattern_stops[s0 + i])
                if current is not None and stop_ok[s] and tt.pattern_pickup[s0 + i] != 1:
                    row, day = current
                    d = int(tt.departure[base + row * n + i]) + int(day_offset[day])
                    boarded[s] = max(boarded[s], d)
                    labels[k][s] = max(labels[k][s], d)
                    if d - int(change_s[s]) > ready[k][s]:
                        ready[k][s] = d - int(change_s[s])
                        next_marked.add(s)
                r = ready[k - 1][s]
                if r == none or not stop_ok[s] or tt.pattern_dropoff[s0 + i] == 1:
                    continue
                cur_arr = none
                if current is not None:
                    cur_arr = int(tt.arrival[base + current[0] * n + i]) + int(day_offset[current[1]])
                    if r < cur_arr:
                        continue
                best: tuple[int, tuple[int, int] | None] = (cur_arr, None)
                for day in range(len(day_offset)):
                    # Of trips arriving at once, the last (it leaves earlier stops no earlier).
                    for row in reversed(range(t1 - t0)):
                        if not trip_active[day, t0 + row]:
                            continue
                        a = int(tt.arrival[base + row * n + i]) + int(day_offset[day])
                        if best[0] < a <= r:
                            best = (a, (row, day))
                if best[1] is not None:
                    current = best[1]
        if use_footpaths:
            for s in range(S):
                if boarded[s] == none:
                    continue
                for u, w in into.get(s, ()):
                    d = boarded[s] - w
                    labels[k][u] = max(labels[k][u], d)
                    if d > ready[k][u]:
                        ready[k][u] = d
                        next_marked.add(u)
        marked = next_marked
    return np.array(labels, dtype=np.int64)


# Street Dijkstra (`routing.streets.StreetRouter.search`)


def search_reference(
    graph: StreetArrays, weight: str, sources: np.ndarray, source_costs: np.ndarray, budget: float
) -> dict[int, float]:
    """Pure-Python Dijkstra with the kernel's semantics: the test oracle for `StreetRouter.search`."""
    weights = getattr(graph, weight)
    best: dict[int, float] = {}
    heap: list[tuple[float, int]] = []
    for node, cost in zip(sources.tolist(), source_costs.tolist(), strict=True):
        if cost <= budget and cost < best.get(node, np.inf):
            best[node] = cost
            heapq.heappush(heap, (cost, node))
    settled: dict[int, float] = {}
    while heap:
        cost, node = heapq.heappop(heap)
        if node in settled:
            continue
        settled[node] = cost
        for e in range(int(graph.indptr[node]), int(graph.indptr[node + 1])):
            nxt = int(graph.indices[e])
            # float32 weights are added in double precision, as in the kernel.
            new = cost + float(weights[e])
            if new <= budget and new < best.get(nxt, np.inf):
                best[nxt] = new
                heapq.heappush(heap, (new, nxt))
    return settled


# Insertion (`routing.dispatch.insertion.Planner`)


def schedule_reference(
    problem: Problem, vehicle: int, route: Sequence[int], fixed: np.ndarray | None = None
) -> list[float] | None:
    """Pure-Python oracle of `Planner.schedule`: Bellman-Ford on the difference constraints."""
    seq = [int(problem.vehicle_start[vehicle]), *map(int, route), int(problem.vehicle_end[vehicle])]
    fixed = fixed_vehicles(problem) if fixed is None else fixed
    position = {node: k for k, node in enumerate(seq)}
    load = problem.initial_load[vehicle].astype(np.int64).copy()
    for k, node in enumerate(seq[1:-1], start=1):
        if fixed[node] not in (-1, vehicle):
            return None
        partner = int(problem.partner[node])
        if (problem.demand[node] > 0).any() and position.get(partner, -1) < k:
            return None
        if partner >= 0 and (problem.demand[node] < 0).any() and position.get(partner, k) > k:
            return None
        load += problem.demand[node]
        if (load > problem.capacity[vehicle]).any() or (load < 0).any():
            return None
    k = len(seq)
    # Lower bounds as edges a -> b with weight w: B[b] >= B[a] + w; node k is time zero.
    edges = [(k, x, float(problem.earliest_s[node])) for x, node in enumerate(seq)]
    edges += [
        (x, x + 1, float(problem.service_s[seq[x]]) + problem.travel_time(seq[x], seq[x + 1])) for x in range(k - 1)
    ]
    for x, node in enumerate(seq[1:-1], start=1):
        partner = int(problem.partner[node])
        if partner in position and position[partner] > x:
            edges.append((position[partner], x, -float(problem.service_s[node]) - float(problem.max_ride_s[node])))
    edges.append((k - 1, 0, -float(problem.max_duration_s[vehicle])))
    start = [0.0] * (k + 1)
    for _ in range(k + 2):
        moved = False
        for a, b, w in edges:
            if start[a] + w > start[b] + 1e-6:
                start[b] = start[a] + w
                moved = True
        if not moved:
            break
    else:
        return None
    times = start[:k]
    if any(t > problem.latest_s[node] + 1e-6 for t, node in zip(times, seq, strict=True)):
        return None
    return times


def best_insertion_reference(
    problem: Problem, vehicle: int, route: Sequence[int], request: int, weights: Weights = DRIVING
) -> tuple[float, int, int]:
    """Pure-Python oracle of `Planner.best_insertion`: every pair of positions, each checked exactly."""
    p, d = int(problem.pickup[request]), int(problem.dropoff[request])
    return best_pair_reference(problem, vehicle, route, p, d, weights=weights)


def best_pair_reference(
    problem: Problem,
    vehicle: int,
    route: Sequence[int],
    p: int,
    d: int,
    fixed: np.ndarray | None = None,
    weights: Weights = DRIVING,
) -> tuple[float, int, int]:
    """As `best_insertion_reference`, for a pickup node `p` and drop-off node `d`: the weighted cost
    with the new rider's wait and ride read from the least schedule."""
    route = [int(x) for x in route]
    seq = [int(problem.vehicle_start[vehicle]), *route, int(problem.vehicle_end[vehicle])]
    base = sum(problem.travel_time(a, b) for a, b in itertools.pairwise(seq))
    best = (float("inf"), -1, -1)
    for i in range(len(route) + 1):
        for j in range(i, len(route) + 1):
            trial = [*route[:i], p, *route[i:j], d, *route[j:]]
            full = [seq[0], *trial, seq[-1]]
            added = sum(problem.travel_time(a, b) for a, b in itertools.pairwise(full)) - base
            if weights.drive * added >= best[0] - 1e-9:
                continue  # the other terms are never negative
            times = schedule_reference(problem, vehicle, trial, fixed)
            if times is None:
                continue
            wait = times[i + 1] - problem.earliest_s[p]
            ride = times[j + 2] - times[i + 1] - problem.service_s[p]
            cost = weights.drive * added + weights.wait * wait + weights.ride * ride
            if cost < best[0] - 1e-9:
                best = (cost, i, j)
    return best

"""The slot arrays of a live plan: allocation, reuse, growth and the compact snapshot."""

from __future__ import annotations

import math

import numpy as np

from routing.dispatch.drive_times import DriveTimes
from routing.dispatch.model import Vehicle
from routing.dispatch.visits import Visits
from routing.model import StreetArrays

H = 3600.0


def _visits(drive: StreetArrays, stops: list[int], size: int) -> Visits:
    fleet = [
        Vehicle(id=f"bus-{k}", seats=4, depot_node=stops[k], shift_start_s=6 * H, shift_end_s=22 * H) for k in range(2)
    ]
    return Visits(DriveTimes(drive), fleet, size)


def test_slots_are_reused_lowest_first_and_grow_keeping_their_values(drive: StreetArrays, stops: list[int]) -> None:
    visits = _visits(drive, stops, size=6)  # four vehicle slots and two free ones
    place = visits.times.place(stops[5])
    first = visits.add(place, 60.0, 7 * H, 8 * H, demand=(1, 1), fixed=1)
    assert first == 4 and visits.fixed[first] == 1 and visits.demand[first].tolist() == [1, 1]
    second = visits.slot()
    visits.release(first)
    assert visits.slot() == first  # a released slot comes back before a new one
    assert visits.fixed[first] == -1 and visits.latest[first] == math.inf and visits.demand[first].tolist() == [0, 0]
    visits.earliest[second] = 9 * H
    third = visits.slot()  # none free: the arrays double
    assert (third, len(visits.service)) == (6, 12) and visits.earliest[second] == 9 * H
    assert visits.latest[11] == math.inf and visits.partner[11] == -1
    assert visits.earliest[visits.vehicle_start].tolist() == [6 * H, 6 * H]


def test_a_snapshot_is_a_valid_compact_problem(drive: StreetArrays, stops: list[int]) -> None:
    visits = _visits(drive, stops, size=64)
    p = visits.add(visits.times.place(stops[2]), 60.0, 7 * H, 8 * H, demand=(1, 1))
    d = visits.add(visits.times.place(stops[3]), 60.0, 7 * H, 10 * H, demand=(-1, -1))
    visits.partner[p], visits.partner[d] = d, p
    routes = [np.array([p, d], dtype=np.int32), np.zeros(0, dtype=np.int32)]
    problem, compact, slots = visits.snapshot([(p, d, -1)], routes)
    problem.validate()
    assert slots.tolist() == [0, 1, 2, 3, p, d] and [r.tolist() for r in compact] == [[4, 5], []]
    assert problem.pickup.tolist() == [4] and problem.dropoff.tolist() == [5] and problem.partner[4] == 5
    assert visits.planner.schedule(0, routes[0]) is not None

"""Driving times between the places a live plan uses, on the Herrenberg drive graph."""

from __future__ import annotations

import numpy as np
import pytest

from routing.dispatch.drive_times import UNREACHABLE_S, DriveTimes
from routing.dispatch.model import DispatchError
from routing.model import StreetArrays


def test_a_grown_matrix_keeps_the_times_it_had(drive: StreetArrays, stops: list[int]) -> None:
    small, large = DriveTimes(drive, capacity=4), DriveTimes(drive, capacity=64)
    chosen = stops[:: max(1, len(stops) // 20)][:20]
    small.warm(chosen)
    large.warm(chosen)
    assert small.grown >= 2 and large.grown == 0 and small.nodes == large.nodes == chosen
    k = len(chosen)
    assert np.array_equal(small.matrix[:k, :k], large.matrix[:k, :k])
    assert (np.diag(small.matrix[:k, :k]) == 0).all() and (small.matrix[:k, :k] < UNREACHABLE_S).all()
    assert small.place(chosen[3]) == 3 and small.seconds(chosen[0], chosen[1]) == small.matrix[0, 1]


def test_places_off_the_served_roads_are_refused(drive: StreetArrays, stops: list[int]) -> None:
    times = DriveTimes(drive)
    cut_off = int(np.flatnonzero(~times.routable)[0])
    with pytest.raises(DispatchError, match="cut off"):
        times.place(cut_off)
    with pytest.raises(DispatchError, match="not in the drive graph"):
        times.place(drive.n_nodes)
    times.warm([cut_off, stops[0], drive.n_nodes])  # warming skips what it cannot place
    assert times.nodes == [stops[0]]


def test_positions_snap_to_served_roads_only(drive: StreetArrays) -> None:
    times = DriveTimes(drive)
    node = times.snap(48.5935, 8.8630)  # Herrenberg Bahnhof
    assert times.routable[node]
    assert times.snap_many([], []) == []
    with pytest.raises(DispatchError, match="road"):
        times.snap(0.0, 0.0)


def test_a_new_place_that_grows_the_matrix_is_timed_from_the_grown_matrix(drive) -> None:
    from routing.dispatch.drive_times import DriveTimes

    times = DriveTimes(drive)
    nodes = [n for n in range(drive.n_nodes) if times.routable[n]]
    size = times.matrix.shape[0]
    for n in nodes[: size - 1]:
        times.place(n)
    # The next two places are new: the second grows the matrix while the first is being timed.
    a, b = nodes[size], nodes[size + 1]
    assert times.seconds(a, b) == times.seconds(a, b) >= 0
    assert times.matrix.shape[0] > size

"""Footpath transfers between nearby stops: on the walk graph, or straight-line without one."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from routing.model import StopSnap, StreetArrays
from routing.spatial import NearestIndex, haversine_m
from routing.streets import StreetRouter

# GTFS transfer_type values.
_RECOMMENDED, _TIMED, _MIN_TIME, _FORBIDDEN = 0, 1, 2, 3


class Footpaths:
    """Directed stop-to-stop walks (metres, seconds) plus each stop's own change time."""

    def __init__(self, n_stops: int) -> None:
        self.n_stops = n_stops
        self.pairs: dict[tuple[int, int], float] = {}  # (from, to) -> metres
        self.fixed_s: dict[tuple[int, int], int] = {}  # (from, to) -> seconds set by transfers.txt
        self.forbidden: set[tuple[int, int]] = set()
        self.stop_min_transfer_s = np.zeros(n_stops, dtype=np.int32)

    def add(self, a: int, b: int, metres: float) -> None:
        if a != b and metres < self.pairs.get((a, b), np.inf):
            self.pairs[(a, b)] = metres

    def arrays(self, walk_speed_mps: float) -> dict[str, np.ndarray]:
        """CSR over origin stops: transfer_offsets, transfer_to, transfer_s, transfer_m."""
        keys = [k for k in self.pairs if k not in self.forbidden]
        keys.sort()
        frm = np.array([k[0] for k in keys], dtype=np.int64)
        to = np.array([k[1] for k in keys], dtype=np.int32)
        metres = np.array([self.pairs[k] for k in keys], dtype=np.float64)
        seconds = np.ceil(metres / walk_speed_mps).astype(np.int64)
        for i, key in enumerate(keys):
            if key in self.fixed_s:
                seconds[i] = max(seconds[i], self.fixed_s[key]) if metres[i] > 0 else self.fixed_s[key]
        counts = np.bincount(frm, minlength=self.n_stops)
        return {
            "transfer_offsets": np.r_[0, np.cumsum(counts)].astype(np.int32),
            "transfer_to": to,
            "transfer_s": seconds.astype(np.int32),
            "transfer_m": metres.astype(np.float32),
        }


def street_footpaths(
    paths: Footpaths,
    walk: StreetArrays,
    snap: StopSnap,
    budget_m: float,
    tick: Callable[[int], None] | None = None,
) -> None:
    """Walks on the street graph between snapped stops, including the walks to and from the snap nodes."""
    router = StreetRouter(walk, "length_m")
    snapped = np.flatnonzero(snap.node >= 0)
    order = np.argsort(snap.node[snapped], kind="stable")
    sorted_nodes = snap.node[snapped][order]
    sorted_stops = snapped[order]
    for s in snapped:
        nodes, costs = router.search(
            np.array([snap.node[s]], dtype=np.int32), np.array([snap.distance_m[s]], dtype=np.float64), budget_m
        )
        lo = np.searchsorted(sorted_nodes, nodes, "left")
        hi = np.searchsorted(sorted_nodes, nodes, "right")
        count = hi - lo
        if count.sum():
            first = np.repeat(lo, count)
            within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
            targets = sorted_stops[first + within]
            total = np.repeat(costs, count) + snap.distance_m[targets]
            for t, metres in zip(targets.tolist(), total.tolist(), strict=True):
                if metres <= budget_m:
                    paths.add(int(s), t, metres)
        if tick:
            tick(1)


def straight_line_footpaths(paths: Footpaths, lat: np.ndarray, lon: np.ndarray, budget_m: float, detour: float) -> None:
    """Walks estimated as straight lines × detour factor, for networks built without streets."""
    index = NearestIndex(lat, lon)
    pairs = index.pairs_within(budget_m / detour)
    if not len(pairs):
        return
    metres = haversine_m(lat[pairs[:, 0]], lon[pairs[:, 0]], lat[pairs[:, 1]], lon[pairs[:, 1]]) * detour
    for (a, b), m in zip(pairs.tolist(), metres.tolist(), strict=True):
        if m <= budget_m:
            paths.add(a, b, m)
            paths.add(b, a, m)


def station_footpaths(paths: Footpaths, parent: np.ndarray, lat: np.ndarray, lon: np.ndarray, detour: float) -> None:
    """Stops of the same station are always connected, however far apart their platforms are."""
    children = pd.Series(np.arange(len(parent))).groupby(parent).agg(list)
    for station, members in children.items():
        if station < 0 or len(members) < 2:
            continue
        for a in members:
            for b in members:
                if a != b and (a, b) not in paths.pairs:
                    m = float(haversine_m(lat[a], lon[a], lat[b], lon[b]))
                    paths.add(a, b, m * detour if np.isfinite(m) else 0.0)


def apply_transfer_rules(paths: Footpaths, rules: pd.DataFrame, stop_index: dict[str, int], default_s: int) -> int:
    """GTFS transfers.txt between stops: change times, timed and forbidden transfers. Returns rules used."""
    paths.stop_min_transfer_s[:] = default_s
    used = 0
    for frm, to, kind, mtt in rules[["from_stop_id", "to_stop_id", "transfer_type", "min_transfer_time"]].itertuples(
        index=False
    ):
        a, b = stop_index.get(frm), stop_index.get(to)
        if a is None or b is None:
            continue
        used += 1
        seconds = 0 if pd.isna(mtt) else int(mtt)
        if kind == _FORBIDDEN:
            paths.forbidden.add((a, b))
        elif a == b:
            if kind == _MIN_TIME:
                paths.stop_min_transfer_s[a] = seconds
        elif kind in (_RECOMMENDED, _TIMED, _MIN_TIME):
            if (a, b) not in paths.pairs:
                paths.pairs[(a, b)] = 0.0
            paths.fixed_s[(a, b)] = seconds if kind == _MIN_TIME else 0
    return used

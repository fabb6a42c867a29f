"""What planning on one Router shares between threads, and what each thread keeps for itself.

A street search (`ext.dijkstra.StreetSearch`) keeps per-node arrays between calls, so one
`StreetRouter` serves one search at a time: every thread planning on a Router gets its own
`RouterScratch` of them. All the rest a Router holds is immutable once built; what is built on
first use (the walk-graph snapper, the reversed bike graph) is built once, under a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from routing.model import Network, StreetArrays
from routing.spatial import EdgeSnapper
from routing.streets import StreetRouter, reversed_graph

T = TypeVar("T")


class Once(Generic[T]):
    """A value built on first use, once even when several threads ask for it at the same time."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._value: T | None = None

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value


class StreetGraphs:
    """A network's walk and bike graphs and the immutable indexes over them, shared by every thread."""

    def __init__(self, network: Network) -> None:
        self.walk: StreetArrays | None = network.streets.get("walk")
        self.bike: StreetArrays | None = network.streets.get("bike")
        walk, bike = self.walk, self.bike
        # Built on first use: a Router that is never asked about a coordinate never needs them.
        self.walk_snapper = Once(lambda: EdgeSnapper(walk)) if walk is not None else None
        self.bike_reversed = Once(lambda: reversed_graph(bike)) if bike is not None else None


class RouterScratch:
    """One thread's street searches on a Router's graphs: by metres on foot, by seconds on a bike."""

    def __init__(self, graphs: StreetGraphs) -> None:
        self._graphs = graphs
        self.walk = StreetRouter(graphs.walk, "length_m") if graphs.walk is not None else None
        self._bike: dict[bool, StreetRouter] = {}

    def bike(self, backward: bool) -> StreetRouter:
        """Searches by riding time on the bike graph; backward ones find the ways *to* a node."""
        router = self._bike.get(backward)
        if router is None:
            graphs = self._graphs
            assert graphs.bike is not None and graphs.bike_reversed is not None, "the network has no bike graph"
            router = StreetRouter(graphs.bike_reversed.get() if backward else graphs.bike, "travel_time_s")
            self._bike[backward] = router
        return router


class PerThread:
    """A RouterScratch for each thread that plans on one Router."""

    def __init__(self, graphs: StreetGraphs) -> None:
        self._graphs = graphs
        self._local = threading.local()

    def get(self) -> RouterScratch:
        scratch: RouterScratch | None = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = RouterScratch(self._graphs)
            self._local.scratch = scratch
        return scratch

"""Trips of one stop sequence split into chains that never overtake: the order RAPTOR's trip searches assume.

The kernel finds the first trip leaving a stop after a time by bisecting the departures of a route
pattern's rows, and keeps the trip it rides unless an earlier row leaves later on: both hold only if
no row departs or arrives anywhere before the row above it. The builder makes the timetable's patterns
this way, the realtime overlay its patterns of delayed trip runs.
"""

from __future__ import annotations

import numpy as np


def fifo_chains(arrival: np.ndarray, departure: np.ndarray) -> list[list[int]]:
    """Rows of `arrival` and `departure` ([trip, stop] of trips along the same stops) grouped into chains
    in which every row arrives and departs at each stop no earlier than the row before it. Rows are taken
    by first departure, then last arrival (ties in input order); each joins the first chain it can."""
    if not len(arrival):
        return []
    order = np.lexsort((arrival[:, -1], departure[:, 0]))
    chains: list[list[int]] = []
    for k in order.tolist():
        for chain in chains:
            last = chain[-1]
            if (arrival[k] >= arrival[last]).all() and (departure[k] >= departure[last]).all():
                chain.append(k)
                break
        else:
            chains.append([k])
    return chains

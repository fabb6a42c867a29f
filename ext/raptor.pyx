# cython: language_level=3
"""RAPTOR earliest-arrival rounds over the timetable arrays (one round per trip taken).

Times are int32 seconds relative to the query day's service-day origin. Trips may run on
several service days (yesterday's late trips, today's, tomorrow's): `day_offset[d]` shifts
service day d's times onto the query day's clock and `trip_active[d, t]` says whether trip t
runs on it. Labels of round k are the best arrivals with at most k trips.
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport INT32_MAX
from libc.string cimport memcpy

from ext._types cimport int8_t, int32_t, int64_t, uint8_t

cnp.import_array()

cdef enum:
    NONE = 0
    SOURCE = 1
    TRANSIT = 2
    FOOTPATH = 3
    KEPT = 4  # unchanged from the previous round

UNREACHED = INT32_MAX
PARENT_NONE = NONE
PARENT_SOURCE = SOURCE
PARENT_TRANSIT = TRANSIT
PARENT_FOOTPATH = FOOTPATH
PARENT_KEPT = KEPT


cdef class RaptorTimetable:
    """The arrays a search reads, held once per loaded network."""

    cdef const int32_t[::1] pattern_stop_offsets
    cdef const int32_t[::1] pattern_stops
    cdef const int8_t[::1] pattern_pickup
    cdef const int8_t[::1] pattern_dropoff
    cdef const int32_t[::1] pattern_trip_offsets
    cdef const int64_t[::1] pattern_stop_time_offsets
    cdef const int32_t[::1] arrival
    cdef const int32_t[::1] departure
    cdef const int32_t[::1] stop_pattern_offsets
    cdef const int32_t[::1] stop_patterns
    cdef const int32_t[::1] transfer_offsets
    cdef const int32_t[::1] transfer_to
    cdef const int32_t[::1] transfer_s
    cdef readonly int32_t n_stops
    cdef readonly int32_t n_patterns
    cdef readonly int32_t n_trips

    def __init__(
        self,
        const int32_t[::1] pattern_stop_offsets, const int32_t[::1] pattern_stops,
        const int8_t[::1] pattern_pickup, const int8_t[::1] pattern_dropoff,
        const int32_t[::1] pattern_trip_offsets, const int64_t[::1] pattern_stop_time_offsets,
        const int32_t[::1] arrival, const int32_t[::1] departure,
        const int32_t[::1] stop_pattern_offsets, const int32_t[::1] stop_patterns,
        const int32_t[::1] transfer_offsets, const int32_t[::1] transfer_to, const int32_t[::1] transfer_s,
    ):
        self.pattern_stop_offsets = pattern_stop_offsets
        self.pattern_stops = pattern_stops
        self.pattern_pickup = pattern_pickup
        self.pattern_dropoff = pattern_dropoff
        self.pattern_trip_offsets = pattern_trip_offsets
        self.pattern_stop_time_offsets = pattern_stop_time_offsets
        self.arrival = arrival
        self.departure = departure
        self.stop_pattern_offsets = stop_pattern_offsets
        self.stop_patterns = stop_patterns
        self.transfer_offsets = transfer_offsets
        self.transfer_to = transfer_to
        self.transfer_s = transfer_s
        self.n_stops = stop_pattern_offsets.shape[0] - 1
        self.n_patterns = pattern_stop_offsets.shape[0] - 1
        self.n_trips = pattern_trip_offsets[self.n_patterns]

    def earliest_arrival(
        self,
        const int32_t[::1] source_stops,
        const int32_t[::1] source_times,
        int32_t max_rounds,
        const uint8_t[:, ::1] trip_active,
        const int32_t[::1] day_offset,
        const int32_t[::1] change_s,
        const uint8_t[::1] stop_ok,
        bint use_footpaths,
    ):
        """Labels and parents of rounds 0..max_rounds; see the module docstring for the conventions."""
        cdef int32_t S = self.n_stops
        cdef int32_t K = max_rounds
        cdef int32_t D = day_offset.shape[0]
        labels_np = np.full((K + 1, S), UNREACHED, dtype=np.int32)
        ready_np = np.full((K + 1, S), UNREACHED, dtype=np.int32)
        transit_np = np.full(S, UNREACHED, dtype=np.int32)
        kind_np = np.zeros((K + 1, S), dtype=np.int8)
        trip_np = np.full((K + 1, S), -1, dtype=np.int32)
        day_np = np.full((K + 1, S), -1, dtype=np.int8)
        board_np = np.full((K + 1, S), -1, dtype=np.int32)
        alight_np = np.full((K + 1, S), -1, dtype=np.int32)
        from_np = np.full((K + 1, S), -1, dtype=np.int32)
        marked_np = np.zeros(S, dtype=np.uint8)
        next_marked_np = np.zeros(S, dtype=np.uint8)
        queued_np = np.zeros(self.n_patterns, dtype=np.uint8)
        queue_np = np.empty(self.n_patterns, dtype=np.int32)
        # Stops marked last round / this round, and stops reached by a trip this round, as lists.
        mlist_np = np.empty(S, dtype=np.int32)
        nlist_np = np.empty(S, dtype=np.int32)
        tlist_np = np.empty(S, dtype=np.int32)
        cdef int32_t[:, ::1] labels = labels_np
        cdef int32_t[:, ::1] ready = ready_np
        cdef int32_t[::1] transit = transit_np
        cdef int8_t[:, ::1] kind = kind_np
        cdef int32_t[:, ::1] ptrip = trip_np
        cdef int8_t[:, ::1] pday = day_np
        cdef int32_t[:, ::1] pboard = board_np
        cdef int32_t[:, ::1] palight = alight_np
        cdef int32_t[:, ::1] pfrom = from_np
        cdef uint8_t[::1] marked = marked_np
        cdef uint8_t[::1] next_marked = next_marked_np
        cdef uint8_t[::1] queued = queued_np
        cdef int32_t[::1] queue = queue_np
        cdef int32_t[::1] mlist = mlist_np
        cdef int32_t[::1] nlist = nlist_np
        cdef int32_t[::1] tlist = tlist_np
        cdef Py_ssize_t n_m = 0, n_n = 0, n_t = 0
        cdef Py_ssize_t i, j, k, q, n_queue
        cdef int32_t s, t, p, e, d, lo, hi, mid, n, r, row, n_rows, best_row, best_day
        cdef int32_t cur_row, cur_day, cur_board, time, arr, dep, best_dep, cur_dep
        cdef int64_t base
        cdef int32_t first_trip, limit, first
        cdef bint any_marked
        cdef int64_t patterns_scanned = 0, stops_scanned = 0

        with nogil:
            for i in range(source_stops.shape[0]):
                s = source_stops[i]
                if source_times[i] < labels[0, s]:
                    labels[0, s] = source_times[i]
                    ready[0, s] = source_times[i]
                    kind[0, s] = SOURCE
                    if not marked[s]:
                        marked[s] = 1
                        mlist[n_m] = s
                        n_m += 1
            if use_footpaths:
                for i in range(source_stops.shape[0]):
                    s = source_stops[i]
                    if labels[0, s] != source_times[i]:
                        continue
                    for e in range(self.transfer_offsets[s], self.transfer_offsets[s + 1]):
                        t = self.transfer_to[e]
                        arr = labels[0, s] + self.transfer_s[e]
                        if arr < labels[0, t]:
                            labels[0, t] = arr
                            ready[0, t] = arr
                            kind[0, t] = FOOTPATH
                            pfrom[0, t] = s
                            if not marked[t]:
                                marked[t] = 1
                                mlist[n_m] = t
                                n_m += 1

            for k in range(1, K + 1):
                # Every label of round k starts as the best with fewer trips (kind KEPT is filled in
                # by the caller where a label is unchanged).
                memcpy(&labels[k, 0], &labels[k - 1, 0], S * sizeof(int32_t))
                memcpy(&ready[k, 0], &ready[k - 1, 0], S * sizeof(int32_t))
                n_queue = 0
                for q in range(n_m):
                    s = mlist[q]
                    for j in range(self.stop_pattern_offsets[s], self.stop_pattern_offsets[s + 1]):
                        p = self.stop_patterns[j]
                        if not queued[p]:
                            queued[p] = 1
                            queue[n_queue] = p
                            n_queue += 1
                any_marked = False
                for q in range(n_queue):
                    p = queue[q]
                    queued[p] = 0
                    n = self.pattern_stop_offsets[p + 1] - self.pattern_stop_offsets[p]
                    patterns_scanned += 1
                    first_trip = self.pattern_trip_offsets[p]
                    n_rows = self.pattern_trip_offsets[p + 1] - first_trip
                    base = self.pattern_stop_time_offsets[p]
                    cur_row = -1
                    cur_day = -1
                    cur_board = -1
                    # Nothing changed before the first stop marked last round: a trip boarded there
                    # was already ridden in an earlier round with the same labels.
                    first = 0
                    while not marked[self.pattern_stops[self.pattern_stop_offsets[p] + first]]:
                        first += 1
                    stops_scanned += n - first
                    for i in range(first, n):
                        s = self.pattern_stops[self.pattern_stop_offsets[p] + i]
                        # Alight from the current trip.
                        if cur_row >= 0 and stop_ok[s] and self.pattern_dropoff[self.pattern_stop_offsets[p] + i] != 1:
                            arr = self.arrival[base + <int64_t> cur_row * n + i] + day_offset[cur_day]
                            if arr < labels[k, s]:
                                labels[k, s] = arr
                                kind[k, s] = TRANSIT
                                ptrip[k, s] = first_trip + cur_row
                                pday[k, s] = <int8_t> cur_day
                                pboard[k, s] = cur_board
                                palight[k, s] = i
                                if transit[s] == INT32_MAX:
                                    tlist[n_t] = s
                                    n_t += 1
                                if arr < transit[s]:
                                    transit[s] = arr
                                if arr + change_s[s] < ready[k, s]:
                                    ready[k, s] = arr + change_s[s]
                                if not next_marked[s]:
                                    next_marked[s] = 1
                                    nlist[n_n] = s
                                    n_n += 1
                                any_marked = True
                        # Board (or change to an earlier trip) where a label of the previous round allows.
                        time = ready[k - 1, s]
                        if time == INT32_MAX or not stop_ok[s] or self.pattern_pickup[self.pattern_stop_offsets[p] + i] == 1:
                            continue
                        if cur_row >= 0:
                            cur_dep = self.departure[base + <int64_t> cur_row * n + i] + day_offset[cur_day]
                            if time > cur_dep:
                                continue
                        else:
                            cur_dep = INT32_MAX
                        best_row = -1
                        best_day = -1
                        best_dep = cur_dep
                        for d in range(D):
                            # FIFO trips: the departures at position i rise with the row. Cheap checks
                            # first: every trip of day d has left, or even its first is no better.
                            if self.departure[base + <int64_t> (n_rows - 1) * n + i] + day_offset[d] < time:
                                continue
                            if self.departure[base + i] + day_offset[d] >= best_dep:
                                continue
                            limit = n_rows
                            if d == cur_day:
                                # On the current trip's day only earlier rows can be better.
                                if cur_row == 0 or self.departure[base + <int64_t> (cur_row - 1) * n + i] + day_offset[d] < time:
                                    continue
                                limit = cur_row
                            lo = 0
                            hi = limit
                            while lo < hi:
                                mid = (lo + hi) >> 1
                                if self.departure[base + <int64_t> mid * n + i] + day_offset[d] < time:
                                    lo = mid + 1
                                else:
                                    hi = mid
                            row = lo
                            while row < limit and not trip_active[d, first_trip + row]:
                                row += 1
                            if row < limit:
                                dep = self.departure[base + <int64_t> row * n + i] + day_offset[d]
                                if dep < best_dep:
                                    best_dep = dep
                                    best_row = row
                                    best_day = d
                        if best_row >= 0:
                            cur_row = best_row
                            cur_day = best_day
                            cur_board = i
                # Footpaths from the stops reached by a trip in this round.
                if use_footpaths:
                    for q in range(n_t):
                        s = tlist[q]
                        for e in range(self.transfer_offsets[s], self.transfer_offsets[s + 1]):
                            t = self.transfer_to[e]
                            arr = transit[s] + self.transfer_s[e]
                            if arr < labels[k, t]:
                                labels[k, t] = arr
                                kind[k, t] = FOOTPATH
                                pfrom[k, t] = s
                                if arr < ready[k, t]:
                                    ready[k, t] = arr
                                if not next_marked[t]:
                                    next_marked[t] = 1
                                    nlist[n_n] = t
                                    n_n += 1
                                any_marked = True
                for q in range(n_t):
                    transit[tlist[q]] = INT32_MAX
                n_t = 0
                for q in range(n_m):
                    marked[mlist[q]] = 0
                for q in range(n_n):
                    s = nlist[q]
                    next_marked[s] = 0
                    marked[s] = 1
                    mlist[q] = s
                n_m = n_n
                n_n = 0
                if not any_marked:
                    # Nothing improved: later rounds equal this one.
                    for j in range(k + 1, K + 1):
                        memcpy(&labels[j, 0], &labels[k, 0], S * sizeof(int32_t))
                        memcpy(&ready[j, 0], &ready[k, 0], S * sizeof(int32_t))
                    break
        # A label of round k that no trip or footpath of round k set is the one of the round before.
        unchanged = (kind_np[1:] == NONE) & (labels_np[1:] != UNREACHED)
        kind_np[1:][unchanged] = KEPT
        return {
            "labels": labels_np, "kind": kind_np, "trip": trip_np, "day": day_np,
            "board": board_np, "alight": alight_np, "from_stop": from_np,
            "patterns_scanned": patterns_scanned, "stops_scanned": stops_scanned,
        }

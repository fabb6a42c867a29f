# cython: language_level=3
"""RAPTOR rounds over the timetable arrays (one round per trip taken), forward and backward.

Times are int32 seconds relative to the query day's service-day origin. Trips may run on
several service days (yesterday's late trips, today's, tomorrow's): `day_offset[d]` shifts
service day d's times onto the query day's clock. Which trips run on day d is given as rows of
each pattern: `next_active[d, t]` is the first row at or after trip t's row (in t's pattern)
whose trip runs on day d, `prev_active[d, t]` the last one at or before it (`active_rows` makes
both from a 0/1 matrix; both searches take both, since a day's first and last running rows bound
every trip search). Labels of round k are the best times with at most k trips: earliest
arrivals for `earliest_arrival`, latest departures (target still reached by its deadline) for
`latest_departure`.
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport INT32_MAX, INT32_MIN
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy

from ext._types cimport int8_t, int32_t, int64_t, uint8_t

cnp.import_array()

cdef enum:
    NONE = 0
    SOURCE = 1  # where the search starts: a source going forward, a target going backward
    TRANSIT = 2
    FOOTPATH = 3
    KEPT = 4  # unchanged from the previous round

UNREACHED = INT32_MAX
NO_DEPARTURE = INT32_MIN
PARENT_NONE = NONE
PARENT_SOURCE = SOURCE
PARENT_TRANSIT = TRANSIT
PARENT_FOOTPATH = FOOTPATH
PARENT_KEPT = KEPT


cdef struct Scratch:
    # Per-query working memory, freed before returning; never shared between queries or threads.
    uint8_t* marked
    uint8_t* next_marked
    uint8_t* queued
    int32_t* queue
    int32_t* mlist  # stops marked last round
    int32_t* nlist  # stops marked this round
    int32_t* tlist  # stops reached (forward) or left (backward) by a trip this round
    int32_t* transit  # per stop: best arrival (forward) or departure (backward) by a trip this round
    int32_t* walked  # per stop: the best `transit` of earlier rounds, whose footpaths were taken then
    int32_t* live  # the days on which the pattern being scanned has a running trip, in order
    int32_t* first_run  # per day: the pattern's first running row, and its last
    int32_t* last_run


cdef int scratch_alloc(Scratch* w, int32_t S, int32_t P, int32_t D, int32_t unset) noexcept nogil:
    cdef int32_t s
    w.marked = <uint8_t*> calloc(S + 1, 1)
    w.next_marked = <uint8_t*> calloc(S + 1, 1)
    w.queued = <uint8_t*> calloc(P + 1, 1)
    w.queue = <int32_t*> malloc((P + 1) * sizeof(int32_t))
    w.mlist = <int32_t*> malloc((S + 1) * sizeof(int32_t))
    w.nlist = <int32_t*> malloc((S + 1) * sizeof(int32_t))
    w.tlist = <int32_t*> malloc((S + 1) * sizeof(int32_t))
    w.transit = <int32_t*> malloc((S + 1) * sizeof(int32_t))
    w.walked = <int32_t*> malloc((S + 1) * sizeof(int32_t))
    w.live = <int32_t*> malloc((D + 1) * sizeof(int32_t))
    w.first_run = <int32_t*> malloc((D + 1) * sizeof(int32_t))
    w.last_run = <int32_t*> malloc((D + 1) * sizeof(int32_t))
    if (w.marked == NULL or w.next_marked == NULL or w.queued == NULL or w.queue == NULL or w.mlist == NULL
            or w.nlist == NULL or w.tlist == NULL or w.transit == NULL or w.walked == NULL or w.live == NULL
            or w.first_run == NULL or w.last_run == NULL):
        return -1
    for s in range(S):
        w.transit[s] = unset
        w.walked[s] = unset
    return 0


cdef void scratch_free(Scratch* w) noexcept nogil:
    free(w.marked)
    free(w.next_marked)
    free(w.queued)
    free(w.queue)
    free(w.mlist)
    free(w.nlist)
    free(w.tlist)
    free(w.transit)
    free(w.walked)
    free(w.live)
    free(w.first_run)
    free(w.last_run)


cdef dict new_result(int32_t rounds, int32_t S, int32_t unset):
    """Label and parent arrays of rounds 0..rounds-1, unset."""
    labels = np.empty((rounds, S), dtype=np.int32)
    labels.fill(unset)
    trip = np.empty((rounds, S), dtype=np.int32)
    trip.fill(-1)
    return {
        "labels": labels, "kind": np.zeros((rounds, S), dtype=np.int8), "trip": trip,
        "day": np.full((rounds, S), -1, dtype=np.int8), "board": trip.copy(), "alight": trip.copy(),
        "from_stop": trip.copy(),
    }


cdef void mark_kept(int8_t[:, ::1] kind, const int32_t[:, ::1] labels, int32_t unset) noexcept nogil:
    # A label of round k that no trip or footpath of round k set is the one of the round before.
    cdef Py_ssize_t k, s, S = kind.shape[1]
    cdef int8_t* kinds
    cdef const int32_t* times
    for k in range(1, kind.shape[0]):
        # Branch-free over plain pointers, so that the compiler vectorises it.
        kinds = &kind[k, 0]
        times = &labels[k, 0]
        for s in range(S):
            kinds[s] = KEPT if kinds[s] == NONE and times[s] != unset else kinds[s]


cdef inline int32_t first_at_least(const int32_t* col, int32_t lo, int32_t hi, int64_t time) noexcept nogil:
    """The first row in [lo, hi) of a rising column whose time is at least `time`; hi if none."""
    # Branch-free binary search: the answer stays in [row, row + n].
    cdef const int32_t* row = col + lo
    cdef int32_t n = hi - lo, half
    if n <= 0:
        return hi
    while n > 1:
        half = n >> 1
        row = row + half if row[half] < time else row
        n -= half
    return <int32_t> (row - col) + (row[0] < time)


cdef inline int32_t first_after(const int32_t* col, int32_t lo, int32_t hi, int64_t time) noexcept nogil:
    """The first row in [lo, hi) of a rising column whose time is after `time`; hi if none."""
    cdef const int32_t* row = col + lo
    cdef int32_t n = hi - lo, half
    if n <= 0:
        return hi
    while n > 1:
        half = n >> 1
        row = row + half if row[half] <= time else row
        n -= half
    return <int32_t> (row - col) + (row[0] <= time)


cdef inline int32_t live_days(
    Scratch* w, const int32_t[:, ::1] next_active, const int32_t[:, ::1] prev_active, int32_t first_trip, int32_t n_rows,
) noexcept nogil:
    """Fills w.live with the days on which a trip of the pattern runs, and their first and last running rows."""
    cdef int32_t d, n_live = 0
    if n_rows == 0:
        return 0
    for d in range(next_active.shape[0]):
        if prev_active[d, first_trip + n_rows - 1] >= 0:
            w.live[n_live] = d
            w.first_run[d] = next_active[d, first_trip]
            w.last_run[d] = prev_active[d, first_trip + n_rows - 1]
            n_live += 1
    return n_live


# Round bookkeeping shared by both searches. `forward` is a constant at each call site: inlined, the
# compiler keeps one branch of every test on it.

cdef inline bint better(int32_t a, int32_t b, bint forward) noexcept nogil:
    """Whether time a is a better label than b: earlier going forward, later going backward."""
    return a < b if forward else a > b


cdef inline void mark(uint8_t* flags, int32_t* stops, Py_ssize_t* n, int32_t s) noexcept nogil:
    """Adds stop s to a set of marked stops (a flag per stop and their list) unless it is in it."""
    if not flags[s]:
        flags[s] = 1
        stops[n[0]] = s
        n[0] += 1


cdef inline Py_ssize_t seed_round(
    Scratch* w, const int32_t[::1] stops, const int32_t[::1] times,
    const int32_t[::1] fp_offsets, const int32_t[::1] fp_stop, const int32_t[::1] fp_s,
    int32_t[:, ::1] labels, int32_t[:, ::1] ready, int8_t[:, ::1] kind, int32_t[:, ::1] pfrom,
    bint use_footpaths, bint forward,
) noexcept nogil:
    """Round 0: the search's own stops at their times, and the footpaths from them (going backward, into
    them); marks the stops it sets and returns their number."""
    cdef Py_ssize_t i, n_m = 0
    cdef int32_t s, u, e, time
    for i in range(stops.shape[0]):
        s = stops[i]
        if better(times[i], labels[0, s], forward):
            labels[0, s] = times[i]
            ready[0, s] = times[i]
            kind[0, s] = SOURCE
            mark(w.marked, w.mlist, &n_m, s)
    if use_footpaths:
        for i in range(stops.shape[0]):
            s = stops[i]
            if labels[0, s] != times[i]:
                continue
            for e in range(fp_offsets[s], fp_offsets[s + 1]):
                u = fp_stop[e]
                time = labels[0, s] + fp_s[e] if forward else labels[0, s] - fp_s[e]
                if better(time, labels[0, u], forward):
                    labels[0, u] = time
                    ready[0, u] = time
                    kind[0, u] = FOOTPATH
                    pfrom[0, u] = s
                    mark(w.marked, w.mlist, &n_m, u)
    return n_m


cdef inline Py_ssize_t start_round(
    Scratch* w, Py_ssize_t k, Py_ssize_t n_m, int32_t[:, ::1] labels, int32_t[:, ::1] ready,
    const int32_t[::1] stop_pattern_offsets, const int32_t[::1] stop_patterns,
) noexcept nogil:
    """Round k starts from round k - 1's labels; queues each pattern through a stop marked last round
    once, and returns the queue's length."""
    cdef Py_ssize_t q, j, n_queue = 0
    cdef int32_t s, p
    # Every label of round k starts as the best with fewer trips (kind KEPT is filled in at the end
    # where a label is unchanged).
    memcpy(&labels[k, 0], &labels[k - 1, 0], labels.shape[1] * sizeof(int32_t))
    memcpy(&ready[k, 0], &ready[k - 1, 0], ready.shape[1] * sizeof(int32_t))
    for q in range(n_m):
        s = w.mlist[q]
        for j in range(stop_pattern_offsets[s], stop_pattern_offsets[s + 1]):
            p = stop_patterns[j]
            if not w.queued[p]:
                w.queued[p] = 1
                w.queue[n_queue] = p
                n_queue += 1
    return n_queue


cdef inline bint walk_from_trips(
    Scratch* w, Py_ssize_t k, Py_ssize_t n_t, Py_ssize_t* n_n,
    const int32_t[::1] fp_offsets, const int32_t[::1] fp_stop, const int32_t[::1] fp_s,
    int32_t[:, ::1] labels, int32_t[:, ::1] ready, int8_t[:, ::1] kind, int32_t[:, ::1] pfrom, bint forward,
) noexcept nogil:
    """Footpaths from the stops a trip reached in round k (going backward: into the stops where one was
    boarded); marks the stops they improve and returns whether there was one."""
    cdef Py_ssize_t q
    cdef int32_t s, u, e, time
    cdef bint any_marked = False
    for q in range(n_t):
        s = w.tlist[q]
        # A stop a trip reached no better in an earlier round had its footpaths taken then: they
        # improve nothing now (labels only get better with the rounds).
        if not better(w.transit[s], w.walked[s], forward):
            continue
        w.walked[s] = w.transit[s]
        for e in range(fp_offsets[s], fp_offsets[s + 1]):
            u = fp_stop[e]
            time = w.transit[s] + fp_s[e] if forward else w.transit[s] - fp_s[e]
            if better(time, labels[k, u], forward):
                labels[k, u] = time
                kind[k, u] = FOOTPATH
                pfrom[k, u] = s
            # No change time at either end of a walk: going forward it may board earlier than a trip's
            # arrival there allows, even one arriving before the walker.
            if better(time, ready[k, u], forward):
                ready[k, u] = time
                mark(w.next_marked, w.nlist, n_n, u)
                any_marked = True
    return any_marked


cdef inline Py_ssize_t end_round(Scratch* w, Py_ssize_t n_m, Py_ssize_t n_n, Py_ssize_t n_t, int32_t unset) noexcept nogil:
    """Forgets the round's trip times and makes the stops marked in it the ones marked last round;
    returns their number."""
    cdef Py_ssize_t q
    cdef int32_t s
    for q in range(n_t):
        w.transit[w.tlist[q]] = unset
    for q in range(n_m):
        w.marked[w.mlist[q]] = 0
    for q in range(n_n):
        s = w.nlist[q]
        w.next_marked[s] = 0
        w.marked[s] = 1
        w.mlist[q] = s
    return n_n


cdef inline void repeat_round(int32_t[:, ::1] labels, Py_ssize_t k) noexcept nogil:
    """Round k improved nothing: every later round equals it."""
    cdef Py_ssize_t j
    for j in range(k + 1, labels.shape[0]):
        memcpy(&labels[j, 0], &labels[k, 0], labels.shape[1] * sizeof(int32_t))


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
    # The same times per pattern by position, then row (column-major): the trip searches read one
    # position over many rows, which in the row-major arrays is one cache line per row.
    cdef const int32_t[::1] arrival_by_position
    cdef const int32_t[::1] departure_by_position
    cdef const int32_t[::1] stop_pattern_offsets
    cdef const int32_t[::1] stop_patterns
    cdef const int32_t[::1] transfer_offsets
    cdef const int32_t[::1] transfer_to
    cdef const int32_t[::1] transfer_s
    # The same footpaths grouped by the stop they lead to, for the backward search.
    cdef const int32_t[::1] transfer_in_offsets
    cdef const int32_t[::1] transfer_in_from
    cdef const int32_t[::1] transfer_in_s
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
        const int32_t[::1] transfer_in_offsets, const int32_t[::1] transfer_in_from, const int32_t[::1] transfer_in_s,
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
        self.transfer_in_offsets = transfer_in_offsets
        self.transfer_in_from = transfer_in_from
        self.transfer_in_s = transfer_in_s
        self.n_stops = stop_pattern_offsets.shape[0] - 1
        self.n_patterns = pattern_stop_offsets.shape[0] - 1
        self.n_trips = pattern_trip_offsets[self.n_patterns]
        self.arrival_by_position = self.by_position(arrival)
        self.departure_by_position = self.by_position(departure)

    cdef object by_position(self, const int32_t[::1] times):
        """Each pattern's block of `times` transposed from [row, position] to [position, row]."""
        out_np = np.empty(times.shape[0], dtype=np.int32)
        cdef int32_t[::1] out = out_np
        cdef int32_t p, n, n_rows, row, i
        cdef int64_t base
        with nogil:
            for p in range(self.n_patterns):
                n = self.pattern_stop_offsets[p + 1] - self.pattern_stop_offsets[p]
                n_rows = self.pattern_trip_offsets[p + 1] - self.pattern_trip_offsets[p]
                base = self.pattern_stop_time_offsets[p]
                for row in range(n_rows):
                    for i in range(n):
                        out[base + <int64_t> i * n_rows + row] = times[base + <int64_t> row * n + i]
        return out_np

    def active_rows(self, const uint8_t[:, ::1] trip_active):
        """(next_active, prev_active) int32 [D, T] of a 0/1 matrix of running trips; see the module docstring."""
        cdef Py_ssize_t D = trip_active.shape[0]
        next_np = np.empty((D, self.n_trips), dtype=np.int32)
        prev_np = np.empty((D, self.n_trips), dtype=np.int32)
        cdef int32_t[:, ::1] nxt = next_np
        cdef int32_t[:, ::1] prv = prev_np
        cdef Py_ssize_t d
        cdef int32_t p, t0, n_rows, row, last
        with nogil:
            for d in range(D):
                for p in range(self.n_patterns):
                    t0 = self.pattern_trip_offsets[p]
                    n_rows = self.pattern_trip_offsets[p + 1] - t0
                    last = -1
                    for row in range(n_rows):
                        if trip_active[d, t0 + row]:
                            last = row
                        prv[d, t0 + row] = last
                    last = n_rows
                    for row in range(n_rows - 1, -1, -1):
                        if trip_active[d, t0 + row]:
                            last = row
                        nxt[d, t0 + row] = last
        return next_np, prev_np

    def earliest_arrival(
        self,
        const int32_t[::1] source_stops,
        const int32_t[::1] source_times,
        int32_t max_rounds,
        const int32_t[:, ::1] next_active,
        const int32_t[:, ::1] prev_active,
        const int32_t[::1] day_offset,
        const int32_t[::1] change_s,
        const uint8_t[::1] stop_ok,
        bint use_footpaths,
    ):
        """Labels and parents of rounds 0..max_rounds; see the module docstring for the conventions."""
        cdef int32_t S = self.n_stops
        cdef int32_t K = max_rounds
        cdef int32_t D = day_offset.shape[0]
        result = new_result(K + 1, S, INT32_MAX)
        labels_np = result["labels"]
        ready_np = labels_np.copy()
        cdef int32_t[:, ::1] labels = labels_np
        cdef int32_t[:, ::1] ready = ready_np
        cdef int8_t[:, ::1] kind = result["kind"]
        cdef int32_t[:, ::1] ptrip = result["trip"]
        cdef int8_t[:, ::1] pday = result["day"]
        cdef int32_t[:, ::1] pboard = result["board"]
        cdef int32_t[:, ::1] palight = result["alight"]
        cdef int32_t[:, ::1] pfrom = result["from_stop"]
        cdef Scratch w
        cdef Py_ssize_t n_m = 0, n_n = 0, n_t = 0
        cdef Py_ssize_t i, j, k, q, n_queue
        cdef int32_t s, p, d, lo, hi, step, n, row, n_rows, best_row, best_day
        cdef int32_t cur_row, cur_day, cur_board, time, arr, dep, best_dep, cur_dep
        cdef int64_t base, s0
        cdef int32_t first_trip, first, n_live
        cdef int64_t target
        cdef const int32_t* col
        cdef bint any_marked
        cdef int64_t patterns_scanned = 0, stops_scanned = 0
        cdef int failed

        with nogil:
            failed = scratch_alloc(&w, S, self.n_patterns, D, INT32_MAX)
            if failed:
                scratch_free(&w)
        if failed:
            raise MemoryError()

        with nogil:
            n_m = seed_round(
                &w, source_stops, source_times, self.transfer_offsets, self.transfer_to, self.transfer_s,
                labels, ready, kind, pfrom, use_footpaths, True,
            )
            for k in range(1, K + 1):
                n_queue = start_round(&w, k, n_m, labels, ready, self.stop_pattern_offsets, self.stop_patterns)
                any_marked = False
                for q in range(n_queue):
                    p = w.queue[q]
                    w.queued[p] = 0
                    s0 = self.pattern_stop_offsets[p]
                    n = self.pattern_stop_offsets[p + 1] - s0
                    first_trip = self.pattern_trip_offsets[p]
                    n_rows = self.pattern_trip_offsets[p + 1] - first_trip
                    base = self.pattern_stop_time_offsets[p]
                    n_live = live_days(&w, next_active, prev_active, first_trip, n_rows)
                    if n_live == 0:
                        # No trip of the pattern runs: nothing to board.
                        continue
                    patterns_scanned += 1
                    cur_row = -1
                    cur_day = -1
                    cur_board = -1
                    # Nothing changed before the first stop marked last round: a trip boarded there
                    # was already ridden in an earlier round with the same labels.
                    first = 0
                    while not w.marked[self.pattern_stops[s0 + first]]:
                        first += 1
                    stops_scanned += n - first
                    for i in range(first, n):
                        s = self.pattern_stops[s0 + i]
                        # Alight from the current trip.
                        if cur_row >= 0 and stop_ok[s] and self.pattern_dropoff[s0 + i] != 1:
                            arr = self.arrival[base + <int64_t> cur_row * n + i] + day_offset[cur_day]
                            # The best arrival by a trip this round, even where the label is better
                            # already (walked to, or a source): footpaths go on from it.
                            if arr < w.transit[s]:
                                if w.transit[s] == INT32_MAX:
                                    w.tlist[n_t] = s
                                    n_t += 1
                                w.transit[s] = arr
                                ptrip[k, s] = first_trip + cur_row
                                pday[k, s] = <int8_t> cur_day
                                pboard[k, s] = cur_board
                                palight[k, s] = i
                                if arr < labels[k, s]:
                                    labels[k, s] = arr
                                    kind[k, s] = TRANSIT
                                if arr + change_s[s] < ready[k, s]:
                                    ready[k, s] = arr + change_s[s]
                                    mark(w.next_marked, w.nlist, &n_n, s)
                                    any_marked = True
                        # Board (or change to an earlier trip) where a label of the previous round allows.
                        time = ready[k - 1, s]
                        if time == INT32_MAX or not stop_ok[s] or self.pattern_pickup[s0 + i] == 1:
                            continue
                        col = &self.departure_by_position[base + <int64_t> i * n_rows]
                        if cur_row >= 0:
                            cur_dep = col[cur_row] + day_offset[cur_day]
                            if time > cur_dep:
                                continue
                        else:
                            cur_dep = INT32_MAX
                        best_row = -1
                        best_day = -1
                        best_dep = cur_dep
                        for j in range(n_live):
                            d = w.live[j]
                            # FIFO trips: the departures at position i rise with the row. Cheap checks
                            # first: every running trip of day d has left, or even its first is no better.
                            target = <int64_t> time - day_offset[d]
                            if col[w.last_run[d]] < target:
                                continue
                            if col[w.first_run[d]] + day_offset[d] >= best_dep:
                                continue
                            if d == cur_day:
                                # On the current trip's day only earlier rows can be better, and the
                                # best is most often a few rows earlier: gallop down from the last
                                # running one, then bisect.
                                if cur_row == 0:
                                    continue
                                hi = prev_active[d, first_trip + cur_row - 1]
                                if hi < 0 or col[hi] < target:
                                    continue
                                step = 1
                                while step <= hi and col[hi - step] >= target:
                                    hi -= step
                                    step <<= 1
                                lo = first_at_least(col, hi - step + 1 if step <= hi else 0, hi, target)
                            else:
                                lo = first_at_least(col, w.first_run[d], w.last_run[d], target)
                            # A running trip leaves at or after `time` from row lo on: the first is the best.
                            row = next_active[d, first_trip + lo]
                            dep = col[row] + day_offset[d]
                            if dep < best_dep:
                                best_dep = dep
                                best_row = row
                                best_day = d
                        if best_row >= 0:
                            cur_row = best_row
                            cur_day = best_day
                            cur_board = i
                if use_footpaths and walk_from_trips(
                    &w, k, n_t, &n_n, self.transfer_offsets, self.transfer_to, self.transfer_s,
                    labels, ready, kind, pfrom, True,
                ):
                    any_marked = True
                n_m = end_round(&w, n_m, n_n, n_t, INT32_MAX)
                n_n = 0
                n_t = 0
                if not any_marked:
                    repeat_round(labels, k)
                    break
            scratch_free(&w)
            mark_kept(kind, labels, INT32_MAX)
        result["patterns_scanned"] = patterns_scanned
        result["stops_scanned"] = stops_scanned
        return result

    def latest_departure(
        self,
        const int32_t[::1] target_stops,
        const int32_t[::1] target_times,
        int32_t max_rounds,
        const int32_t[:, ::1] next_active,
        const int32_t[:, ::1] prev_active,
        const int32_t[::1] day_offset,
        const int32_t[::1] change_s,
        const uint8_t[::1] stop_ok,
        bint use_footpaths,
    ):
        """Latest departures and their parents, rounds 0..max_rounds: `earliest_arrival` run backward.

        Label [k, s] is the latest time one may leave stop s and, with at most k trips, still reach
        a target by its time (NO_DEPARTURE if none). Parents point forward in travel order: a
        TRANSIT label boards `trip` at position `board` of its pattern and alights at `alight`;
        a FOOTPATH label walks to `from_stop` (the next stop of the journey).
        """
        cdef int32_t S = self.n_stops
        cdef int32_t K = max_rounds
        cdef int32_t D = day_offset.shape[0]
        result = new_result(K + 1, S, INT32_MIN)
        labels_np = result["labels"]
        ready_np = labels_np.copy()
        cdef int32_t[:, ::1] labels = labels_np
        # The latest time one may arrive at a stop to go on from there (a change needs its time).
        cdef int32_t[:, ::1] ready = ready_np
        cdef int8_t[:, ::1] kind = result["kind"]
        cdef int32_t[:, ::1] ptrip = result["trip"]
        cdef int8_t[:, ::1] pday = result["day"]
        cdef int32_t[:, ::1] pboard = result["board"]
        cdef int32_t[:, ::1] palight = result["alight"]
        cdef int32_t[:, ::1] pnext = result["from_stop"]
        cdef Scratch w
        cdef Py_ssize_t n_m = 0, n_n = 0, n_t = 0
        cdef Py_ssize_t i, j, k, q, n_queue
        cdef int32_t s, p, d, lo, step, n, row, n_rows, best_row, best_day
        cdef int32_t cur_row, cur_day, cur_alight, time, arr, dep, best_arr, cur_arr
        cdef int64_t base, s0
        cdef int32_t first_trip, last, n_live
        cdef int64_t target
        cdef const int32_t* col
        cdef bint any_marked
        cdef int64_t patterns_scanned = 0, stops_scanned = 0
        cdef int failed

        with nogil:
            failed = scratch_alloc(&w, S, self.n_patterns, D, INT32_MIN)
            if failed:
                scratch_free(&w)
        if failed:
            raise MemoryError()

        with nogil:
            n_m = seed_round(
                &w, target_stops, target_times, self.transfer_in_offsets, self.transfer_in_from, self.transfer_in_s,
                labels, ready, kind, pnext, use_footpaths, False,
            )

            for k in range(1, K + 1):
                n_queue = start_round(&w, k, n_m, labels, ready, self.stop_pattern_offsets, self.stop_patterns)
                any_marked = False
                for q in range(n_queue):
                    p = w.queue[q]
                    w.queued[p] = 0
                    s0 = self.pattern_stop_offsets[p]
                    n = self.pattern_stop_offsets[p + 1] - s0
                    first_trip = self.pattern_trip_offsets[p]
                    n_rows = self.pattern_trip_offsets[p + 1] - first_trip
                    base = self.pattern_stop_time_offsets[p]
                    n_live = live_days(&w, next_active, prev_active, first_trip, n_rows)
                    if n_live == 0:
                        # No trip of the pattern runs: nothing to board.
                        continue
                    patterns_scanned += 1
                    cur_row = -1
                    cur_day = -1
                    cur_alight = -1
                    # Scanning against travel order: nothing changed after the last stop marked last round.
                    last = n - 1
                    while not w.marked[self.pattern_stops[s0 + last]]:
                        last -= 1
                    stops_scanned += last + 1
                    for i in range(last, -1, -1):
                        s = self.pattern_stops[s0 + i]
                        # Board the current trip here: a departure from s.
                        if cur_row >= 0 and stop_ok[s] and self.pattern_pickup[s0 + i] != 1:
                            dep = self.departure[base + <int64_t> cur_row * n + i] + day_offset[cur_day]
                            if dep > w.transit[s]:
                                if w.transit[s] == INT32_MIN:
                                    w.tlist[n_t] = s
                                    n_t += 1
                                w.transit[s] = dep
                                ptrip[k, s] = first_trip + cur_row
                                pday[k, s] = <int8_t> cur_day
                                pboard[k, s] = i
                                palight[k, s] = cur_alight
                                if dep > labels[k, s]:
                                    labels[k, s] = dep
                                    kind[k, s] = TRANSIT
                                if dep - change_s[s] > ready[k, s]:
                                    ready[k, s] = dep - change_s[s]
                                    mark(w.next_marked, w.nlist, &n_n, s)
                                    any_marked = True
                        # Alight here from a later trip where a label of the previous round allows.
                        time = ready[k - 1, s]
                        if time == INT32_MIN or not stop_ok[s] or self.pattern_dropoff[s0 + i] == 1:
                            continue
                        col = &self.arrival_by_position[base + <int64_t> i * n_rows]
                        if cur_row >= 0:
                            cur_arr = col[cur_row] + day_offset[cur_day]
                            if time < cur_arr:
                                continue
                        else:
                            cur_arr = INT32_MIN
                        best_row = -1
                        best_day = -1
                        best_arr = cur_arr
                        for j in range(n_live):
                            d = w.live[j]
                            # FIFO trips: the arrivals at position i rise with the row. Cheap checks
                            # first: every running trip of day d comes too late, or even its last is
                            # no better.
                            target = <int64_t> time - day_offset[d]
                            if col[w.first_run[d]] > target:
                                continue
                            if col[w.last_run[d]] + day_offset[d] <= best_arr:
                                continue
                            # The first row arriving after `time`; the last running one before it is the
                            # latest in time.
                            if d == cur_day:
                                # On the current trip's day only later rows can be better, most often a
                                # few rows later: gallop up from the next running one, then bisect.
                                if cur_row == n_rows - 1:
                                    continue
                                lo = next_active[d, first_trip + cur_row + 1]
                                if lo >= n_rows or col[lo] > target:
                                    continue
                                step = 1
                                while lo + step < n_rows and col[lo + step] <= target:
                                    lo += step
                                    step <<= 1
                                lo = first_after(col, lo + 1, lo + step if lo + step < n_rows else n_rows, target)
                            else:
                                lo = first_after(col, w.first_run[d] + 1, w.last_run[d] + 1, target)
                            row = prev_active[d, first_trip + lo - 1]
                            arr = col[row] + day_offset[d]
                            if arr > best_arr:
                                best_arr = arr
                                best_row = row
                                best_day = d
                        if best_row >= 0:
                            cur_row = best_row
                            cur_day = best_day
                            cur_alight = i
                if use_footpaths and walk_from_trips(
                    &w, k, n_t, &n_n, self.transfer_in_offsets, self.transfer_in_from, self.transfer_in_s,
                    labels, ready, kind, pnext, False,
                ):
                    any_marked = True
                n_m = end_round(&w, n_m, n_n, n_t, INT32_MIN)
                n_n = 0
                n_t = 0
                if not any_marked:
                    repeat_round(labels, k)
                    break
            scratch_free(&w)
            mark_kept(kind, labels, INT32_MIN)
        result["patterns_scanned"] = patterns_scanned
        result["stops_scanned"] = stops_scanned
        return result

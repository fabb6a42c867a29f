# cython: language_level=3
"""Exact feasibility of a vehicle's route and the cheapest feasible insertion of a pickup-and-drop-off pair.

A route is feasible when some schedule of service starts B meets every rule; waiting is allowed
anywhere. With the visiting order fixed, every rule is a difference constraint:
    B[x+1] >= B[x] + service[x] + travel[x, x+1]        (driving, waiting allowed)
    earliest[x] <= B[x] <= latest[x]                   (time windows)
    B[drop] - (B[pick] + service[pick]) <= max_ride    (ride time)
    B[end] - B[start] <= max_duration                  (route duration)
The componentwise least B meeting the lower-bound rules is found by relaxing them until nothing
moves (Bellman-Ford on the constraint graph); the route is feasible exactly when that least B also
meets every upper bound, since any feasible schedule lies above it. Capacity and precedence are
checked along the route.

An insertion's cost weighs the driving it adds (`w_drive`) against the new rider's wait past the
earliest pickup (`w_wait`: least schedule start minus the pickup's earliest start) and time on board
(`w_ride`). Positions are tried in the order of a lower bound of that cost (the wait and the ride
without any waiting on the route as it stands), and the search stops once no untried bound beats the
best feasible cost; with only driving weighed, that is the first feasible position. Before
that, positions are pruned by necessary conditions only, so the answer is the same as trying all:
capacity, time windows against the least schedule and the latest starts, and ride times. No
waiting makes a ride shorter than driving and serving the stops in between, so a position is
dropped when that alone exceeds the new rider's maximum, or when its detour exceeds the ride-time
slack of a rider already on board along that leg.
"""

import numpy as np

cimport numpy as cnp
from libc.math cimport INFINITY
from libc.stdlib cimport free, malloc, qsort

from ext._types cimport int32_t, uint64_t

cnp.import_array()

cdef extern from *:
    # A C constant rather than Cython's deprecated DEF; the compiler folds it like a literal.
    """
    static const double TOL = 1e-6;
    """
    const double TOL

cdef enum:
    # The load dimensions (room, seats) the loops below are written for, one by one. routing.dispatch.insertion
    # checks at import that routing.dispatch.model.DIMENSIONS agrees, and the constructor checks the arrays.
    N_LOADS = 2

DIMENSIONS = N_LOADS


cdef struct Candidate:
    double cost  # lower bound of the weighted cost
    double added  # driving added
    int32_t i
    int32_t j


cdef struct Prepared:
    int32_t* seq
    double* B
    double* late
    double* path  # start of each visit if the vehicle never waited: ride times can be no shorter
    double* slack  # per leg x -> x+1: the least ride-time slack of the riders on board along it
    int32_t* load0
    int32_t* load1
    int32_t k
    bint ok


cdef struct Scratch:
    Candidate* cand
    int32_t* trial
    double* B


cdef int prepared_alloc(Prepared* P, Py_ssize_t n) noexcept nogil:
    """Room for a route of up to n visits (plus start and end)."""
    P.seq = <int32_t*> malloc((n + 2) * sizeof(int32_t))
    P.B = <double*> malloc((n + 2) * sizeof(double))
    P.late = <double*> malloc((n + 2) * sizeof(double))
    P.path = <double*> malloc((n + 2) * sizeof(double))
    P.slack = <double*> malloc((n + 2) * sizeof(double))
    P.load0 = <int32_t*> malloc((n + 2) * sizeof(int32_t))
    P.load1 = <int32_t*> malloc((n + 2) * sizeof(int32_t))
    P.k = 0
    P.ok = False
    if (P.seq == NULL or P.B == NULL or P.late == NULL or P.path == NULL or P.slack == NULL or P.load0 == NULL
            or P.load1 == NULL):
        return -1
    return 0


cdef void prepared_free(Prepared* P) noexcept nogil:
    free(P.seq); free(P.B); free(P.late); free(P.path); free(P.slack); free(P.load0); free(P.load1)
    P.seq = NULL; P.B = NULL; P.late = NULL; P.path = NULL; P.slack = NULL; P.load0 = NULL; P.load1 = NULL


cdef int scratch_alloc(Scratch* S, Py_ssize_t n) noexcept nogil:
    """Room for trying one insertion into a route of up to n visits."""
    S.cand = <Candidate*> malloc(((n + 1) * (n + 2) // 2 + 1) * sizeof(Candidate))
    S.trial = <int32_t*> malloc((n + 4) * sizeof(int32_t))
    S.B = <double*> malloc((n + 4) * sizeof(double))
    if S.cand == NULL or S.trial == NULL or S.B == NULL:
        return -1
    return 0


cdef void scratch_free(Scratch* S) noexcept nogil:
    free(S.cand); free(S.trial); free(S.B)
    S.cand = NULL; S.trial = NULL; S.B = NULL


cdef int _by_cost(const void* a, const void* b) noexcept nogil:
    cdef double ca = (<Candidate*> a).cost
    cdef double cb = (<Candidate*> b).cost
    if ca < cb:
        return -1
    if ca > cb:
        return 1
    return 0


def _check_weights(double w_drive, double w_wait, double w_ride):
    if not (w_drive >= 0.0 and w_wait >= 0.0 and w_ride >= 0.0):
        raise ValueError("the objective's weights must be zero or more")


cdef class RoutePlanner:
    """Holds one problem's arrays; every method takes routes without their start and end nodes."""

    cdef const double[:, ::1] travel  # between locations
    cdef const int32_t[::1] location  # each node's location
    cdef const double[::1] service
    cdef const double[::1] earliest
    cdef const double[::1] latest
    cdef const int32_t[:, ::1] demand
    cdef const int32_t[::1] partner
    cdef const int32_t[::1] fixed  # the only vehicle that may visit a node (riders on board), -1 any
    cdef const double[::1] max_ride
    cdef const int32_t[::1] vstart
    cdef const int32_t[::1] vend
    cdef const int32_t[:, ::1] capacity
    cdef const int32_t[:, ::1] initial_load
    cdef const double[::1] max_duration
    cdef int32_t* where  # position of each node in the route being checked, -1 elsewhere
    cdef int32_t n_nodes
    cdef int32_t n_vehicles
    cdef double longest  # the longest drive in the travel matrix (the scale of repair's noise)

    def __cinit__(self, const double[:, ::1] travel, const int32_t[::1] location, const double[::1] service, const double[::1] earliest,
                  const double[::1] latest, const int32_t[:, ::1] demand, const int32_t[::1] partner,
                  const int32_t[::1] fixed_vehicle,
                  const double[::1] max_ride, const int32_t[::1] vehicle_start, const int32_t[::1] vehicle_end,
                  const int32_t[:, ::1] capacity, const int32_t[:, ::1] initial_load,
                  const double[::1] max_duration):
        cdef Py_ssize_t x, y
        self.travel = travel
        self.location = location
        self.service = service
        self.earliest = earliest
        self.latest = latest
        self.demand = demand
        self.partner = partner
        self.fixed = fixed_vehicle
        self.max_ride = max_ride
        self.vstart = vehicle_start
        self.vend = vehicle_end
        self.capacity = capacity
        self.initial_load = initial_load
        self.max_duration = max_duration
        self.n_nodes = <int32_t> service.shape[0]
        if location.shape[0] != self.n_nodes or fixed_vehicle.shape[0] != self.n_nodes:
            raise ValueError("one location and one fixed vehicle per node")
        if demand.shape[1] != N_LOADS or capacity.shape[1] != N_LOADS or initial_load.shape[1] != N_LOADS:
            raise ValueError(f"demand, capacity and initial load need {N_LOADS} columns, one per load dimension")
        for x in range(self.n_nodes):
            if not 0 <= location[x] < travel.shape[0] or travel.shape[0] != travel.shape[1]:
                raise ValueError(f"node {x}: location outside the travel matrix")
        self.n_vehicles = <int32_t> vehicle_start.shape[0]
        self.longest = 0.0
        for x in range(travel.shape[0]):
            for y in range(travel.shape[1]):
                if travel[x, y] > self.longest:
                    self.longest = travel[x, y]
        self.where = <int32_t*> malloc(self.n_nodes * sizeof(int32_t))
        if self.where == NULL:
            raise MemoryError()
        for x in range(self.n_nodes):
            self.where[x] = -1

    def __dealloc__(self):
        free(self.where)

    cdef bint _feasible(self, int32_t v, const int32_t* seq, int32_t k, double* B) noexcept nogil:
        """seq = start, visits..., end (k nodes). On success B holds the least schedule."""
        cdef int32_t x, a, b, node, lowest, rounds, start_from
        cdef int32_t load0 = self.initial_load[v, 0], load1 = self.initial_load[v, 1]
        cdef double t, need
        cdef bint ok = True
        self.where[seq[0]] = 0
        self.where[seq[k - 1]] = k - 1
        for x in range(1, k - 1):
            if self.where[seq[x]] >= 0:
                ok = False  # a node visited twice, or a vehicle's own start or end inside its route
            self.where[seq[x]] = x
        # Precedence and capacity along the route.
        for x in range(1, k - 1):
            if not ok:
                break
            node = seq[x]
            if self.fixed[node] >= 0 and self.fixed[node] != v:
                ok = False
                break
            b = self.partner[node]
            if self.demand[node, 0] > 0 or self.demand[node, 1] > 0:
                if b < 0 or self.where[b] < x:
                    ok = False
                    break
            elif b >= 0 and self.where[b] > x:
                ok = False  # a drop-off before its pickup
                break
            load0 += self.demand[node, 0]
            load1 += self.demand[node, 1]
            if load0 > self.capacity[v, 0] or load1 > self.capacity[v, 1] or load0 < 0 or load1 < 0:
                ok = False
                break
        if ok:
            for x in range(k):
                B[x] = self.earliest[seq[x]]
            start_from = 1
            rounds = 0
            while True:
                if B[0] > self.latest[seq[0]] + TOL:
                    ok = False
                    break
                for x in range(start_from, k):
                    t = B[x - 1] + self.service[seq[x - 1]] + self._t(seq[x - 1], seq[x])
                    if t > B[x]:
                        B[x] = t
                    if B[x] > self.latest[seq[x]] + TOL:
                        ok = False
                        break
                if not ok:
                    break
                lowest = k
                for a in range(1, k - 1):
                    b = self.partner[seq[a]]
                    if b < 0 or self.where[b] <= a:
                        continue
                    need = B[self.where[b]] - self.service[seq[a]] - self.max_ride[seq[a]]
                    if B[a] < need - TOL:
                        B[a] = need
                        if a < lowest:
                            lowest = a
                need = B[k - 1] - self.max_duration[v]
                if B[0] < need - TOL:
                    B[0] = need
                    lowest = 0
                if lowest == k:
                    break
                for x in range(lowest, lowest + 1):
                    if B[x] > self.latest[seq[x]] + TOL:
                        ok = False
                if not ok:
                    break
                rounds += 1
                if rounds > k + 1:
                    ok = False  # still moving: a positive cycle, no schedule exists
                    break
                start_from = lowest + 1
        for x in range(k):
            self.where[seq[x]] = -1
        return ok

    cdef inline double _t(self, int32_t a, int32_t b) noexcept nogil:
        return self.travel[self.location[a], self.location[b]]

    cdef double _cost(self, const int32_t* seq, int32_t k) noexcept nogil:
        cdef double total = 0.0
        cdef int32_t x
        for x in range(k - 1):
            total += self._t(seq[x], seq[x + 1])
        return total

    cdef int _full(self, int32_t v, const int32_t[::1] route, int32_t* seq) noexcept nogil:
        cdef Py_ssize_t x, k = route.shape[0]
        seq[0] = self.vstart[v]
        for x in range(k):
            seq[x + 1] = route[x]
        seq[k + 1] = self.vend[v]
        return 0

    def schedule(self, int32_t v, const int32_t[::1] route):
        """Least feasible service starts at start, visits, end; None when no schedule exists."""
        if not 0 <= v < self.n_vehicles:
            raise IndexError("vehicle out of range")
        self._check_nodes(route)
        cdef int32_t k = <int32_t> route.shape[0] + 2
        cdef int32_t* seq = <int32_t*> malloc(k * sizeof(int32_t))
        out = np.empty(k, dtype=np.float64)
        cdef double[::1] B = out
        cdef bint ok
        if seq == NULL:
            raise MemoryError()
        self._full(v, route, seq)
        ok = self._feasible(v, seq, k, &B[0])
        free(seq)
        return out if ok else None

    def cost(self, int32_t v, const int32_t[::1] route):
        """Driving time of the route from the vehicle's start to its end."""
        if not 0 <= v < self.n_vehicles:
            raise IndexError("vehicle out of range")
        self._check_nodes(route)
        cdef int32_t k = <int32_t> route.shape[0] + 2
        cdef int32_t* seq = <int32_t*> malloc(k * sizeof(int32_t))
        cdef double c
        if seq == NULL:
            raise MemoryError()
        self._full(v, route, seq)
        c = self._cost(seq, k)
        free(seq)
        return c

    cdef int _check_nodes(self, const int32_t[::1] route) except -1:
        cdef Py_ssize_t x
        for x in range(route.shape[0]):
            if not 0 <= route[x] < self.n_nodes:
                raise IndexError(f"node {route[x]} outside the problem")
        return 0

    def best_insertion(self, int32_t v, const int32_t[::1] route, int32_t pickup, int32_t dropoff,
                       double w_drive=1.0, double w_wait=0.0, double w_ride=0.0):
        """(weighted cost, i, j) of the cheapest feasible insertion into vehicle v's route, or (inf, -1, -1).

        The new route is route[:i] + [pickup] + route[i:j] + [dropoff] + route[j:]. The current
        route must itself be feasible. With the default weights the cost is the driving added.
        """
        if not 0 <= v < self.n_vehicles:
            raise IndexError("vehicle out of range")
        if not (0 <= pickup < self.n_nodes and 0 <= dropoff < self.n_nodes):
            raise IndexError("pickup or drop-off outside the problem")
        self._check_nodes(route)
        _check_weights(w_drive, w_wait, w_ride)
        cdef double cost, added
        cdef int32_t i, j
        cdef int rc
        cdef double w[3]
        w[0] = w_drive
        w[1] = w_wait
        w[2] = w_ride
        with nogil:
            rc = self._best(v, &route[0] if route.shape[0] else NULL, <int32_t> route.shape[0], pickup, dropoff,
                            w, &cost, &added, &i, &j)
        if rc < 0:
            raise MemoryError()
        return cost, i, j

    def best_insertions(self, const int32_t[::1] nodes, const int32_t[::1] offsets, int32_t pickup, int32_t dropoff,
                        double w_drive=1.0, double w_wait=0.0, double w_ride=0.0):
        """For every vehicle v (route nodes[offsets[v]:offsets[v+1]]): arrays weighted cost, driving
        added, i, j of its cheapest feasible insertion (inf, inf, -1, -1 when there is none)."""
        _check_weights(w_drive, w_wait, w_ride)
        if offsets.shape[0] != self.n_vehicles + 1:
            raise ValueError("offsets needs one entry per vehicle plus one")
        if not (0 <= pickup < self.n_nodes and 0 <= dropoff < self.n_nodes):
            raise IndexError("pickup or drop-off outside the problem")
        self._check_nodes(nodes)
        cdef Py_ssize_t v
        for v in range(self.n_vehicles):
            if not 0 <= offsets[v] <= offsets[v + 1] <= nodes.shape[0]:
                raise ValueError("offsets must be non-decreasing and inside nodes")
        costs = np.full(self.n_vehicles, np.inf)
        addeds = np.full(self.n_vehicles, np.inf)
        first = np.full(self.n_vehicles, -1, dtype=np.int32)
        second = np.full(self.n_vehicles, -1, dtype=np.int32)
        cdef double[::1] c = costs
        cdef double[::1] a = addeds
        cdef int32_t[::1] fi = first
        cdef int32_t[::1] se = second
        cdef int rc = 0
        cdef double w[3]
        w[0] = w_drive
        w[1] = w_wait
        w[2] = w_ride
        with nogil:
            for v in range(self.n_vehicles):
                rc = self._best(<int32_t> v, &nodes[offsets[v]] if offsets[v + 1] > offsets[v] else NULL,
                                offsets[v + 1] - offsets[v], pickup, dropoff, w, &c[v], &a[v], &fi[v], &se[v])
                if rc < 0:
                    break
        if rc < 0:
            raise MemoryError()
        return costs, addeds, first, second

    cdef int _best(self, int32_t v, const int32_t* route, int32_t n, int32_t p, int32_t d, const double* w,
                   double* out_cost, double* out_added, int32_t* out_i, int32_t* out_j) noexcept nogil:
        cdef Prepared prep
        cdef Scratch scratch
        cdef int rc = -1
        cdef int a = prepared_alloc(&prep, n)
        cdef int b = scratch_alloc(&scratch, n)
        if a == 0 and b == 0:
            self._prepare(v, route, n, &prep)
            self._best_prepared(v, &prep, p, d, w, &scratch, out_cost, out_added, out_i, out_j)
            rc = 0
        prepared_free(&prep)
        scratch_free(&scratch)
        return rc

    cdef void _prepare(self, int32_t v, const int32_t* route, int32_t n, Prepared* P) noexcept nogil:
        """The route's least schedule, latest starts ignoring ride times, and loads: shared by every
        insertion tried into it."""
        cdef int32_t k = n + 2, x
        P.k = k
        P.seq[0] = self.vstart[v]
        for x in range(n):
            P.seq[x + 1] = route[x]
        P.seq[k - 1] = self.vend[v]
        P.ok = self._feasible(v, P.seq, k, P.B)
        if not P.ok:
            return
        # Upper bounds on each start that ignore ride times: a valid relaxation for pruning.
        P.late[k - 1] = self.latest[P.seq[k - 1]]
        for x in range(k - 2, -1, -1):
            P.late[x] = self.latest[P.seq[x]]
            if P.late[x + 1] - self.service[P.seq[x]] - self._t(P.seq[x], P.seq[x + 1]) < P.late[x]:
                P.late[x] = P.late[x + 1] - self.service[P.seq[x]] - self._t(P.seq[x], P.seq[x + 1])
        P.load0[0] = self.initial_load[v, 0]
        P.load1[0] = self.initial_load[v, 1]
        for x in range(1, k):
            P.load0[x] = P.load0[x - 1] + self.demand[P.seq[x], 0]
            P.load1[x] = P.load1[x - 1] + self.demand[P.seq[x], 1]
        # Ride-time slack per leg, for pruning: an insertion into leg x lengthens the ride of everyone
        # on board along it by at least its detour plus its service, whatever the waiting.
        P.path[0] = 0.0
        for x in range(1, k):
            P.path[x] = P.path[x - 1] + self.service[P.seq[x - 1]] + self._t(P.seq[x - 1], P.seq[x])
        for x in range(k):
            P.slack[x] = INFINITY
        cdef int32_t a, b, drop
        cdef double spare
        for a in range(1, k - 1):
            drop = self.partner[P.seq[a]]
            if drop < 0 or (self.demand[P.seq[a], 0] <= 0 and self.demand[P.seq[a], 1] <= 0):
                continue
            b = a + 1
            while b < k - 1 and P.seq[b] != drop:
                b += 1
            if b == k - 1:
                continue
            spare = self.max_ride[P.seq[a]] - (P.path[b] - P.path[a] - self.service[P.seq[a]])
            for x in range(a, b):
                if spare < P.slack[x]:
                    P.slack[x] = spare

    cdef void _best_prepared(self, int32_t v, Prepared* P, int32_t p, int32_t d, const double* w, Scratch* S,
                             double* out_cost, double* out_added, int32_t* out_i, int32_t* out_j) noexcept nogil:
        cdef int32_t k = P.k, kk = P.k + 2, x, i, j, count = 0, c
        cdef const int32_t* seq = P.seq
        cdef const double* B = P.B
        cdef const double* late = P.late
        cdef const double* path = P.path
        cdef const double* slack = P.slack
        cdef double both, ride = self.max_ride[p]
        cdef const int32_t* load0 = P.load0
        cdef const int32_t* load1 = P.load1
        cdef Candidate* cand = S.cand
        cdef int32_t* trial = S.trial
        cdef double ap, ad, sp = self.service[p], sd = self.service[d]
        cdef double lp = self.latest[p], ld = self.latest[d], ep = self.earliest[p], ed = self.earliest[d]
        cdef int32_t q0 = self.demand[p, 0], q1 = self.demand[p, 1]
        cdef int32_t cap0 = self.capacity[v, 0], cap1 = self.capacity[v, 1]
        cdef double dpick, ddrop, ride_lb, wait_lb, exact
        cdef double w_drive = w[0], w_wait = w[1], w_ride = w[2]
        out_cost[0] = INFINITY
        out_added[0] = INFINITY
        out_i[0] = -1
        out_j[0] = -1
        if not P.ok:
            return
        if (self.fixed[p] >= 0 and self.fixed[p] != v) or (self.fixed[d] >= 0 and self.fixed[d] != v):
            return
        for i in range(k - 1):
            if load0[i] + q0 > cap0 or load1[i] + q1 > cap1:
                continue
            ap = B[i] + self.service[seq[i]] + self._t(seq[i], p)
            if ap < ep:
                ap = ep
            if ap > lp + TOL:
                continue
            wait_lb = w_wait * (ap - ep)
            dpick = self._t(seq[i], p) + self._t(p, seq[i + 1]) - self._t(seq[i], seq[i + 1])
            # Drop-off straight after the pickup.
            ad = ap + sp + self._t(p, d)
            if ad < ed:
                ad = ed
            both = self._t(seq[i], p) + self._t(p, d) + self._t(d, seq[i + 1]) - self._t(seq[i], seq[i + 1])
            if (ad <= ld + TOL and ad + sd + self._t(d, seq[i + 1]) <= late[i + 1] + TOL
                    and both + sp + sd <= slack[i] + TOL):
                cand[count].added = both
                cand[count].cost = w_drive * both + wait_lb + w_ride * self._t(p, d)
                cand[count].i = i
                cand[count].j = i
                count += 1
            if ap + sp + self._t(p, seq[i + 1]) > late[i + 1] + TOL or dpick + sp > slack[i] + TOL:
                continue
            for j in range(i + 1, k - 1):
                # The new rider's ride without any waiting, from the pickup past seq[i+1..j] to d.
                ride_lb = self._t(p, seq[i + 1]) + path[j] - path[i + 1] + self.service[seq[j]] + self._t(seq[j], d)
                if ride_lb > ride + TOL:
                    break  # only longer further along
                if load0[j] + q0 > cap0 or load1[j] + q1 > cap1:
                    break  # the riders would still be on board further along
                ad = B[j] + self.service[seq[j]] + self._t(seq[j], d)
                if ad < ed:
                    ad = ed
                if ad > ld + TOL:
                    break  # later positions only arrive later (travel times obey the triangle inequality)
                if ad + sd + self._t(d, seq[j + 1]) > late[j + 1] + TOL:
                    continue
                ddrop = self._t(seq[j], d) + self._t(d, seq[j + 1]) - self._t(seq[j], seq[j + 1])
                if ddrop + sd > slack[j] + TOL:
                    continue
                cand[count].added = dpick + ddrop
                cand[count].cost = w_drive * (dpick + ddrop) + wait_lb + w_ride * ride_lb
                cand[count].i = i
                cand[count].j = j
                count += 1
        qsort(cand, count, sizeof(Candidate), _by_cost)
        for c in range(count):
            if cand[c].cost >= out_cost[0] - TOL:
                return  # no position left can beat the best found
            i = cand[c].i
            j = cand[c].j
            # trial = seq[0..i], p, seq[i+1..j], d, seq[j+1..]
            for x in range(i + 1):
                trial[x] = seq[x]
            trial[i + 1] = p
            for x in range(i + 1, j + 1):
                trial[x + 1] = seq[x]
            trial[j + 2] = d
            for x in range(j + 1, k):
                trial[x + 2] = seq[x]
            if self._feasible(v, trial, kk, S.B):
                # The least schedule is the best one for the new rider too: no later start waits less.
                exact = w_drive * cand[c].added + w_wait * (S.B[i + 1] - ep) + w_ride * (S.B[j + 2] - S.B[i + 1] - sp)
                if exact < out_cost[0]:
                    out_cost[0] = exact
                    out_added[0] = cand[c].added
                    out_i[0] = i
                    out_j[0] = j

    def repair(self, int32_t[:, ::1] routes, int32_t[::1] lengths, const int32_t[::1] pickups,
               const int32_t[::1] dropoffs, int32_t regret, double noise, uint64_t seed, int32_t[::1] placed):
        """Insert requests (pickups[q], dropoffs[q]) into the routes (rows of `routes`, `lengths` long) by
        regret-k: the request that loses most by waiting goes first, each at its cheapest feasible place;
        noise (a share of each cost drawn at random in [-noise, noise] times the largest drive) perturbs
        the choice. placed[q] receives the vehicle or -1. Returns how many were inserted."""
        cdef int32_t n_v = self.n_vehicles, q = <int32_t> pickups.shape[0], cap = <int32_t> routes.shape[1]
        if routes.shape[0] != n_v or lengths.shape[0] != n_v or dropoffs.shape[0] != q or placed.shape[0] != q:
            raise ValueError("one route row and length per vehicle, one drop-off and result per request")
        cdef Py_ssize_t x
        for x in range(q):
            if not (0 <= pickups[x] < self.n_nodes and 0 <= dropoffs[x] < self.n_nodes):
                raise IndexError("pickup or drop-off outside the problem")
        for x in range(n_v):
            if not 0 <= lengths[x] <= cap - 2:
                raise ValueError("a route row has no room for one more request")
        cdef double* cost = <double*> malloc(q * n_v * sizeof(double))
        cdef int32_t* ci = <int32_t*> malloc(q * n_v * sizeof(int32_t))
        cdef int32_t* cj = <int32_t*> malloc(q * n_v * sizeof(int32_t))
        cdef double* top = <double*> malloc((regret + 1) * sizeof(double))
        cdef Prepared* prep = <Prepared*> malloc(n_v * sizeof(Prepared))
        cdef Scratch scratch
        cdef int failed = scratch_alloc(&scratch, cap)
        if prep != NULL:
            for x in range(n_v):
                failed |= prepared_alloc(&prep[x], cap)
        if cost == NULL or ci == NULL or cj == NULL or top == NULL or prep == NULL or failed:
            if prep != NULL:
                for x in range(n_v):
                    prepared_free(&prep[x])
            free(cost); free(ci); free(cj); free(top); free(prep)
            scratch_free(&scratch)
            raise MemoryError()
        cdef int32_t r, v, best_r, best_v, inserted = 0, m, left, i, j, k, rc = 0
        cdef double spread = 0.0, big, c, key_regret, key_cost, best_regret, best_cost, loss, added
        cdef double w[3]
        w[0] = 1.0
        w[1] = 0.0
        w[2] = 0.0
        cdef uint64_t state = seed
        cdef uint64_t mult = 2654435761
        state = state * mult + 1
        spread = self.longest
        with nogil:
            big = 1000.0 * (spread + 1.0)
            for v in range(n_v):
                self._prepare(v, &routes[v, 0], lengths[v], &prep[v])
            for r in range(q):
                placed[r] = -1
                for v in range(n_v):
                    self._best_prepared(v, &prep[v], pickups[r], dropoffs[r], w, &scratch,
                                        &cost[r * n_v + v], &added, &ci[r * n_v + v], &cj[r * n_v + v])
            left = q
            while rc == 0 and left > 0:
                best_r = -1
                best_v = -1
                best_regret = -1.0
                best_cost = INFINITY
                for r in range(q):
                    if placed[r] != -1:
                        continue
                    # The `regret` cheapest costs of r over the vehicles, smallest first.
                    for k in range(regret):
                        top[k] = INFINITY
                    m = -1
                    for v in range(n_v):
                        c = cost[r * n_v + v]
                        if c < top[0]:
                            m = v
                        if c < top[regret - 1]:
                            k = regret - 1
                            while k > 0 and top[k - 1] > c:
                                top[k] = top[k - 1]
                                k -= 1
                            top[k] = c
                    if m < 0 or top[0] == INFINITY:
                        continue
                    key_cost = top[0]
                    if noise > 0.0:
                        state ^= state << 13
                        state ^= state >> 7
                        state ^= state << 17
                        key_cost += noise * spread * (2.0 * ((state >> 11) * (1.0 / 9007199254740992.0)) - 1.0)
                    key_regret = 0.0
                    for k in range(1, regret):
                        loss = (top[k] if top[k] < INFINITY else big) - top[0]
                        key_regret += loss
                    if regret <= 1:
                        key_regret = 0.0
                    if key_regret > best_regret + 1e-9 or (key_regret > best_regret - 1e-9 and key_cost < best_cost):
                        best_regret = key_regret
                        best_cost = key_cost
                        best_r = r
                        best_v = m
                if best_r < 0:
                    break  # nothing left fits anywhere
                r = best_r
                v = best_v
                i = ci[r * n_v + v]
                j = cj[r * n_v + v]
                m = lengths[v]
                # route[:i] + [p] + route[i:j] + [d] + route[j:]
                for x in range(m - 1, j - 1, -1):
                    routes[v, x + 2] = routes[v, x]
                routes[v, j + 1] = dropoffs[r]
                for x in range(j - 1, i - 1, -1):
                    routes[v, x + 1] = routes[v, x]
                routes[v, i] = pickups[r]
                lengths[v] = m + 2
                placed[r] = v
                inserted += 1
                left -= 1
                if lengths[v] > cap - 2:
                    for x in range(q):
                        cost[x * n_v + v] = INFINITY
                    continue
                self._prepare(v, &routes[v, 0], lengths[v], &prep[v])
                for x in range(q):
                    if placed[x] == -1:
                        self._best_prepared(v, &prep[v], pickups[x], dropoffs[x], w, &scratch,
                                            &cost[x * n_v + v], &added, &ci[x * n_v + v], &cj[x * n_v + v])
        for x in range(n_v):
            prepared_free(&prep[x])
        free(cost); free(ci); free(cj); free(top); free(prep)
        scratch_free(&scratch)
        if rc < 0:
            raise MemoryError()
        return inserted

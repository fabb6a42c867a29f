# cython: language_level=3
"""One-to-many shortest paths on a street graph in CSR form, bounded by a cost budget."""

import numpy as np

cimport numpy as cnp
from libc.math cimport INFINITY
from libc.stdlib cimport free, malloc, realloc

from ext._types cimport cost_t, int32_t, node_t

cnp.import_array()


cdef int heap_init(Heap* h, Py_ssize_t capacity) noexcept nogil:
    h.size = 0
    h.capacity = capacity if capacity > 16 else 16
    h.cost = <cost_t*> malloc(h.capacity * sizeof(cost_t))
    h.node = <node_t*> malloc(h.capacity * sizeof(node_t))
    return 0 if (h.cost != NULL and h.node != NULL) else -1


cdef void heap_free(Heap* h) noexcept nogil:
    free(h.cost)
    free(h.node)
    h.cost = NULL
    h.node = NULL
    h.size = 0


cdef int heap_push(Heap* h, cost_t c, node_t n) noexcept nogil:
    cdef Py_ssize_t i, parent
    cdef cost_t* nc
    cdef node_t* nn
    if h.size == h.capacity:
        nc = <cost_t*> realloc(h.cost, 2 * h.capacity * sizeof(cost_t))
        if nc == NULL:
            return -1
        h.cost = nc
        nn = <node_t*> realloc(h.node, 2 * h.capacity * sizeof(node_t))
        if nn == NULL:
            return -1
        h.node = nn
        h.capacity *= 2
    i = h.size
    h.size += 1
    while i > 0:
        parent = (i - 1) >> 1
        if h.cost[parent] <= c:
            break
        h.cost[i] = h.cost[parent]
        h.node[i] = h.node[parent]
        i = parent
    h.cost[i] = c
    h.node[i] = n
    return 0


cdef void heap_pop(Heap* h, cost_t* c, node_t* n) noexcept nogil:
    cdef Py_ssize_t i = 0, child
    cdef cost_t last_c
    cdef node_t last_n
    c[0] = h.cost[0]
    n[0] = h.node[0]
    h.size -= 1
    if h.size == 0:
        return
    last_c = h.cost[h.size]
    last_n = h.node[h.size]
    while True:
        child = 2 * i + 1
        if child >= h.size:
            break
        if child + 1 < h.size and h.cost[child + 1] < h.cost[child]:
            child += 1
        if h.cost[child] >= last_c:
            break
        h.cost[i] = h.cost[child]
        h.node[i] = h.node[child]
        i = child
    h.cost[i] = last_c
    h.node[i] = last_n


cdef class StreetSearch:
    """Dijkstra over one CSR graph; scratch space is kept between searches, so reuse one instance."""

    cdef const int32_t[::1] indptr
    cdef const int32_t[::1] indices
    cdef const float[::1] weight
    cdef double[::1] dist
    cdef int32_t[::1] pred
    cdef int32_t[::1] touched
    cdef readonly Py_ssize_t n_nodes

    def __init__(self, const int32_t[::1] indptr, const int32_t[::1] indices, const float[::1] weight):
        self.indptr = indptr
        self.indices = indices
        self.weight = weight
        self.n_nodes = indptr.shape[0] - 1
        self.dist = np.full(self.n_nodes, np.inf, dtype=np.float64)
        self.pred = np.full(self.n_nodes, -1, dtype=np.int32)
        self.touched = np.empty(self.n_nodes, dtype=np.int32)

    def search(self, const int32_t[::1] sources, const double[::1] source_costs, double budget):
        """Nodes reached within `budget` (sources included), their costs in increasing order, and for each
        the edge it was reached by (-1 for a source)."""
        cdef Py_ssize_t n_src = sources.shape[0]
        cdef Py_ssize_t n_touched = 0, n_settled = 0, k
        cdef Heap heap
        cdef cost_t c, nc
        cdef node_t u, v
        cdef int32_t e
        cdef bint failed = False
        out_nodes = np.empty(self.n_nodes, dtype=np.int32)
        out_costs = np.empty(self.n_nodes, dtype=np.float64)
        out_pred = np.empty(self.n_nodes, dtype=np.int32)
        cdef int32_t[::1] on = out_nodes
        cdef double[::1] oc = out_costs
        cdef int32_t[::1] op = out_pred
        if heap_init(&heap, 1024) != 0:
            raise MemoryError()
        with nogil:
            for k in range(n_src):
                u = sources[k]
                c = source_costs[k]
                if c <= budget and c < self.dist[u]:
                    if self.dist[u] == INFINITY:
                        self.touched[n_touched] = u
                        n_touched += 1
                    self.dist[u] = c
                    self.pred[u] = -1
                    if heap_push(&heap, c, u) != 0:
                        failed = True
                        break
            while heap.size > 0 and not failed:
                heap_pop(&heap, &c, &u)
                if c > self.dist[u]:
                    continue
                on[n_settled] = u
                oc[n_settled] = c
                op[n_settled] = self.pred[u]
                n_settled += 1
                for e in range(self.indptr[u], self.indptr[u + 1]):
                    v = self.indices[e]
                    nc = c + self.weight[e]
                    if nc <= budget and nc < self.dist[v]:
                        if self.dist[v] == INFINITY:
                            self.touched[n_touched] = v
                            n_touched += 1
                        self.dist[v] = nc
                        self.pred[v] = e
                        if heap_push(&heap, nc, v) != 0:
                            failed = True
                            break
            for k in range(n_touched):
                self.dist[self.touched[k]] = INFINITY
                self.pred[self.touched[k]] = -1
            heap_free(&heap)
        if failed:
            raise MemoryError()
        return out_nodes[:n_settled].copy(), out_costs[:n_settled].copy(), out_pred[:n_settled].copy()

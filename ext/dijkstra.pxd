from ext._types cimport cost_t, node_t

# A binary min-heap of (cost, node) with lazy deletion; other kernels may cimport it.
cdef struct Heap:
    cost_t* cost
    node_t* node
    Py_ssize_t size
    Py_ssize_t capacity

cdef int heap_init(Heap* h, Py_ssize_t capacity) noexcept nogil
cdef void heap_free(Heap* h) noexcept nogil
cdef int heap_push(Heap* h, cost_t c, node_t n) noexcept nogil
cdef void heap_pop(Heap* h, cost_t* c, node_t* n) noexcept nogil

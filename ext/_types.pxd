# C typedefs shared by every kernel: fixed-width types only.
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t

ctypedef int32_t node_t
ctypedef int32_t edge_t
ctypedef double cost_t

"""The fence in front of the Cython kernels: arrays are checked here before a kernel sees them."""

from __future__ import annotations

import numpy as np


def require_array(array: np.ndarray, dtype: type, name: str) -> np.ndarray:
    """`array` itself when it is C-contiguous of `dtype`, as a kernel needs; TypeError otherwise."""
    if array.dtype != dtype or not array.flags.c_contiguous:
        raise TypeError(f"{name} must be a C-contiguous {np.dtype(dtype).name} array, got {array.dtype}")
    return array

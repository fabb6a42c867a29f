"""Builds the Cython kernels in ext/; all metadata lives in pyproject.toml."""

import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

# MAAS_CYTHON_DEBUG=1 turns bounds and wraparound checks back on for debugging a kernel.
_DEBUG = os.environ.get("MAAS_CYTHON_DEBUG") == "1"

_DIRECTIVES = {
    "language_level": "3",
    "boundscheck": _DEBUG,
    "wraparound": _DEBUG,
    "initializedcheck": _DEBUG,
    "cdivision": True,
    "nonecheck": False,
}

_KERNELS = ["dijkstra", "raptor", "insertion"]

extensions = [
    Extension(
        f"ext.{name}",
        [f"ext/{name}.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"] if not _DEBUG else ["-O0", "-g"],
    )
    for name in _KERNELS
]

setup(ext_modules=cythonize(extensions, compiler_directives=_DIRECTIVES))

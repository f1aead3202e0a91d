"""Run a row-range kernel on several ranges at once, in Numba's threading layer.

A Python thread pool hands a job over in ~50 microseconds on these virtual machines (a
futex wake, then the GIL handed over the same way): measured for ``ThreadPoolExecutor``
and for spinning Python workers alike, and it cancelled most of the gain of splitting the
rows of mid-sized calls. Numba's threading layer (OpenMP here) keeps its native workers
spinning between parallel regions and needs no GIL: 6 microseconds a launch, measured.
"""

from __future__ import annotations

from numba import njit, prange

from numrnn._jit import KERNEL_OPTIONS


@njit(parallel=True, **KERNEL_OPTIONS)
def run_ranges(function, args, edges):
    """``function(*args, edges[k], edges[k + 1])`` for every k, the ranges in parallel."""
    for k in prange(edges.shape[0] - 1):
        function(*args, edges[k], edges[k + 1])

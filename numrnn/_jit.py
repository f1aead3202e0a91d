"""The one place that decides how kernels are compiled.

Every CPU kernel in :mod:`numrnn.kernels.cpu` is decorated with :func:`kernel`.

- ``cache=True``: compile once per machine, not once per process.
- ``error_model='numpy'``: no zero-division checks, so element-wise loops vectorize
  (DESIGN §4: nothing vectorizes under the default ``'python'`` model).
- ``fastmath`` without ``nnan``/``ninf``: reassociation and contraction are allowed, but
  NaN and inf keep their meaning, so a diverging fit is still detected.
- ``nogil=True``: kernels can run in threads (joblib, dask) side by side.
"""

from __future__ import annotations

from numba import njit

FASTMATH_FLAGS = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

KERNEL_OPTIONS: dict = {
    "cache": True,
    "nogil": True,
    "error_model": "numpy",
    "fastmath": set(FASTMATH_FLAGS),
    "boundscheck": False,
}


def kernel(function):
    """Compile ``function`` lazily with numrnn's kernel options (nothing compiles at import)."""
    return njit(**KERNEL_OPTIONS)(function)

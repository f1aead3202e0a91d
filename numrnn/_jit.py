"""The one place that decides how kernels are compiled.

Every CPU kernel in :mod:`numrnn.kernels.cpu` is decorated with :func:`kernel`.

- ``cache=True``: compile once per machine, not once per process. The cache is keyed by
  the source of every CPU kernel module (:class:`KernelCache`), not only the function's
  own file: Numba's default key misses a change in a called function (a kernel edited or
  upgraded in place under a cached parallel driver that inlines it, or a GEMM under a
  cached time loop), and the stale machine code then loads (measured: an old, slower
  kernel; once, a segfault).
- ``error_model='numpy'``: no zero-division checks, so element-wise loops vectorize
  (DESIGN §4: nothing vectorizes under the default ``'python'`` model).
- ``fastmath`` without ``nnan``/``ninf``: reassociation and contraction are allowed, but
  NaN and inf keep their meaning, so a diverging fit is still detected.
- ``nogil=True``: kernels can run in threads (joblib, dask) side by side.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from numba import njit
from numba.core.caching import (
    CompileResultCacheImpl,
    FunctionCache,
    InTreeCacheLocator,
    UserProvidedCacheLocator,
    UserWideCacheLocator,
)

FASTMATH_FLAGS = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

KERNEL_OPTIONS: dict = {
    "cache": True,
    "nogil": True,
    "error_model": "numpy",
    "fastmath": set(FASTMATH_FLAGS),
    "boundscheck": False,
}


_PACKAGE = Path(__file__).resolve().parent
_stamp: str | None = None


def kernel_sources_stamp() -> str:
    """SHA-256 of this module and every module of :mod:`numrnn.kernels.cpu` (read once)."""
    global _stamp
    if _stamp is None:
        digest = hashlib.sha256()
        paths = [Path(__file__).resolve(), *sorted((_PACKAGE / "kernels" / "cpu").glob("*.py"))]
        for path in paths:
            digest.update(path.name.encode())
            try:
                digest.update(path.read_bytes())
            except OSError:  # pragma: no cover - sources not on disk (a zipped install)
                from numrnn import __version__

                digest.update(__version__.encode())
        _stamp = digest.hexdigest()
    return _stamp


class _KernelSourcesStamp:
    def get_source_stamp(self):
        return kernel_sources_stamp()


class _UserDirLocator(_KernelSourcesStamp, UserProvidedCacheLocator):
    pass


class _InTreeLocator(_KernelSourcesStamp, InTreeCacheLocator):
    pass


class _UserWideLocator(_KernelSourcesStamp, UserWideCacheLocator):
    pass


class _KernelCacheImpl(CompileResultCacheImpl):
    _locator_classes = [_UserDirLocator, _InTreeLocator, _UserWideLocator]


class KernelCache(FunctionCache):
    """Numba's on-disk cache, invalidated when any CPU kernel module changes."""

    _impl_class = _KernelCacheImpl


def cached(dispatcher):
    """Give a ``cache=True`` dispatcher a :class:`KernelCache` in place of Numba's own."""
    dispatcher._cache = KernelCache(dispatcher.py_func)
    return dispatcher


def kernel(function):
    """Compile ``function`` lazily with numrnn's kernel options (nothing compiles at import)."""
    return cached(njit(**KERNEL_OPTIONS)(function))


def exact_kernel(function):
    """As :func:`kernel` but without fastmath: IEEE order kept, so a kernel gives the same
    bits as the NumPy expression it replaces (no contraction into FMAs, no reassociation)."""
    return cached(njit(**{**KERNEL_OPTIONS, "fastmath": False})(function))

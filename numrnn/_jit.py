"""The one place that decides how kernels are compiled.

Every CPU kernel in :mod:`numrnn.kernels.cpu` is decorated with :func:`kernel`.

- ``cache=True``: compile once per machine, not once per process. The cache is keyed by
  the source of every CPU kernel module (:class:`KernelCache`), not only the function's
  own file: Numba's default key misses a change in a called function (a GEMM edited or
  upgraded in place under a cached time loop that links it in), and the stale machine
  code then loads (measured: an old, slower kernel; once, a segfault).
- ``error_model='numpy'``: no zero-division checks, so element-wise loops vectorize
  (DESIGN §4: nothing vectorizes under the default ``'python'`` model).
- ``fastmath`` without ``nnan``/``ninf``: reassociation and contraction are allowed, but
  NaN and inf keep their meaning, so a diverging fit is still detected.
- ``nogil=True``: kernels can run in threads (joblib, dask) side by side.

Where no cache directory is writable (a read-only install with a read-only HOME and no
writable ``NUMBA_CACHE_DIR``: hardened containers), kernels compile in memory in every
process, with one warning, instead of failing at import.

The first kernel of a cell and dtype that has to be compiled (a cache miss) logs one line
on the ``numrnn`` logger (INFO; the command line prints it): compilation takes seconds, and
a silent first call looks hung. Nothing is logged when the kernels load from the cache.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path

from numba import njit, types
from numba.core.caching import (
    CompileResultCacheImpl,
    FunctionCache,
    InTreeCacheLocator,
    NullCache,
    UserProvidedCacheLocator,
    UserWideCacheLocator,
)

FASTMATH_FLAGS = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

KERNEL_OPTIONS: dict = {
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


logger = logging.getLogger("numrnn")

#: CPU seconds to compile what a first fit of each cell needs, on one core (measured with
#: the cold first default fit on the `small` data, float32, process CPU time on a 2-core
#: machine, benchmarks/bench_compile.py, 2026-12-04 at load ~1: 5.9, 7.9, 9.8 s); float64
#: is similar.
COLD_COMPILE_SECONDS = {"rnn": 6, "lstm": 8, "gru": 10}
_CELLS = tuple(COLD_COMPILE_SECONDS)
_announced: set = set()
_cache_writable = True


def _cell_and_dtype(py_func, sig) -> tuple[str | None, str]:
    """The cell a kernel belongs to (its module or name prefix) and the dtype it runs."""
    module = py_func.__module__.rsplit(".", 1)[-1]
    cell = module if module in _CELLS else py_func.__name__.split("_", 1)[0]
    dtype = "float32"
    for arg in sig:
        for t in getattr(arg, "types", (arg,)):  # the parallel drivers take a tuple
            if isinstance(getattr(t, "dtype", None), types.Float):
                return (cell if cell in _CELLS else None), str(t.dtype)
    return (cell if cell in _CELLS else None), dtype


def announce_compile(py_func, sig) -> None:
    """Log, once per process for each cell and dtype, that its kernels are compiling."""
    cell, dtype = _cell_and_dtype(py_func, sig)
    if cell is None or (cell, dtype) in _announced:
        return
    _announced.add((cell, dtype))
    seconds = COLD_COMPILE_SECONDS[cell]
    if _cache_writable:
        where = f"first use on this machine, about {seconds} s; cached afterwards"
    else:
        where = f"about {seconds} s, in every process: no writable cache"
    logger.info("compiling numrnn kernels for %s/%s (%s)", cell, dtype, where)


class KernelCache(FunctionCache):
    """Numba's on-disk cache, invalidated when any CPU kernel module changes."""

    _impl_class = _KernelCacheImpl

    def load_overload(self, sig, target_context):
        data = super().load_overload(sig, target_context)
        if data is None:
            announce_compile(self._py_func, sig)
        return data


class MemoryOnlyCache(NullCache):
    """No cache directory is writable: compile in memory, and still announce it."""

    def __init__(self, py_func):
        self._py_func = py_func

    def load_overload(self, sig, target_context):
        announce_compile(self._py_func, sig)


def _kernel_cache(py_func):
    """A :class:`KernelCache`, or (warning once) a :class:`MemoryOnlyCache` where no
    cache directory is writable."""
    global _cache_writable
    if _cache_writable:
        try:
            return KernelCache(py_func)
        except RuntimeError as exc:  # Numba: "cannot cache function ...: no locator"
            if "no locator" not in str(exc):
                raise
            _cache_writable = False
            warnings.warn(
                "numrnn: no writable directory for the compiled-kernel cache (NUMBA_CACHE_DIR, "
                "the package's __pycache__, ~/.cache): kernels are compiled in memory in every "
                "process (about 10-15 s per cell). Set NUMBA_CACHE_DIR to a writable directory "
                "to keep them.",
                RuntimeWarning,
                stacklevel=2,
            )
    return MemoryOnlyCache(py_func)


def kernel_cache_dir() -> str:
    """Where compiled kernels are cached (a description when nothing is writable)."""
    from numrnn.kernels.cpu import gemm

    path = gemm.packed_matmul._cache.cache_path
    return path if path else "memory only (no writable cache directory)"


def _unliteral_calls(dispatcher):
    """Type calls from other kernels on plain types, not on the callers' constants.

    Numba compiles a separate specialisation of a callee for every combination of literal
    arguments its callers pass (``f(a, 0, 1)`` and ``f(a, i, 1)`` are two), and each one
    re-optimises and re-generates the machine code of everything the callee calls: the GEMM
    micro-kernel was compiled seven times for one LSTM fit. LLVM still sees the constants
    once the callee is linked into its caller.
    """
    template_for = dispatcher.get_call_template

    def get_call_template(args, kws):
        return template_for(
            tuple(types.unliteral(a) for a in args),
            {k: types.unliteral(v) for k, v in kws.items()},
        )

    dispatcher.get_call_template = get_call_template
    return dispatcher


def cached(dispatcher):
    """Give a dispatcher numrnn's on-disk cache (:func:`_kernel_cache`) and plain-typed calls."""
    dispatcher._cache = _kernel_cache(dispatcher.py_func)
    return _unliteral_calls(dispatcher)


def kernel(function):
    """Compile ``function`` lazily with numrnn's kernel options (nothing compiles at import)."""
    return cached(njit(**KERNEL_OPTIONS)(function))


def inline_kernel(function):
    """As :func:`kernel`, but a calling kernel takes in its body (Numba ``inline='always'``).

    For thin wrappers only: every compiled level re-optimises and re-emits the machine
    code of everything it calls (Numba links callees in), so a wrapper of the GEMM compiled
    as a level of its own cost ~0.8 s of a cold fit (#17). Called from Python, it compiles
    as any kernel.
    """
    return cached(njit(inline="always", **KERNEL_OPTIONS)(function))


def exact_kernel(function):
    """As :func:`kernel` but without fastmath: IEEE order kept, so a kernel gives the same
    bits as the NumPy expression it replaces (no contraction into FMAs, no reassociation)."""
    return cached(njit(**{**KERNEL_OPTIONS, "fastmath": False})(function))

"""BLAS thread policy around the time loop: decided here, in one place (DESIGN §4).

Numba's ``np.dot`` calls SciPy's OpenBLAS and NumPy's ``@`` its own: two pools whose
threads spin after every call. Measured on these 2-core machines:

- small per-step GEMMs (the tiny/small/long configurations) gain nothing from a second
  thread, and on a loaded machine the spinning threads starve everything else (the sine
  example ran 4-7x faster, an estimator step 50x, with one thread);
- from about a million multiply-adds per step (digits, medium, large) a quiet machine runs
  1.6-1.7x faster with both threads.

``NUMRNN_BLAS_THREADS`` overrides the policy (an integer, or ``default`` to leave BLAS alone).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

#: Below this many multiply-adds per step (B * G*H * H), use one BLAS thread.
SINGLE_THREAD_BELOW = 1 << 19

_blas_controllers: list | None = None


def _blas_libraries() -> list:
    global _blas_controllers
    if _blas_controllers is None:
        # Load SciPy's BLAS (the one Numba calls) before looking, so it is found even when
        # no kernel has been compiled yet in this process.
        import scipy.linalg.cython_blas  # noqa: F401
        from threadpoolctl import ThreadpoolController

        _blas_controllers = [
            lc for lc in ThreadpoolController().lib_controllers if lc.user_api == "blas"
        ]
    return _blas_controllers


def recurrent_blas_threads(batch: int, gate_size: int, hidden_size: int) -> int | None:
    """BLAS threads for a time loop with per-step GEMM (batch, hidden) x (hidden, gate_size).

    Returns 1 for small steps, None (leave BLAS as configured) for large ones.
    """
    override = os.environ.get("NUMRNN_BLAS_THREADS", "").strip()
    if override:
        return None if override == "default" else max(1, int(override))
    return 1 if batch * gate_size * hidden_size < SINGLE_THREAD_BELOW else None


@contextmanager
def blas_threads(n: int | None):
    """Run the block with ``n`` BLAS threads in every loaded BLAS (None: unchanged).

    Only libraries whose count differs are touched, and they are restored afterwards, so
    nesting (an estimator's fit around a network's forward) costs nothing.
    """
    if n is None:
        yield
        return
    changed = []
    for lib in _blas_libraries():
        current = lib.num_threads
        if current != n:
            lib.set_num_threads(n)
            changed.append((lib, current))
    try:
        yield
    finally:
        for lib, current in changed:
            lib.set_num_threads(current)


# -- threads for the time loops ---------------------------------------------------------
# Batch rows are independent through time, so a layer's time loop splits into row ranges
# that run in threads with no synchronization per step (the kernels release the GIL).

#: Below this many multiply-adds in a layer call (T * B * G*H * (I + H)), one thread: a
#: thread hand-off costs tens of microseconds.
LOOP_THREADS_BELOW = 1 << 22

_local = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def max_loop_threads() -> int:
    """The cap on time-loop threads: :func:`loop_thread_limit` in force, else
    ``NUMRNN_NUM_THREADS``, else ``NUMBA_NUM_THREADS`` (which Dask workers set to 1), and
    never more than the cores this process may use."""
    limit = getattr(_local, "limit", None)
    if limit is None:
        env = os.environ.get("NUMRNN_NUM_THREADS", "").strip()
        if env:
            limit = int(env)
        else:
            from numba import config

            limit = config.NUMBA_NUM_THREADS
    return max(1, min(int(limit), _cpu_count()))


@contextmanager
def loop_thread_limit(n: int):
    """Run the block (in this thread) with at most ``n`` time-loop threads per layer call."""
    previous = getattr(_local, "limit", None)
    _local.limit = max(1, int(n))
    try:
        yield
    finally:
        _local.limit = previous


def loop_threads(batch: int, multiply_adds: int) -> int:
    """Threads for one layer call's time loop: 1 for small work, else up to the cap."""
    if multiply_adds < LOOP_THREADS_BELOW:
        return 1
    return max(1, min(max_loop_threads(), batch // 2))


def row_ranges(batch: int, threads: int) -> list[tuple[int, int]]:
    """``threads`` contiguous, nearly equal ranges covering ``0..batch``."""
    edges = [round(k * batch / threads) for k in range(threads + 1)]
    return [(edges[k], edges[k + 1]) for k in range(threads) if edges[k + 1] > edges[k]]


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=max(1, _cpu_count() - 1), thread_name_prefix="numrnn-loop"
            )
        return _pool


def run_row_ranges(function, args: tuple, batch: int, threads: int) -> None:
    """Call ``function(*args, b0, b1)`` on row ranges, in threads when ``threads > 1``.

    Results do not depend on ``threads``: each row's arithmetic is the same whatever range
    it falls in (see :mod:`numrnn.kernels.cpu.gemm`).
    """
    ranges = row_ranges(batch, threads) if threads > 1 else [(0, batch)]
    if len(ranges) == 1:
        function(*args, 0, batch)
        return
    futures = [_get_pool().submit(function, *args, b0, b1) for b0, b1 in ranges[1:]]
    try:
        function(*args, *ranges[0])
    finally:
        for f in futures:
            f.result()

"""Thread policy, decided here in one place (DESIGN §4).

Time loops: batch rows are independent through time, so a layer's time loop (and the
hoisted GEMMs after it) splits into row ranges run in threads, with no synchronization per
step; :func:`loop_threads` picks how many. The cap is :func:`loop_thread_limit` (this
thread), else ``NUMRNN_NUM_THREADS``, else Numba's thread count (``NUMBA_NUM_THREADS``, or
``numba.set_num_threads`` once Numba's threading layer runs), and never more than the
cores this process may use.

On a shared machine more threads make a call slower: rows are split evenly, so a call
waits for its slowest thread, and a preempted thread holds up the whole layer
(docs/performance.rst, *Measured*). Unless ``NUMRNN_NUM_THREADS``
(or :func:`loop_thread_limit`) sets the count, :func:`max_loop_threads` drops to one thread
while the CPUs are contended (:func:`cpu_contended`: Linux's CPU pressure, else the load
average). A call's parallel region then runs on exactly as many of Numba's threads as it
has row ranges, so one range wakes no worker thread (no spinning OpenMP workers competing
with the caller); results do not depend on the thread count either way.

BLAS: the kernels do not call it; around numrnn's NumPy work it is held to one thread
(:func:`recurrent_blas_threads`) because both OpenBLAS pools spin after every call and
starve other threads (docs/performance.rst, *Measured*).
``NUMRNN_BLAS_THREADS`` overrides that (an integer, or ``default`` to leave BLAS alone).
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager

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


def recurrent_blas_threads() -> int | None:
    """BLAS threads around numrnn's NumPy work (None: leave BLAS as it is).

    The CPU kernels no longer call BLAS (:mod:`numrnn.kernels.cpu.gemm`); what is left is
    small NumPy work such as the estimators' linear head, where a second BLAS thread gains
    nothing and its spinning would starve the time-loop threads (:func:`loop_threads`).
    So: one thread, unless ``NUMRNN_BLAS_THREADS`` says otherwise.
    """
    override = os.environ.get("NUMRNN_BLAS_THREADS", "").strip()
    if override:
        return None if override == "default" else max(1, int(override))
    return 1


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


def numrnn_blas_threads():
    """:func:`blas_threads` at :func:`recurrent_blas_threads`: the one BLAS policy around
    numrnn's NumPy products (an estimator's fit and predict, the ``nn.Linear`` head)."""
    return blas_threads(recurrent_blas_threads())


# -- threads for the time loops ---------------------------------------------------------
# Batch rows are independent through time, so a layer's time loop splits into row ranges
# that run in threads with no synchronization per step (the kernels release the GIL).

#: Below this many multiply-adds in a layer call (T * B * G*H * (I + H)), one thread: a
#: training step makes about four parallel launches per layer, and under this size they
#: cost more than they save (docs/performance.rst, *Measured*).
LOOP_THREADS_BELOW = 1 << 21

_local = threading.local()


_affinity: int | None = None


def _cpu_count() -> int:
    """CPUs this process may run on, read once (a system call per layer call showed up in
    a small model's step); a forked child reads it again."""
    global _affinity
    if _affinity is None:
        try:
            _affinity = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            _affinity = os.cpu_count() or 1
    return _affinity


#: CPU pressure (Linux PSI: share of the last 10 s in which some runnable task waited for
#: a CPU), in percent, at and above which the CPUs count as contended.
CONTENDED_PRESSURE = 50.0
#: Without PSI: a 1-minute load average above this many runnable tasks per CPU.
CONTENDED_LOAD = 1.5
#: Seconds between two readings of the pressure (a file read, ~20 us).
CONTENTION_CHECK_S = 1.0
_contention = (-1e9, False)  # (monotonic time of the reading, contended)


def _read_contention() -> bool:
    try:
        with open("/proc/pressure/cpu") as f:
            some = f.readline().split()  # "some avg10=12.34 avg60=... total=..."
        return float(some[1].split("=")[1]) >= CONTENDED_PRESSURE
    except (OSError, IndexError, ValueError):
        pass
    try:
        return os.getloadavg()[0] > CONTENDED_LOAD * _cpu_count()
    except (AttributeError, OSError):  # pragma: no cover - no load average
        return False


def cpu_contended() -> bool:
    """Whether other work is keeping this machine's CPUs busy (read at most once a second).

    Linux's CPU pressure (``/proc/pressure/cpu``, "some" over 10 s) at or above
    :data:`CONTENDED_PRESSURE` percent; where it is not available, a 1-minute load average
    above :data:`CONTENDED_LOAD` per CPU. A quiet machine running this fit's own threads
    shows almost no pressure (each thread has its CPU), so the fit does not throttle itself.
    """
    global _contention
    now = time.monotonic()
    checked, contended = _contention
    if now - checked >= CONTENTION_CHECK_S:
        contended = _read_contention()
        _contention = (now, contended)
    return contended


def max_loop_threads() -> int:
    """The cap on time-loop threads (see the module docstring)."""
    limit = getattr(_local, "limit", None)
    if limit is None:
        env = os.environ.get("NUMRNN_NUM_THREADS", "").strip()
        if env:
            limit = int(env)
        elif cpu_contended():
            limit = 1
        else:
            import numba

            limit = numba.config.NUMBA_NUM_THREADS
            if _numba_threads_launched:
                limit = _user_numba_threads()
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


@contextmanager
def single_threaded():
    """One BLAS thread and one time-loop thread in this block (a task among many)."""
    with blas_threads(1), loop_thread_limit(1):
        yield


def loop_threads(batch: int, multiply_adds: int) -> int:
    """Threads for one layer call's time loop: 0 below the threshold, else 1 up to the cap.

    0 and 1 both mean the caller runs the kernel directly; from 2 up, the call goes
    through the parallel driver, which runs the same compiled kernel on every range.
    """
    if multiply_adds < LOOP_THREADS_BELOW:
        return 0
    return max(1, min(max_loop_threads(), batch // 2))


def row_ranges(batch: int, threads: int) -> list[tuple[int, int]]:
    """``threads`` contiguous, nearly equal ranges covering ``0..batch``."""
    edges = [round(k * batch / threads) for k in range(threads + 1)]
    return [(edges[k], edges[k + 1]) for k in range(threads) if edges[k + 1] > edges[k]]


#: Set in a process forked from one that may have started Numba's threading layer: the
#: GNU OpenMP runtime is not fork-safe, so such a child runs its ranges inline.
_forked = False
#: One caller at a time uses the threading layer (the workqueue layer, Numba's fallback
#: without OpenMP or TBB, is not thread-safe); a concurrent caller runs its ranges inline.
_dispatch_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _forked, _dispatch_lock, _affinity
    _forked = True
    _dispatch_lock = threading.Lock()
    _affinity = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


_numba_threads_launched = False


def _user_numba_threads() -> int:
    """``numba.get_num_threads()`` in this thread, through the raw getter (~0.2 us, not
    ~5 us): the caller's own setting, as :func:`_run_driver` restores it after each call."""
    from numba.np.ufunc.parallel import _get_num_threads

    return _get_num_threads()


def _run_driver(driver, driver_args: tuple, ranges: int) -> None:
    """``driver(*driver_args)`` on exactly ``ranges`` of Numba's threads (at most its count).

    Numba's per-thread count is lowered for the call and restored after it: a region with
    one range then runs in this thread and wakes no OpenMP worker (woken workers spin after
    the region, taking CPU from the caller on a busy machine: why ``NUMRNN_NUM_THREADS=1``
    did not help before).
    """
    global _numba_threads_launched
    if not _numba_threads_launched:
        import numba

        numba.get_num_threads()  # starts the threading layer, so the raw calls below work
        _numba_threads_launched = True
    from numba.np.ufunc.parallel import _set_num_threads

    current = _user_numba_threads()
    if ranges >= current:
        driver(*driver_args)
        return
    _set_num_threads(ranges)
    try:
        driver(*driver_args)
    finally:
        _set_num_threads(current)


#: ``(flush_denormals, restore_fp_mode)`` once loaded: this module imports no Numba code at
#: import time, and an import statement per call costs as much as a one-step kernel.
_fp_mode: tuple | None = None


def _load_fp_mode() -> tuple:
    global _fp_mode
    from numrnn.kernels.cpu.fpenv import flush_denormals, restore_fp_mode

    _fp_mode = (flush_denormals, restore_fp_mode)
    return _fp_mode


def run_row_ranges(function, args: tuple, batch: int, threads: int) -> None:
    """Call ``function(*args, b0, b1)`` on ``threads`` row ranges (0 or 1: one direct call).

    Two or more ranges run in Numba's threading layer through
    :func:`numrnn.kernels.cpu.parallel.rows_parallel`, which calls the kernel's own machine
    code, once that driver is compiled or cached (until then, one direct call:
    :func:`numrnn.kernels.cpu.parallel.driver_ready`); a plain Python function runs its
    ranges in turn. Results do not depend on ``threads``: each row's arithmetic is the same
    whatever range it falls in (see :mod:`numrnn.kernels.cpu.gemm`), and every range runs
    the same compiled kernel.
    """
    if threads <= 1 or batch <= 1:
        # one range, the common case of small batches: nothing to decide (a one-step
        # forecast's whole kernel takes ~2 us, so this path's Python work is its latency)
        fp = _fp_mode or _load_fp_mode()
        mode = fp[0]()
        try:
            function(*args, 0, batch)
        finally:
            fp[1](mode)
        return
    from numrnn.kernels.cpu import parallel as _parallel

    flush_denormals, restore_fp_mode = _fp_mode or _load_fp_mode()
    ranges = row_ranges(batch, threads)
    # a Numba kernel (not a Python function) whose driver is compiled or worth compiling
    threaded = len(ranges) > 1 and hasattr(function, "overloads") and not _forked
    waiting = threaded and not _parallel.driver_ready(function, args)
    if waiting or not threaded or not _dispatch_lock.acquire(blocking=False):
        start = _parallel.clock() if waiting else 0.0
        mode = flush_denormals()  # as the parallel driver does in its threads (kernels/cpu/fpenv)
        try:
            if waiting:  # one call: the bits of any split
                function(*args, 0, batch)
            else:
                for b0, b1 in ranges:
                    function(*args, b0, b1)
        finally:
            restore_fp_mode(mode)
        if waiting:
            _parallel.ran_on_one_thread(function, args, _parallel.clock() - start)
        return
    try:
        import numpy as np

        from numrnn.kernels.cpu.parallel import native_address, rows_parallel

        edges = np.array([b0 for b0, _ in ranges] + [ranges[-1][1]], dtype=np.int64)
        _run_driver(rows_parallel, (native_address(function, args), args, edges), len(ranges))
    finally:
        _dispatch_lock.release()

"""Run a row-range kernel on several ranges at once, in Numba's threading layer.

A Python thread pool hands a job over slowly on these virtual machines (a futex wake,
then the GIL handed over the same way), for ``ThreadPoolExecutor`` and for spinning Python
workers alike, and it cancelled most of the gain of splitting the rows of mid-sized calls.
Numba's threading layer (OpenMP here) keeps its native workers spinning between parallel
regions and needs no GIL: several times cheaper a launch (docs/performance.rst, *Measured*).

One driver serves every row kernel: :func:`rows_parallel` calls the kernel's compiled
machine code through its address (:func:`native_address`), so the driver neither links nor
re-optimises the kernel. Before (#17), each kernel had its own driver that inlined it: a
parallel region compiles into three more LLVM modules, each re-optimising and re-emitting
the whole kernel with the GEMM under it, which was half of a cold first fit's compile time
(LSTM: 23.7 s with the drivers, 12.3 s without). Calling the same machine code also means
one range can call the kernel directly (no driver compiled at all) and still give the bits
that several threads give: an inlined copy could round differently.

The address is a run-time argument, never a constant in the compiled driver, so the driver
caches like any kernel: a cached driver is called with the address of whatever copy of the
kernel this process compiled or loaded.

The driver is compiled once per argument types (0.5-0.9 s of CPU each, three or four per
cell), and only when it pays (:func:`driver_ready`): one found in the on-disk cache
is used at once; otherwise the calls that wanted threads run on one thread (the same bits)
until they have taken :data:`DRIVER_COMPILE_AFTER_S`, and then the driver compiles. A short
first fit on a new machine (the README's, a test's) compiles no driver; a long one compiles
them early in its run. ``numrnn compile`` and :func:`numrnn.parallel.warm_up` compile them
at once (:func:`eager_drivers`).
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from numba import njit, prange, typeof, types
from numba._dispatcher import compute_fingerprint
from numba.core import cgutils
from numba.core.compiler_lock import global_compiler_lock
from numba.extending import intrinsic

from numrnn._jit import KERNEL_OPTIONS, cached
from numrnn.kernels.cpu.fpenv import flush_denormals, restore_fp_mode


@intrinsic
def _call_rows(typingctx, address, args, b0, b1):
    """``kernel(*args, b0, b1)`` for the kernel compiled at ``address`` (Numba's native ABI)."""
    if not isinstance(address, types.Integer) or not isinstance(args, types.BaseTuple):
        return None
    argtys = (*args.types, b0, b1)
    sig = types.void(address, args, b0, b1)

    def codegen(context, builder, sig, llargs):
        address_, args_, b0_, b1_ = llargs
        fnty = context.call_conv.get_function_type(types.none, argtys)
        fn = builder.inttoptr(address_, fnty.as_pointer())
        values = [builder.extract_value(args_, i) for i in range(len(args.types))]
        status, _ = context.call_conv.call_function(
            builder, fn, types.none, argtys, [*values, b0_, b1_]
        )
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return context.get_dummy_value()

    return sig, codegen


@njit(parallel=True, **KERNEL_OPTIONS)
def _rows_parallel(address, args, edges):
    for k in prange(edges.shape[0] - 1):
        mode = flush_denormals()  # per thread: see kernels/cpu/fpenv.py
        _call_rows(address, args, edges[k], edges[k + 1])
        restore_fp_mode(mode)


#: ``rows_parallel(address, args, edges)``: the kernel at ``address`` on the row ranges
#: ``edges[k]..edges[k+1]``, one per thread; compiled once per argument-tuple type.
rows_parallel = cached(_rows_parallel)

_addresses: dict = {}


def native_address(kernel, args: tuple) -> int:
    """The address of ``kernel``'s machine code for ``kernel(*args, b0, b1)`` (int64 rows).

    Compiles (or loads from the cache) the specialisation the direct call would use, so the
    driver runs exactly the code a one-range call runs. Looked up once per kernel and
    argument types, keyed by Numba's own type fingerprint (0.4 us; ``typeof`` takes ~9 us
    an array).
    """
    key = (kernel, compute_fingerprint(args))
    address = _addresses.get(key)
    if address is None:
        argtypes = (*(typeof(a) for a in args), types.int64, types.int64)
        kernel.compile(argtypes)
        result = kernel.overloads[argtypes]
        address = result.library.get_pointer_to_function(result.fndesc.llvm_func_name)
        if not address:  # pragma: no cover - Numba changed how it names the function
            raise RuntimeError(f"numrnn: no machine code found for {kernel.py_func.__name__}")
        _addresses[key] = address
    return address


#: Seconds of one-thread kernel time, per kernel and argument types, after which a driver
#: that is not in the cache is compiled. A driver compiles in 0.5-0.9 s of CPU and two
#: threads save ~40 % of a call's time, so by then the calls run on one thread have lost
#: about what the compilation costs (the rent-or-buy break-even).
DRIVER_COMPILE_AFTER_S = 2.0
_EDGES = types.Array(types.int64, 1, "C")
#: (kernel, fingerprint) -> [ready, seconds run on one thread, signature, a call was counted]
_drivers: dict = {}
_eager = False


def _load_cached_driver(sig) -> bool:
    """Whether the driver for ``sig`` is compiled in this process or loads from the cache."""
    with global_compiler_lock:
        if sig in rows_parallel.overloads:
            return True
        result = rows_parallel._cache.load_overload(sig, rows_parallel.targetctx)
        if result is None:
            return False
        # as Dispatcher.compile does with a cache hit
        rows_parallel.targetctx.insert_user_function(
            result.entry_point, result.fndesc, [result.library]
        )
        rows_parallel.add_overload(result)
        return True


def driver_ready(kernel, args: tuple) -> bool:
    """Whether ``kernel(*args, b0, b1)`` runs through the parallel driver now.

    True once the driver for these argument types is compiled in this process or loaded
    from the on-disk cache; else it compiles after :data:`DRIVER_COMPILE_AFTER_S` of
    one-thread time (:func:`ran_on_one_thread`), or at once under :func:`eager_drivers`.
    """
    key = (kernel, compute_fingerprint(args))
    state = _drivers.get(key)
    if state is None:
        sig = (types.int64, typeof(args), _EDGES)
        state = _drivers[key] = [_load_cached_driver(sig), 0.0, sig, False]
    if not state[0] and (_eager or state[1] >= DRIVER_COMPILE_AFTER_S):
        rows_parallel.compile(state[2])
        state[0] = True
    return state[0]


def ran_on_one_thread(kernel, args: tuple, seconds: float) -> None:
    """Count ``seconds`` of a call that wanted threads but waited for its driver.

    The first such call of a kernel and argument types is not counted: it compiles (or
    loads) the kernel itself, seconds that threads would not have saved.
    """
    state = _drivers.get((kernel, compute_fingerprint(args)))
    if state is not None:
        if state[3]:
            state[1] += seconds
        state[3] = True


def set_eager_drivers(eager: bool) -> bool:
    """Compile parallel drivers at their first use (True), not after
    :data:`DRIVER_COMPILE_AFTER_S` (False, the default). Returns the previous setting."""
    global _eager
    previous, _eager = _eager, bool(eager)
    return previous


@contextmanager
def eager_drivers():
    """:func:`set_eager_drivers` ``(True)`` in this block (``numrnn compile``, warm-up)."""
    previous = set_eager_drivers(True)
    try:
        yield
    finally:
        set_eager_drivers(previous)


def clock() -> float:
    """The clock :func:`ran_on_one_thread` is given (monotonic seconds)."""
    return time.perf_counter()

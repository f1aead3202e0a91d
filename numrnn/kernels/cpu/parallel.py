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
"""

from __future__ import annotations

from numba import njit, prange, typeof, types
from numba._dispatcher import compute_fingerprint
from numba.core import cgutils
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

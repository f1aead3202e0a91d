"""Denormals flushed to zero while a kernel runs (x86 MXCSR FTZ and DAZ), restored after.

Backpropagation through a long sequence makes the state gradients decay step by step; past
a few hundred steps of a freshly initialised LSTM they fall below float32's smallest normal
number, and every operation on such a denormal takes a microcode assist, ~100x slower. The
large LSTM's training step (T = 200) took 29 s on one thread instead of 1.8 s, all of the
difference in its backward and weight-gradient loops (measured). With FTZ/DAZ those numbers
are zero, as on a GPU: the weights' gradients differ only in contributions below 1e-38.

The mode is per thread, so :mod:`numrnn.kernels.cpu.parallel`'s driver sets it in every
worker around the row kernel and :func:`numrnn._threads.run_row_ranges` around a call in the
caller's thread, each restoring the thread's previous mode (the user's NumPy code runs as
before). On other architectures the functions do nothing.
"""

from __future__ import annotations

import platform

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from numrnn._jit import kernel

#: MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6) flags.
FTZ_DAZ = 0x8040
X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _mxcsr_call(builder, name, slot):
    i8p = ir.IntType(8).as_pointer()
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [i8p]), f"llvm.x86.sse.{name}"
    )
    builder.call(fn, [builder.bitcast(slot, i8p)])


@intrinsic
def _mxcsr_or(typingctx, bits):
    """Set ``bits`` in MXCSR; return its previous value."""
    sig = types.uint32(types.uint32)

    def codegen(context, builder, sig, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        _mxcsr_call(builder, "stmxcsr", slot)
        old = builder.load(slot)
        builder.store(builder.or_(old, args[0]), slot)
        _mxcsr_call(builder, "ldmxcsr", slot)
        return old

    return sig, codegen


@intrinsic
def _mxcsr_load(typingctx, value):
    """Load ``value`` into MXCSR."""
    sig = types.void(types.uint32)

    def codegen(context, builder, sig, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        builder.store(args[0], slot)
        _mxcsr_call(builder, "ldmxcsr", slot)
        return context.get_dummy_value()

    return sig, codegen


if X86:

    @kernel
    def flush_denormals():
        """Turn FTZ/DAZ on in this thread; returns the mode to give :func:`restore_fp_mode`."""
        return _mxcsr_or(types.uint32(FTZ_DAZ))

    @kernel
    def restore_fp_mode(mode):
        """Put back the mode :func:`flush_denormals` returned."""
        _mxcsr_load(types.uint32(mode))

else:  # pragma: no cover - depends on the machine

    @kernel
    def flush_denormals():
        """Nothing to do off x86; returns 0."""
        return 0

    @kernel
    def restore_fp_mode(mode):
        """Nothing to do off x86."""
        return None

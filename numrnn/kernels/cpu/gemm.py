"""The recurrent product ``C = A @ B`` with ``B`` packed once per call.

Inside the time loop every step multiplies the state by the same weight matrix. A BLAS
call re-packs that matrix on every step, and the BLAS these machines select
(``OPENBLAS_CORETYPE=Haswell``) uses 256-bit vectors on a CPU with 512-bit FMA units:
measured on the step shapes (64x128 @ 128x512, float32) OpenBLAS gives 100 GFLOP/s on one
thread and 127 on two. Packing ``B`` once into column panels and running a register-blocked
micro-kernel over it gives ~250 GFLOP/s on ONE thread, at the core's peak.

Layout: ``B`` (K, N) becomes ``(P, K, NR)`` panels of ``NR`` columns (zero-padded to a
multiple of ``NR``), so the micro-kernel reads ``NR`` contiguous numbers per ``k``. ``C``
must have ``P * NR`` columns; the padded ones get zeros' products and are ignored.

The micro-kernel keeps an ``MR x NR`` block of ``C`` in vector registers (12 of them) over
the whole ``k`` loop; it is written in LLVM IR (a Numba ``intrinsic``) because LLVM does
not keep such a block in registers when it is written as Python loops. Every element of
``C`` is the same ``fma`` chain over ``k = 0..K-1`` whatever block its row falls in, so
results do not depend on how rows are split between calls or threads.
"""

from __future__ import annotations

import llvmlite.binding as llvm_binding
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from numrnn._jit import kernel

#: Rows of ``C`` per micro-kernel call.
MR = 6
#: Vector registers per row of the ``C`` block.
_NVEC = 2


def _vector_bytes() -> int:
    """64 with AVX-512, else 32: 2x16-lane vectors would spill on a 16-register AVX2 CPU."""
    features = llvm_binding.get_host_cpu_features()
    return 64 if features.get("avx512f", False) else 32


_VECTOR_BYTES = _vector_bytes()
#: Panel widths (columns of ``B`` per panel) for float32 and float64.
NR32 = _NVEC * _VECTOR_BYTES // 4
NR64 = _NVEC * _VECTOR_BYTES // 8


def _make_microkernel(mr: int):
    """``C[r, 0:NR] (+)= sum_k A[r, k] * Bp[k, 0:NR]`` for ``mr`` rows, as one intrinsic."""

    @intrinsic
    def microkernel(typingctx, a, a_off, lda, b, b_off, k, c, c_off, ldc):
        sig = types.void(a, a_off, lda, b, b_off, k, c, c_off, ldc)
        dtype = a.dtype

        def codegen(context, builder, sig, args):
            a_, a_off, lda, b_, b_off, k, c_, c_off, ldc = args
            lanes = _VECTOR_BYTES * 8 // dtype.bitwidth
            nr = lanes * _NVEC
            fty = context.get_value_type(dtype)
            vty = ir.VectorType(fty, lanes)
            i64 = ir.IntType(64)
            fma = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(vty, [vty, vty, vty]),
                f"llvm.fma.v{lanes}f{dtype.bitwidth}",
            )
            a_base = builder.gep(
                context.make_array(sig.args[0])(context, builder, a_).data, [a_off]
            )
            b_base = builder.gep(
                context.make_array(sig.args[3])(context, builder, b_).data, [b_off]
            )
            c_base = builder.gep(
                context.make_array(sig.args[6])(context, builder, c_).data, [c_off]
            )
            # Accumulators as allocas: LLVM's mem2reg turns them into registers.
            accs = [[cgutils.alloca_once(builder, vty) for _ in range(_NVEC)] for _ in range(mr)]
            for row in accs:
                for acc in row:
                    builder.store(ir.Constant(vty, None), acc)
            undef = ir.Constant(vty, ir.Undefined)
            splat_mask = ir.Constant(ir.VectorType(ir.IntType(32), lanes), None)
            with cgutils.for_range(builder, k) as loop:
                kk = loop.index
                brow = builder.gep(b_base, [builder.mul(kk, ir.Constant(i64, nr))])
                bvec = [
                    builder.load(
                        builder.bitcast(builder.gep(brow, [ir.Constant(i64, j * lanes)]),
                                        vty.as_pointer()),
                        align=dtype.bitwidth // 8,
                    )
                    for j in range(_NVEC)
                ]  # fmt: skip
                for r in range(mr):
                    offset = builder.add(builder.mul(ir.Constant(i64, r), lda), kk)
                    aval = builder.load(builder.gep(a_base, [offset]))
                    splat = builder.insert_element(undef, aval, ir.Constant(ir.IntType(32), 0))
                    splat = builder.shuffle_vector(splat, undef, splat_mask)
                    for j in range(_NVEC):
                        acc = builder.load(accs[r][j])
                        builder.store(builder.call(fma, [splat, bvec[j], acc]), accs[r][j])
            for r in range(mr):
                crow = builder.gep(c_base, [builder.mul(ir.Constant(i64, r), ldc)])
                for j in range(_NVEC):
                    ptr = builder.bitcast(builder.gep(crow, [ir.Constant(i64, j * lanes)]),
                                          vty.as_pointer())  # fmt: skip
                    builder.store(builder.load(accs[r][j]), ptr, align=dtype.bitwidth // 8)
            return context.get_dummy_value()

        return sig, codegen

    return microkernel


_mk1, _mk2, _mk3, _mk4, _mk5, _mk6 = (_make_microkernel(m) for m in range(1, MR + 1))


@kernel
def _row_block(a, a_off, lda, bp, b_off, K, c, c_off, ldc, rows):
    if rows == 6:
        _mk6(a, a_off, lda, bp, b_off, K, c, c_off, ldc)
    elif rows == 5:
        _mk5(a, a_off, lda, bp, b_off, K, c, c_off, ldc)
    elif rows == 4:
        _mk4(a, a_off, lda, bp, b_off, K, c, c_off, ldc)
    elif rows == 3:
        _mk3(a, a_off, lda, bp, b_off, K, c, c_off, ldc)
    elif rows == 2:
        _mk2(a, a_off, lda, bp, b_off, K, c, c_off, ldc)
    else:
        _mk1(a, a_off, lda, bp, b_off, K, c, c_off, ldc)


@kernel
def packed_matmul(a, bp, c):
    """``c[:, :P*NR] = a @ B`` for every row of ``a`` (2-D, unit column stride).

    ``bp`` is ``B`` packed by :func:`pack_columns`; ``c`` (2-D, unit column stride) has at
    least ``P * NR`` columns and as many rows as ``a``.
    """
    M = a.shape[0]
    P, K, NR = bp.shape
    lda = a.strides[0] // a.itemsize
    ldc = c.strides[0] // c.itemsize
    # Panel outer, rows inner: one K x NR panel stays in L1 while all rows pass over it.
    for p in range(P):
        r = 0
        while r < M:
            rows = min(MR, M - r)
            _row_block(a, r * lda, lda, bp, p * K * NR, K, c, r * ldc + p * NR, ldc, rows)
            r += rows


@kernel
def pack_columns(b, out):
    """Pack ``b`` (K, N), any strides, into ``out`` (P, K, NR) column panels, zero-padded."""
    K, N = b.shape
    P, _, NR = out.shape
    for p in range(P):
        for k in range(K):
            for j in range(NR):
                col = p * NR + j
                out[p, k, j] = b[k, col] if col < N else 0.0


@kernel
def packed_stacked(w_ih, w_hh):
    """``[W_ih W_hh]^T`` ((I+H), G*H) packed: one GEMM per step gives ``[x_t h] @ that``."""
    GH, I = w_ih.shape
    H = w_hh.shape[1]
    NR = NR32 if w_ih.itemsize == 4 else NR64
    out = np.empty(((GH + NR - 1) // NR, I + H, NR), dtype=w_ih.dtype)
    pack_columns(w_ih.T, out[:, :I])
    pack_columns(w_hh.T, out[:, I:])
    return out


@kernel
def packed(b):
    """``b`` (K, N) packed into new (P, K, NR) panels (see :func:`pack_columns`)."""
    K, N = b.shape
    NR = NR32 if b.itemsize == 4 else NR64
    out = np.empty(((N + NR - 1) // NR, K, NR), dtype=b.dtype)
    pack_columns(b, out)
    return out


@kernel
def padded_width(n, probe):
    """``n`` rounded up to whole panels for ``probe``'s dtype: columns ``C`` must have."""
    NR = NR32 if probe.itemsize == 4 else NR64
    return (n + NR - 1) // NR * NR

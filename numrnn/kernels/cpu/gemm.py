"""The recurrent product ``C = A @ B`` with ``B`` packed once per call.

Inside the time loop every step multiplies the state by the same weight matrix. A BLAS
call re-packs that matrix on every step, and the BLAS these machines select
(``OPENBLAS_CORETYPE=Haswell``) uses 256-bit vectors on a CPU with 512-bit FMA units.
Packing ``B`` once into column panels and running a register-blocked micro-kernel over it
reaches the core's peak on ONE thread, well above OpenBLAS on two (docs/performance.rst, *Measured*).

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
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from numrnn._jit import inline_kernel, kernel

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
    """``C[r, 0:NR] (+)= sum_k A[r, k] * Bp[k, 0:NR]`` for ``mr`` rows, as one intrinsic.

    ``A`` is addressed with element strides (``a_rs``, ``a_cs``), so transposed views need
    no copy; ``Bp`` is one packed panel; with ``accumulate`` the block is added to ``C``.
    """

    @intrinsic
    def microkernel(typingctx, a, a_off, a_rs, a_cs, b, b_off, k, c, c_off, ldc, accumulate):
        sig = types.void(a, a_off, a_rs, a_cs, b, b_off, k, c, c_off, ldc, accumulate)
        dtype = a.dtype

        def codegen(context, builder, sig, args):
            a_, a_off, a_rs, a_cs, b_, b_off, k, c_, c_off, ldc, accumulate = args
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
                context.make_array(sig.args[4])(context, builder, b_).data, [b_off]
            )
            c_base = builder.gep(
                context.make_array(sig.args[7])(context, builder, c_).data, [c_off]
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
                    offset = builder.add(
                        builder.mul(ir.Constant(i64, r), a_rs), builder.mul(kk, a_cs)
                    )
                    aval = builder.load(builder.gep(a_base, [offset]))
                    splat = builder.insert_element(undef, aval, ir.Constant(ir.IntType(32), 0))
                    splat = builder.shuffle_vector(splat, undef, splat_mask)
                    for j in range(_NVEC):
                        acc = builder.load(accs[r][j])
                        builder.store(builder.call(fma, [splat, bvec[j], acc]), accs[r][j])
            adding = builder.icmp_unsigned("!=", accumulate, ir.Constant(accumulate.type, 0))
            for r in range(mr):
                crow = builder.gep(c_base, [builder.mul(ir.Constant(i64, r), ldc)])
                for j in range(_NVEC):
                    ptr = builder.bitcast(builder.gep(crow, [ir.Constant(i64, j * lanes)]),
                                          vty.as_pointer())  # fmt: skip
                    value = builder.load(accs[r][j])
                    old = builder.load(ptr, align=dtype.bitwidth // 8)
                    value = builder.select(adding, builder.fadd(old, value), value)
                    builder.store(value, ptr, align=dtype.bitwidth // 8)
            return context.get_dummy_value()

        return sig, codegen

    return microkernel


_mk1, _mk2, _mk3, _mk4, _mk5, _mk6 = (_make_microkernel(m) for m in range(1, MR + 1))


@kernel
def _row_block(a, a_off, a_rs, a_cs, bp, b_off, K, c, c_off, ldc, accumulate, rows):
    if rows == 6:
        _mk6(a, a_off, a_rs, a_cs, bp, b_off, K, c, c_off, ldc, accumulate)
    elif rows == 5:
        _mk5(a, a_off, a_rs, a_cs, bp, b_off, K, c, c_off, ldc, accumulate)
    elif rows == 4:
        _mk4(a, a_off, a_rs, a_cs, bp, b_off, K, c, c_off, ldc, accumulate)
    elif rows == 3:
        _mk3(a, a_off, a_rs, a_cs, bp, b_off, K, c, c_off, ldc, accumulate)
    elif rows == 2:
        _mk2(a, a_off, a_rs, a_cs, bp, b_off, K, c, c_off, ldc, accumulate)
    else:
        _mk1(a, a_off, a_rs, a_cs, bp, b_off, K, c, c_off, ldc, accumulate)


@inline_kernel  # in each time loop: no compiled level of its own
def packed_matmul(a, bp, c):
    """``c[:, :P*NR] = a @ B`` for every row of ``a`` (2-D, unit column stride).

    ``bp`` is ``B`` packed by :func:`packed_weights`; ``c`` (2-D, unit column stride) has at
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
            # any-layout views: the specialisation _panel compiles, not one per layout (#17)
            _row_block(a[:, :], r * lda, lda, 1, bp, p * K * NR, K, c[:, :], r * ldc + p * NR,
                       ldc, False, rows)  # fmt: skip
            r += rows


@kernel
def _pack_columns(b, out):
    """Pack ``b`` (K, N) into ``out`` (P, K, NR) column panels, zero-padded.

    Compiled for C-contiguous ``b`` and an any-layout ``out``: :func:`_matmul_rows` packs its
    blocks of ``B`` so, and :func:`packed_weights` calls that specialisation by signature.
    """
    K, N = b.shape
    P, _, NR = out.shape
    for p in range(P):
        for k in range(K):
            for j in range(NR):
                col = p * NR + j
                out[p, k, j] = b[k, col] if col < N else 0.0


#: The compiled packing :func:`packed_weights` calls, per dtype.
_pack_entries: dict = {}


def packed_weights(*blocks: np.ndarray) -> np.ndarray:
    """``[b_0; b_1; ...]`` (blocks (K_i, N) stacked along K) packed into (P, K, NR) panels.

    For the backends, which pack each layer's weights once per call: ``packed_weights(W_ih.T,
    W_hh.T)`` lets one GEMM per step give ``[x_t h] @ [W_ih W_hh]^T``. It runs the
    specialisation of :func:`_pack_columns` that :func:`_matmul_rows` compiles for its own
    blocks of ``B`` (C-contiguous ``b``, any-layout panels), called by signature, because a
    packing kernel of its own, compiled from Python, cost ~0.5 s of a cold first fit (#17).
    """
    dtype = blocks[0].dtype
    pack = _pack_entries.get(dtype)
    if pack is None:
        t = numba.from_dtype(dtype)
        pack = _pack_columns.compile((types.Array(t, 2, "C"), types.Array(t, 3, "A")))
        _pack_entries[dtype] = pack
    # One C-contiguous (K, N) copy of the stacked blocks: the compiled entry point reads its
    # arguments as the signature says, unchecked (np.concatenate alone keeps an F layout).
    if len(blocks) > 1:
        b = np.empty((sum(x.shape[0] for x in blocks), blocks[0].shape[1]), dtype=dtype)
        np.concatenate(blocks, axis=0, out=b)
    else:
        b = np.ascontiguousarray(blocks[0])
    K, N = b.shape
    NR = NR32 if dtype.itemsize == 4 else NR64
    out = np.empty(((N + NR - 1) // NR, K, NR), dtype=dtype)
    pack(b, out)
    return out


@inline_kernel  # one line, in every kernel that sizes a GEMM output
def padded_width(n, probe):
    """``n`` rounded up to whole panels for ``probe``'s dtype: columns ``C`` must have."""
    NR = NR32 if probe.itemsize == 4 else NR64
    return (n + NR - 1) // NR * NR


#: Default blocking of :func:`matmul_rows`, passed to the compiled GEMM as arguments
#: (:func:`_matmul_rows` ``kc``, ``mc``): a tuning run calls it with other values, no
#: recompilation. Rows of ``B`` packed at a time (one panel block fills ~32 KB, L1):
KC32 = 256
KC64 = 128
#: Rows of ``A`` per pass over a packed block (an MC x KC block of ``A`` stays in L2).
MC = 240
# MR and NR are not tunables: they are the micro-kernel's register block, built into it.


@inline_kernel
def default_kc(a):
    """:data:`KC32` or :data:`KC64`, for ``a``'s dtype."""
    return KC32 if a.itemsize == 4 else KC64


@inline_kernel
def matmul_rows(a, b, c, accumulate, r0, r1):
    """Rows ``r0..r1`` of ``c (+)= a @ b`` for any 2-D ``a`` (M, K) and ``b`` (K, N).

    ``a`` and ``b`` may be strided views (transposes included); ``c`` (M, N) needs unit
    column stride. ``B`` is packed ``KC`` rows at a time (GotoBLAS blocking); each element
    of ``c`` sums its ``K`` blocks in one fixed order, so any split of rows between calls
    or threads gives the same bits.

    The ``[:, :]`` views give ``a`` and ``c`` Numba's any-layout type, so one compiled GEMM
    (:func:`_matmul_rows`) serves every caller whatever layouts it passes for them
    (compiling it once per combination of layouts took ~3.5 s each, #17). ``b`` keeps its
    layout: packing a C-contiguous ``B`` typed as such vectorizes (every caller passes one).
    """
    _matmul_rows(a[:, :], b, c[:, :], accumulate, r0, r1, default_kc(a), MC)


@kernel
def _matmul_rows(a, b, c, accumulate, r0, r1, KC, MC):
    """:func:`matmul_rows` with the blocking as arguments: ``KC`` rows of ``B`` packed at a
    time, ``MC`` rows of ``A`` per pass. ``MC`` changes no result bit; ``KC`` sets how the
    ``K`` sum is split into blocks, so it does (each block is summed, then added)."""
    M, K = a.shape
    N = b.shape[1]
    NR = NR32 if a.itemsize == 4 else NR64
    P = (N + NR - 1) // NR
    a_rs = a.strides[0] // a.itemsize
    a_cs = a.strides[1] // a.itemsize
    # Sized for this K when it is under one block: a tiny model's whole step needs less
    # memory than a KC-row panel block (32-64 KB).
    bp = np.empty((P, min(KC, K), NR), dtype=a.dtype)
    # A transposed view whose k are 1 KB or more apart (dA^T of the LSTM and GRU from H = 64
    # up) is copied MC x KC at a time into MR-row micro-panels: read straight, a 256-k
    # micro-kernel call touches a new cache line (a page apart: a TLB miss) at every k
    # (docs/performance.rst, *Measured*; 2 KB apart, the digits/medium LSTM's dW: 50 -> 65
    # GFLOP/s packed). Closer k are cheaper to read in place than to copy.
    pack_a = a_cs * a.itemsize >= 1024
    ap = np.empty(((MC + MR - 1) // MR, KC, MR) if pack_a else (1, 1, MR), dtype=a.dtype)
    ap2 = ap.reshape((ap.shape[0] * ap.shape[1], MR))[:, :]  # typed as ``a``: one _panel
    edge = np.empty((MR, NR), dtype=a.dtype)[:, :]  # typed as ``c``: one _row_block
    if K == 0 and not accumulate:
        c[r0:r1] = 0.0
    for k0 in range(0, K, KC):
        kc = min(KC, K - k0)
        _pack_columns(b[k0 : k0 + kc], bp[:, :kc])  # b's own layout (see matmul_rows)
        adding = accumulate or k0 > 0
        for i0 in range(r0, r1, MC):
            i1 = min(i0 + MC, r1)
            if pack_a:
                # Whole micro-panels without a bound per element (a third less time than
                # one loop with min() for all); the last, partial one repeats its last row.
                full = (i1 - i0) // MR
                for q in range(full):
                    r = i0 + q * MR
                    for k in range(kc):
                        for m in range(MR):
                            ap[q, k, m] = a[r + m, k0 + k]
                if full * MR < i1 - i0:
                    for k in range(kc):
                        for m in range(MR):
                            r = min(i0 + full * MR + m, i1 - 1)  # past i1: any row, unused
                            ap[full, k, m] = a[r, k0 + k]
            for p in range(P):
                if pack_a:
                    _panel(ap2, 0, 1, MR, KC * MR, i0, i1, bp, p, kc, c, adding, N, edge)
                else:
                    _panel(a, i0 * a_rs + k0 * a_cs, a_rs, a_cs, MR * a_rs, i0, i1, bp, p, kc,
                           c, adding, N, edge)  # fmt: skip


@kernel
def _panel(a, a_off, a_rs, a_cs, block_step, i0, i1, bp, p, kc, c, adding, N, edge):
    """Rows ``i0..i1`` of ``c``'s panel ``p`` from one packed block of ``B``.

    ``a_off`` addresses row ``i0`` (at ``k0``); each MR-row block is ``block_step`` further.
    """
    _, KC, NR = bp.shape
    ldc = c.strides[0] // c.itemsize
    ncols = min(NR, N - p * NR)
    r = i0
    off = a_off
    while r < i1:
        rows = min(MR, i1 - r)
        if ncols == NR:
            _row_block(a, off, a_rs, a_cs, bp, p * KC * NR, kc, c, r * ldc + p * NR, ldc,
                       adding, rows)  # fmt: skip
        else:
            # The last, partial panel: a full block into scratch, then the columns that exist.
            _row_block(a, off, a_rs, a_cs, bp, p * KC * NR, kc, edge, 0, NR, False, rows)
            for i in range(rows):
                for j in range(ncols):
                    if adding:
                        c[r + i, p * NR + j] += edge[i, j]
                    else:
                        c[r + i, p * NR + j] = edge[i, j]
        r += rows
        off += block_step


@inline_kernel
def matmul(a, b, c, accumulate):
    """``c (+)= a @ b`` (see :func:`matmul_rows`), all rows in this thread."""
    _matmul_rows(a[:, :], b, c[:, :], accumulate, 0, a.shape[0], default_kc(a), MC)

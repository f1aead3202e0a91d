"""Building blocks shared by the CUDA kernels: tiled GEMM, fixed-order reductions, copies.

Every ``@cuda.jit`` kernel here is dtype-generic (compiled per dtype on first launch) and
reads its tunables (tile size, threads per block) from its launch configuration, never
from module globals. Scratch shared memory is *dynamic* (``cuda.shared.array(0, ...)``),
sized at launch, so the tile size is a run-time argument.

Determinism: no atomics anywhere. Each output element is summed by one thread in a fixed
order (GEMM), or by a fixed tree over a fixed thread assignment (column sums), so the same
inputs give bit-identical results on every run.

Scalar constants are written as ``float32``: in a float32 kernel they keep the arithmetic
in float32 (a bare ``0.5`` is float64 in Numba and would promote everything), and in a
float64 kernel they promote exactly (0, 0.5, 1 are exact in float32).
"""

from __future__ import annotations

import math

import numpy as np
from numba import config, cuda, float32

ZERO = float32(0.0)
HALF = float32(0.5)
ONE = float32(1.0)

#: Default tile edge of the GEMM kernel (a TILE x TILE thread block).
DEFAULT_TILE = 16
#: Default threads per block of the per-step and element-wise kernels.
DEFAULT_THREADS = 128


def _blocks(n, per_block):
    return max(1, (n + per_block - 1) // per_block)


# ----------------------------------------------------------------------------- device math
if config.ENABLE_CUDASIM:
    # The simulator runs kernels as Python: ``math.tanh`` returns a Python float, which
    # NumPy 2 treats as "weak" so ``float32(0.5) * tanh(...)`` would round a float64
    # kernel's value to float32. ``np.tanh`` keeps the argument's dtype, as compiled code does.
    @cuda.jit(device=True, inline=True)
    def d_tanh(x):
        return np.tanh(x)

else:

    @cuda.jit(device=True, inline=True)
    def d_tanh(x):
        return math.tanh(x)


@cuda.jit(device=True, inline=True)
def d_sigmoid(x):
    # Via tanh, as the CPU kernels: no overflow for any x.
    return HALF * d_tanh(HALF * x) + HALF


# ----------------------------------------------------------------------------- GEMM
@cuda.jit
def _gemm_kernel(a, b, c, trans_a, trans_b, accumulate, bias1, n_bias1, bias2, n_bias2):
    """``c = op(a) @ op(b) [+ c] [+ bias1[:n_bias1] + bias2[:n_bias2] per column]``.

    Square ``TILE x TILE`` blocks (``TILE = blockDim.x``) stage a tile of each operand in
    dynamic shared memory (``2 * TILE * TILE`` elements). Partial tiles are zero-padded.
    """
    ts = cuda.blockDim.x
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    sh = cuda.shared.array(0, dtype=c.dtype)
    off_b = ts * ts
    M, N = c.shape
    K = a.shape[0] if trans_a else a.shape[1]
    row = cuda.blockIdx.y * ts + ty
    col = cuda.blockIdx.x * ts + tx
    acc = ZERO
    for k0 in range(0, K, ts):
        ka = k0 + tx
        v = ZERO
        if row < M and ka < K:
            v = a[ka, row] if trans_a else a[row, ka]
        sh[ty * ts + tx] = v
        kb = k0 + ty
        v = ZERO
        if kb < K and col < N:
            v = b[col, kb] if trans_b else b[kb, col]
        sh[off_b + ty * ts + tx] = v
        cuda.syncthreads()
        for kk in range(ts):
            acc += sh[ty * ts + kk] * sh[off_b + kk * ts + tx]
        cuda.syncthreads()
    if row < M and col < N:
        if col < n_bias1:
            acc += bias1[col]
        if col < n_bias2:
            acc += bias2[col]
        if accumulate:
            acc += c[row, col]
        c[row, col] = acc


def gemm(
    a,
    b,
    c,
    trans_a=False,
    trans_b=False,
    accumulate=False,
    bias1=None,
    bias2=None,
    n_bias2=None,
    *,
    tile=DEFAULT_TILE,
):
    """Launch :func:`_gemm_kernel` on 2-D device arrays.

    Parameters
    ----------
    a, b : 2-D device arrays; ``op(a)`` is (M, K), ``op(b)`` is (K, N)
    c : (M, N) device array, written (or added to when ``accumulate``)
    bias1, bias2 : optional (N,) vectors added to every row (``bias2`` to its first
        ``n_bias2`` columns only: the GRU folds only part of ``b_hh`` into the projection)
    tile : int, tile edge (threads per block = tile**2)
    """
    M, N = c.shape
    if bias1 is None:
        bias1, n1 = c[0], 0
    else:
        n1 = N
    if bias2 is None:
        bias2, n2 = c[0], 0
    else:
        n2 = N if n_bias2 is None else n_bias2
    grid = (_blocks(N, tile), _blocks(M, tile))
    shared = 2 * tile * tile * c.dtype.itemsize
    _gemm_kernel[grid, (tile, tile), 0, shared](
        a, b, c, bool(trans_a), bool(trans_b), bool(accumulate), bias1, n1, bias2, n2
    )


# ----------------------------------------------------------------------------- reductions
@cuda.jit
def _column_sums_kernel(a, out):
    """``out[j] = sum_r a[r, j]``: one block per column, a fixed tree over its threads.

    ``blockDim.x`` must be a power of two. Thread ``i`` sums rows ``i, i + nt, ...`` in
    order, then the block halves pairwise: the same order on every run (no atomics).
    """
    j = cuda.blockIdx.x
    i = cuda.threadIdx.x
    nt = cuda.blockDim.x
    sh = cuda.shared.array(0, dtype=a.dtype)
    acc = ZERO
    for r in range(i, a.shape[0], nt):
        acc += a[r, j]
    sh[i] = acc
    cuda.syncthreads()
    s = nt // 2
    while s > 0:
        if i < s:
            sh[i] += sh[i + s]
        cuda.syncthreads()
        s //= 2
    if i == 0:
        out[j] = sh[0]


def column_sums(a2, out, *, threads=DEFAULT_THREADS):
    """Deterministic column sums of a 2-D device array (bias gradients)."""
    nt = 1
    while nt * 2 <= threads:
        nt *= 2
    _column_sums_kernel[a2.shape[1], nt, 0, nt * a2.dtype.itemsize](a2, out)


@cuda.jit
def _transpose_kernel(a, out):
    i, j = cuda.grid(2)
    if i < out.shape[0] and j < out.shape[1]:
        out[i, j] = a[j, i]


def transpose(a, *, threads=DEFAULT_THREADS):
    """A transposed contiguous copy of a 2-D device array (the forward's ``W_hh^T``)."""
    out = cuda.device_array((a.shape[1], a.shape[0]), dtype=a.dtype)
    t = max(1, int(math.sqrt(threads)))
    _transpose_kernel[(_blocks(out.shape[0], t), _blocks(out.shape[1], t)), (t, t)](a, out)
    return out


@cuda.jit
def _copy_kernel(src, dst):
    i = cuda.grid(1)
    if i < dst.shape[0]:
        dst[i] = src[i]


def copy(src, dst, *, threads=DEFAULT_THREADS):
    """``dst[...] = src`` for contiguous device arrays of the same size."""
    s = src.reshape(src.size)
    d = dst.reshape(dst.size)
    _copy_kernel[_blocks(d.shape[0], threads), threads](s, d)


@cuda.jit
def _fill_kernel(dst, value):
    i = cuda.grid(1)
    if i < dst.shape[0]:
        dst[i] = value


def zeros(shape, dtype, *, threads=DEFAULT_THREADS):
    """A zero-filled device array (``cuda.device_array`` leaves memory uninitialised)."""
    out = cuda.device_array(shape, dtype=dtype)
    flat = out.reshape(out.size)
    _fill_kernel[_blocks(flat.shape[0], threads), threads](flat, out.dtype.type(0))
    return out


# ----------------------------------------------------------------------------- layers
def input_projection(x, w_ih, b_ih, b_hh, n_bias2, gates, *, tile=DEFAULT_TILE):
    """``gates[t, b] = x[t, b] @ w_ih.T + b_ih + b_hh[:n_bias2]`` for all steps (one GEMM)."""
    T, B, I = x.shape
    gemm(
        x.reshape(T * B, I), w_ih, gates.reshape(T * B, gates.shape[2]),
        trans_b=True, bias1=b_ih, bias2=b_hh, n_bias2=n_bias2, tile=tile,
    )  # fmt: skip


def input_gradients(
    x, d_gates, w_ih, need_dx, dx, dw_ih, db, *, tile=DEFAULT_TILE, threads=DEFAULT_THREADS
):
    """After the backward loop: ``dW_ih = dA^T X``, ``db = sum dA``, ``dX = dA W_ih``."""
    T, B, I = x.shape
    a2 = d_gates.reshape(T * B, d_gates.shape[2])
    gemm(a2, x.reshape(T * B, I), dw_ih, trans_a=True, tile=tile)
    column_sums(a2, db, threads=threads)
    if need_dx:
        gemm(a2, w_ih, dx.reshape(T * B, I), tile=tile)


def recurrent_weight_gradient(h0, out, d_gates, dw_hh, *, tile=DEFAULT_TILE):
    """``dW_hh = dA[0]^T h0 + dA[1:]^T out[:-1]`` (two GEMMs, the second accumulating)."""
    T, B, GH = d_gates.shape
    H = out.shape[2]
    gemm(d_gates[0], h0, dw_hh, trans_a=True, tile=tile)
    if T > 1:
        gemm(
            d_gates[1:].reshape((T - 1) * B, GH), out[: T - 1].reshape((T - 1) * B, H),
            dw_hh, trans_a=True, accumulate=True, tile=tile,
        )  # fmt: skip


# ----------------------------------------------------------------------------- reversal
@cuda.jit
def _reverse_padded_kernel(x, lengths, out):
    i = cuda.grid(1)
    T, B, F = x.shape
    if i < T * B * F:
        k = i % F
        b = (i // F) % B
        t = i // (F * B)
        n = lengths[b]
        out[t, b, k] = x[n - 1 - t, b, k] if t < n else ZERO


def reverse_padded(x, lengths, out, *, threads=DEFAULT_THREADS):
    """Reverse each sequence's valid steps: ``out[t, b] = x[lengths[b]-1-t, b]``; padding -> 0."""
    T, B, F = x.shape
    _reverse_padded_kernel[_blocks(T * B * F, threads), threads](x, lengths, out)

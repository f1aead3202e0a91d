"""Elman RNN forward and BPTT on the GPU (same contract as :mod:`numrnn.kernels.cpu.rnn`).

Per step ONE fused kernel: a block per (hidden chunk, batch row) stages ``h_{t-1}[b]`` in
shared memory, each thread forms its unit's ``h_{t-1} W_hh^T`` entry and applies φ.
The input projection (before) and the weight gradients (after) are hoisted GEMMs.
"""

from __future__ import annotations

from numba import cuda

from numrnn.kernels.cuda.common import (
    DEFAULT_THREADS,
    DEFAULT_TILE,
    ONE,
    ZERO,
    _blocks,
    copy,
    d_tanh,
    input_gradients,
    input_projection,
    load_row,
    recurrent_weight_gradient,
    row_dot,
    transpose,
    zeros,
)


@cuda.jit
def _rnn_forward_step(t, w_hh_t, lengths, relu, h_in, h_out, out):
    """Step ``t``: ``out[t]`` holds the projection on entry and h_t on exit (0 on padding)."""
    b = cuda.blockIdx.y
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H = h_in.shape[1]
    sh = cuda.shared.array(0, dtype=out.dtype)
    load_row(sh, h_in[b], H)
    cuda.syncthreads()
    if j < H:
        if t < lengths[b]:
            a = out[t, b, j] + row_dot(sh, w_hh_t, H, j)
            if relu:
                v = a if a > ZERO else ZERO
            else:
                v = d_tanh(a)
            out[t, b, j] = v
            h_out[b, j] = v
        else:
            out[t, b, j] = ZERO
            h_out[b, j] = h_in[b, j]


@cuda.jit
def _rnn_backward_step(t, w_hh, lengths, relu, out, d_out, d_pre, dh):
    """Step ``t`` of BPTT (``t = -1`` only finishes ``dh`` = dL/dh0).

    ``dh[b]`` holds dL/dh_t flowing in from step t+1: ``d_pre[t+1] @ W_hh`` where step t+1
    is valid, else carried unchanged. Each thread owns ``dh[b, j]``, so no double buffer.
    """
    b = cuda.blockIdx.y
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    T = out.shape[0]
    H = dh.shape[1]
    sh = cuda.shared.array(0, dtype=d_pre.dtype)
    nxt = t + 1 < T and t + 1 < lengths[b]
    if nxt:
        load_row(sh, d_pre[t + 1, b], H)
    cuda.syncthreads()
    if j < H:
        s = dh[b, j]
        if nxt:
            s = row_dot(sh, w_hh, H, j)
        dh[b, j] = s
        if t >= 0:
            if t < lengths[b]:
                o = out[t, b, j]
                g = d_out[t, b, j] + s
                if relu:
                    d_pre[t, b, j] = g if o > ZERO else ZERO
                else:
                    d_pre[t, b, j] = g * (ONE - o * o)
            else:
                d_pre[t, b, j] = ZERO


def rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, relu, out, h_n, *,
                tile=DEFAULT_TILE, threads=DEFAULT_THREADS):
    """Run one RNN layer in one direction; device arrays, arguments as the CPU kernel.

    ``tile`` is the GEMM tile edge, ``threads`` the threads per block of the step kernel.
    """
    T, B, _ = x.shape
    H = h0.shape[1]
    input_projection(x, w_ih, b_ih, b_hh, H, out, tile=tile)
    w_t = transpose(w_hh, threads=threads)
    hs = [cuda.device_array((B, H), dtype=x.dtype) for _ in range(2)]
    copy(h0, hs[0], threads=threads)
    grid = (_blocks(H, threads), B)
    shared = H * x.dtype.itemsize
    for t in range(T):
        _rnn_forward_step[grid, threads, 0, shared](
            t, w_t, lengths, bool(relu), hs[t % 2], hs[(t + 1) % 2], out
        )
    copy(hs[T % 2], h_n, threads=threads)


def rnn_backward(x, w_ih, w_hh, h0, lengths, relu, out, d_out, dh_n,
                 need_dx, dx, dw_ih, dw_hh, db_ih, db_hh, dh0, *,
                 tile=DEFAULT_TILE, threads=DEFAULT_THREADS):  # fmt: skip
    """Exact BPTT through one RNN layer and direction (see :func:`rnn_forward`)."""
    T, B, _ = x.shape
    H = h0.shape[1]
    d_pre = zeros((T, B, H), x.dtype, threads=threads)
    dh = cuda.device_array((B, H), dtype=x.dtype)
    copy(dh_n, dh, threads=threads)
    grid = (_blocks(H, threads), B)
    shared = H * x.dtype.itemsize
    for t in range(T - 1, -2, -1):
        _rnn_backward_step[grid, threads, 0, shared](
            t, w_hh, lengths, bool(relu), out, d_out, d_pre, dh
        )
    copy(dh, dh0, threads=threads)
    input_gradients(x, d_pre, w_ih, need_dx, dx, dw_ih, db_ih, tile=tile, threads=threads)
    recurrent_weight_gradient(h0, out, d_pre, dw_hh, tile=tile)
    copy(db_ih, db_hh, threads=threads)

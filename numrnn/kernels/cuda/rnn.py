"""Elman RNN forward and BPTT on the GPU (same contract as :mod:`numrnn.kernels.cpu.rnn`).

Two ways through the time loop, same math and same stored activations:

- per step ONE fused kernel: a block of ``(tj, rows)`` threads covers ``tj`` hidden units of
  ``rows`` batch rows; it stages those rows' ``h_{t-1}`` and tiles of ``W_hh^T`` in shared
  memory (each tile reused by all the rows), forms ``h_{t-1} W_hh^T`` and applies φ;
- one persistent cooperative kernel for the whole loop: each block keeps its slice of
  ``W_hh`` resident in shared memory for all steps; steps are separated by
  ``cuda.cg.this_grid().sync()``.

The input projection (before) and the weight gradients (after) are hoisted GEMMs.
"""

from __future__ import annotations

from numba import cuda

from numrnn.kernels.cuda.common import (
    ONE,
    ZERO,
    d_tanh,
    load_slice,
    resident_dots,
    stage_own_rows,
    stage_rows,
    tiled_dots,
)


# ----------------------------------------------------------------------------- element math
@cuda.jit(device=True, inline=True)
def _fwd_elem(t, b, j, a_rec, relu, lengths, hs, pin, out):
    """h_t[b, j] from ``out[t]`` (the projection) and ``a_rec``; ``hs[1 - pin]`` receives it."""
    if t < lengths[b]:
        a = out[t, b, j] + a_rec
        if relu:
            v = a if a > ZERO else ZERO
        else:
            v = d_tanh(a)
        out[t, b, j] = v
        hs[1 - pin, b, j] = v
    else:
        out[t, b, j] = ZERO
        hs[1 - pin, b, j] = hs[pin, b, j]


@cuda.jit(device=True, inline=True)
def _bwd_elem(t, b, j, s_rec, relu, lengths, out, d_out, d_pre, dh):
    """dL/dh_t = ``s_rec`` (= d_pre[t+1] @ W_hh) if step t+1 is valid, else carried."""
    T = out.shape[0]
    s = dh[b, j]
    if t + 1 < T and t + 1 < lengths[b]:
        s = s_rec
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


# ----------------------------------------------------------------------------- per step
@cuda.jit
def _rnn_forward_step(t, w_hh_t, lengths, relu, hs, pin, out, kt):
    """Step ``t``: ``out[t]`` holds the projection on entry and h_t on exit (0 on padding).

    ``hs`` (2, B, H): h_{t-1} in ``hs[pin]``, h_t goes to ``hs[1 - pin]``.
    """
    B = out.shape[1]
    H = out.shape[2]
    tj = cuda.blockDim.x
    R = cuda.blockDim.y
    j0 = cuda.blockIdx.x * tj
    j = j0 + cuda.threadIdx.x
    b = cuda.blockIdx.y * R + cuda.threadIdx.y
    sh = cuda.shared.array(0, dtype=out.dtype)
    stage_rows(sh, 0, hs, pin, lengths, cuda.blockIdx.y * R, R, 1, H, False)
    a, _, _, _ = tiled_dots(sh, 0, H, w_hh_t, 0, H, 1, j0, tj, H, R * H, kt)
    if j < H and b < B:
        _fwd_elem(t, b, j, a, relu, lengths, hs, pin, out)


@cuda.jit
def _rnn_backward_step(t, w_hh, lengths, relu, out, d_out, d_pre, dh, kt):
    """Step ``t`` of BPTT (``t = -1`` only finishes ``dh`` = dL/dh0).

    ``dh[b]`` holds dL/dh_t flowing in from step t+1: ``d_pre[t+1] @ W_hh`` where step t+1
    is valid, else carried unchanged. Each thread owns ``dh[b, j]``, so no double buffer.
    """
    B = out.shape[1]
    H = out.shape[2]
    tj = cuda.blockDim.x
    R = cuda.blockDim.y
    j0 = cuda.blockIdx.x * tj
    j = j0 + cuda.threadIdx.x
    b = cuda.blockIdx.y * R + cuda.threadIdx.y
    sh = cuda.shared.array(0, dtype=out.dtype)
    stage_rows(sh, 0, d_pre, t + 1, lengths, cuda.blockIdx.y * R, R, 1, H, True)
    s, _, _, _ = tiled_dots(sh, 0, H, w_hh, 0, H, 1, j0, tj, H, R * H, kt)
    if j < H and b < B:
        _bwd_elem(t, b, j, s, relu, lengths, out, d_out, d_pre, dh)


# ----------------------------------------------------------------------------- persistent
@cuda.jit
def _rnn_forward_persistent(w_hh_t, lengths, relu, hs, out, hc, rpp):
    """All steps in one cooperative launch; block (x, y) owns units ``[x*hc, x*hc + hc)`` of
    rows ``y, y + gridDim.y, ...`` (``rpp`` staged at a time) and keeps that slice of
    ``W_hh^T`` in shared memory. h_T ends in ``hs[T % 2]``.
    """
    T, B, H = out.shape
    c0 = cuda.blockIdx.x * hc
    gy = cuda.gridDim.y
    mine = (B - cuda.blockIdx.y + gy - 1) // gy
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    grid = cuda.cg.this_grid()
    sh = cuda.shared.array(0, dtype=out.dtype)
    load_slice(sh, w_hh_t, H, 0, H, 1, c0, hc, H)
    xoff = H * hc
    cuda.syncthreads()
    for t in range(T):
        pin = t % 2
        for m0 in range(0, mine, rpp):
            n = min(rpp, mine - m0)
            stage_own_rows(sh, xoff, hs, pin, lengths, m0, n, H, False)
            cuda.syncthreads()
            for e in range(tid, n * hc, nt):
                r = e // hc
                c = e - r * hc
                j = c0 + c
                if j < H:
                    b = cuda.blockIdx.y + (m0 + r) * gy
                    a, _, _, _ = resident_dots(sh, xoff + r * H, H, 0, 1, 0, 1, c, hc)
                    _fwd_elem(t, b, j, a, relu, lengths, hs, pin, out)
            cuda.syncthreads()
        grid.sync()


@cuda.jit
def _rnn_backward_persistent(w_hh, lengths, relu, out, d_out, d_pre, dh, hc, rpp):
    """All BPTT steps (T-1 down to -1) in one cooperative launch (see the forward)."""
    T, B, H = out.shape
    c0 = cuda.blockIdx.x * hc
    gy = cuda.gridDim.y
    mine = (B - cuda.blockIdx.y + gy - 1) // gy
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    grid = cuda.cg.this_grid()
    sh = cuda.shared.array(0, dtype=out.dtype)
    load_slice(sh, w_hh, H, 0, H, 1, c0, hc, H)
    xoff = H * hc
    cuda.syncthreads()
    for t in range(T - 1, -2, -1):
        for m0 in range(0, mine, rpp):
            n = min(rpp, mine - m0)
            stage_own_rows(sh, xoff, d_pre, t + 1, lengths, m0, n, H, True)
            cuda.syncthreads()
            for e in range(tid, n * hc, nt):
                r = e // hc
                c = e - r * hc
                j = c0 + c
                if j < H:
                    b = cuda.blockIdx.y + (m0 + r) * gy
                    s, _, _, _ = resident_dots(sh, xoff + r * H, H, 0, 1, 0, 1, c, hc)
                    _bwd_elem(t, b, j, s, relu, lengths, out, d_out, d_pre, dh)
            cuda.syncthreads()
        grid.sync()

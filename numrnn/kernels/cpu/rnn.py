"""Elman RNN forward and BPTT: ``h_t = φ(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``."""

from __future__ import annotations

import numpy as np

from numrnn._jit import kernel
from numrnn.kernels.cpu.activations import ONE, tanh
from numrnn.kernels.cpu.common import unsigned as _u
from numrnn.kernels.cpu.gemm import packed_matmul, padded_width


@kernel
def rnn_forward_rows(x, w_packed, bias, h0, lengths, relu, out, h_n, b0, b1):
    """Run one RNN layer in one direction over all steps, for batch rows ``b0..b1``.

    ``w_packed`` is ``[W_ih W_hh]^T`` packed by
    :func:`~numrnn.kernels.cpu.gemm.packed_weights`; ``bias`` is ``b_ih + b_hh``. ``relu``
    selects φ = relu, else tanh. ``out`` (T, B, H) gets h_t (0 on padding); it is all BPTT
    needs. ``h_n`` gets the final state.
    """
    T = x.shape[0]
    I = x.shape[2]
    H = h0.shape[1]
    n = b1 - b0
    xh = np.empty((n, I + H), dtype=x.dtype)
    for i in range(n):
        for j in range(H):
            xh[i, _u(I + j)] = h0[b0 + i, j]
    hproj = np.empty((n, padded_width(H, x)), dtype=x.dtype)
    for t in range(T):
        for i in range(n):
            for k in range(I):
                xh[i, k] = x[t, b0 + i, k]
        packed_matmul(xh, w_packed, hproj)
        # Arrays indexed, not sliced: a slice per row costs reference counting.
        for i in range(n):
            b = b0 + i
            if t < lengths[b]:
                if relu:
                    for j in range(H):
                        a = hproj[i, j] + bias[j]
                        out[t, b, j] = a if a > 0.0 else 0.0
                else:
                    for j in range(H):
                        out[t, b, j] = tanh(hproj[i, j] + bias[j])
                for j in range(H):
                    xh[i, _u(I + j)] = out[t, b, j]
            else:
                for j in range(H):
                    out[t, b, j] = 0.0
    for i in range(n):
        for j in range(H):
            h_n[b0 + i, j] = xh[i, _u(I + j)]


@kernel
def rnn_backward_rows(w_hh_packed, lengths, relu, out, d_pre, dh_n, dh0, b0, b1):
    """Exact BPTT through one RNN layer and direction, for batch rows ``b0..b1``.

    ``w_hh_packed`` is ``W_hh`` packed by :func:`~numrnn.kernels.cpu.gemm.packed_weights`.
    ``d_pre`` (T, B, H) holds the loss gradient w.r.t. ``out`` on entry and is overwritten
    with the pre-activation gradients (0 on padding), so the caller can hand over the
    ``d_out`` buffer itself when nothing else needs it. Writes the ``dh0`` rows.
    """
    T = out.shape[0]
    H = out.shape[2]
    n = b1 - b0
    dh = np.empty((n, H), dtype=out.dtype)
    for i in range(n):
        for j in range(H):
            dh[i, j] = dh_n[b0 + i, j]
    dh_rec = np.empty((n, padded_width(H, out)), dtype=out.dtype)
    for t in range(T - 1, -1, -1):
        # Indexed, not sliced: three views per row cost more than a small row's math.
        for i in range(n):
            b = b0 + i
            if t < lengths[b]:
                if relu:
                    for j in range(H):
                        d = d_pre[t, b, j] + dh[i, j]
                        d_pre[t, b, j] = d if out[t, b, j] > 0.0 else 0.0
                else:
                    for j in range(H):
                        o = out[t, b, j]
                        d_pre[t, b, j] = (d_pre[t, b, j] + dh[i, j]) * (ONE - o * o)
            else:
                for j in range(H):
                    d_pre[t, b, j] = 0.0
        packed_matmul(d_pre[t, b0:b1], w_hh_packed, dh_rec)
        for i in range(n):
            # Padded steps pass the state gradient through unchanged.
            if t < lengths[b0 + i]:
                for j in range(H):
                    dh[i, j] = dh_rec[i, j]
    for i in range(n):
        for j in range(H):
            dh0[b0 + i, j] = dh[i, j]

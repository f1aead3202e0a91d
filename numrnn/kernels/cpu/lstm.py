"""LSTM forward and BPTT (gate order i, f, g, o; optional peepholes, Gers & Schmidhuber).

``a = x W_ih^T + b_ih + h W_hh^T + b_hh``;
``i = σ(a_i + w_ci c_prev)``, ``f = σ(a_f + w_cf c_prev)``, ``g = tanh(a_g)``,
``c = f c_prev + i g``, ``o = σ(a_o + w_co c)``, ``h = o tanh(c)``.
Without peepholes ``w_peep`` is zero, which is the same mathematics at a few FMAs' cost.
"""

from __future__ import annotations

import numpy as np

from numrnn._jit import kernel
from numrnn.kernels.cpu.activations import sigmoid, tanh
from numrnn.kernels.cpu.common import (
    input_weight_gradient_rows,
    recurrent_weight_gradient_rows,
)
from numrnn.kernels.cpu.gemm import packed_matmul, padded_width


@kernel
def _forward_row(hproj, i, bias, gates, t, b, c, xh, I, out, cells, w_peep):
    """The gate math of batch row ``b`` (row ``i`` of this call's workspace) at step ``t``.

    Short loops over few arrays each: one fused loop over a dozen arrays defeats LLVM's
    runtime alias checks and runs scalar (6x slower, measured). Arrays are indexed, not
    sliced: a slice per row costs reference counting, ~40 ns a row (28% of the small
    LSTM's forward, measured). ``hproj[i]`` holds ``[x_t h_{t-1}] @ [W_ih W_hh]^T``
    (clobbered); the new h goes to ``xh[i, I:]`` and ``out``, c to ``c[i]`` and ``cells``.
    """
    H = c.shape[1]
    for k in range(4 * H):
        hproj[i, k] += bias[k]
    for j in range(H):
        hproj[i, j] += w_peep[0, j] * c[i, j]
    for j in range(H):
        hproj[i, H + j] += w_peep[1, j] * c[i, j]
    for k in range(2 * H):
        gates[t, b, k] = sigmoid(hproj[i, k])
    for j in range(H):
        gates[t, b, 2 * H + j] = tanh(hproj[i, 2 * H + j])
    for j in range(H):
        c[i, j] = gates[t, b, H + j] * c[i, j] + gates[t, b, j] * gates[t, b, 2 * H + j]
    for j in range(H):
        gates[t, b, 3 * H + j] = sigmoid(hproj[i, 3 * H + j] + w_peep[2, j] * c[i, j])
    for j in range(H):
        xh[i, I + j] = gates[t, b, 3 * H + j] * tanh(c[i, j])
    for j in range(H):
        out[t, b, j] = xh[i, I + j]
    for j in range(H):
        cells[t, b, j] = c[i, j]


@kernel
def lstm_forward_rows(x, w_packed, bias, w_peep, h0, c0, lengths, out, cells, gates, h_n, c_n,
                      b0, b1):  # fmt: skip
    """Run one LSTM layer in one direction over all steps, for batch rows ``b0..b1``.

    Parameters
    ----------
    x : (T, B, I) input
    w_packed : ``[W_ih W_hh]^T`` packed by :func:`~numrnn.kernels.cpu.gemm.packed_stacked`;
        each step is one GEMM ``[x_t h_{t-1}] @ [W_ih W_hh]^T`` (no separate projection)
    bias : (4H,) ``b_ih + b_hh``
    w_peep : (3, H) peephole weights (w_ci, w_cf, w_co); zeros for a plain LSTM
    h0, c0 : (B, H) initial state; lengths : (B,) int64 valid steps per sequence
    out : (T, B, H) written with h_t (0 on padding)
    cells : (T, B, H) written with c_t (carried on padding), kept for BPTT
    gates : (T, B, 4H) written with the activated gates i, f, g, o, kept for BPTT
    h_n, c_n : (B, H) written with the state after each sequence's last valid step
    b0, b1 : the batch rows this call runs
    """
    T = x.shape[0]
    I = x.shape[2]
    H = h0.shape[1]
    n = b1 - b0
    xh = np.empty((n, I + H), dtype=x.dtype)
    for i in range(n):
        for j in range(H):
            xh[i, I + j] = h0[b0 + i, j]
    c = c0[b0:b1].copy()
    hproj = np.empty((n, padded_width(4 * H, x)), dtype=x.dtype)
    for t in range(T):
        for i in range(n):
            for k in range(I):
                xh[i, k] = x[t, b0 + i, k]
        packed_matmul(xh, w_packed, hproj)
        for i in range(n):
            b = b0 + i
            if t < lengths[b]:
                _forward_row(hproj, i, bias, gates, t, b, c, xh, I, out, cells, w_peep)
            else:
                for j in range(H):
                    out[t, b, j] = 0.0
                    cells[t, b, j] = c[i, j]
    for i in range(n):
        for j in range(H):
            h_n[b0 + i, j] = xh[i, I + j]
            c_n[b0 + i, j] = c[i, j]


@kernel
def _backward_row(g, ct, cp, dob, dhb, dcb, wci, wcf, wco):
    """One (t, b) row of the gate derivatives, in place (short loops, see ``_forward_row``).

    On entry ``g`` holds the activated gates, ``dhb``/``dcb`` the gradient w.r.t. h_t/c_t
    from step t+1. On exit ``g`` holds the pre-activation gradients, ``dcb`` the gradient
    w.r.t. c_{t-1}; ``dhb`` is clobbered (the caller overwrites it with dA W_hh).
    """
    H = ct.shape[0]
    for j in range(H):
        dhb[j] += dob[j]
    for j in range(H):
        tc = tanh(ct[j])
        o = g[3 * H + j]
        dao = dhb[j] * tc * o * (1.0 - o)
        dcb[j] += dhb[j] * o * (1.0 - tc * tc) + dao * wco[j]
        g[3 * H + j] = dao
    for j in range(H):
        i = g[j]
        f = g[H + j]
        gg = g[2 * H + j]
        dct = dcb[j]
        g[j] = dct * gg * i * (1.0 - i)
        g[H + j] = dct * cp[j] * f * (1.0 - f)
        g[2 * H + j] = dct * i * (1.0 - gg * gg)
        dcb[j] = dct * f
    for j in range(H):
        dcb[j] += g[j] * wci[j] + g[H + j] * wcf[j]


@kernel
def lstm_backward_rows(w_hh_packed, w_peep, c0, lengths, cells, gates, d_out, dh_n, dc_n,
                       dh0, dc0, b0, b1):  # fmt: skip
    """Exact BPTT through one LSTM layer and direction, for batch rows ``b0..b1``.

    Reads the forward's ``cells`` and ``gates``; ``gates`` is overwritten with the
    pre-activation gradients (what :func:`lstm_weight_gradient_rows` then reduces). ``d_out``
    (T, B, H) is the loss gradient w.r.t. the outputs (or (1, B, H) of zeros standing for a
    zero gradient at every step: no (T, B, H) array of zeros), ``dh_n``/``dc_n`` w.r.t. the
    final state; ``dh0``/``dc0`` get the gradient w.r.t. the initial state. ``w_hh_packed``
    is ``W_hh`` (4H, H) packed by :func:`~numrnn.kernels.cpu.gemm.packed`.
    """
    T = gates.shape[0]
    H = c0.shape[1]
    ts = 1 if d_out.shape[0] == T else 0  # 0: read step 0 of a (1, B, H) zero d_out
    dh = dh_n[b0:b1].copy()
    dc = dc_n[b0:b1].copy()
    dh_rec = np.empty((b1 - b0, padded_width(H, c0)), dtype=c0.dtype)
    for t in range(T - 1, -1, -1):
        for i in range(b1 - b0):
            b = b0 + i
            if t < lengths[b]:
                cprev = cells[t - 1, b] if t > 0 else c0[b]
                _backward_row(gates[t, b], cells[t, b], cprev, d_out[t * ts, b], dh[i], dc[i],
                              w_peep[0], w_peep[1], w_peep[2])  # fmt: skip
            else:
                gates[t, b, :] = 0.0
        packed_matmul(gates[t, b0:b1], w_hh_packed, dh_rec)
        for i in range(b1 - b0):
            # Padded steps pass the state gradient through unchanged.
            if t < lengths[b0 + i]:
                dh[i] = dh_rec[i, :H]
    dh0[b0:b1] = dh
    dc0[b0:b1] = dc


@kernel
def peephole_gradients(c0, cells, d_gates, dw_peep):
    """``dw_ci = sum dA_i c_{t-1}``, ``dw_cf = sum dA_f c_{t-1}``, ``dw_co = sum dA_o c_t``.

    Padded steps have zero gate gradients, so they add nothing.
    """
    T, B, H = cells.shape
    dw_peep[:] = 0.0
    for t in range(T - 1, -1, -1):
        for b in range(B):
            cp = cells[t - 1, b] if t > 0 else c0[b]
            ct = cells[t, b]
            g = d_gates[t, b]
            for j in range(H):
                dw_peep[0, j] += g[j] * cp[j]
                dw_peep[1, j] += g[H + j] * cp[j]
            for j in range(H):
                dw_peep[2, j] += g[3 * H + j] * ct[j]


@kernel
def lstm_weight_gradient_rows(x, h0, out, gates, dw_ih, dw_hh, db_ih, db_hh, g0, g1):
    """Gate rows ``g0..g1`` of the hoisted gradients: ``dW_ih``, ``dW_hh``, the biases.

    ``gates`` holds the pre-activation gradients left by :func:`lstm_backward_rows`.
    """
    input_weight_gradient_rows(x, gates, dw_ih, db_ih, g0, g1)
    recurrent_weight_gradient_rows(h0, out, gates, dw_hh, g0, g1)
    db_hh[g0:g1] = db_ih[g0:g1]

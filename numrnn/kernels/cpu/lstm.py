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
    input_gradients,
    input_projection,
    recurrent_weight_gradient,
)


@kernel
def _forward_row(g, hp, cb, hb, ob, wci, wcf, wco):
    """One (t, b) row of the gate math, in place.

    Written as short loops over at most four arrays each: one fused loop over a dozen
    arrays defeats LLVM's runtime alias checks and runs scalar (6x slower, measured).
    ``g`` holds the input projection on entry and the activated gates on exit; ``hp`` the
    recurrent projection (clobbered); ``cb``/``hb`` the state, updated; ``ob`` gets h.
    """
    H = cb.shape[0]
    for k in range(4 * H):
        hp[k] += g[k]
    for j in range(H):
        hp[j] += wci[j] * cb[j]
    for j in range(H):
        hp[H + j] += wcf[j] * cb[j]
    for k in range(2 * H):
        g[k] = sigmoid(hp[k])
    for j in range(H):
        g[2 * H + j] = tanh(hp[2 * H + j])
    for j in range(H):
        cb[j] = g[H + j] * cb[j] + g[j] * g[2 * H + j]
    for j in range(H):
        g[3 * H + j] = sigmoid(hp[3 * H + j] + wco[j] * cb[j])
    for j in range(H):
        hb[j] = g[3 * H + j] * tanh(cb[j])
    for j in range(H):
        ob[j] = hb[j]


@kernel
def lstm_forward(x, w_ih, w_hh, b_ih, b_hh, w_peep, h0, c0, lengths, out, cells, gates, h_n, c_n):
    """Run one LSTM layer in one direction over all steps.

    Parameters
    ----------
    x : (T, B, I) input; w_ih : (4H, I); w_hh : (4H, H); b_ih, b_hh : (4H,)
    w_peep : (3, H) peephole weights (w_ci, w_cf, w_co); zeros for a plain LSTM
    h0, c0 : (B, H) initial state; lengths : (B,) int64 valid steps per sequence
    out : (T, B, H) written with h_t (0 on padding)
    cells : (T, B, H) written with c_t (carried on padding), kept for BPTT
    gates : (T, B, 4H) written with the activated gates i, f, g, o, kept for BPTT
    h_n, c_n : (B, H) written with the state after each sequence's last valid step
    """
    T, B, _ = x.shape
    H = h0.shape[1]
    input_projection(x, w_ih, b_ih + b_hh, gates)
    h = h0.copy()
    c = c0.copy()
    hproj = np.empty((B, 4 * H), dtype=x.dtype)
    for t in range(T):
        np.dot(h, w_hh.T, hproj)
        for b in range(B):
            if t < lengths[b]:
                _forward_row(gates[t, b], hproj[b], c[b], h[b], out[t, b],
                             w_peep[0], w_peep[1], w_peep[2])  # fmt: skip
            else:
                out[t, b, :] = 0.0
            cells[t, b] = c[b]
    h_n[:] = h
    c_n[:] = c


@kernel
def _backward_row(g, ct, cp, dob, dhb, dcb, wci, wcf, wco, dwci, dwcf, dwco):
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
    for j in range(H):
        dwci[j] += g[j] * cp[j]
        dwcf[j] += g[H + j] * cp[j]
    for j in range(H):
        dwco[j] += g[3 * H + j] * ct[j]


@kernel
def lstm_backward(
    x, w_ih, w_hh, w_peep, h0, c0, lengths, out, cells, gates, d_out, dh_n, dc_n,
    need_dx, dx, dw_ih, dw_hh, db_ih, db_hh, dw_peep, dh0, dc0,
):  # fmt: skip
    """Exact BPTT through one LSTM layer and direction.

    Reads the forward's ``out``, ``cells``, ``gates`` (``gates`` is overwritten with the
    pre-activation gradients). ``d_out`` (T, B, H) is the loss gradient w.r.t. ``out``,
    ``dh_n``/``dc_n`` w.r.t. the final state. Writes the parameter gradients, ``dx`` (when
    ``need_dx``) and the gradient w.r.t. the initial state ``dh0``/``dc0``.
    """
    T, B, _ = x.shape
    H = h0.shape[1]
    dh = dh_n.copy()
    dc = dc_n.copy()
    dh_rec = np.empty((B, H), dtype=x.dtype)
    dw_peep[:] = 0.0
    for t in range(T - 1, -1, -1):
        for b in range(B):
            if t < lengths[b]:
                cprev = cells[t - 1, b] if t > 0 else c0[b]
                _backward_row(gates[t, b], cells[t, b], cprev, d_out[t, b], dh[b], dc[b],
                              w_peep[0], w_peep[1], w_peep[2],
                              dw_peep[0], dw_peep[1], dw_peep[2])  # fmt: skip
            else:
                gates[t, b, :] = 0.0
        np.dot(gates[t], w_hh, dh_rec)
        for b in range(B):
            # Padded steps pass the state gradient through unchanged.
            if t < lengths[b]:
                dh[b] = dh_rec[b]
    dh0[:] = dh
    dc0[:] = dc
    input_gradients(x, gates, w_ih, need_dx, dx, dw_ih, db_ih)
    recurrent_weight_gradient(h0, out, gates, dw_hh)
    db_hh[:] = db_ih

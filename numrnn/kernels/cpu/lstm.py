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
    wci = w_peep[0]
    wcf = w_peep[1]
    wco = w_peep[2]
    for t in range(T):
        np.dot(h, w_hh.T, hproj)
        for b in range(B):
            g = gates[t, b]
            hb = h[b]
            cb = c[b]
            ob = out[t, b]
            if t < lengths[b]:
                hp = hproj[b]
                for j in range(H):
                    cp = cb[j]
                    i = sigmoid(g[j] + hp[j] + wci[j] * cp)
                    f = sigmoid(g[H + j] + hp[H + j] + wcf[j] * cp)
                    gg = tanh(g[2 * H + j] + hp[2 * H + j])
                    cn = f * cp + i * gg
                    o = sigmoid(g[3 * H + j] + hp[3 * H + j] + wco[j] * cn)
                    hn = o * tanh(cn)
                    g[j] = i
                    g[H + j] = f
                    g[2 * H + j] = gg
                    g[3 * H + j] = o
                    cb[j] = cn
                    hb[j] = hn
                    ob[j] = hn
            else:
                ob[:] = 0.0
            cells[t, b] = cb
    h_n[:] = h
    c_n[:] = c


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
    wci = w_peep[0]
    wcf = w_peep[1]
    wco = w_peep[2]
    dw_peep[:] = 0.0
    dwci = dw_peep[0]
    dwcf = dw_peep[1]
    dwco = dw_peep[2]
    for t in range(T - 1, -1, -1):
        for b in range(B):
            g = gates[t, b]
            if t < lengths[b]:
                dhb = dh[b]
                dcb = dc[b]
                dob = d_out[t, b]
                ct = cells[t, b]
                cprev = cells[t - 1, b] if t > 0 else c0[b]
                for j in range(H):
                    i = g[j]
                    f = g[H + j]
                    gg = g[2 * H + j]
                    o = g[3 * H + j]
                    cn = ct[j]
                    cp = cprev[j]
                    tc = tanh(cn)
                    dht = dob[j] + dhb[j]
                    dao = dht * tc * o * (1.0 - o)
                    dct = dcb[j] + dht * o * (1.0 - tc * tc) + dao * wco[j]
                    dai = dct * gg * i * (1.0 - i)
                    daf = dct * cp * f * (1.0 - f)
                    dag = dct * i * (1.0 - gg * gg)
                    dcb[j] = dct * f + dai * wci[j] + daf * wcf[j]
                    dwci[j] += dai * cp
                    dwcf[j] += daf * cp
                    dwco[j] += dao * cn
                    g[j] = dai
                    g[H + j] = daf
                    g[2 * H + j] = dag
                    g[3 * H + j] = dao
            else:
                g[:] = 0.0
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

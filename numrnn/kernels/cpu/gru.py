"""GRU forward and BPTT, gate order r, z, n, both variants.

``reset_after=True`` (PyTorch/cuDNN): ``n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn))``.
``reset_after=False`` (Cho et al.): ``n = tanh(x W_in^T + b_in + (r h) W_hn^T + b_hn)``.
Both: ``h' = (1 - z) n + z h``.

``aux`` (T, B, H) keeps what BPTT needs beyond the gates: ``h W_hn^T + b_hn`` (reset after)
or ``r h`` (reset before).
"""

from __future__ import annotations

import numpy as np

from numrnn._jit import kernel
from numrnn.kernels.cpu.activations import sigmoid, tanh
from numrnn.kernels.cpu.common import (
    column_sums,
    input_gradients,
    input_projection,
    recurrent_weight_gradient,
)


@kernel
def _forward_row_reset_after(g, hp, b_hn, ab, hb, ob):
    """One (t, b) row, reset after; short loops over few arrays so each vectorizes.

    ``g`` holds the input projection (r, z biases folded in) on entry, the activated
    r, z, n on exit; ``ab`` gets ``h W_hn^T + b_hn``; ``hb`` is updated; ``ob`` gets h.
    """
    H = hb.shape[0]
    for k in range(2 * H):
        g[k] = sigmoid(g[k] + hp[k])
    for j in range(H):
        ab[j] = hp[2 * H + j] + b_hn[j]
    for j in range(H):
        g[2 * H + j] = tanh(g[2 * H + j] + g[j] * ab[j])
    for j in range(H):
        n = g[2 * H + j]
        hb[j] = n + g[H + j] * (hb[j] - n)
    for j in range(H):
        ob[j] = hb[j]


@kernel
def _backward_row_reset_after(g, dr, ab, hprev, dob, dhb):
    """One (t, b) row of the reset-after derivatives.

    On exit ``g`` holds the input-side gradients (dr, dz, dn), ``dr`` the recurrent-side
    ones (dr, dz, dn*r), ``dhb`` the direct part ``dh_t * z`` of the gradient w.r.t. h_{t-1}.
    """
    H = dhb.shape[0]
    for j in range(H):
        dhb[j] += dob[j]
    for j in range(H):
        z = g[H + j]
        n = g[2 * H + j]
        dr[H + j] = dhb[j] * (hprev[j] - n) * z * (1.0 - z)
        dr[2 * H + j] = dhb[j] * (1.0 - z) * (1.0 - n * n)
    for j in range(H):
        r = g[j]
        dr[j] = dr[2 * H + j] * ab[j] * r * (1.0 - r)
    for j in range(H):
        dhb[j] *= g[H + j]
    for j in range(H):
        g[2 * H + j] = dr[2 * H + j]
        dr[2 * H + j] *= g[j]
    for k in range(2 * H):
        g[k] = dr[k]


@kernel
def gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reset_after, out, gates, aux, h_n):
    """Run one GRU layer in one direction over all steps.

    ``gates`` (T, B, 3H) is written with the activated r, z, n and ``aux`` as above;
    ``out`` (T, B, H) with h_t (0 on padding); ``h_n`` with the final state.
    """
    T, B, _ = x.shape
    H = h0.shape[1]
    bias = b_ih.copy()
    if reset_after:
        bias[: 2 * H] += b_hh[: 2 * H]
    else:
        bias += b_hh
    input_projection(x, w_ih, bias, gates)
    h = h0.copy()
    if reset_after:
        b_hn = b_hh[2 * H :]
        hproj = np.empty((B, 3 * H), dtype=x.dtype)
        for t in range(T):
            np.dot(h, w_hh.T, hproj)
            for b in range(B):
                if t < lengths[b]:
                    _forward_row_reset_after(
                        gates[t, b], hproj[b], b_hn, aux[t, b], h[b], out[t, b]
                    )
                else:
                    out[t, b, :] = 0.0
    else:
        w_rz = w_hh[: 2 * H]
        w_n = w_hh[2 * H :]
        hrz = np.empty((B, 2 * H), dtype=x.dtype)
        rh = np.zeros((B, H), dtype=x.dtype)
        hn = np.empty((B, H), dtype=x.dtype)
        for t in range(T):
            np.dot(h, w_rz.T, hrz)
            for b in range(B):
                if t < lengths[b]:
                    g = gates[t, b]
                    hp = hrz[b]
                    hb = h[b]
                    rb = rh[b]
                    for j in range(H):
                        r = sigmoid(g[j] + hp[j])
                        g[j] = r
                        g[H + j] = sigmoid(g[H + j] + hp[H + j])
                        rb[j] = r * hb[j]
            np.dot(rh, w_n.T, hn)
            for b in range(B):
                ob = out[t, b]
                ab = aux[t, b]
                if t < lengths[b]:
                    g = gates[t, b]
                    hb = h[b]
                    rb = rh[b]
                    hnb = hn[b]
                    for j in range(H):
                        z = g[H + j]
                        n = tanh(g[2 * H + j] + hnb[j])
                        v = (1.0 - z) * n + z * hb[j]
                        g[2 * H + j] = n
                        ab[j] = rb[j]
                        hb[j] = v
                        ob[j] = v
                else:
                    ob[:] = 0.0
                    ab[:] = 0.0
    h_n[:] = h


@kernel
def gru_backward(
    x, w_ih, w_hh, h0, lengths, reset_after, out, gates, aux, d_out, dh_n,
    need_dx, dx, dw_ih, dw_hh, db_ih, db_hh, dh0,
):  # fmt: skip
    """Exact BPTT through one GRU layer and direction (see :func:`gru_forward`).

    ``gates`` is overwritten with the pre-activation gradients on the input side.
    """
    T, B, _ = x.shape
    H = h0.shape[1]
    dh = dh_n.copy()
    if reset_after:
        # The recurrent side differs from the input side in the n block (times r).
        d_rec = np.empty((T, B, 3 * H), dtype=x.dtype)
        dh_rec = np.empty((B, H), dtype=x.dtype)
        for t in range(T - 1, -1, -1):
            for b in range(B):
                if t < lengths[b]:
                    hprev = out[t - 1, b] if t > 0 else h0[b]
                    _backward_row_reset_after(
                        gates[t, b], d_rec[t, b], aux[t, b], hprev, d_out[t, b], dh[b]
                    )
                else:
                    gates[t, b, :] = 0.0
                    d_rec[t, b, :] = 0.0
            np.dot(d_rec[t], w_hh, dh_rec)
            for b in range(B):
                if t < lengths[b]:
                    dh[b] += dh_rec[b]
        input_gradients(x, gates, w_ih, need_dx, dx, dw_ih, db_ih)
        recurrent_weight_gradient(h0, out, d_rec, dw_hh)
        column_sums(d_rec, db_hh)
    else:
        w_rz = w_hh[: 2 * H]
        w_n = w_hh[2 * H :]
        d_n = np.zeros((T, B, H), dtype=x.dtype)
        d_rh = np.empty((B, H), dtype=x.dtype)
        d_rz = np.empty((B, 2 * H), dtype=x.dtype)
        dh_rec = np.empty((B, H), dtype=x.dtype)
        for t in range(T - 1, -1, -1):
            for b in range(B):
                g = gates[t, b]
                if t < lengths[b]:
                    hprev = out[t - 1, b] if t > 0 else h0[b]
                    dob = d_out[t, b]
                    dhb = dh[b]
                    dnb = d_n[t, b]
                    for j in range(H):
                        z = g[H + j]
                        n = g[2 * H + j]
                        dht = dob[j] + dhb[j]
                        dan = dht * (1.0 - z) * (1.0 - n * n)
                        g[H + j] = dht * (hprev[j] - n) * z * (1.0 - z)
                        g[2 * H + j] = dan
                        dnb[j] = dan
                        dhb[j] = dht * z
            np.dot(d_n[t], w_n, d_rh)
            for b in range(B):
                g = gates[t, b]
                drz = d_rz[b]
                if t < lengths[b]:
                    hprev = out[t - 1, b] if t > 0 else h0[b]
                    dhb = dh[b]
                    drh = d_rh[b]
                    for j in range(H):
                        r = g[j]
                        dar = drh[j] * hprev[j] * r * (1.0 - r)
                        g[j] = dar
                        dhb[j] += drh[j] * r
                        drz[j] = dar
                        drz[H + j] = g[H + j]
                else:
                    g[:] = 0.0
                    drz[:] = 0.0
            np.dot(d_rz, w_rz, dh_rec)
            for b in range(B):
                if t < lengths[b]:
                    dh[b] += dh_rec[b]
        input_gradients(x, gates, w_ih, need_dx, dx, dw_ih, db_ih)
        # r and z blocks see h_{t-1}; the n block sees r*h (kept in aux).
        recurrent_weight_gradient(h0, out, gates, dw_hh)
        tmp = np.empty((H, H), dtype=x.dtype)
        np.dot(d_n.reshape((T * B, H)).T, aux.reshape((T * B, H)), tmp)
        dw_hh[2 * H :] = tmp
        db_hh[:] = db_ih
    dh0[:] = dh

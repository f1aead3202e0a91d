"""GRU forward and BPTT, gate order r, z, n, both variants.

``reset_after=True`` (PyTorch/cuDNN): ``n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn))``.
``reset_after=False`` (Cho et al.): ``n = tanh(x W_in^T + b_in + (r h) W_hn^T + b_hn)``.
Both: ``h' = (1 - z) n + z h``.

``aux`` (T, B, H) keeps what BPTT needs beyond the gates: ``h W_hn^T + b_hn`` (reset after)
or ``r h`` (reset before).
"""

from __future__ import annotations

import numpy as np

from numrnn._jit import inline_kernel, kernel
from numrnn.kernels.cpu.activations import ONE, sigmoid, tanh
from numrnn.kernels.cpu.common import (
    input_weight_gradient_rows,
    recurrent_weight_gradient_rows,
)
from numrnn.kernels.cpu.common import unsigned as _u
from numrnn.kernels.cpu.gemm import matmul, packed_matmul, packed_weights, padded_width


@inline_kernel  # one call site: no compiled level of its own
def _forward_row_reset_after(gates, t, b, hproj, i, b_hn, aux, h, out):
    """Batch row ``b`` (workspace row ``i``) at step ``t``, reset after.

    Short loops over few arrays so each vectorizes; arrays indexed, not sliced (a slice
    per row costs reference counting). ``gates[t, b]`` holds the input projection (r, z
    biases folded in) on entry, the activated r, z, n on exit; ``aux[t, b]`` gets
    ``h W_hn^T + b_hn``; ``h[i]`` is updated; ``out[t, b]`` gets h.
    """
    H = h.shape[1]
    for k in range(2 * H):
        gates[t, b, k] = sigmoid(gates[t, b, k] + hproj[i, k])
    for j in range(H):
        aux[t, b, j] = hproj[i, _u(2 * H + j)] + b_hn[j]
    for j in range(H):
        gates[t, b, _u(2 * H + j)] = tanh(
            gates[t, b, _u(2 * H + j)] + gates[t, b, j] * aux[t, b, j]
        )
    for j in range(H):
        n = gates[t, b, _u(2 * H + j)]
        h[i, j] = n + gates[t, b, _u(H + j)] * (h[i, j] - n)
    for j in range(H):
        out[t, b, j] = h[i, j]


@inline_kernel  # one call site: no compiled level of its own
def _backward_row_reset_after(g, ab, hprev, dob, dhb):
    """One (t, b) row of the reset-after derivatives, in place.

    On entry ``g`` holds the activated r, z, n and ``ab`` ``h W_hn^T + b_hn``. On exit ``g``
    holds the recurrent-side pre-activation gradients (dr, dz, dn*r) and ``ab`` dn, the n
    block of the input side (whose r and z blocks are the recurrent side's); ``dhb`` holds
    the direct part ``dh_t * z`` of the gradient w.r.t. h_{t-1}. So BPTT needs no gradient
    buffer beyond the forward's ``gates`` and ``aux``.
    """
    H = dhb.shape[0]
    for j in range(H):
        dhb[j] += dob[j]
    for j in range(H):
        z = g[_u(H + j)]
        n = g[_u(2 * H + j)]
        g[_u(H + j)] = dhb[j] * (hprev[j] - n) * z * (ONE - z)
        g[_u(2 * H + j)] = dhb[j] * (ONE - z) * (ONE - n * n)
        dhb[j] *= z
    for j in range(H):
        r = g[j]
        dn = g[_u(2 * H + j)]
        g[j] = dn * ab[j] * r * (ONE - r)
        ab[j] = dn
        g[_u(2 * H + j)] = dn * r


def gru_input_bias(b_ih, b_hh, reset_after):
    """The bias folded into the input projection: ``b_ih`` plus the recurrent biases that
    add outside the reset (r and z reset after; all of them reset before). NumPy, called
    from Python: one addition, no kernel of its own to compile (#17)."""
    n = b_ih.shape[0] // 3 * (2 if reset_after else 3)
    bias = b_ih.copy()
    bias[:n] += b_hh[:n]
    return bias


def gru_packed_weights(w_hh, transpose, reset_after):
    """The packed recurrent matrices: ``(W_hh, W_hh)`` reset after, ``(W_rz, W_n)`` before.

    ``transpose`` packs ``W^T`` (the forward's ``h @ W^T``), else ``W`` (BPTT's ``dA @ W``).
    Called from Python (no kernel of its own to compile: :func:`packed_weights`).
    """
    H = w_hh.shape[1]
    if reset_after:
        w = packed_weights(w_hh.T) if transpose else packed_weights(w_hh)
        return w, w
    if transpose:
        return packed_weights(w_hh[: 2 * H].T), packed_weights(w_hh[2 * H :].T)
    return packed_weights(w_hh[: 2 * H]), packed_weights(w_hh[2 * H :])


@kernel
def gru_forward_rows(gates, w_a, w_b, b_hh, h0, lengths, reset_after, out, aux, h_n, b0, b1):
    """Run one GRU layer in one direction over all steps, for batch rows ``b0..b1``.

    ``gates`` (T, B, 3H) holds the input projection (bias :func:`gru_input_bias`) on entry
    and the activated r, z, n on exit; ``aux`` gets what BPTT needs beyond them (module
    docstring); ``out`` (T, B, H) h_t (0 on padding); ``h_n`` the final state. ``w_a``,
    ``w_b`` come from :func:`gru_packed_weights` (``transpose=True``).
    """
    T = gates.shape[0]
    H = h0.shape[1]
    n = b1 - b0
    h = h0[b0:b1].copy()
    if reset_after:
        b_hn = b_hh[2 * H :]
        hproj = np.empty((n, padded_width(3 * H, h0)), dtype=h0.dtype)
        for t in range(T):
            packed_matmul(h, w_a, hproj)
            for i in range(n):
                b = b0 + i
                if t < lengths[b]:
                    _forward_row_reset_after(gates, t, b, hproj, i, b_hn, aux, h, out)
                else:
                    for j in range(H):
                        out[t, b, j] = 0.0
    else:
        hrz = np.empty((n, padded_width(2 * H, h0)), dtype=h0.dtype)
        rh = np.empty((n, H), dtype=h0.dtype)
        for i in range(n):  # zeroed by hand: np.zeros compiles its own overload
            for j in range(H):
                rh[i, j] = 0.0
        hn = np.empty((n, padded_width(H, h0)), dtype=h0.dtype)
        for t in range(T):
            packed_matmul(h, w_a, hrz)
            for i in range(n):
                if t < lengths[b0 + i]:
                    g = gates[t, b0 + i]
                    hp = hrz[i]
                    hb = h[i]
                    rb = rh[i]
                    for j in range(H):
                        r = sigmoid(g[j] + hp[j])
                        g[j] = r
                        g[_u(H + j)] = sigmoid(g[_u(H + j)] + hp[_u(H + j)])
                        rb[j] = r * hb[j]
            packed_matmul(rh, w_b, hn)
            for i in range(n):
                b = b0 + i
                ob = out[t, b]
                ab = aux[t, b]
                if t < lengths[b]:
                    g = gates[t, b]
                    hb = h[i]
                    rb = rh[i]
                    hnb = hn[i]
                    for j in range(H):
                        z = g[_u(H + j)]
                        nn = tanh(g[_u(2 * H + j)] + hnb[j])
                        v = (ONE - z) * nn + z * hb[j]
                        g[_u(2 * H + j)] = nn
                        ab[j] = rb[j]
                        hb[j] = v
                        ob[j] = v
                else:
                    ob[:] = 0.0
                    ab[:] = 0.0
    for i in range(n):  # loops: a slice copy compiles Numba's shape-error path
        for j in range(H):
            h_n[b0 + i, j] = h[i, j]


@kernel
def gru_backward_rows(
    w_a, w_b, h0, lengths, reset_after, out, gates, aux, d_out, dh_n, d_rec, dh0, b0, b1
):  # fmt: skip
    """Exact BPTT through one GRU layer and direction, for batch rows ``b0..b1``.

    ``w_a``, ``w_b`` come from :func:`gru_packed_weights` (``transpose=False``). Reset
    after, in place: ``gates`` gets the recurrent-side pre-activation gradients (dr, dz,
    dn*r) and ``aux`` the input side's n block dn (``d_rec`` is unused); reset before,
    ``gates`` gets the input side and ``d_rec`` (T, B, H), zero-initialised, the recurrent
    side's n block. ``d_out`` is (T, B, H), or (1, B, H) of zeros standing for a zero
    gradient at every step (no (T, B, H) array of zeros).
    """
    T = out.shape[0]
    H = h0.shape[1]
    n = b1 - b0
    ts = 1 if d_out.shape[0] == T else 0  # 0: read step 0 of a (1, B, H) zero d_out
    dh = dh_n[b0:b1].copy()
    dh_rec = np.empty((n, padded_width(H, h0)), dtype=h0.dtype)
    if reset_after:
        for t in range(T - 1, -1, -1):
            for i in range(n):
                b = b0 + i
                if t < lengths[b]:
                    hprev = out[t - 1, b] if t > 0 else h0[b]
                    _backward_row_reset_after(
                        gates[t, b], aux[t, b], hprev, d_out[t * ts, b], dh[i]
                    )
                else:
                    gates[t, b, :] = 0.0
                    aux[t, b, :] = 0.0
            packed_matmul(gates[t, b0:b1], w_a, dh_rec)
            for i in range(n):
                if t < lengths[b0 + i]:
                    for j in range(H):
                        dh[i, j] += dh_rec[i, j]
    else:
        d_rh = np.empty((n, padded_width(H, h0)), dtype=h0.dtype)
        d_rz = np.empty((n, 2 * H), dtype=h0.dtype)
        for t in range(T - 1, -1, -1):
            for i in range(n):
                b = b0 + i
                g = gates[t, b]
                if t < lengths[b]:
                    hprev = out[t - 1, b] if t > 0 else h0[b]
                    dob = d_out[t * ts, b]
                    dhb = dh[i]
                    dnb = d_rec[t, b]
                    for j in range(H):
                        z = g[_u(H + j)]
                        nn = g[_u(2 * H + j)]
                        dht = dob[j] + dhb[j]
                        dan = dht * (ONE - z) * (ONE - nn * nn)
                        g[_u(H + j)] = dht * (hprev[j] - nn) * z * (ONE - z)
                        g[_u(2 * H + j)] = dan
                        dnb[j] = dan
                        dhb[j] = dht * z
            packed_matmul(d_rec[t, b0:b1], w_b, d_rh)
            for i in range(n):
                b = b0 + i
                g = gates[t, b]
                drz = d_rz[i]
                if t < lengths[b]:
                    hprev = out[t - 1, b] if t > 0 else h0[b]
                    dhb = dh[i]
                    drh = d_rh[i]
                    for j in range(H):
                        r = g[j]
                        dar = drh[j] * hprev[j] * r * (ONE - r)
                        g[j] = dar
                        dhb[j] += drh[j] * r
                        drz[j] = dar
                        drz[_u(H + j)] = g[_u(H + j)]
                else:
                    g[:] = 0.0
                    drz[:] = 0.0
            packed_matmul(d_rz, w_a, dh_rec)
            for i in range(n):
                if t < lengths[b0 + i]:
                    for j in range(H):
                        dh[i, j] += dh_rec[i, j]
    for i in range(n):  # loops: a slice copy compiles Numba's shape-error path
        for j in range(H):
            dh0[b0 + i, j] = dh[i, j]


@kernel
def gru_weight_gradient_rows(
    x, h0, reset_after, out, gates, aux, d_rec, dw_ih, dw_hh, db_ih, db_hh, g0, g1
):  # fmt: skip
    """Gate rows ``g0..g1`` of the hoisted gradients ``dW_ih``, ``dW_hh`` and the biases.

    Reads what :func:`gru_backward_rows` left. Reset after, ``gates`` holds the recurrent
    side: the recurrent gradients are taken from it first, then its n columns (within
    ``g0..g1``) get the input side's dn from ``aux``, and the input gradients follow; on
    return ``gates`` holds the input side for :func:`input_gradient_rows`. Reset before,
    ``gates`` holds the input side and ``d_rec`` the recurrent n block.
    """
    T, B, _ = x.shape
    H = h0.shape[1]
    # Each helper is called at one place for both variants: an inlined helper is typed and
    # lowered once per call site (#17: the GRU's weight gradients were its largest compile).
    # The recurrent side first: reset after, it reads gates before their n block changes.
    # r and z rows (all rows, reset after) see h_{t-1}; reset before, the n rows see r*h.
    r1 = g1 if reset_after else min(g1, 2 * H)
    if g0 < r1:
        recurrent_weight_gradient_rows(h0, out, gates, dw_hh, g0, r1)
    if reset_after:
        db_hh[g0:g1] = 0
        for t in range(T):
            for b in range(B):
                for j in range(g0, g1):
                    db_hh[j] += gates[t, b, j]
        if g1 > 2 * H:  # the input side: dn replaces dn*r in the n block
            n0 = max(g0, 2 * H)
            for t in range(T):
                for b in range(B):
                    g = gates[t, b]
                    ab = aux[t, b]
                    for j in range(n0, g1):
                        g[j] = ab[j - 2 * H]
    elif g1 > 2 * H:
        n0 = max(g0, 2 * H) - 2 * H
        n1 = g1 - 2 * H
        d_n = d_rec.reshape((T * B, H))
        matmul(d_n[:, n0:n1].T, aux.reshape((T * B, H)), dw_hh[2 * H + n0 : 2 * H + n1],
               False)  # fmt: skip
    input_weight_gradient_rows(x, gates, dw_ih, db_ih, g0, g1)
    if not reset_after:
        for j in range(g0, g1):  # a loop: a slice copy compiles Numba's shape-error path
            db_hh[j] = db_ih[j]


def gru_recurrent_gradient_buffer(out, reset_after):
    """``d_rec`` for :func:`gru_backward_rows`: zeros (T, B, H) reset before; reset after,
    which works in place, an empty placeholder. NumPy, called from Python."""
    T, B, H = out.shape
    if reset_after:
        return np.empty((0, B, 3 * H), dtype=out.dtype)
    return np.zeros((T, B, H), dtype=out.dtype)

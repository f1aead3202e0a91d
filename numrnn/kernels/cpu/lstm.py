"""LSTM forward and BPTT (gate order i, f, g, o; optional peepholes, Gers & Schmidhuber).

``a = x W_ih^T + b_ih + h W_hh^T + b_hh``;
``i = σ(a_i + w_ci c_prev)``, ``f = σ(a_f + w_cf c_prev)``, ``g = tanh(a_g)``,
``c = f c_prev + i g``, ``o = σ(a_o + w_co c)``, ``h = o tanh(c)``.
Without peepholes ``w_peep`` is zero, the same mathematics: the forward sees an all-zero
``w_peep`` and computes the four gates in one pass without the peephole terms; the
backward keeps them (a few FMAs).
"""

from __future__ import annotations

import numpy as np

from numrnn._jit import kernel
from numrnn.kernels.cpu.activations import ONE, sigmoid, tanh
from numrnn.kernels.cpu.common import unsigned as _u
from numrnn.kernels.cpu.gemm import packed_matmul, padded_width


@kernel
def lstm_forward_rows(x, w_packed, bias, w_peep, h0, c0, lengths, out, cells, gates, h_n, c_n,
                      b0, b1):  # fmt: skip
    """Run one LSTM layer in one direction over all steps, for batch rows ``b0..b1``.

    Parameters
    ----------
    x : (T, B, I) input
    w_packed : ``[W_ih W_hh]^T`` packed by :func:`~numrnn.kernels.cpu.gemm.packed_weights`;
        each step is one GEMM ``[x_t h_{t-1}] @ [W_ih W_hh]^T`` (no separate projection)
    bias : (4H,) ``b_ih + b_hh``
    w_peep : (3, H) peephole weights (w_ci, w_cf, w_co); zeros for a plain LSTM
    h0, c0 : (B, H) initial state; lengths : (B,) int64 valid steps per sequence
    out : (T, B, H) written with h_t (0 on padding)
    cells : (T, B, H) written with c_t (carried on padding), kept for BPTT; or (1, B, H),
        overwritten at every step, for inference
    gates : (T, B, 4H) written with the activated gates i, f, g, o, kept for BPTT; or
        (1, B, 4H) for inference: a step's gates stay in cache instead of streaming
        T*B*4H numbers to memory
    h_n, c_n : (B, H) written with the state after each sequence's last valid step
    b0, b1 : the batch rows this call runs

    Notes
    -----
    The gate math runs as one short loop nest per operation over all of this call's rows,
    each nest touching few arrays: a single fused loop over a dozen arrays defeats LLVM's
    runtime alias checks and runs scalar, and a per-row helper (or a view per row) costs a
    fixed overhead a row, more than the row's arithmetic at small H (docs/performance.rst, *Measured*).
    Padded steps keep the state, write no gates (the backward zeroes them) and output 0.
    """
    T = x.shape[0]
    I = x.shape[2]
    H = h0.shape[1]
    n = b1 - b0
    xh = np.empty((n, I + H), dtype=x.dtype)  # [x_t h_{t-1}] of each row
    c = np.empty((n, H), dtype=x.dtype)
    for i in range(n):
        for j in range(H):
            xh[i, _u(I + j)] = h0[b0 + i, j]
            c[i, j] = c0[b0 + i, j]
    a = np.empty((n, padded_width(4 * H, x)), dtype=x.dtype)  # pre-activations (clobbered)
    keep = gates.shape[0] == T
    plain = True  # no peepholes: w_peep is all zeros
    for g in range(3):
        for j in range(H):
            if w_peep[g, j] != 0.0:
                plain = False
    # σ for i, f, o; tanh for g (filled by hand: np.full compiles its own overload)
    scale = np.empty(4 * H, dtype=x.dtype)
    shift = np.empty(4 * H, dtype=x.dtype)
    for k in range(4 * H):
        scale[k] = 0.5
        shift[k] = 0.5
    for j in range(H):
        scale[2 * H + j] = 1.0
        shift[2 * H + j] = 0.0
    for t in range(T):
        ts = t if keep else 0
        for i in range(n):
            for k in range(I):
                xh[i, k] = x[t, b0 + i, k]
        packed_matmul(xh, w_packed, a)
        if plain:
            # No peepholes: all four gates in one pass over 4H, σ(x) = ½ tanh(½x) + ½ and
            # tanh(x) = 1 tanh(1 x) + 0 (the same operations as sigmoid()/tanh()).
            for i in range(n):
                b = b0 + i
                if t < lengths[b]:
                    for k in range(4 * H):
                        gates[ts, b, k] = scale[k] * tanh(scale[k] * (a[i, k] + bias[k])) + shift[k]
        else:
            for i in range(n):
                if t < lengths[b0 + i]:
                    for k in range(4 * H):
                        a[i, k] += bias[k]
                    for j in range(H):
                        a[i, j] += w_peep[0, j] * c[i, j]
                        a[i, _u(H + j)] += w_peep[1, j] * c[i, j]
            for i in range(n):
                b = b0 + i
                if t < lengths[b]:
                    for k in range(2 * H):
                        gates[ts, b, k] = sigmoid(a[i, k])
                    for j in range(H):
                        gates[ts, b, _u(2 * H + j)] = tanh(a[i, _u(2 * H + j)])
        for i in range(n):
            b = b0 + i
            if t < lengths[b]:
                for j in range(H):
                    c[i, j] = (
                        gates[ts, b, _u(H + j)] * c[i, j]
                        + gates[ts, b, j] * gates[ts, b, _u(2 * H + j)]
                    )
        if not plain:  # the output gate's peephole reads the new c_t
            for i in range(n):
                b = b0 + i
                if t < lengths[b]:
                    for j in range(H):
                        gates[ts, b, _u(3 * H + j)] = sigmoid(
                            a[i, _u(3 * H + j)] + w_peep[2, j] * c[i, j]
                        )
        for i in range(n):
            b = b0 + i
            if t < lengths[b]:
                for j in range(H):
                    xh[i, _u(I + j)] = gates[ts, b, _u(3 * H + j)] * tanh(c[i, j])
                for j in range(H):
                    out[t, b, j] = xh[i, _u(I + j)]
            else:
                for j in range(H):
                    out[t, b, j] = 0.0
            for j in range(H):
                cells[ts, b, j] = c[i, j]
    for i in range(n):
        for j in range(H):
            h_n[b0 + i, j] = xh[i, _u(I + j)]
            c_n[b0 + i, j] = c[i, j]


@kernel
def _input_forget_cell(gates, dc, c_prev, lengths, t, b0, n):
    """Gradients of the i, f, g pre-activations at step ``t``; ``dc`` on to c_{t-1}.

    ``c_prev`` (B, H) is c_{t-1} of every row: ``cells[t-1]``, or ``c0`` at ``t = 0``.
    """
    H = dc.shape[1]
    for i in range(n):
        b = b0 + i
        if t < lengths[b]:
            for j in range(H):
                ig = gates[t, b, j]
                f = gates[t, b, _u(H + j)]
                gg = gates[t, b, _u(2 * H + j)]
                dct = dc[i, j]
                gates[t, b, j] = dct * gg * ig * (ONE - ig)
                gates[t, b, _u(H + j)] = dct * c_prev[b, j] * f * (ONE - f)
                gates[t, b, _u(2 * H + j)] = dct * ig * (ONE - gg * gg)
                dc[i, j] = dct * f


@kernel
def lstm_backward_rows(w_hh_packed, w_peep, c0, lengths, cells, gates, d_out, dh_n, dc_n,
                       dh0, dc0, b0, b1):  # fmt: skip
    """Exact BPTT through one LSTM layer and direction, for batch rows ``b0..b1``.

    Reads the forward's ``cells`` and ``gates``; ``gates`` is overwritten with the
    pre-activation gradients (what :func:`lstm_weight_gradient_rows` then reduces). ``d_out``
    (T, B, H) is the loss gradient w.r.t. the outputs (or (1, B, H) of zeros standing for a
    zero gradient at every step: no (T, B, H) array of zeros), ``dh_n``/``dc_n`` w.r.t. the
    final state; ``dh0``/``dc0`` get the gradient w.r.t. the initial state. ``w_hh_packed``
    is ``W_hh`` (4H, H) packed by :func:`~numrnn.kernels.cpu.gemm.packed_weights`. Loop nests over
    all rows per operation, as in :func:`lstm_forward_rows`; padded steps get zero gate
    gradients and pass the state gradients through unchanged.
    """
    T = gates.shape[0]
    H = c0.shape[1]
    n = b1 - b0
    ts = 1 if d_out.shape[0] == T else 0  # 0: read step 0 of a (1, B, H) zero d_out
    dh = np.empty((n, H), dtype=c0.dtype)  # gradient w.r.t. h_t, then dA W_hh
    dc = np.empty((n, H), dtype=c0.dtype)  # gradient w.r.t. c_t, then c_{t-1}
    for i in range(n):
        for j in range(H):
            dh[i, j] = dh_n[b0 + i, j]
            dc[i, j] = dc_n[b0 + i, j]
    dh_rec = np.empty((n, padded_width(H, c0)), dtype=c0.dtype)
    for t in range(T - 1, -1, -1):
        for i in range(n):
            b = b0 + i
            if t < lengths[b]:
                for j in range(H):
                    dh[i, j] += d_out[t * ts, b, j]
                for j in range(H):
                    tc = tanh(cells[t, b, j])
                    o = gates[t, b, _u(3 * H + j)]
                    dao = dh[i, j] * tc * o * (ONE - o)
                    dc[i, j] += dh[i, j] * o * (ONE - tc * tc) + dao * w_peep[2, j]
                    gates[t, b, _u(3 * H + j)] = dao
            else:
                for k in range(4 * H):
                    gates[t, b, k] = 0.0
        if t > 0:
            _input_forget_cell(gates, dc, cells[t - 1], lengths, t, b0, n)
        else:
            _input_forget_cell(gates, dc, c0, lengths, t, b0, n)
        for i in range(n):
            b = b0 + i
            if t < lengths[b]:
                for j in range(H):
                    dc[i, j] += (
                        gates[t, b, j] * w_peep[0, j] + gates[t, b, _u(H + j)] * w_peep[1, j]
                    )
        packed_matmul(gates[t, b0:b1], w_hh_packed, dh_rec)
        for i in range(n):
            if t < lengths[b0 + i]:
                for j in range(H):
                    dh[i, j] = dh_rec[i, j]
    for i in range(n):
        for j in range(H):
            dh0[b0 + i, j] = dh[i, j]
            dc0[b0 + i, j] = dc[i, j]


@kernel
def peephole_gradients(c0, cells, d_gates, dw_peep):
    """``dw_ci = sum dA_i c_{t-1}``, ``dw_cf = sum dA_f c_{t-1}``, ``dw_co = sum dA_o c_t``.

    Padded steps have zero gate gradients, so they add nothing. Indexed, not sliced (three
    views per (t, b) row cost more than its FMAs).
    """
    T, B, H = cells.shape
    dw_peep[:] = 0.0
    for t in range(T - 1, -1, -1):
        for b in range(B):
            if t > 0:
                for j in range(H):
                    dw_peep[0, j] += d_gates[t, b, j] * cells[t - 1, b, j]
                    dw_peep[1, j] += d_gates[t, b, _u(H + j)] * cells[t - 1, b, j]
            else:
                for j in range(H):
                    dw_peep[0, j] += d_gates[t, b, j] * c0[b, j]
                    dw_peep[1, j] += d_gates[t, b, _u(H + j)] * c0[b, j]
            for j in range(H):
                dw_peep[2, j] += d_gates[t, b, _u(3 * H + j)] * cells[t, b, j]

"""LSTM forward and BPTT on the GPU (same contract as :mod:`numrnn.kernels.cpu.lstm`).

The element math of one hidden unit (its four gate entries, then the cell update), and its
kernels in the two time loops of :mod:`numrnn.kernels.cuda.time_loop` (same math, same
stored activations): per step ONE fused kernel, or one persistent cooperative kernel for
all steps. Peephole weight gradients are reduced after the loop, one thread per unit in
fixed order.
"""

from __future__ import annotations

from numba import cuda

from numrnn.kernels.cuda.common import ONE, ZERO, d_sigmoid, d_tanh
from numrnn.kernels.cuda.time_loop import (
    DOUBLE_BUFFER,
    NEXT,
    Phase,
    incoming_grad,
    per_step,
    persistent,
)


# ----------------------------------------------------------------------------- element math
@cuda.jit(device=True, inline=True)
def _fwd_elem(t, b, j, acc, lengths, state):
    """Cell update of unit j, row b at step t; ``gates[t]`` holds the projection on entry."""
    w_peep, hs, c, out, cells, gates = state
    ai, af, ag, ao = acc
    H = c.shape[1]
    pin = t % 2
    if t < lengths[b]:
        cp = c[b, j]
        i = d_sigmoid(gates[t, b, j] + ai + w_peep[0, j] * cp)
        f = d_sigmoid(gates[t, b, H + j] + af + w_peep[1, j] * cp)
        g = d_tanh(gates[t, b, 2 * H + j] + ag)
        cn = f * cp + i * g
        o = d_sigmoid(gates[t, b, 3 * H + j] + ao + w_peep[2, j] * cn)
        hn = o * d_tanh(cn)
        gates[t, b, j] = i
        gates[t, b, H + j] = f
        gates[t, b, 2 * H + j] = g
        gates[t, b, 3 * H + j] = o
        c[b, j] = cn
        hs[1 - pin, b, j] = hn
        out[t, b, j] = hn
    else:
        out[t, b, j] = ZERO
        hs[1 - pin, b, j] = hs[pin, b, j]
    cells[t, b, j] = c[b, j]


@cuda.jit(device=True, inline=True)
def _bwd_elem(t, b, j, acc, lengths, state):
    """dL/dh_t = ``acc[0]`` (= dA[t+1] @ W_hh) if step t+1 is valid, else carried."""
    w_peep, c0, cells, gates, d_out, dh, dc = state
    H = dh.shape[1]
    s = incoming_grad(t, b, j, gates.shape[0], lengths, dh, acc[0])
    if t >= 0:
        if t < lengths[b]:
            i = gates[t, b, j]
            f = gates[t, b, H + j]
            g = gates[t, b, 2 * H + j]
            o = gates[t, b, 3 * H + j]
            cn = cells[t, b, j]
            cp = cells[t - 1, b, j] if t > 0 else c0[b, j]
            tc = d_tanh(cn)
            dht = d_out[t, b, j] + s
            dao = dht * tc * o * (ONE - o)
            dct = dc[b, j] + dht * o * (ONE - tc * tc) + dao * w_peep[2, j]
            dai = dct * g * i * (ONE - i)
            daf = dct * cp * f * (ONE - f)
            dag = dct * i * (ONE - g * g)
            dc[b, j] = dct * f + dai * w_peep[0, j] + daf * w_peep[1, j]
            gates[t, b, j] = dai
            gates[t, b, H + j] = daf
            gates[t, b, 2 * H + j] = dag
            gates[t, b, 3 * H + j] = dao
        else:
            gates[t, b, j] = ZERO
            gates[t, b, H + j] = ZERO
            gates[t, b, 2 * H + j] = ZERO
            gates[t, b, 3 * H + j] = ZERO


# state (w_peep, hs, c, out, cells, gates): stage h_{t-1};
# state (w_peep, c0, cells, gates, d_out, dh, dc): stage dA[t+1] (held in gates)
FORWARD = Phase(_fwd_elem, source=1, step=DOUBLE_BUFFER, rows=1, nq=4)
BACKWARD = Phase(_bwd_elem, source=3, step=NEXT, rows=4)
_forward_step = per_step(FORWARD)
_backward_step = per_step(BACKWARD)
_forward_all = persistent(4, FORWARD)
_backward_all = persistent(4, BACKWARD)


# ----------------------------------------------------------------------------- kernels
@cuda.jit
def _lstm_forward_step(t, w_hh_t, w_peep, lengths, hs, c, out, cells, gates, kt):
    """Step ``t``; ``hs`` (2, B, H): h_{t-1} in ``hs[t % 2]``, h_t to the other half."""
    _forward_step(t, w_hh_t, out.shape, lengths, kt, (w_peep, hs, c, out, cells, gates))


@cuda.jit
def _lstm_backward_step(t, w_hh, w_peep, lengths, c0, cells, gates, d_out, dh, dc, kt):
    """Step ``t`` of BPTT (``t = -1`` only finishes ``dh`` = dL/dh0).

    ``dh[b, j]`` is dL/dh_t: ``gates[t+1] @ W_hh`` (gates already hold dA there) when
    step t+1 is valid, else carried. ``dc`` is updated in place (element-owned).
    """
    state = (w_peep, c0, cells, gates, d_out, dh, dc)
    _backward_step(t, w_hh, cells.shape, lengths, kt, state)


@cuda.jit
def _lstm_forward_persistent(w_hh_t, w_peep, lengths, hs, c, out, cells, gates, hc, rpp):
    """All steps in one cooperative launch (as the per-step kernel); h_T ends in ``hs[T % 2]``."""
    _forward_all(w_hh_t, out.shape, lengths, hc, rpp, (w_peep, hs, c, out, cells, gates))


@cuda.jit
def _lstm_backward_persistent(w_hh, w_peep, lengths, c0, cells, gates, d_out, dh, dc, hc, rpp):
    """All BPTT steps (T-1 down to -1) in one cooperative launch."""
    state = (w_peep, c0, cells, gates, d_out, dh, dc)
    _backward_all(w_hh, cells.shape, lengths, hc, rpp, state)


@cuda.jit
def _peephole_gradients(c0, cells, d_gates, dw_peep):
    """``dw_ci = sum dA_i c_{t-1}``, ``dw_cf = sum dA_f c_{t-1}``, ``dw_co = sum dA_o c_t``.

    One thread per unit, summing over (t, b) in a fixed order (deterministic, no atomics);
    padded steps have zero ``dA`` and add nothing.
    """
    j = cuda.grid(1)
    T, B, H = cells.shape
    if j < H:
        si = ZERO
        sf = ZERO
        so = ZERO
        for t in range(T):
            for b in range(B):
                cp = cells[t - 1, b, j] if t > 0 else c0[b, j]
                si += d_gates[t, b, j] * cp
                sf += d_gates[t, b, H + j] * cp
                so += d_gates[t, b, 3 * H + j] * cells[t, b, j]
        dw_peep[0, j] = si
        dw_peep[1, j] = sf
        dw_peep[2, j] = so

"""Elman RNN forward and BPTT on the GPU (same contract as :mod:`numrnn.kernels.cpu.rnn`).

The element math of one hidden unit, and its kernels in the two time loops of
:mod:`numrnn.kernels.cuda.time_loop` (same math, same stored activations): per step ONE
fused kernel (``h_{t-1} W_hh^T``, then φ), or one persistent cooperative kernel for all
steps. The input projection (before) and the weight gradients (after) are hoisted GEMMs.
"""

from __future__ import annotations

from numba import cuda

from numrnn.kernels.cuda.common import ONE, ZERO, d_tanh
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
    """h_t[b, j] from ``out[t]`` (the projection) and ``acc[0]``; ``hs[1 - t % 2]`` receives it."""
    relu, hs, out = state
    pin = t % 2
    if t < lengths[b]:
        a = out[t, b, j] + acc[0]
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
def _bwd_elem(t, b, j, acc, lengths, state):
    """dL/dh_t = ``acc[0]`` (= d_pre[t+1] @ W_hh) if step t+1 is valid, else carried."""
    relu, out, d_out, d_pre, dh = state
    s = incoming_grad(t, b, j, out.shape[0], lengths, dh, acc[0])
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


# state (relu, hs, out): stage h_{t-1}; state (relu, out, d_out, d_pre, dh): stage d_pre[t+1]
FORWARD = Phase(_fwd_elem, source=1, step=DOUBLE_BUFFER, rows=1)
BACKWARD = Phase(_bwd_elem, source=3, step=NEXT, rows=1)
_forward_step = per_step(FORWARD)
_backward_step = per_step(BACKWARD)
_forward_all = persistent(1, FORWARD)
_backward_all = persistent(1, BACKWARD)


# ----------------------------------------------------------------------------- kernels
@cuda.jit
def _rnn_forward_step(t, w_hh_t, lengths, relu, hs, out, kt):
    """Step ``t``: ``out[t]`` holds the projection on entry and h_t on exit (0 on padding).

    ``hs`` (2, B, H): h_{t-1} in ``hs[t % 2]``, h_t goes to the other half.
    """
    _forward_step(t, w_hh_t, out.shape, lengths, kt, (relu, hs, out))


@cuda.jit
def _rnn_backward_step(t, w_hh, lengths, relu, out, d_out, d_pre, dh, kt):
    """Step ``t`` of BPTT (``t = -1`` only finishes ``dh`` = dL/dh0).

    ``dh[b]`` holds dL/dh_t flowing in from step t+1: ``d_pre[t+1] @ W_hh`` where step t+1
    is valid, else carried unchanged. Each thread owns ``dh[b, j]``, so no double buffer.
    """
    _backward_step(t, w_hh, out.shape, lengths, kt, (relu, out, d_out, d_pre, dh))


@cuda.jit
def _rnn_forward_persistent(w_hh_t, lengths, relu, hs, out, hc, rpp):
    """All steps in one cooperative launch (as the per-step kernel); h_T ends in ``hs[T % 2]``."""
    _forward_all(w_hh_t, out.shape, lengths, hc, rpp, (relu, hs, out))


@cuda.jit
def _rnn_backward_persistent(w_hh, lengths, relu, out, d_out, d_pre, dh, hc, rpp):
    """All BPTT steps (T-1 down to -1) in one cooperative launch."""
    _backward_all(w_hh, out.shape, lengths, hc, rpp, (relu, out, d_out, d_pre, dh))

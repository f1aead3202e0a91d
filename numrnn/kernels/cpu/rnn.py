"""Elman RNN forward and BPTT: ``h_t = φ(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``."""

from __future__ import annotations

import numpy as np

from numrnn._jit import kernel
from numrnn.kernels.cpu.activations import tanh
from numrnn.kernels.cpu.common import (
    input_gradients,
    input_projection,
    recurrent_weight_gradient,
)


@kernel
def rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, relu, out, h_n):
    """Run one RNN layer in one direction over all steps.

    ``relu`` selects φ = relu, else tanh. ``out`` (T, B, H) first holds the hoisted input
    projection, then h_t (0 on padding); it is all BPTT needs. ``h_n`` gets the final state.
    """
    T, B, _ = x.shape
    H = h0.shape[1]
    input_projection(x, w_ih, b_ih + b_hh, out)
    h = h0.copy()
    hproj = np.empty((B, H), dtype=x.dtype)
    for t in range(T):
        np.dot(h, w_hh.T, hproj)
        for b in range(B):
            ob = out[t, b]
            if t < lengths[b]:
                hb = h[b]
                hp = hproj[b]
                if relu:
                    for j in range(H):
                        a = ob[j] + hp[j]
                        v = a if a > 0.0 else 0.0
                        ob[j] = v
                        hb[j] = v
                else:
                    for j in range(H):
                        v = tanh(ob[j] + hp[j])
                        ob[j] = v
                        hb[j] = v
            else:
                ob[:] = 0.0
    h_n[:] = h


@kernel
def rnn_backward(
    x, w_ih, w_hh, h0, lengths, relu, out, d_out, dh_n,
    need_dx, dx, dw_ih, dw_hh, db_ih, db_hh, dh0,
):  # fmt: skip
    """Exact BPTT through one RNN layer and direction (see :func:`rnn_forward`)."""
    T, B, _ = x.shape
    H = h0.shape[1]
    d_pre = np.empty((T, B, H), dtype=x.dtype)
    dh = dh_n.copy()
    dh_rec = np.empty((B, H), dtype=x.dtype)
    for t in range(T - 1, -1, -1):
        for b in range(B):
            da = d_pre[t, b]
            if t < lengths[b]:
                ob = out[t, b]
                dob = d_out[t, b]
                dhb = dh[b]
                if relu:
                    for j in range(H):
                        da[j] = (dob[j] + dhb[j]) if ob[j] > 0.0 else 0.0
                else:
                    for j in range(H):
                        da[j] = (dob[j] + dhb[j]) * (1.0 - ob[j] * ob[j])
            else:
                da[:] = 0.0
        np.dot(d_pre[t], w_hh, dh_rec)
        for b in range(B):
            if t < lengths[b]:
                dh[b] = dh_rec[b]
    dh0[:] = dh
    input_gradients(x, d_pre, w_ih, need_dx, dx, dw_ih, db_ih)
    recurrent_weight_gradient(h0, out, d_pre, dw_hh)
    db_hh[:] = db_ih

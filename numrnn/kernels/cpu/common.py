"""Helpers shared by the CPU kernels: hoisted GEMMs and the padded-sequence reversal."""

from __future__ import annotations

import numpy as np

from numrnn._jit import kernel


@kernel
def input_projection(x, w_ih, bias, gates):
    """``gates[t, b] = x[t, b] @ w_ih.T + bias`` for all steps at once (one GEMM)."""
    T, B, I = x.shape
    GH = w_ih.shape[0]
    g2 = gates.reshape((T * B, GH))
    np.dot(x.reshape((T * B, I)), w_ih.T, g2)
    for r in range(T * B):
        for j in range(GH):
            g2[r, j] += bias[j]


@kernel
def input_gradients(x, d_gates, w_ih, need_dx, dx, dw_ih, db):
    """Hoisted after the backward loop: ``dW_ih = dA^T X``, ``db = sum dA``, ``dX = dA W_ih``.

    One GEMM or reduction each over all steps. Rows of padded steps in ``d_gates`` are zero.
    """
    T, B, I = x.shape
    GH = d_gates.shape[2]
    a2 = d_gates.reshape((T * B, GH))
    np.dot(a2.T, x.reshape((T * B, I)), dw_ih)
    db[:] = 0
    for r in range(T * B):
        for j in range(GH):
            db[j] += a2[r, j]
    if need_dx:
        np.dot(a2, w_ih, dx.reshape((T * B, I)))


@kernel
def recurrent_weight_gradient(h0, out, d_gates, dw_hh):
    """``dW_hh = dA[0]^T h0 + dA[1:]^T H[:-1]`` (``H[t-1]`` is ``out[t-1]`` on every valid step)."""
    T, B, GH = d_gates.shape
    H = out.shape[2]
    np.dot(d_gates[0].T, h0, dw_hh)
    if T > 1:
        tmp = np.empty((GH, H), dtype=dw_hh.dtype)
        np.dot(
            d_gates[1:].reshape(((T - 1) * B, GH)).T,
            out[: T - 1].reshape(((T - 1) * B, H)),
            tmp,
        )
        dw_hh += tmp


@kernel
def column_sums(a, out):
    """``out[j] = sum over all leading indices of a[..., j]`` for a (T, B, G) array."""
    T, B, G = a.shape
    a2 = a.reshape((T * B, G))
    out[:] = 0
    for r in range(T * B):
        for j in range(G):
            out[j] += a2[r, j]


@kernel
def reverse_padded(x, lengths, out):
    """Reverse each sequence's valid steps: ``out[t, b] = x[lengths[b]-1-t, b]``; padding -> 0.

    ``x`` and ``out`` are (T, B, F). Applying it twice gives back ``x`` on the valid steps.
    """
    T, B, F = x.shape
    for b in range(B):
        n = lengths[b]
        for t in range(T):
            if t < n:
                src = n - 1 - t
                for k in range(F):
                    out[t, b, k] = x[src, b, k]
            else:
                for k in range(F):
                    out[t, b, k] = 0.0

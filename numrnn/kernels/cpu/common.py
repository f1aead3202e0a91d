"""Helpers shared by the CPU kernels: the hoisted GEMMs and the padded-sequence reversal.

The hoisted GEMMs take a range of output rows (``r0..r1`` or gate rows ``g0..g1``) so the
backend can split them between threads; every output element is computed the same way
whatever range holds it (:func:`numrnn.kernels.cpu.gemm.matmul_rows`).

Offset indices in inner loops (``a[i, 2 * H + j]``, ``db[g0 + j]``) go through
:data:`unsigned`: Numba wraps a negative signed index around, LLVM cannot prove an offset
index non-negative, and the select it keeps stops the loop from vectorizing (figures:
docs/performance.rst, *Measured*). Unsigned indices are not wrapped.
"""

from __future__ import annotations

import numpy as np

from numrnn._jit import inline_kernel, kernel
from numrnn.kernels.cpu.gemm import matmul, matmul_rows, padded_width

#: ``unsigned(2 * H + j)``: an index Numba does not wrap around (see the module docstring).
unsigned = np.uint64


@kernel
def input_projection_rows(x, w_ih_t, bias, gates, r0, r1):
    """Rows ``r0..r1`` of ``gates[t, b] = x[t, b] @ w_ih_t + bias`` over flat ``r = t*B + b``.

    ``w_ih_t`` is ``W_ih^T`` C-contiguous (the caller's copy, I x G*H numbers): the GEMM is
    then the specialisation the weight gradients use, not a second one (~1.5 s, #17).
    """
    T, B, I = x.shape
    GH = w_ih_t.shape[1]
    g2 = gates.reshape((T * B, GH))
    matmul_rows(x.reshape((T * B, I)), w_ih_t, g2, False, r0, r1)
    for r in range(r0, r1):
        for j in range(GH):
            g2[r, j] += bias[j]


@inline_kernel  # in each cell's weight-gradient kernel: no compiled level of its own
def input_weight_gradient_rows(x, d_gates, dw_ih, db, g0, g1):
    """Gate rows ``g0..g1`` of ``dW_ih = dA^T X`` and ``db = sum dA`` (padded rows of dA are 0).

    A few input features (``I <= NR / 4``: 1-8 in float32, the forecasting models' 1-4 and
    the medium benchmark's 8) are summed row by row, as ``db`` is: the GEMM pads ``I``
    columns to a whole panel of ``NR`` and packs all of ``dA^T`` for those few columns
    (measured on one thread: at ``I = 8``, ``T*B = 6400``, ``4H = 512``, 2.3 ms row by row
    against 4.9 ms through the GEMM; at ``I = 16`` they are even, at ``I = 28`` the GEMM wins).
    """
    T, B, GH = d_gates.shape
    I = x.shape[2]
    a2 = d_gates.reshape((T * B, GH))
    x2 = x.reshape((T * B, I))
    n = g1 - g0
    few = I * 4 <= padded_width(1, x)
    acc = np.empty((I if few else 0, n), dtype=x.dtype)  # acc[k, j] = dW_ih[g0 + j, k]
    for k in range(acc.shape[0]):  # zeroed by hand: np.zeros compiles ~0.3 s of a cold fit
        for j in range(n):
            acc[k, j] = 0.0
    if not few:
        matmul(a2[:, g0:g1].T, x2, dw_ih[g0:g1], False)
    for j in range(g0, g1):
        db[j] = 0.0
    for r in range(T * B):
        for k in range(acc.shape[0]):
            xv = x2[r, k]
            for j in range(n):
                acc[k, j] += a2[r, unsigned(g0 + j)] * xv
        for j in range(g0, g1):
            db[unsigned(j)] += a2[r, unsigned(j)]
    for k in range(acc.shape[0]):
        for j in range(n):
            dw_ih[g0 + j, k] = acc[k, j]


@inline_kernel  # in each cell's weight-gradient kernel: no compiled level of its own
def recurrent_weight_gradient_rows(h0, out, d_gates, dw_hh, g0, g1):
    """Gate rows ``g0..g1`` of ``dW_hh = dA[0]^T h0 + dA[1:]^T H[:-1]``.

    ``H[t-1]`` is ``out[t-1]`` on every valid step (padding has zero ``dA``).
    """
    T, B, _ = d_gates.shape
    H = out.shape[2]
    matmul(d_gates[0, :, g0:g1].T, h0, dw_hh[g0:g1], False)
    if T > 1:
        rest = d_gates[1:].reshape(((T - 1) * B, d_gates.shape[2]))
        matmul(rest[:, g0:g1].T, out[: T - 1].reshape(((T - 1) * B, H)), dw_hh[g0:g1], True)


@kernel
def weight_gradient_rows(x, h0, out, d_gates, dw_ih, dw_hh, db_ih, db_hh, g0, g1):
    """Gate rows ``g0..g1`` of the hoisted gradients ``dW_ih``, ``dW_hh`` and the biases of
    the Elman RNN and the LSTM, whose gate gradients ``d_gates`` (T, B, G*H) all see the
    input and ``h_{t-1}`` (one compiled kernel for both cells)."""
    input_weight_gradient_rows(x, d_gates, dw_ih, db_ih, g0, g1)
    recurrent_weight_gradient_rows(h0, out, d_gates, dw_hh, g0, g1)
    for j in range(g0, g1):  # a loop: a slice copy compiles Numba's shape-error path
        db_hh[j] = db_ih[j]


@kernel
def input_gradient_rows(d_gates, w_ih, dx, r0, r1):
    """Rows ``r0..r1`` (flat ``t*B + b``) of ``dX = dA W_ih``."""
    T, B, GH = d_gates.shape
    I = w_ih.shape[1]
    matmul_rows(d_gates.reshape((T * B, GH)), w_ih, dx.reshape((T * B, I)), False, r0, r1)


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


@kernel
def add_reverse_padded(x, lengths, out):
    """``out[t, b] += x[lengths[b]-1-t, b]`` on the valid steps (padding left unchanged).

    :func:`reverse_padded` and an addition in one pass, without a reversed copy.
    """
    T, B, F = x.shape
    for b in range(B):
        n = lengths[b]
        for t in range(n):
            src = n - 1 - t
            for k in range(F):
                out[t, b, k] += x[src, b, k]

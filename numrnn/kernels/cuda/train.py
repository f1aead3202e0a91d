"""Training-step kernels for a fit that stays on the GPU: batch gather, losses, reductions,
clipping and the optimizer updates.

Each element-wise kernel repeats the NumPy operation sequence of :mod:`numrnn.nn.optim`,
:mod:`numrnn.nn.clip` and :mod:`numrnn.nn.losses` in the array dtype, with every constant
passed in as an argument of that dtype (a bare Python float literal is float64 in Numba and
would promote a float32 kernel). One thread per element, no atomics.

Reductions are two-pass and deterministic: pass one gives thread ``i`` of a fixed grid of
``n_part`` threads the elements ``i, i + n_part, ...`` summed in order; pass two sums the
``n_part`` partials in order on one thread. Same inputs, same launch sizes: same bits.
"""

from __future__ import annotations

import math

from numba import cuda

from numrnn.kernels.cuda.common import _blocks

#: Partial sums per reduced array (threads of pass one).
N_PART = 256


# ----------------------------------------------------------------------------- batch gather
@cuda.jit
def _gather_kernel(X, idx, s, out):
    """``out[t, b, f] = X[idx[b], s + t, f]``: a time-major window of the rows ``idx``."""
    i = cuda.grid(1)
    Tc, B, F = out.shape
    if i < Tc * B * F:
        t = i // (B * F)
        r = i % (B * F)
        b = r // F
        f = r % F
        out[t, b, f] = X[idx[b], s + t, f]


@cuda.jit
def _chunk_lengths_kernel(lengths, idx, s, k, out):
    """``out[b] = clip(lengths[idx[b]] - s, 0, k)``: valid steps of a TBPTT chunk."""
    b = cuda.grid(1)
    if b < out.shape[0]:
        v = lengths[idx[b]] - s
        if v < 0:
            v = 0
        if v > k:
            v = k
        out[b] = v


@cuda.jit
def _rows_last_kernel(idx, lengths, sw, s, k, w, tr):
    """Per-sample loss weight for ``output='last'``: ``sw`` where the sequence ends in the
    chunk ``[s, s + k)``, else 0; ``tr[b]`` is the target row ``idx[b]``."""
    b = cuda.grid(1)
    if b < w.shape[0]:
        j = idx[b]
        L = lengths[j]
        if L > s and L <= s + k:
            w[b] = sw[j]
        else:
            w[b] = sw[j] - sw[j]  # a zero of the dtype
        tr[b] = j


@cuda.jit
def _rows_seq_kernel(idx, lengths, sw, s, T, w, tr):
    """Per-step loss weight for ``output='sequence'``; rows are time-major (``r = t*B + b``).

    ``w[r]`` is ``sw`` at valid steps and 0 at padded ones; ``tr[r]`` indexes the targets
    flattened to (n * T, ...).
    """
    r = cuda.grid(1)
    B = idx.shape[0]
    if r < w.shape[0]:
        t = r // B
        b = r % B
        j = idx[b]
        if s + t < lengths[j]:
            w[r] = sw[j]
        else:
            w[r] = sw[j] - sw[j]
        tr[r] = j * T + s + t


# ----------------------------------------------------------------------------- losses
@cuda.jit
def _mse_kernel(z, Y, tr, w, c2, cs, dz, row_loss):
    """Weighted MSE rows as :func:`numrnn.nn.losses.mse_loss` (weighted branch).

    ``diff = z - y`` (0 where ``w == 0``), ``wd = diff * w``, ``row_loss = sum_k wd * diff``,
    ``dz = (wd * c2) * cs`` with ``c2 = 2 / (K * total)`` and ``cs`` the batch scale.
    """
    r = cuda.grid(1)
    if r < z.shape[0]:
        wr = w[r]
        zero = wr - wr
        acc = zero
        for k in range(z.shape[1]):
            diff = zero
            if wr != zero:
                diff = z[r, k] - Y[tr[r], k]
            wd = diff * wr
            acc += wd * diff
            g = wd * c2
            dz[r, k] = g * cs
        row_loss[r] = acc


@cuda.jit
def _softmax_ce_kernel(z, Y, tr, w, total, one, cs, dz, row_loss):
    """Weighted softmax cross-entropy rows as :func:`numrnn.nn.losses.softmax_cross_entropy`.

    ``dz = (softmax(z) - onehot(y)) * (w / total) * cs``; ``row_loss = w * nll``.
    """
    r = cuda.grid(1)
    if r < z.shape[0]:
        C = z.shape[1]
        wr = w[r]
        zero = wr - wr
        if wr == 0:
            for c in range(C):
                dz[r, c] = zero
            row_loss[r] = zero
            return
        m = z[r, 0]
        for c in range(1, C):
            if z[r, c] > m:
                m = z[r, c]
        sumexp = zero
        for c in range(C):
            sumexp += math.exp(z[r, c] - m)
        t = Y[tr[r]]
        f = wr / total
        for c in range(C):
            p = math.exp(z[r, c] - m) / sumexp
            if c == t:
                p = p - one
            dz[r, c] = (p * f) * cs
        row_loss[r] = wr * (math.log(sumexp) - (z[r, t] - m))


# ----------------------------------------------------------------------------- reductions
@cuda.jit
def _partial_sums_kernel(x, zero, part):
    """Pass one: ``part[i] = sum_{j = i, i + n, ...} x[j]`` with ``n = part.shape[0]``."""
    i = cuda.grid(1)
    n = part.shape[0]
    if i < n:
        acc = zero
        for j in range(i, x.shape[0], n):
            acc += x[j]
        part[i] = acc


@cuda.jit
def _grad_stats_kernel(g, cv, use_cv, sq, bad):
    """Pass one over a gradient: sums of squares of ``clip(g, -cv, cv)`` (or of ``g``) and
    counts of non-finite entries of the *unclipped* ``g``, per partial."""
    i = cuda.grid(1)
    n = sq.shape[0]
    if i < n:
        acc = cv - cv
        nb = 0
        for j in range(i, g.shape[0], n):
            v = g[j]
            if math.isnan(v) or math.isinf(v):
                nb += 1
            if use_cv:
                if v > cv:
                    v = cv
                elif v < -cv:
                    v = -cv
            acc += v * v
        sq[i] = acc
        bad[i] = nb


@cuda.jit
def _sum_partials_kernel(part, out, slot):
    """Pass two: ``out[slot] = sum_i part[i]`` in index order, on one thread."""
    if cuda.grid(1) == 0:
        acc = part[0]
        for i in range(1, part.shape[0]):
            acc += part[i]
        out[slot] = acc


# ----------------------------------------------------------------------------- updates
@cuda.jit
def _add_scaled_kernel(g, p, a):
    """``g += a * p`` (the L2 penalty's gradient)."""
    i = cuda.grid(1)
    if i < g.shape[0]:
        g[i] = g[i] + a * p[i]


@cuda.jit
def _clip_kernel(g, cv, use_cv, coef, use_coef):
    """``np.clip(g, -cv, cv, out=g)`` then ``g *= coef`` (each step optional), in place."""
    i = cuda.grid(1)
    if i < g.shape[0]:
        v = g[i]
        if use_cv:
            if v > cv:
                v = cv
            elif v < -cv:
                v = -cv
        if use_coef:
            v = v * coef
        g[i] = v


@cuda.jit
def _adam_kernel(p, g, m, v, use_wd, wd, one_m_b1, b2, one_m_b2, bc2, eps, step_size):
    """One :class:`numrnn.nn.optim.Adam` step for one element (same operation order)."""
    i = cuda.grid(1)
    if i < p.shape[0]:
        d = g[i]
        if use_wd:
            d = p[i] * wd + d
        s = (d - m[i]) * one_m_b1
        mi = m[i] + s
        m[i] = mi
        s = (d * d) * one_m_b2
        vi = v[i] * b2 + s
        v[i] = vi
        s = math.sqrt(vi) / bc2 + eps
        s = (mi / s) * step_size
        p[i] = p[i] - s


@cuda.jit
def _sgd_kernel(p, g, buf, lr, use_mu, mu, use_wd, wd, nesterov):
    """One :class:`numrnn.nn.optim.SGD` step (momentum, Nesterov) for one element."""
    i = cuda.grid(1)
    if i < p.shape[0]:
        d = g[i]
        if use_wd:
            d = p[i] * wd + d
        if use_mu:
            b = buf[i] * mu + d
            buf[i] = b
            if nesterov:
                s = (d + b * mu) * lr
            else:
                s = b * lr
        else:
            s = d * lr
        p[i] = p[i] - s


# ----------------------------------------------------------------------------- launchers
def flat(a):
    """A 1-D view of a contiguous device array."""
    return a.reshape(a.size)


def launch1(kernel, n, threads, *args):
    kernel[_blocks(n, threads), threads](*args)


def reduce_sum(x, part, out, slot, threads):
    """Deterministic ``out[slot] = sum(x)`` of a 1-D device array (two passes)."""
    launch1(_partial_sums_kernel, part.shape[0], threads, x, x.dtype.type(0), part)
    _sum_partials_kernel[1, 1](part, out, slot)

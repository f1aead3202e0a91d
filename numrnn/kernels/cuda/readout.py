"""Pooled readouts on the device: :func:`numrnn.nn.readout.pool_forward` and
:func:`numrnn.nn.readout.pool_backward` for time-major (T, B, D) device arrays.

One thread per output element, each summing or scanning its own column in time order: no
atomics, the same bits on every run. The mean divides by the length in the array's dtype
(``flen``, the lengths converted by :func:`float_lengths`), as the host version does; the
maximum keeps the first step that attains it.
"""

from __future__ import annotations

from numba import cuda

from numrnn.kernels.cuda.common import _blocks


@cuda.jit(device=True, inline=True)
def _step_row_feature(i, B, D):
    """``(t, b, d)`` of flat index ``i`` into a time-major (T, B, D) array."""
    return i // (B * D), (i % (B * D)) // D, i % D


@cuda.jit
def _float_lengths_kernel(lengths, out):
    b = cuda.grid(1)
    if b < out.shape[0]:
        out[b] = lengths[b]


@cuda.jit
def _mean_pool_kernel(x, flen, feat):
    """``feat[b, d] = sum_{t < len_b} x[t, b, d] / len_b``."""
    i = cuda.grid(1)
    T, B, D = x.shape
    if i < B * D:
        b = i // D
        d = i % D
        n = int(flen[b])
        acc = flen[b] - flen[b]
        for t in range(n):
            acc += x[t, b, d]
        feat[b, d] = acc / flen[b]


@cuda.jit
def _mean_pool_backward_kernel(dfeat, flen, dx):
    """``dx[t, b, d] = dfeat[b, d] / len_b`` at valid steps, 0 at padded ones."""
    i = cuda.grid(1)
    T, B, D = dx.shape
    if i < T * B * D:
        t, b, d = _step_row_feature(i, B, D)
        if t < int(flen[b]):
            dx[t, b, d] = dfeat[b, d] / flen[b]
        else:
            dx[t, b, d] = flen[b] - flen[b]


@cuda.jit
def _max_pool_kernel(x, lengths, feat, arg):
    """``feat[b, d] = max_{t < len_b} x[t, b, d]``; ``arg`` the first step attaining it."""
    i = cuda.grid(1)
    T, B, D = x.shape
    if i < B * D:
        b = i // D
        d = i % D
        best = x[0, b, d]
        k = 0
        for t in range(1, lengths[b]):
            v = x[t, b, d]
            if v > best:
                best = v
                k = t
        feat[b, d] = best
        arg[b, d] = k


@cuda.jit
def _max_pool_backward_kernel(dfeat, arg, dx):
    """``dx[t, b, d] = dfeat[b, d]`` at the step that gave the maximum, else 0."""
    i = cuda.grid(1)
    T, B, D = dx.shape
    if i < T * B * D:
        t, b, d = _step_row_feature(i, B, D)
        if t == arg[b, d]:
            dx[t, b, d] = dfeat[b, d]
        else:
            dx[t, b, d] = dfeat[b, d] - dfeat[b, d]


def float_lengths(lengths, dtype, *, threads):
    """The (B,) int lengths as a device array of ``dtype``."""
    out = cuda.device_array(lengths.shape[0], dtype=dtype)
    _float_lengths_kernel[_blocks(out.shape[0], threads), threads](lengths, out)
    return out


def pool(x, lengths, mode, *, threads):
    """Pool time-major ``x`` (T, B, D) over valid steps: ``(feat (B, D), ctx)``."""
    T, B, D = x.shape
    feat = cuda.device_array((B, D), dtype=x.dtype)
    grid = _blocks(B * D, threads)
    if mode == "mean":
        flen = float_lengths(lengths, x.dtype, threads=threads)
        _mean_pool_kernel[grid, threads](x, flen, feat)
        return feat, ("mean", flen, T)
    arg = cuda.device_array((B, D), dtype=lengths.dtype)
    _max_pool_kernel[grid, threads](x, lengths, feat, arg)
    return feat, ("max", arg, T)


def pool_backward(dfeat, ctx, *, threads):
    """Gradient of :func:`pool` w.r.t. ``x``: (T, B, D), zero at padded steps."""
    mode, info, T = ctx
    B, D = dfeat.shape
    dx = cuda.device_array((T, B, D), dtype=dfeat.dtype)
    grid = _blocks(T * B * D, threads)
    if mode == "mean":
        _mean_pool_backward_kernel[grid, threads](dfeat, info, dx)
    else:
        _max_pool_backward_kernel[grid, threads](dfeat, info, dx)
    return dx

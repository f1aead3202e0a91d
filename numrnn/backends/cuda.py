"""The CUDA backend: keeps activations on the GPU and launches :mod:`numrnn.kernels.cuda`.

Arrays stay device arrays (``numba.cuda`` ``DeviceNDArray``) from :meth:`asarray` to
:meth:`to_host`; the network only meets them through this class's methods. Parameters
arrive either as host NumPy dicts, copied to the device on every ``layer_forward`` /
``layer_backward`` (the ``numrnn.nn`` API, where the user's optimizer updates host arrays in
place), or as device arrays, used as they are (an estimator fit with ``device='cuda'``, which
keeps parameters, gradients and optimizer state on the GPU: ``numrnn.estimators._device``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import cuda

from numrnn.cells import CELLS
from numrnn.kernels import cuda as K
from numrnn.kernels.cuda.common import (
    DEFAULT_ROWS,
    DEFAULT_THREADS,
    DEFAULT_TILE,
    HALF,
    _blocks,
    zeros,
)

_ADD, _MUL, _MEAN, _HALVE = 0, 1, 2, 3


@cuda.jit
def _binary_kernel(a, b, out, op):
    i = cuda.grid(1)
    if i < out.shape[0]:
        if op == 0:
            out[i] = a[i] + b[i]
        elif op == 1:
            out[i] = a[i] * b[i]
        elif op == 2:
            out[i] = (a[i] + b[i]) * HALF
        else:
            out[i] = a[i] * HALF


@cuda.jit
def _concat_kernel(f, b, out):
    """``out[..., :H] = f``, ``out[..., H:] = b`` on rows of a flattened (R, H) pair."""
    i = cuda.grid(1)
    R, H = f.shape
    if i < R * H:
        r = i // H
        k = i % H
        out[r, k] = f[r, k]
        out[r, H + k] = b[r, k]


@cuda.jit
def _split_kernel(d, f, b):
    i = cuda.grid(1)
    R, H = f.shape
    if i < R * H:
        r = i // H
        k = i % H
        f[r, k] = d[r, k]
        b[r, k] = d[r, H + k]


def _is_device(a) -> bool:
    # Duck-typed: the simulator's fake device arrays lack the CUDA array interface.
    return hasattr(a, "copy_to_host")


@dataclass
class LayerCache:
    """What BPTT needs from one layer-direction forward (device arrays, time-major)."""

    x: object
    h0: object
    c0: object | None
    lengths: object
    out: object
    gates: object | None = None
    cells: object | None = None  # LSTM c_t, or GRU aux


class CUDABackend:
    """Runs the ``numba.cuda`` kernels; arrays are device arrays, time-major, C-contiguous.

    Parameters
    ----------
    tile : int, default=16
        Tile edge of the GEMM kernels (``tile**2`` threads per block), and depth of the
        ``W_hh`` tiles the per-step kernels stage in shared memory.
    threads : int, default=128
        Threads per block of the per-step, persistent and element-wise kernels.
    rows : int, default=4
        Batch rows per block of the per-step kernels (their ``W_hh`` tiles in shared
        memory are reused across these rows); the persistent kernel stages at least this
        many of its rows at a time.
    persistent : {'auto', True, False}, default='auto'
        Run the whole time loop of a layer in one persistent cooperative kernel that keeps
        ``W_hh`` in shared memory. 'auto': when ``W_hh`` fits in one block's shared memory
        (48 KB) and the grid fits on the GPU at once, else one fused kernel per step.
        True forces it (an error when impossible), False never uses it.
    chunks : int, optional
        Persistent kernel only: blocks that split the hidden units (each keeps its slice of
        ``W_hh``); lets ``W_hh`` larger than 48 KB stay on chip. Default: the fewest that fit.
    """

    name = "cuda"

    def __init__(self, tile: int = DEFAULT_TILE, threads: int = DEFAULT_THREADS,
                 rows: int = DEFAULT_ROWS, persistent="auto", chunks: int | None = None):  # fmt: skip
        K.check_persistent(persistent)
        self.tile = int(tile)
        self.threads = int(threads)
        self.rows = int(rows)
        self.persistent = persistent
        self.chunks = None if chunks is None else int(chunks)

    @property
    def _kw(self):
        return {
            "tile": self.tile, "threads": self.threads, "rows": self.rows,
            "persistent": self.persistent, "chunks": self.chunks,
        }  # fmt: skip

    # -- memory -----------------------------------------------------------------------
    def asarray(self, a, dtype):
        """A C-contiguous device array of ``dtype`` (no copy when ``a`` already is one)."""
        if _is_device(a) and a.dtype == np.dtype(dtype) and a.is_c_contiguous():
            return a
        if _is_device(a):
            a = a.copy_to_host()
        return cuda.to_device(np.ascontiguousarray(a, dtype=dtype))

    def to_host(self, a) -> np.ndarray:
        if a is None:
            return None
        return a.copy_to_host() if _is_device(a) else np.asarray(a)

    def _params(self, p: dict) -> dict:
        # Host arrays are copied in; device arrays (a device-resident fit) pass through.
        return {k: self.asarray(v, v.dtype) for k, v in p.items()}

    # -- element-wise -----------------------------------------------------------------
    def _binary(self, a, b, op, out=None):
        if out is None:
            out = cuda.device_array(a.shape, dtype=a.dtype)
        n = a.size
        _binary_kernel[_blocks(n, self.threads), self.threads](
            a.reshape(n), b.reshape(n), out.reshape(n), op
        )
        return out

    def multiply(self, a, b):
        return self._binary(a, b, _MUL)

    def add(self, a, b):
        return self._binary(a, b, _ADD)

    def add_into(self, a, b):
        """``a += b`` in place (``a`` is a buffer the caller owns); returns ``a``."""
        return self._binary(a, b, _ADD, out=a)

    def add_reversed_into(self, a, x, lengths):
        """``a += reverse_padded(x, lengths)`` in place."""
        return self.add_into(a, self.reverse_padded(x, lengths))

    def merge(self, outs: list, mode: str):
        """Combine the directions' (T, B, H) outputs: concat, sum, mean or mul."""
        if len(outs) == 1:
            return outs[0]
        f, b = outs
        if mode == "concat":
            T, B, H = f.shape
            out = cuda.device_array((T, B, 2 * H), dtype=f.dtype)
            _concat_kernel[_blocks(T * B * H, self.threads), self.threads](
                f.reshape(T * B, H), b.reshape(T * B, H), out.reshape(T * B, 2 * H)
            )
            return out
        return self._binary(f, b, {"sum": _ADD, "mean": _MEAN, "mul": _MUL}[mode])

    def split(self, d, mode: str, dir_outs, num_directions: int) -> list:
        """Gradient of :meth:`merge`: the share of ``d`` that reaches each direction."""
        if num_directions == 1:
            return [d]
        if mode == "concat":
            T, B, H2 = d.shape
            H = H2 // 2
            f = cuda.device_array((T, B, H), dtype=d.dtype)
            b = cuda.device_array((T, B, H), dtype=d.dtype)
            _split_kernel[_blocks(T * B * H, self.threads), self.threads](
                d.reshape(T * B, H2), f.reshape(T * B, H), b.reshape(T * B, H)
            )
            return [f, b]
        if mode == "sum":
            return [d, d]
        if mode == "mean":
            half = self._scale_half(d)
            return [half, half]
        f, b = dir_outs
        return [self.multiply(d, b), self.multiply(d, f)]

    def _scale_half(self, d):
        # d * 0.5, as the CPU backend computes the mean merge's gradient.
        return self._binary(d, d, _HALVE)

    def reverse_padded(self, x, lengths):
        out = cuda.device_array(x.shape, dtype=x.dtype)
        K.reverse_padded(x, lengths, out, threads=self.threads)
        return out

    # -- layers -----------------------------------------------------------------------
    def layer_forward(self, cell, x, p, h0, c0, lengths, options, requires_grad=True):
        """Forward one layer and direction; returns ``(out, h_n, c_n, cache)`` on the device.

        ``cell`` names the entry of the registry ``numrnn.cells.CELLS`` whose CUDA functions
        run. ``requires_grad`` is accepted for the CPU backend's sake; the device keeps all
        steps.
        """
        forward, _ = CELLS[cell].layer(self.name)
        T, B, _ = x.shape
        H = h0.shape[1]
        out = cuda.device_array((T, B, H), dtype=x.dtype)
        h_n = cuda.device_array((B, H), dtype=x.dtype)
        return forward(self, x, self._params(p), h0, c0, lengths, options, out, h_n)

    def _lstm_forward(self, x, d, h0, c0, lengths, options, out, h_n):
        T, B, _ = x.shape
        H, dt = h0.shape[1], x.dtype
        gates = cuda.device_array((T, B, 4 * H), dtype=dt)
        cells = cuda.device_array((T, B, H), dtype=dt)
        c_n = cuda.device_array((B, H), dtype=dt)
        K.lstm_forward(
            x, d["w_ih"], d["w_hh"], d["b_ih"], d["b_hh"], d["w_peep"],
            h0, c0, lengths, out, cells, gates, h_n, c_n, **self._kw,
        )  # fmt: skip
        return out, h_n, c_n, LayerCache(x, h0, c0, lengths, out, gates, cells)

    def _gru_forward(self, x, d, h0, c0, lengths, options, out, h_n):
        T, B, _ = x.shape
        H, dt = h0.shape[1], x.dtype
        gates = cuda.device_array((T, B, 3 * H), dtype=dt)
        aux = cuda.device_array((T, B, H), dtype=dt)
        K.gru_forward(
            x, d["w_ih"], d["w_hh"], d["b_ih"], d["b_hh"], h0, lengths,
            bool(options["reset_after"]), out, gates, aux, h_n, **self._kw,
        )  # fmt: skip
        return out, h_n, None, LayerCache(x, h0, None, lengths, out, gates, aux)

    def _rnn_forward(self, x, d, h0, c0, lengths, options, out, h_n):
        K.rnn_forward(
            x, d["w_ih"], d["w_hh"], d["b_ih"], d["b_hh"], h0, lengths,
            options["nonlinearity"] == "relu", out, h_n, **self._kw,
        )  # fmt: skip
        return out, h_n, None, LayerCache(x, h0, None, lengths, out)

    def layer_backward(
        self, cell, cache, p, d_out, dh_n, dc_n, need_dx, options, d_out_owned=False,
        x_owned=False,
    ):  # fmt: skip
        """BPTT through one layer and direction; returns ``(dx, grads, dh0, dc0)``.

        ``d_out_owned`` and ``x_owned`` (the CPU backend reuses such buffers) are accepted
        and ignored; ``d_out=None`` means zeros. Everything returned is a device array (the
        network calls :meth:`to_host` on the gradients). The cache's gate buffer is consumed.
        """
        _, backward = CELLS[cell].layer(self.name)
        x, dt = cache.x, cache.x.dtype
        if d_out is None:
            d_out = zeros(cache.out.shape, dt, threads=self.threads)
        d = self._params(p)
        dx = cuda.device_array(x.shape, dtype=dt) if need_dx else cuda.device_array((1, 1, 1), dt)
        g = {k: cuda.device_array(v.shape, dtype=v.dtype) for k, v in p.items()}
        dh0 = cuda.device_array(cache.h0.shape, dtype=dt)
        dc0 = backward(self, cache, d, d_out, dh_n, dc_n, need_dx, dx, g, dh0, options)
        return (dx if need_dx else None), g, dh0, dc0

    def _lstm_backward(self, cache, d, d_out, dh_n, dc_n, need_dx, dx, g, dh0, options):
        dc0 = cuda.device_array(cache.c0.shape, dtype=cache.x.dtype)
        K.lstm_backward(
            cache.x, d["w_ih"], d["w_hh"], d["w_peep"], cache.h0, cache.c0, cache.lengths,
            cache.out, cache.cells, cache.gates, d_out, dh_n, dc_n, need_dx, dx,
            g["w_ih"], g["w_hh"], g["b_ih"], g["b_hh"], g["w_peep"], dh0, dc0, **self._kw,
        )  # fmt: skip
        return dc0

    def _gru_backward(self, cache, d, d_out, dh_n, dc_n, need_dx, dx, g, dh0, options):
        K.gru_backward(
            cache.x, d["w_ih"], d["w_hh"], cache.h0, cache.lengths,
            bool(options["reset_after"]), cache.out, cache.gates, cache.cells, d_out, dh_n,
            need_dx, dx, g["w_ih"], g["w_hh"], g["b_ih"], g["b_hh"], dh0, **self._kw,
        )  # fmt: skip
        return None

    def _rnn_backward(self, cache, d, d_out, dh_n, dc_n, need_dx, dx, g, dh0, options):
        K.rnn_backward(
            cache.x, d["w_ih"], d["w_hh"], cache.h0, cache.lengths,
            options["nonlinearity"] == "relu", cache.out, d_out, dh_n, need_dx, dx,
            g["w_ih"], g["w_hh"], g["b_ih"], g["b_hh"], dh0, **self._kw,
        )  # fmt: skip
        return None


for _name in CELLS:  # the CUDA functions of every cell of the registry
    CELLS[_name].register(
        CUDABackend.name,
        getattr(CUDABackend, f"_{_name}_forward"),
        getattr(CUDABackend, f"_{_name}_backward"),
    )

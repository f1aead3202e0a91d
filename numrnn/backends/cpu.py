"""The CPU backend: allocates the buffers and calls the ``@njit`` kernels for one layer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numrnn.kernels import cpu as K


@dataclass
class LayerCache:
    """What BPTT needs from one layer-direction forward (time-major arrays)."""

    x: np.ndarray
    h0: np.ndarray
    c0: np.ndarray | None
    lengths: np.ndarray
    out: np.ndarray
    gates: np.ndarray | None = None
    cells: np.ndarray | None = None  # LSTM c_t, or GRU aux


class CPUBackend:
    """Runs the Numba CPU kernels. Arrays are NumPy, time-major, C-contiguous."""

    name = "cpu"

    def asarray(self, a, dtype):
        return np.ascontiguousarray(a, dtype=dtype)

    def to_host(self, a) -> np.ndarray:
        return a

    def merge(self, outs: list, mode: str):
        """Combine the directions' (T, B, H) outputs: concat, sum, mean or mul."""
        if len(outs) == 1:
            return outs[0]
        f, b = outs
        if mode == "concat":
            return np.concatenate([f, b], axis=-1)
        if mode == "sum":
            return f + b
        if mode == "mean":
            return (f + b) * f.dtype.type(0.5)
        return f * b

    def split(self, d, mode: str, dir_outs, num_directions: int) -> list:
        """Gradient of :meth:`merge`: the share of ``d`` that reaches each direction."""
        if num_directions == 1:
            return [d]
        if mode == "concat":
            H = d.shape[-1] // 2
            return [np.ascontiguousarray(d[..., :H]), np.ascontiguousarray(d[..., H:])]
        if mode == "sum":
            return [d, d]
        if mode == "mean":
            half = d * d.dtype.type(0.5)
            return [half, half]
        f, b = dir_outs
        return [d * b, d * f]

    def multiply(self, a, b):
        return a * b

    def add(self, a, b):
        return a + b

    def reverse_padded(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        K.reverse_padded(x, lengths, out)
        return out

    def layer_forward(self, cell, x, p, h0, c0, lengths, options):
        """Forward one layer and direction; returns ``(out, h_n, c_n, cache)``."""
        T, B, _ = x.shape
        H = h0.shape[1]
        dt = x.dtype
        out = np.empty((T, B, H), dtype=dt)
        h_n = np.empty((B, H), dtype=dt)
        c_n = None
        if cell == "lstm":
            gates = np.empty((T, B, 4 * H), dtype=dt)
            cells = np.empty((T, B, H), dtype=dt)
            c_n = np.empty((B, H), dtype=dt)
            K.lstm_forward(
                x, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], p["w_peep"],
                h0, c0, lengths, out, cells, gates, h_n, c_n,
            )  # fmt: skip
            cache = LayerCache(x, h0, c0, lengths, out, gates, cells)
        elif cell == "gru":
            gates = np.empty((T, B, 3 * H), dtype=dt)
            aux = np.empty((T, B, H), dtype=dt)
            K.gru_forward(
                x, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], h0, lengths,
                options["reset_after"], out, gates, aux, h_n,
            )  # fmt: skip
            cache = LayerCache(x, h0, None, lengths, out, gates, aux)
        else:
            K.rnn_forward(
                x, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], h0, lengths,
                options["nonlinearity"] == "relu", out, h_n,
            )  # fmt: skip
            cache = LayerCache(x, h0, None, lengths, out)
        return out, h_n, c_n, cache

    def layer_backward(self, cell, cache, p, d_out, dh_n, dc_n, need_dx, options):
        """BPTT through one layer and direction; returns ``(dx, grads, dh0, dc0)``.

        ``grads`` has the keys of ``p``. The cache's gate buffer is consumed.
        """
        x, dt = cache.x, cache.x.dtype
        dx = np.empty_like(x) if need_dx else np.empty((1, 1, 1), dtype=dt)
        g = {k: np.empty_like(v) for k, v in p.items()}
        dh0 = np.empty_like(cache.h0)
        dc0 = None
        if cell == "lstm":
            dc0 = np.empty_like(cache.c0)
            K.lstm_backward(
                x, p["w_ih"], p["w_hh"], p["w_peep"], cache.h0, cache.c0, cache.lengths,
                cache.out, cache.cells, cache.gates, d_out, dh_n, dc_n, need_dx, dx,
                g["w_ih"], g["w_hh"], g["b_ih"], g["b_hh"], g["w_peep"], dh0, dc0,
            )  # fmt: skip
        elif cell == "gru":
            K.gru_backward(
                x, p["w_ih"], p["w_hh"], cache.h0, cache.lengths, options["reset_after"],
                cache.out, cache.gates, cache.cells, d_out, dh_n, need_dx, dx,
                g["w_ih"], g["w_hh"], g["b_ih"], g["b_hh"], dh0,
            )  # fmt: skip
        else:
            K.rnn_backward(
                x, p["w_ih"], p["w_hh"], cache.h0, cache.lengths,
                options["nonlinearity"] == "relu", cache.out, d_out, dh_n, need_dx, dx,
                g["w_ih"], g["w_hh"], g["b_ih"], g["b_hh"], dh0,
            )  # fmt: skip
        return (dx if need_dx else None), g, dh0, dc0

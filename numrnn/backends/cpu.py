"""The CPU backend: allocates the buffers and calls the ``@njit`` kernels for one layer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numrnn._threads import loop_threads, run_row_ranges
from numrnn.kernels import cpu as K
from numrnn.kernels.cpu import gemm


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
            threads = loop_threads(B, T * B * 4 * H * (x.shape[2] + H))
            args = (
                x, gemm.packed_stacked(p["w_ih"], p["w_hh"]), p["b_ih"] + p["b_hh"],
                p["w_peep"], h0, c0, lengths, out, cells, gates, h_n, c_n,
            )  # fmt: skip
            run_row_ranges(K.lstm_forward_rows, args, B, threads)
            cache = LayerCache(x, h0, c0, lengths, out, gates, cells)
        elif cell == "gru":
            gates = np.empty((T, B, 3 * H), dtype=dt)
            aux = np.empty((T, B, H), dtype=dt)
            after = options["reset_after"]
            threads = loop_threads(B, T * B * 3 * H * (x.shape[2] + H))
            bias = K.gru_input_bias(p["b_ih"], p["b_hh"], after)
            run_row_ranges(K.input_projection_rows, (x, p["w_ih"], bias, gates), T * B, threads)
            w_a, w_b = K.gru_packed_weights(p["w_hh"], True, after)
            args = (gates, w_a, w_b, p["b_hh"], h0, lengths, after, out, aux, h_n)
            run_row_ranges(K.gru_forward_rows, args, B, threads)
            cache = LayerCache(x, h0, None, lengths, out, gates, aux)
        else:
            relu = options["nonlinearity"] == "relu"
            threads = loop_threads(B, T * B * H * (x.shape[2] + H))
            args = (
                x, gemm.packed_stacked(p["w_ih"], p["w_hh"]), p["b_ih"] + p["b_hh"], h0,
                lengths, relu, out, h_n,
            )  # fmt: skip
            run_row_ranges(K.rnn_forward_rows, args, B, threads)
            cache = LayerCache(x, h0, None, lengths, out)
        return out, h_n, c_n, cache

    def layer_backward(self, cell, cache, p, d_out, dh_n, dc_n, need_dx, options):
        """BPTT through one layer and direction; returns ``(dx, grads, dh0, dc0)``.

        ``grads`` has the keys of ``p``. The cache's gate buffer is consumed.
        """
        x = cache.x
        T, B, I = x.shape
        H = cache.h0.shape[1]
        G = {"lstm": 4, "gru": 3}.get(cell, 1)
        threads = loop_threads(B, T * B * G * H * (I + H))
        dx = np.empty_like(x) if need_dx else None
        g = {k: np.empty_like(v) for k, v in p.items()}
        dh0 = np.empty_like(cache.h0)
        dc0 = None
        if cell == "lstm":
            dc0 = np.empty_like(cache.c0)
            args = (
                gemm.packed(p["w_hh"]), p["w_peep"], cache.c0, cache.lengths, cache.cells,
                cache.gates, d_out, dh_n, dc_n, dh0, dc0,
            )  # fmt: skip
            run_row_ranges(K.lstm_backward_rows, args, B, threads)
            K.peephole_gradients(cache.c0, cache.cells, cache.gates, g["w_peep"])
            args = (x, cache.h0, cache.out, cache.gates, g["w_ih"], g["w_hh"], g["b_ih"], g["b_hh"])
            run_row_ranges(K.lstm_weight_gradient_rows, args, 4 * H, threads)
        elif cell == "gru":
            after = options["reset_after"]
            d_rec = K.gru_recurrent_gradient_buffer(cache.out, after)
            w_a, w_b = K.gru_packed_weights(p["w_hh"], False, after)
            args = (
                w_a, w_b, cache.h0, cache.lengths, after, cache.out, cache.gates, cache.cells,
                d_out, dh_n, d_rec, dh0,
            )  # fmt: skip
            run_row_ranges(K.gru_backward_rows, args, B, threads)
            args = (
                x, cache.h0, after, cache.out, cache.gates, cache.cells, d_rec, g["w_ih"],
                g["w_hh"], g["b_ih"], g["b_hh"],
            )  # fmt: skip
            run_row_ranges(K.gru_weight_gradient_rows, args, 3 * H, threads)
        else:
            relu = options["nonlinearity"] == "relu"
            d_pre = np.empty_like(cache.out)
            args = (gemm.packed(p["w_hh"]), cache.lengths, relu, cache.out, d_out, dh_n, d_pre, dh0)
            run_row_ranges(K.rnn_backward_rows, args, B, threads)
            args = (x, cache.h0, cache.out, d_pre, g["w_ih"], g["w_hh"], g["b_ih"], g["b_hh"])
            run_row_ranges(K.rnn_weight_gradient_rows, args, H, threads)
        if need_dx:
            d_gates = d_pre if cell == "rnn" else cache.gates
            run_row_ranges(K.input_gradient_rows, (d_gates, p["w_ih"], dx), T * B, threads)
        return dx, g, dh0, dc0

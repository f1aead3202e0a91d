"""The CPU backend: allocates the buffers and calls the ``@njit`` kernels for one layer."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from numrnn._threads import loop_threads, run_row_ranges
from numrnn.backends.base import LayerCache
from numrnn.cells import CELLS
from numrnn.kernels import cpu as K
from numrnn.kernels.cpu import gemm
from numrnn.kernels.cpu.gru import (
    gru_input_bias,
    gru_packed_weights,
    gru_recurrent_gradient_buffer,
)

#: Packed weights of small layers for inference, by the identity of the weights they were
#: packed from, with those weights' bytes: a hit needs the same bits (a write in place
#: since, by an optimizer, ``load_state_dict`` or a user, misses and repacks), so a stream of
#: one-step forecasts packs once instead of at every step (~15 us of a ~110 us step on an
#: AVX2 machine). Oldest entries go first beyond :data:`_PACKED_ENTRIES`; layers over
#: :data:`_PACKED_MAX_SIZE` weights (hidden size ~90 and up) are packed per call (their
#: kernels dwarf the packing). At most ~6 MB held (float32; an entry keeps the weights'
#: bytes and the packed copy).
_packed_for_inference: OrderedDict = OrderedDict()
_PACKED_ENTRIES = 16
_PACKED_MAX_SIZE = 1 << 15


def _fingerprint(w: np.ndarray) -> tuple:
    """What a packing depends on: shape, dtype and the bytes (``tobytes`` and a compare:
    ~2 us for a 128 x 32 float32 weight, a third of NumPy's elementwise compare)."""
    return w.shape, w.dtype, w.tobytes()


def inference_packing(tag: str, weights: tuple, pack):
    """``pack()`` (packed weights, read-only to the kernels) for a forward without
    gradients, reused while ``weights`` keep their identity and bits (see above)."""
    if sum(w.size for w in weights) > _PACKED_MAX_SIZE:
        return pack()
    key = (tag,) + tuple(id(w) for w in weights)
    prints = tuple(_fingerprint(w) for w in weights)
    hit = _packed_for_inference.get(key)
    if hit is not None and hit[0] == prints:
        return hit[1]
    packed = pack()
    _packed_for_inference[key] = (prints, packed)
    while len(_packed_for_inference) > _PACKED_ENTRIES:
        try:
            _packed_for_inference.popitem(last=False)
        except KeyError:  # emptied by another thread meanwhile
            break
    return packed


class CPUBackend:
    """Runs the Numba CPU kernels. Arrays are NumPy, time-major, C-contiguous.

    It takes no options: its kernels size their threads from the work (``numrnn._threads``).
    """

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

    def add_reversed_into(self, a, x, lengths):
        """``a += reverse_padded(x, lengths)`` in place, without the reversed copy."""
        K.add_reverse_padded(x, lengths, a)
        return a

    def reverse_padded(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        K.reverse_padded(x, lengths, out)
        return out

    def layer_forward(self, cell, x, p, h0, c0, lengths, options, requires_grad=True):
        """Forward one layer and direction; returns ``(out, h_n, c_n, cache)``.

        ``cell`` names the entry of the registry ``numrnn.cells.CELLS`` whose CPU functions
        run. Without ``requires_grad`` the LSTM keeps one step of gates and cells, not all T
        (the cache is then unusable for BPTT, and the caller drops it).
        """
        T, B, _ = x.shape
        H, dt = h0.shape[1], x.dtype
        out, h_n = np.empty((T, B, H), dtype=dt), np.empty((B, H), dtype=dt)
        c_n = np.empty((B, H), dtype=dt) if c0 is not None else None
        calls, cache = self.layer_forward_calls(
            cell, x, p, h0, c0, lengths, options, out, h_n, c_n, requires_grad
        )
        for kernel, args, rows, threads in calls:
            run_row_ranges(kernel, args, rows, threads)
        return out, h_n, c_n, cache

    def layer_forward_calls(
        self, cell, x, p, h0, c0, lengths, options, out, h_n, c_n, requires_grad=False
    ):
        """The kernel calls of :meth:`layer_forward` into the given ``out``, ``h_n`` and
        ``c_n`` (None for cells without a cell state), not yet run: ``(calls, cache)`` with
        ``calls`` a list of ``(kernel, args, rows, threads)`` for
        :func:`~numrnn._threads.run_row_ranges`.

        Run again, the calls read ``x``, ``h0`` and ``c0`` as they are then, the weights
        packed now, the other arrays of ``p`` in place, and rewrite the outputs: a one-step
        stream (``numrnn.forecasting.Stream``) builds them once, on its own copy of the
        parameters, and replays them at every step instead of going through this Python
        again.
        """
        forward, _ = CELLS[cell].layer(self.name)
        return forward(self, x, p, h0, c0, lengths, options, requires_grad, out, h_n, c_n)

    @staticmethod
    def _input_and_recurrent(p, requires_grad):
        """``[W_ih W_hh]^T`` packed for the LSTM's and Elman RNN's forward kernels."""
        w_ih, w_hh = p["w_ih"], p["w_hh"]
        if requires_grad:  # training: the weights change at every step
            return gemm.packed_weights(w_ih.T, w_hh.T)
        return inference_packing("ih+hh", (w_ih, w_hh), lambda: gemm.packed_weights(w_ih.T, w_hh.T))

    def _lstm_forward(self, x, p, h0, c0, lengths, options, requires_grad, out, h_n, c_n):
        T, B, _ = x.shape
        H, dt = h0.shape[1], x.dtype
        steps = T if requires_grad else 1
        gates = np.empty((steps, B, 4 * H), dtype=dt)
        cells = np.empty((steps, B, H), dtype=dt)
        threads = loop_threads(B, T * B * 4 * H * (x.shape[2] + H))
        args = (
            x, self._input_and_recurrent(p, requires_grad), p["b_ih"] + p["b_hh"],
            p["w_peep"], h0, c0, lengths, out, cells, gates, h_n, c_n,
        )  # fmt: skip
        return (
            [(K.lstm_forward_rows, args, B, threads)],
            LayerCache(x, h0, c0, lengths, out, gates, cells) if requires_grad else None,
        )

    def _gru_forward(self, x, p, h0, c0, lengths, options, requires_grad, out, h_n, c_n):
        T, B, _ = x.shape
        H, dt = h0.shape[1], x.dtype
        gates = np.empty((T, B, 3 * H), dtype=dt)
        aux = np.empty((T, B, H), dtype=dt)
        after = options["reset_after"]
        threads = loop_threads(B, T * B * 3 * H * (x.shape[2] + H))
        bias = gru_input_bias(p["b_ih"], p["b_hh"], after)
        w_ih_t = np.ascontiguousarray(p["w_ih"].T)
        projection = (K.input_projection_rows, (x, w_ih_t, bias, gates), T * B, threads)
        w_hh = p["w_hh"]
        if requires_grad:
            w_a, w_b = gru_packed_weights(w_hh, True, after)
        else:
            tag = f"gru hh reset_after={after}"
            w_a, w_b = inference_packing(
                tag, (w_hh,), lambda: gru_packed_weights(w_hh, True, after)
            )
        args = (gates, w_a, w_b, p["b_hh"], h0, lengths, after, out, aux, h_n)
        return (
            [projection, (K.gru_forward_rows, args, B, threads)],
            LayerCache(x, h0, None, lengths, out, gates, aux) if requires_grad else None,
        )

    def _rnn_forward(self, x, p, h0, c0, lengths, options, requires_grad, out, h_n, c_n):
        T, B, _ = x.shape
        H = h0.shape[1]
        relu = options["nonlinearity"] == "relu"
        threads = loop_threads(B, T * B * H * (x.shape[2] + H))
        args = (
            x, self._input_and_recurrent(p, requires_grad), p["b_ih"] + p["b_hh"], h0,
            lengths, relu, out, h_n,
        )  # fmt: skip
        return (
            [(K.rnn_forward_rows, args, B, threads)],
            LayerCache(x, h0, None, lengths, out) if requires_grad else None,
        )

    def layer_backward(
        self, cell, cache, p, d_out, dh_n, dc_n, need_dx, options, d_out_owned=False,
        x_owned=False,
    ):  # fmt: skip
        """BPTT through one layer and direction; returns ``(dx, grads, dh0, dc0)``.

        ``grads`` has the keys of ``p``. The cache's gate buffer is consumed. With
        ``d_out_owned`` nothing but this call needs ``d_out`` afterwards, so its buffer is
        reused: the Elman RNN's pre-activation gradients overwrite it, and the LSTM and GRU,
        which read ``d_out`` only inside the time loop, write ``dx`` into it when the shapes
        agree, or else into their cache's ``cells`` (LSTM c_t, GRU aux), which nothing reads
        after the weight gradients. With ``x_owned`` the cached input is this
        layer-direction's own copy (a reversed input, a merged or dropped-out output): the
        hoisted ``dW_ih = dA^T X`` reads it before ``dX = dA W_ih`` is written, so ``dx``
        goes into it. The returned ``dx`` may thus be one of those buffers. ``d_out=None``
        means zeros.
        """
        _, backward = CELLS[cell].layer(self.name)
        return backward(self, cache, p, d_out, dh_n, dc_n, need_dx, options, d_out_owned, x_owned)

    def _gated_buffers(self, cache, d_out, need_dx, d_out_owned, x_owned):
        """``(d_out, dx)`` for the LSTM's and GRU's BPTT: zeros for a missing ``d_out`` (one
        step: the kernels read it at every step) and the buffer ``dx`` goes into."""
        x = cache.x
        B, H = x.shape[1], cache.h0.shape[1]
        if d_out is None:
            d_out = np.zeros((1, B, H), dtype=x.dtype)
        if not need_dx:
            dx = None
        elif x_owned:
            dx = x
        elif d_out_owned and d_out.shape == x.shape:
            dx = d_out
        elif cache.cells.shape == x.shape:
            # LSTM c_t and GRU aux are dead once the weight gradients are done, before dx
            dx = cache.cells
        else:
            dx = np.empty_like(x)
        return d_out, dx

    def _lstm_backward(self, cache, p, d_out, dh_n, dc_n, need_dx, options, d_out_owned, x_owned):
        x = cache.x
        T, B, I = x.shape
        H = cache.h0.shape[1]
        threads = loop_threads(B, T * B * 4 * H * (I + H))
        d_out, dx = self._gated_buffers(cache, d_out, need_dx, d_out_owned, x_owned)
        g = {k: np.empty_like(v) for k, v in p.items()}
        dh0 = np.empty_like(cache.h0)
        dc0 = np.empty_like(cache.c0)
        args = (
            gemm.packed_weights(p["w_hh"]), p["w_peep"], cache.c0, cache.lengths, cache.cells,
            cache.gates, d_out, dh_n, dc_n, dh0, dc0,
        )  # fmt: skip
        run_row_ranges(K.lstm_backward_rows, args, B, threads)
        if options.get("peephole", False):
            K.peephole_gradients(cache.c0, cache.cells, cache.gates, g["w_peep"])
        else:  # w_peep is fixed at zero: no T*B*3H pass for a gradient nobody reads
            g["w_peep"][:] = 0.0
        args = (x, cache.h0, cache.out, cache.gates, g["w_ih"], g["w_hh"], g["b_ih"], g["b_hh"])
        run_row_ranges(K.weight_gradient_rows, args, 4 * H, threads)
        if need_dx:
            run_row_ranges(K.input_gradient_rows, (cache.gates, p["w_ih"], dx), T * B, threads)
        return dx, g, dh0, dc0

    def _gru_backward(self, cache, p, d_out, dh_n, dc_n, need_dx, options, d_out_owned, x_owned):
        x = cache.x
        T, B, I = x.shape
        H = cache.h0.shape[1]
        threads = loop_threads(B, T * B * 3 * H * (I + H))
        d_out, dx = self._gated_buffers(cache, d_out, need_dx, d_out_owned, x_owned)
        g = {k: np.empty_like(v) for k, v in p.items()}
        dh0 = np.empty_like(cache.h0)
        after = options["reset_after"]
        d_rec = gru_recurrent_gradient_buffer(cache.out, after)
        w_a, w_b = gru_packed_weights(p["w_hh"], False, after)
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
        if need_dx:
            run_row_ranges(K.input_gradient_rows, (cache.gates, p["w_ih"], dx), T * B, threads)
        return dx, g, dh0, None

    def _rnn_backward(self, cache, p, d_out, dh_n, dc_n, need_dx, options, d_out_owned, x_owned):
        if not d_out_owned:
            return self._rnn_backward_chunked(cache, p, d_out, dh_n, need_dx, options, x_owned)
        x = cache.x
        T, B, I = x.shape
        H = cache.h0.shape[1]
        threads = loop_threads(B, T * B * H * (I + H))
        dx = (x if x_owned else np.empty_like(x)) if need_dx else None
        g = {k: np.empty_like(v) for k, v in p.items()}
        dh0 = np.empty_like(cache.h0)
        # d_out is ours: the pre-activation gradients overwrite it
        self._rnn_rows(cache, p, d_out, dh_n, dh0, g, options, threads, 0, T)
        if need_dx:
            run_row_ranges(K.input_gradient_rows, (d_out, p["w_ih"], dx), T * B, threads)
        return dx, g, dh0, None

    def _rnn_rows(self, cache, p, d_pre, dh_n, dh0, g, options, threads, t0, t1):
        """Steps ``t0..t1`` of the Elman RNN's BPTT: ``d_pre`` (t1-t0, B, H) holds their
        ``d_out`` on entry, ``dh_n`` the gradient w.r.t. ``h[t1-1]``; writes ``dh0`` (w.r.t.
        ``h[t0-1]``, or h0) and the chunk's weight gradients into ``g``."""
        relu = options["nonlinearity"] == "relu"
        B, H = dh_n.shape
        out = cache.out[t0:t1]
        lens = cache.lengths
        if t0 > 0 or t1 < cache.out.shape[0]:
            lens = np.clip(cache.lengths - t0, 0, t1 - t0)
        h0 = cache.h0 if t0 == 0 else cache.out[t0 - 1]
        args = (gemm.packed_weights(p["w_hh"]), lens, relu, out, d_pre, dh_n, dh0)
        run_row_ranges(K.rnn_backward_rows, args, B, threads)
        args = (cache.x[t0:t1], h0, out, d_pre, g["w_ih"], g["w_hh"], g["b_ih"], g["b_hh"])
        run_row_ranges(K.weight_gradient_rows, args, H, threads)

    #: The Elman RNN's BPTT needs a buffer for the pre-activation gradients of the steps whose
    #: weight gradients are computed together; the LSTM and GRU reuse their stored gates, the
    #: RNN has none. When ``d_out`` is not a buffer it may overwrite and the (T, B, H) buffer
    #: would exceed ``rnn_chunk_min_bytes``, the steps go in chunks of about
    #: T / ``rnn_chunks`` (at least ``rnn_chunk_rows`` GEMM rows each), so the buffer is a
    #: fraction of the stored activations. The chunks' weight gradients are summed, which
    #: rounds differently from one GEMM over all steps (same mathematics). Below the
    #: threshold one chunk.
    rnn_chunks = 8
    rnn_chunk_rows = 256
    rnn_chunk_min_bytes = 2 * 1024**2

    def _rnn_backward_chunked(self, cache, p, d_out, dh_n, need_dx, options, x_owned):
        x = cache.x
        dt = x.dtype
        T, B, I = x.shape
        H = cache.h0.shape[1]
        threads = loop_threads(B, T * B * H * (I + H))
        C = min(T, max(-(-T // self.rnn_chunks), -(-self.rnn_chunk_rows // B)))
        if T * B * H * dt.itemsize <= self.rnn_chunk_min_bytes:
            C = T
        if not need_dx:
            dx = None
        else:  # each chunk reads its x before writing its dx
            dx = x if x_owned else np.empty_like(x)
        g = {k: np.empty_like(v) for k, v in p.items()}
        gc = {k: np.empty_like(v) for k, v in p.items()} if C < T else g
        d_pre = np.empty((C, B, H), dtype=dt)
        dh = dh_n
        dh0 = np.empty_like(cache.h0)
        for t1 in range(T, 0, -C):
            t0 = max(0, t1 - C)
            dp = d_pre[: t1 - t0]
            if d_out is None:
                dp[:] = 0
            else:
                dp[:] = d_out[t0:t1]
            self._rnn_rows(cache, p, dp, dh, dh0, gc, options, threads, t0, t1)
            dh = dh0.copy() if t0 > 0 else dh0
            if gc is not g:
                for k in ("w_ih", "w_hh", "b_ih", "b_hh"):
                    if t1 == T:
                        g[k][...] = gc[k]
                    else:
                        g[k] += gc[k]
            if need_dx:
                args = (dp, p["w_ih"], dx[t0:t1])
                run_row_ranges(K.input_gradient_rows, args, (t1 - t0) * B, threads)
        return dx, g, dh0, None


# the CPU functions of every cell of the registry; a forward returns its kernel calls, not
# yet run, and the cache (layer_forward_calls)
for _name in CELLS:
    CELLS[_name].register(
        CPUBackend.name,
        getattr(CPUBackend, f"_{_name}_forward"),
        getattr(CPUBackend, f"_{_name}_backward"),
    )

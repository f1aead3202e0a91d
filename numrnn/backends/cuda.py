"""The CUDA backend: keeps activations on the GPU and launches :mod:`numrnn.kernels.cuda`.

Arrays stay device arrays (``numba.cuda`` ``DeviceNDArray``) from :meth:`asarray` to
:meth:`to_host`; the network only meets them through this class's methods. Parameters
arrive either as host NumPy dicts, copied to the device on every ``layer_forward`` /
``layer_backward`` (the ``numrnn.nn`` API, where the user's optimizer updates host arrays in
place), or as device arrays, used as they are (an estimator fit with ``device='cuda'``, which
keeps parameters, gradients and optimizer state on the GPU: ``numrnn.estimators._device``).
"""

from __future__ import annotations

import warnings

import numpy as np
from numba import config, cuda

from numrnn.backends.base import LayerCache
from numrnn.cells import CELLS
from numrnn.kernels.cuda import gru as KG
from numrnn.kernels.cuda import lstm as KL
from numrnn.kernels.cuda import rnn as KR
from numrnn.kernels.cuda.common import (
    DEFAULT_THREADS,
    DEFAULT_TILE,
    HALF,
    _blocks,
    column_sums,
    copy,
    gemm,
    input_gradients,
    input_projection,
    recurrent_weight_gradient,
    reverse_padded,
    transpose,
    zeros,
)
from numrnn.kernels.cuda.time_loop import DEFAULT_ROWS, SHARED_BUDGET

_ADD, _MUL, _MEAN, _HALVE = 0, 1, 2, 3

#: ``persistent='auto'`` keeps ``W_hh`` on chip split over at most this many blocks.
#: Measured on an H200 (fp32 forward + backward, ``benchmarks/gpu_vs_torch.py`` shapes),
#: persistent against per-step: LSTM H = 128 (6 slices) 6.9 against 10.0 ms (digits) and
#: 23 against 47 ms (medium); H = 192 (13 slices) 19.9 against 33.9 ms; H = 256 (24 slices)
#: 26.5 against 44.3 ms, GRU 25.1 against 38.1 ms; H = 512 (103 slices) 528 against 270 ms.
#: Between 24 and 103 slices nothing was measured.
AUTO_MAX_CHUNKS = 32


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


#: Cooperative grid limits found so far, per (kernel, signature, block, shared memory).
_COOPERATIVE_BLOCKS: dict = {}


def check_persistent(persistent) -> None:
    if persistent not in ("auto", True, False):
        raise ValueError(
            f"persistent must be 'auto', True or False, got {persistent!r}; 'auto' uses the "
            "persistent kernel when the recurrent weights fit in shared memory"
        )


def _step_shared(phase, rows: int, tj: int, H: int, tile: int, itemsize: int) -> int:
    """Shared bytes of one per-step block: ``rows`` staged rows of ``phase.rows * H`` and
    ``tile`` rows of ``phase.nq`` weight tiles ``tj`` wide."""
    return (rows * phase.rows * H + tile * phase.nq * tj) * itemsize


def _is_device(a) -> bool:
    # Duck-typed: the simulator's fake device arrays lack the CUDA array interface.
    return hasattr(a, "copy_to_host")


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
        memory are reused across these rows); the persistent kernel stages up to this many
        of its rows at a time, or more when its block has more threads than hidden units
        (as shared memory allows).
    persistent : {'auto', True, False}, default='auto'
        Run the whole time loop of a layer in one persistent cooperative kernel that keeps
        ``W_hh`` in shared memory. 'auto': when ``W_hh`` fits in the shared memory (48 KB)
        of at most :data:`AUTO_MAX_CHUNKS` blocks and the grid fits on the GPU at once, else
        one fused kernel per step (measured choice: see :data:`AUTO_MAX_CHUNKS`).
        True forces it (an error when impossible), False never uses it.
    chunks : int, optional
        Persistent kernel only: blocks that split the hidden units (each keeps its slice of
        ``W_hh``); lets ``W_hh`` larger than 48 KB stay on chip. Default: the fewest that fit.
    """

    name = "cuda"

    def __init__(self, tile: int = DEFAULT_TILE, threads: int = DEFAULT_THREADS,
                 rows: int = DEFAULT_ROWS, persistent="auto", chunks: int | None = None):  # fmt: skip
        check_persistent(persistent)
        self.tile = int(tile)
        self.threads = int(threads)
        self.rows = int(rows)
        self.persistent = persistent
        self.chunks = None if chunks is None else int(chunks)
        self._unavailable: dict = {}  # cooperative launches that failed for this backend

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

    def add_reversed_into(self, a, x, lengths):
        """``a += reverse_padded(x, lengths)`` in place (``a`` is a buffer the caller owns)."""
        return self._binary(a, self.reverse_padded(x, lengths), _ADD, out=a)

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
        reverse_padded(x, lengths, out, threads=self.threads)
        return out

    # -- launch planning -------------------------------------------------------------
    def _cooperative_blocks(self, kernel, args, blockdim, shared):
        """How many blocks of ``kernel`` a cooperative grid may hold (1 on the simulator).

        Successes are remembered for the process; a failure only by this backend (a network
        or a fit), so a transient one is retried by the next.
        """
        if config.ENABLE_CUDASIM:
            return 1
        sig = tuple(kernel.typeof_pyval(a) for a in args)
        key = (kernel, sig, blockdim, shared)
        if key in self._unavailable:
            raise self._unavailable[key]
        n = _COOPERATIVE_BLOCKS.get(key)
        if n is None:
            try:
                n = int(kernel.compile(sig).max_cooperative_grid_blocks(blockdim, shared))
            except Exception as exc:
                self._unavailable[key] = exc
                raise
            _COOPERATIVE_BLOCKS[key] = n
        return n

    def _plan_persistent(self, kernel, make_args, *, H, B, K_w, nq, row_len, itemsize):
        """Decide and size a persistent cooperative launch; None means "per-step kernels".

        Each of ``nc`` blocks along x keeps a ``K_w x nq x hc`` slice of the recurrent
        weights resident in shared memory (``hc = ceil(H / nc)`` hidden units), plus up to
        ``rpp`` staged rows of ``row_len`` (``rpp`` <= ``max(rows, ceil(threads / hc))``:
        about one (row, unit) item per thread); ``nr`` blocks along y stride over the batch
        rows. ``persistent='auto'`` takes it when ``W_hh`` fits in at most
        :data:`AUTO_MAX_CHUNKS` slices (unless ``chunks`` says otherwise) and the grid fits
        on the device at once; ``True`` raises when impossible. ``make_args(hc, rpp)``
        gives the kernel's arguments. Returns ``(grid, threads, shared_bytes, args)``.
        """
        persistent, chunks, threads = self.persistent, self.chunks, self.threads
        budget = SHARED_BUDGET
        if persistent is False:
            return None
        nc = hc = free = None
        for n in [int(chunks)] if chunks else range(1, H + 1):
            h = _blocks(H, n)
            f = budget // itemsize - K_w * nq * h
            if f >= row_len:
                nc, hc, free = n, h, min(f // row_len, max(int(self.rows), _blocks(threads, h)))
                break
        why = None
        if nc is None:
            why = f"a {K_w}x{nq}x{_blocks(H, chunks or H)} weight slice does not fit {budget} B"
        elif persistent == "auto" and nc > AUTO_MAX_CHUNKS and not chunks:
            return None
        if why is None:
            rpp = min(B, free)
            shared = (K_w * nq * hc + rpp * row_len) * itemsize
            try:
                maxb = self._cooperative_blocks(kernel, make_args(hc, rpp), threads, shared)
            except Exception as exc:  # e.g. no cudadevrt to link a cooperative kernel against
                if persistent is True:
                    raise
                warnings.warn(
                    f"persistent CUDA kernel unavailable ({exc}); using the per-step kernels",
                    RuntimeWarning, stacklevel=2,
                )  # fmt: skip
                maxb = 0
            if maxb < nc:
                why = f"{nc} blocks exceed the cooperative limit {maxb}"
        if why is not None:
            if persistent is True:
                raise ValueError(f"persistent kernel impossible for H={H}: {why}")
            return None
        nr = max(1, min(B, maxb // nc))
        rpp = min(rpp, _blocks(B, nr))
        shared = (K_w * nq * hc + rpp * row_len) * itemsize
        return (nc, nr), threads, shared, make_args(hc, rpp)

    def _time_loop(self, persistent, per_step, times, *, H, B, K_w, nq, row_len, itemsize):
        """The time loop of one layer and pass, the same skeleton for every cell.

        ``persistent`` is ``(kernel, make_args)``, run as ONE cooperative launch when
        :meth:`_plan_persistent` allows (``K_w``, ``nq``, ``row_len``: its resident weight
        slice and staged rows); else for each ``t`` of ``times`` every ``(kernel, phase,
        args)`` of ``per_step`` is launched as ``kernel(*args(t), tile)`` on blocks of
        ``(tj, rows)`` threads (hidden units, batch rows) with ``rows`` staged rows of
        ``phase.rows * H`` and ``tile`` rows of ``phase.nq`` weight tiles in shared memory
        (:class:`numrnn.kernels.cuda.time_loop.Phase`); ``args(t)`` None skips that launch
        at that step.
        """
        kernel, make_args = persistent
        plan = self._plan_persistent(
            kernel, make_args, H=H, B=B, K_w=K_w, nq=nq, row_len=row_len, itemsize=itemsize
        )
        if plan is not None:
            grid, nt, shared, args = plan
            kernel[grid, nt, 0, shared](*args)
            return
        rows, tj = self._per_step_block(per_step, H, B, itemsize)
        grid, block = (_blocks(H, tj), _blocks(B, rows)), (tj, rows)
        # each kernel configured once, outside the loop: T launches, one configuration
        launches = [
            (kernel[grid, block, 0, _step_shared(phase, rows, tj, H, self.tile, itemsize)],
             args)
            for kernel, phase, args in per_step
        ]  # fmt: skip
        for t in times:
            for launch, args in launches:
                a = args(t)
                if a is not None:
                    launch(*a, self.tile)

    def _per_step_block(self, per_step, H, B, itemsize):
        """``(rows, tj)`` of the per-step kernels' blocks: ``rows`` and ``threads`` as set,
        halved (rows first) until the staged rows and weight tiles fit the shared-memory
        budget; a launch over it fails with an opaque CUDA_ERROR_INVALID_VALUE."""
        rows = max(1, min(int(self.rows), B))
        tj = max(1, self.threads // rows)

        def shared(r, t):
            return max(_step_shared(ph, r, t, H, self.tile, itemsize) for _, ph, _ in per_step)

        while shared(rows, tj) > SHARED_BUDGET and (rows > 1 or tj > 32):
            if rows > 1:  # fewer rows, the same threads per block
                rows = rows // 2
                tj = max(1, self.threads // rows)
            else:
                tj //= 2
        if shared(rows, tj) > SHARED_BUDGET:
            raise ValueError(
                f"hidden_size={H} is too large for the CUDA per-step kernels: one batch row "
                f"needs {shared(rows, tj)} bytes of shared memory, more than the "
                f"{SHARED_BUDGET} available; use a smaller hidden_size or device='cpu'"
            )
        return rows, tj

    # -- layers -----------------------------------------------------------------------
    def layer_forward(self, cell, x, p, h0, c0, lengths, options, requires_grad=True):
        """Forward one layer and direction; returns ``(out, h_n, c_n, cache)`` on the device.

        ``cell`` names the entry of the registry ``numrnn.cells.CELLS`` whose CUDA functions
        run. ``requires_grad`` is accepted for the CPU backend's sake; the device keeps all
        steps. Each cell's driver: one GEMM for the input projection of all steps (biases
        folded in), :meth:`_time_loop`, then the final state.
        """
        forward, _ = CELLS[cell].layer(self.name)
        T, B, _ = x.shape
        H = h0.shape[1]
        out = cuda.device_array((T, B, H), dtype=x.dtype)
        h_n = cuda.device_array((B, H), dtype=x.dtype)
        return forward(self, x, self._params(p), h0, c0, lengths, options, out, h_n)

    def _state_buffers(self, h0, B, H, dt):
        # hs (2, B, H): h_{t-1} in hs[t % 2], h_t to the other; a step reads one, writes one
        hs = cuda.device_array((2, B, H), dtype=dt)
        copy(h0, hs[0], threads=self.threads)
        return hs

    def _lstm_forward(self, x, d, h0, c0, lengths, options, out, h_n):
        T, B, _ = x.shape
        H, dt, threads = h0.shape[1], x.dtype, self.threads
        gates = cuda.device_array((T, B, 4 * H), dtype=dt)
        cells = cuda.device_array((T, B, H), dtype=dt)
        c_n = cuda.device_array((B, H), dtype=dt)
        w_peep = d["w_peep"]
        input_projection(x, d["w_ih"], d["b_ih"], d["b_hh"], 4 * H, gates, tile=self.tile)
        w_t = transpose(d["w_hh"], threads=threads)
        hs = self._state_buffers(h0, B, H, dt)
        c = cuda.device_array((B, H), dtype=dt)
        copy(c0, c, threads=threads)
        self._time_loop(
            (KL._lstm_forward_persistent,
             lambda hc, rpp: (w_t, w_peep, lengths, hs, c, out, cells, gates, hc, rpp)),
            [(KL._lstm_forward_step, KL.FORWARD,
              lambda t: (t, w_t, w_peep, lengths, hs, c, out, cells, gates))],
            range(T), H=H, B=B, K_w=H, nq=4, row_len=H, itemsize=dt.itemsize,
        )  # fmt: skip
        copy(hs[T % 2], h_n, threads=threads)
        copy(c, c_n, threads=threads)
        return out, h_n, c_n, LayerCache(x, h0, c0, lengths, out, gates, cells)

    def _gru_forward(self, x, d, h0, c0, lengths, options, out, h_n):
        T, B, _ = x.shape
        H, dt, threads = h0.shape[1], x.dtype, self.threads
        gates = cuda.device_array((T, B, 3 * H), dtype=dt)
        aux = cuda.device_array((T, B, H), dtype=dt)
        after = bool(options["reset_after"])
        # Reset after: b_hn stays inside r * (.), so only b_hr, b_hz fold into the projection.
        input_projection(
            x, d["w_ih"], d["b_ih"], d["b_hh"], 2 * H if after else 3 * H, gates, tile=self.tile
        )
        w_t = transpose(d["w_hh"], threads=threads)
        hs = self._state_buffers(h0, B, H, dt)
        if after:  # one fused kernel per step
            b_hn = d["b_hh"][2 * H :]
            persistent = (
                KG._gru_forward_persistent_after,
                lambda hc, rpp: (w_t, b_hn, lengths, hs, out, gates, aux, hc, rpp),
            )
            per_step = [(KG._gru_forward_step_after, KG.FORWARD_AFTER,
                         lambda t: (t, w_t, b_hn, lengths, hs, out, gates, aux))]  # fmt: skip
        else:  # (r h) W_hn^T needs every unit's r of the row: two kernels per step
            rh = zeros((1, B, H), dt, threads=threads)
            persistent = (
                KG._gru_forward_persistent_before,
                lambda hc, rpp: (w_t, lengths, hs, rh, out, gates, aux, hc, rpp),
            )
            per_step = [
                (KG._gru_forward_step_before_rz, KG.FORWARD_RZ,
                 lambda t: (t, w_t, lengths, hs, rh, out, gates, aux)),
                (KG._gru_forward_step_before_n, KG.FORWARD_N,
                 lambda t: (t, w_t, lengths, hs, rh, out, gates, aux)),
            ]  # fmt: skip
        self._time_loop(
            persistent, per_step, range(T), H=H, B=B, K_w=H, nq=3, row_len=H,
            itemsize=dt.itemsize,
        )  # fmt: skip
        copy(hs[T % 2] if after else hs[0], h_n, threads=threads)
        return out, h_n, None, LayerCache(x, h0, None, lengths, out, gates, aux)

    def _rnn_forward(self, x, d, h0, c0, lengths, options, out, h_n):
        T, B, _ = x.shape
        H, dt, threads = h0.shape[1], x.dtype, self.threads
        relu = options["nonlinearity"] == "relu"
        input_projection(x, d["w_ih"], d["b_ih"], d["b_hh"], H, out, tile=self.tile)
        w_t = transpose(d["w_hh"], threads=threads)
        hs = self._state_buffers(h0, B, H, dt)
        self._time_loop(
            (KR._rnn_forward_persistent, lambda hc, rpp: (w_t, lengths, relu, hs, out, hc, rpp)),
            [(KR._rnn_forward_step, KR.FORWARD, lambda t: (t, w_t, lengths, relu, hs, out))],
            range(T), H=H, B=B, K_w=H, nq=1, row_len=H, itemsize=dt.itemsize,
        )  # fmt: skip
        copy(hs[T % 2], h_n, threads=threads)
        return out, h_n, None, LayerCache(x, h0, None, lengths, out)

    def layer_backward(
        self, cell, cache, p, d_out, dh_n, dc_n, need_dx, options, d_out_owned=False,
        x_owned=False,
    ):  # fmt: skip
        """BPTT through one layer and direction; returns ``(dx, grads, dh0, dc0)``.

        ``d_out_owned`` and ``x_owned`` (the CPU backend reuses such buffers) are accepted
        and ignored; ``d_out=None`` means zeros. Everything returned is a device array (the
        network calls :meth:`to_host` on the gradients). The cache's gate buffer is consumed
        (it becomes the gate gradients dA). Each cell's driver: :meth:`_time_loop` from
        ``T - 1`` down to ``-1`` (the last step only finishes dL/dh0), then GEMMs for dX,
        dW_ih, dW_hh and fixed-order column sums for the biases.
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

    def _carried(self, src, B, H, dt):
        # the gradient carried backwards through the time loop, starting from src
        buf = cuda.device_array((B, H), dtype=dt)
        copy(src, buf, threads=self.threads)
        return buf

    def _weight_gradients(self, cache, d_in, d_rec, d, need_dx, dx, g):
        """dX, dW_ih and db_ih from the input side's gate gradients ``d_in``; dW_hh from the
        recurrent side's ``d_rec`` (the same array except for the GRU with reset_after)."""
        kw = {"tile": self.tile, "threads": self.threads}
        input_gradients(cache.x, d_in, d["w_ih"], need_dx, dx, g["w_ih"], g["b_ih"], **kw)
        recurrent_weight_gradient(cache.h0, cache.out, d_rec, g["w_hh"], tile=self.tile)

    def _lstm_backward(self, cache, d, d_out, dh_n, dc_n, need_dx, dx, g, dh0, options):
        T, B, H = cache.cells.shape
        dt, threads = cache.x.dtype, self.threads
        w_hh, w_peep, c0, cells, gates = d["w_hh"], d["w_peep"], cache.c0, cache.cells, cache.gates
        lengths = cache.lengths
        dh = self._carried(dh_n, B, H, dt)
        dc = self._carried(dc_n, B, H, dt)
        self._time_loop(
            (KL._lstm_backward_persistent,
             lambda hc, rpp: (w_hh, w_peep, lengths, c0, cells, gates, d_out, dh, dc, hc, rpp)),
            [(KL._lstm_backward_step, KL.BACKWARD,
              lambda t: (t, w_hh, w_peep, lengths, c0, cells, gates, d_out, dh, dc))],
            range(T - 1, -2, -1), H=H, B=B, K_w=4 * H, nq=1, row_len=4 * H,
            itemsize=dt.itemsize,
        )  # fmt: skip
        dc0 = cuda.device_array(c0.shape, dtype=dt)
        copy(dh, dh0, threads=threads)
        copy(dc, dc0, threads=threads)
        if options.get("peephole", False):
            KL._peephole_gradients[_blocks(H, threads), threads](c0, cells, gates, g["w_peep"])
        else:  # the CPU backend's rule; the serial (t, b) sum costs ~5 % of a large step
            g["w_peep"] = zeros(g["w_peep"].shape, dt, threads=threads)
        self._weight_gradients(cache, gates, gates, d, need_dx, dx, g)
        copy(g["b_ih"], g["b_hh"], threads=threads)
        return dc0

    def _gru_backward(self, cache, d, d_out, dh_n, dc_n, need_dx, dx, g, dh0, options):
        T, B, H = cache.out.shape
        dt, threads = cache.x.dtype, self.threads
        after = bool(options["reset_after"])
        w_hh, h0, out, gates, aux = d["w_hh"], cache.h0, cache.out, cache.gates, cache.cells
        lengths = cache.lengths
        dh = self._carried(dh_n, B, H, dt)
        dhp = zeros((B, H), dt, threads=threads)
        if after:
            d_rec = zeros((T, B, 3 * H), dt, threads=threads)
            args = (lengths, h0, out, gates, aux, d_out, d_rec, dh, dhp)
            persistent = (KG._gru_backward_persistent_after, lambda hc, rpp: (w_hh, *args, hc, rpp))
            per_step = [
                (KG._gru_backward_step_after, KG.BACKWARD_AFTER, lambda t: (t, w_hh, *args))
            ]
        else:  # dn W_hn needs every unit's dn of the row: two kernels per step
            d_n = zeros((T, B, H), dt, threads=threads)
            args = (lengths, h0, out, gates, d_out, d_n, dh, dhp)
            persistent = (
                KG._gru_backward_persistent_before,
                lambda hc, rpp: (w_hh, *args, hc, rpp),
            )
            per_step = [
                (KG._gru_backward_step_before_zn, KG.BACKWARD_ZN, lambda t: (t, w_hh, *args)),
                (KG._gru_backward_step_before_r, KG.BACKWARD_R,
                 lambda t: (t, w_hh, *args) if t >= 0 else None),
            ]  # fmt: skip
        self._time_loop(
            persistent, per_step, range(T - 1, -2, -1), H=H, B=B, K_w=3 * H, nq=1,
            row_len=3 * H if after else 2 * H, itemsize=dt.itemsize,
        )  # fmt: skip
        if after:
            self._weight_gradients(cache, gates, d_rec, d, need_dx, dx, g)
            column_sums(d_rec.reshape(T * B, 3 * H), g["b_hh"], threads=threads)
        else:
            self._weight_gradients(cache, gates, gates, d, need_dx, dx, g)
            # r and z rows see h_{t-1}; the n rows see r*h (kept in aux).
            gemm(
                d_n.reshape(T * B, H), aux.reshape(T * B, H), g["w_hh"][2 * H :], trans_a=True,
                tile=self.tile,
            )  # fmt: skip
            copy(g["b_ih"], g["b_hh"], threads=threads)
        copy(dh, dh0, threads=threads)
        return None

    def _rnn_backward(self, cache, d, d_out, dh_n, dc_n, need_dx, dx, g, dh0, options):
        T, B, H = cache.out.shape
        dt, threads = cache.x.dtype, self.threads
        relu = options["nonlinearity"] == "relu"
        w_hh, out, lengths = d["w_hh"], cache.out, cache.lengths
        d_pre = zeros((T, B, H), dt, threads=threads)
        dh = self._carried(dh_n, B, H, dt)
        self._time_loop(
            (KR._rnn_backward_persistent,
             lambda hc, rpp: (w_hh, lengths, relu, out, d_out, d_pre, dh, hc, rpp)),
            [(KR._rnn_backward_step, KR.BACKWARD,
              lambda t: (t, w_hh, lengths, relu, out, d_out, d_pre, dh))],
            range(T - 1, -2, -1), H=H, B=B, K_w=H, nq=1, row_len=H, itemsize=dt.itemsize,
        )  # fmt: skip
        copy(dh, dh0, threads=threads)
        self._weight_gradients(cache, d_pre, d_pre, d, need_dx, dx, g)
        copy(g["b_ih"], g["b_hh"], threads=threads)
        return None


for _name in CELLS:  # the CUDA functions of every cell of the registry
    CELLS[_name].register(
        CUDABackend.name,
        getattr(CUDABackend, f"_{_name}_forward"),
        getattr(CUDABackend, f"_{_name}_backward"),
    )

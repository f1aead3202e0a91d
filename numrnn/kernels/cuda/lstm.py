"""LSTM forward and BPTT on the GPU (same contract as :mod:`numrnn.kernels.cpu.lstm`).

Per step ONE fused kernel: each thread owns hidden unit ``j`` of batch row ``b`` and forms
its four gates' ``h_{t-1} W_hh^T`` entries from ``h_{t-1}[b]`` staged in shared memory
(``W_hh^T`` pre-transposed so the reads coalesce over ``j``), then the cell update.
Peephole weight gradients are reduced after the loop, one thread per unit in fixed order.
"""

from __future__ import annotations

from numba import cuda

from numrnn.kernels.cuda.common import (
    DEFAULT_THREADS,
    DEFAULT_TILE,
    ONE,
    ZERO,
    _blocks,
    copy,
    d_sigmoid,
    d_tanh,
    input_gradients,
    input_projection,
    load_row,
    recurrent_weight_gradient,
    row_dot,
    transpose,
)


@cuda.jit
def _lstm_forward_step(t, w_hh_t, w_peep, lengths, h_in, h_out, c, out, cells, gates):
    b = cuda.blockIdx.y
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H = h_in.shape[1]
    sh = cuda.shared.array(0, dtype=out.dtype)
    load_row(sh, h_in[b], H)
    cuda.syncthreads()
    if j < H:
        if t < lengths[b]:
            ai = ZERO
            af = ZERO
            ag = ZERO
            ao = ZERO
            for k in range(H):
                hk = sh[k]
                ai += hk * w_hh_t[k, j]
                af += hk * w_hh_t[k, H + j]
                ag += hk * w_hh_t[k, 2 * H + j]
                ao += hk * w_hh_t[k, 3 * H + j]
            cp = c[b, j]
            i = d_sigmoid(gates[t, b, j] + ai + w_peep[0, j] * cp)
            f = d_sigmoid(gates[t, b, H + j] + af + w_peep[1, j] * cp)
            g = d_tanh(gates[t, b, 2 * H + j] + ag)
            cn = f * cp + i * g
            o = d_sigmoid(gates[t, b, 3 * H + j] + ao + w_peep[2, j] * cn)
            hn = o * d_tanh(cn)
            gates[t, b, j] = i
            gates[t, b, H + j] = f
            gates[t, b, 2 * H + j] = g
            gates[t, b, 3 * H + j] = o
            c[b, j] = cn
            h_out[b, j] = hn
            out[t, b, j] = hn
        else:
            out[t, b, j] = ZERO
            h_out[b, j] = h_in[b, j]
        cells[t, b, j] = c[b, j]


@cuda.jit
def _lstm_backward_step(t, w_hh, w_peep, lengths, c0, cells, gates, d_out, dh, dc):
    """Step ``t`` of BPTT (``t = -1`` only finishes ``dh`` = dL/dh0).

    ``dh[b, j]`` is dL/dh_t: ``gates[t+1] @ W_hh`` (gates already hold dA there) when
    step t+1 is valid, else carried. ``dc`` is updated in place (element-owned).
    """
    b = cuda.blockIdx.y
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    T = gates.shape[0]
    H = dh.shape[1]
    sh = cuda.shared.array(0, dtype=gates.dtype)
    nxt = t + 1 < T and t + 1 < lengths[b]
    if nxt:
        load_row(sh, gates[t + 1, b], 4 * H)
    cuda.syncthreads()
    if j < H:
        s = dh[b, j]
        if nxt:
            s = row_dot(sh, w_hh, 4 * H, j)
        dh[b, j] = s
        if t >= 0:
            if t < lengths[b]:
                i = gates[t, b, j]
                f = gates[t, b, H + j]
                g = gates[t, b, 2 * H + j]
                o = gates[t, b, 3 * H + j]
                cn = cells[t, b, j]
                cp = cells[t - 1, b, j] if t > 0 else c0[b, j]
                tc = d_tanh(cn)
                dht = d_out[t, b, j] + s
                dao = dht * tc * o * (ONE - o)
                dct = dc[b, j] + dht * o * (ONE - tc * tc) + dao * w_peep[2, j]
                dai = dct * g * i * (ONE - i)
                daf = dct * cp * f * (ONE - f)
                dag = dct * i * (ONE - g * g)
                dc[b, j] = dct * f + dai * w_peep[0, j] + daf * w_peep[1, j]
                gates[t, b, j] = dai
                gates[t, b, H + j] = daf
                gates[t, b, 2 * H + j] = dag
                gates[t, b, 3 * H + j] = dao
            else:
                gates[t, b, j] = ZERO
                gates[t, b, H + j] = ZERO
                gates[t, b, 2 * H + j] = ZERO
                gates[t, b, 3 * H + j] = ZERO


@cuda.jit
def _peephole_gradients(c0, cells, d_gates, dw_peep):
    """``dw_ci = sum dA_i c_{t-1}``, ``dw_cf = sum dA_f c_{t-1}``, ``dw_co = sum dA_o c_t``.

    One thread per unit, summing over (t, b) in a fixed order (deterministic, no atomics);
    padded steps have zero ``dA`` and add nothing.
    """
    j = cuda.grid(1)
    T, B, H = cells.shape
    if j < H:
        si = ZERO
        sf = ZERO
        so = ZERO
        for t in range(T):
            for b in range(B):
                cp = cells[t - 1, b, j] if t > 0 else c0[b, j]
                si += d_gates[t, b, j] * cp
                sf += d_gates[t, b, H + j] * cp
                so += d_gates[t, b, 3 * H + j] * cells[t, b, j]
        dw_peep[0, j] = si
        dw_peep[1, j] = sf
        dw_peep[2, j] = so


def lstm_forward(x, w_ih, w_hh, b_ih, b_hh, w_peep, h0, c0, lengths, out, cells, gates, h_n,
                 c_n, *, tile=DEFAULT_TILE, threads=DEFAULT_THREADS):
    """Run one LSTM layer in one direction; device arrays, arguments as the CPU kernel.

    ``gates`` (T, B, 4H) receives the activated i, f, g, o; ``cells`` c_t; ``out`` h_t.
    ``tile`` is the GEMM tile edge, ``threads`` the threads per block of the step kernel.
    """
    T, B, _ = x.shape
    H = h0.shape[1]
    input_projection(x, w_ih, b_ih, b_hh, 4 * H, gates, tile=tile)
    w_t = transpose(w_hh, threads=threads)
    hs = [cuda.device_array((B, H), dtype=x.dtype) for _ in range(2)]
    c = cuda.device_array((B, H), dtype=x.dtype)
    copy(h0, hs[0], threads=threads)
    copy(c0, c, threads=threads)
    grid = (_blocks(H, threads), B)
    shared = H * x.dtype.itemsize
    for t in range(T):
        _lstm_forward_step[grid, threads, 0, shared](
            t, w_t, w_peep, lengths, hs[t % 2], hs[(t + 1) % 2], c, out, cells, gates
        )
    copy(hs[T % 2], h_n, threads=threads)
    copy(c, c_n, threads=threads)


def lstm_backward(x, w_ih, w_hh, w_peep, h0, c0, lengths, out, cells, gates, d_out, dh_n, dc_n,
                  need_dx, dx, dw_ih, dw_hh, db_ih, db_hh, dw_peep, dh0, dc0, *,
                  tile=DEFAULT_TILE, threads=DEFAULT_THREADS):  # fmt: skip
    """Exact BPTT through one LSTM layer and direction (``gates`` becomes dA)."""
    T, B, _ = x.shape
    H = h0.shape[1]
    dh = cuda.device_array((B, H), dtype=x.dtype)
    dc = cuda.device_array((B, H), dtype=x.dtype)
    copy(dh_n, dh, threads=threads)
    copy(dc_n, dc, threads=threads)
    grid = (_blocks(H, threads), B)
    shared = 4 * H * x.dtype.itemsize
    for t in range(T - 1, -2, -1):
        _lstm_backward_step[grid, threads, 0, shared](
            t, w_hh, w_peep, lengths, c0, cells, gates, d_out, dh, dc
        )
    copy(dh, dh0, threads=threads)
    copy(dc, dc0, threads=threads)
    _peephole_gradients[_blocks(H, threads), threads](c0, cells, gates, dw_peep)
    input_gradients(x, gates, w_ih, need_dx, dx, dw_ih, db_ih, tile=tile, threads=threads)
    recurrent_weight_gradient(h0, out, gates, dw_hh, tile=tile)
    copy(db_ih, db_hh, threads=threads)

"""LSTM forward and BPTT on the GPU (same contract as :mod:`numrnn.kernels.cpu.lstm`).

Two ways through the time loop, same math and same stored activations (see
:mod:`numrnn.kernels.cuda.rnn`): per step ONE fused kernel whose blocks cover ``tj`` hidden
units of ``rows`` batch rows (``W_hh^T`` tiles in shared memory reused by the rows; each
thread forms its unit's four gate entries, then the cell update), or one persistent
cooperative kernel for all steps with the block's ``W_hh`` slice resident in shared memory.
Peephole weight gradients are reduced after the loop, one thread per unit in fixed order.
"""

from __future__ import annotations

from numba import cuda

from numrnn.kernels.cuda.common import (
    ONE,
    ZERO,
    d_sigmoid,
    d_tanh,
    load_slice,
    resident_dots,
    stage_own_rows,
    stage_rows,
    tiled_dots,
)


# ----------------------------------------------------------------------------- element math
@cuda.jit(device=True, inline=True)
def _fwd_elem(t, b, j, ai, af, ag, ao, w_peep, lengths, hs, pin, c, out, cells, gates):
    """Cell update of unit j, row b at step t; ``gates[t]`` holds the projection on entry."""
    H = c.shape[1]
    if t < lengths[b]:
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
        hs[1 - pin, b, j] = hn
        out[t, b, j] = hn
    else:
        out[t, b, j] = ZERO
        hs[1 - pin, b, j] = hs[pin, b, j]
    cells[t, b, j] = c[b, j]


@cuda.jit(device=True, inline=True)
def _bwd_elem(t, b, j, s_rec, w_peep, lengths, c0, cells, gates, d_out, dh, dc):
    """dL/dh_t = ``s_rec`` (= dA[t+1] @ W_hh) if step t+1 is valid, else carried."""
    T = gates.shape[0]
    H = dh.shape[1]
    s = dh[b, j]
    if t + 1 < T and t + 1 < lengths[b]:
        s = s_rec
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


# ----------------------------------------------------------------------------- per step
@cuda.jit
def _lstm_forward_step(t, w_hh_t, w_peep, lengths, hs, pin, c, out, cells, gates, kt):
    """Step ``t``; ``hs`` (2, B, H): h_{t-1} in ``hs[pin]``, h_t to ``hs[1 - pin]``."""
    B = out.shape[1]
    H = out.shape[2]
    tj = cuda.blockDim.x
    R = cuda.blockDim.y
    j0 = cuda.blockIdx.x * tj
    j = j0 + cuda.threadIdx.x
    b = cuda.blockIdx.y * R + cuda.threadIdx.y
    sh = cuda.shared.array(0, dtype=out.dtype)
    stage_rows(sh, 0, hs, pin, lengths, cuda.blockIdx.y * R, R, 1, H, False)
    ai, af, ag, ao = tiled_dots(sh, 0, H, w_hh_t, 0, H, 4, j0, tj, H, R * H, kt)
    if j < H and b < B:
        _fwd_elem(t, b, j, ai, af, ag, ao, w_peep, lengths, hs, pin, c, out, cells, gates)


@cuda.jit
def _lstm_backward_step(t, w_hh, w_peep, lengths, c0, cells, gates, d_out, dh, dc, kt):
    """Step ``t`` of BPTT (``t = -1`` only finishes ``dh`` = dL/dh0).

    ``dh[b, j]`` is dL/dh_t: ``gates[t+1] @ W_hh`` (gates already hold dA there) when
    step t+1 is valid, else carried. ``dc`` is updated in place (element-owned).
    """
    B = dh.shape[0]
    H = dh.shape[1]
    tj = cuda.blockDim.x
    R = cuda.blockDim.y
    j0 = cuda.blockIdx.x * tj
    j = j0 + cuda.threadIdx.x
    b = cuda.blockIdx.y * R + cuda.threadIdx.y
    sh = cuda.shared.array(0, dtype=gates.dtype)
    stage_rows(sh, 0, gates, t + 1, lengths, cuda.blockIdx.y * R, R, 1, 4 * H, True)
    s, _, _, _ = tiled_dots(sh, 0, 4 * H, w_hh, 0, H, 1, j0, tj, H, R * 4 * H, kt)
    if j < H and b < B:
        _bwd_elem(t, b, j, s, w_peep, lengths, c0, cells, gates, d_out, dh, dc)


# ----------------------------------------------------------------------------- persistent
@cuda.jit
def _lstm_forward_persistent(w_hh_t, w_peep, lengths, hs, c, out, cells, gates, hc, rpp):
    """All steps in one cooperative launch; block (x, y) owns units ``[x*hc, x*hc + hc)`` of
    rows ``y, y + gridDim.y, ...`` with that slice of ``W_hh^T`` (4 gates) in shared memory.
    """
    T, B, H = out.shape
    c0 = cuda.blockIdx.x * hc
    gy = cuda.gridDim.y
    mine = (B - cuda.blockIdx.y + gy - 1) // gy
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    grid = cuda.cg.this_grid()
    sh = cuda.shared.array(0, dtype=out.dtype)
    load_slice(sh, w_hh_t, H, 0, H, 4, c0, hc, H)
    xoff = 4 * H * hc
    cuda.syncthreads()
    for t in range(T):
        pin = t % 2
        for m0 in range(0, mine, rpp):
            n = min(rpp, mine - m0)
            stage_own_rows(sh, xoff, hs, pin, lengths, m0, n, H, False)
            cuda.syncthreads()
            for e in range(tid, n * hc, nt):
                r = e // hc
                cc = e - r * hc
                j = c0 + cc
                if j < H:
                    b = cuda.blockIdx.y + (m0 + r) * gy
                    ai, af, ag, ao = resident_dots(sh, xoff + r * H, H, 0, 4, 0, 4, cc, hc)
                    _fwd_elem(
                        t, b, j, ai, af, ag, ao, w_peep, lengths, hs, pin, c, out, cells, gates
                    )
            cuda.syncthreads()
        grid.sync()


@cuda.jit
def _lstm_backward_persistent(w_hh, w_peep, lengths, c0, cells, gates, d_out, dh, dc, hc, rpp):
    """All BPTT steps (T-1 down to -1) in one cooperative launch (see the forward)."""
    T, B, H = cells.shape
    j0 = cuda.blockIdx.x * hc
    gy = cuda.gridDim.y
    mine = (B - cuda.blockIdx.y + gy - 1) // gy
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    grid = cuda.cg.this_grid()
    sh = cuda.shared.array(0, dtype=gates.dtype)
    load_slice(sh, w_hh, 4 * H, 0, H, 1, j0, hc, H)
    xoff = 4 * H * hc
    cuda.syncthreads()
    for t in range(T - 1, -2, -1):
        for m0 in range(0, mine, rpp):
            n = min(rpp, mine - m0)
            stage_own_rows(sh, xoff, gates, t + 1, lengths, m0, n, 4 * H, True)
            cuda.syncthreads()
            for e in range(tid, n * hc, nt):
                r = e // hc
                cc = e - r * hc
                j = j0 + cc
                if j < H:
                    b = cuda.blockIdx.y + (m0 + r) * gy
                    s, _, _, _ = resident_dots(sh, xoff + r * 4 * H, 4 * H, 0, 1, 0, 1, cc, hc)
                    _bwd_elem(t, b, j, s, w_peep, lengths, c0, cells, gates, d_out, dh, dc)
            cuda.syncthreads()
        grid.sync()


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

"""GRU forward and BPTT on the GPU (same contract as :mod:`numrnn.kernels.cpu.gru`).

``reset_after=True``: one fused kernel per step (r, z and ``h W_hn^T + b_hn`` all need only
``h_{t-1}``). ``reset_after=False`` needs ``(r h) W_hn^T``, which depends on every unit's r
of the row: two kernels per step (r, z and r*h; then n and h), likewise in BPTT.
"""

from __future__ import annotations

from numba import cuda

from numrnn.kernels.cuda.common import (
    DEFAULT_THREADS,
    DEFAULT_TILE,
    ONE,
    ZERO,
    _blocks,
    column_sums,
    copy,
    d_sigmoid,
    d_tanh,
    gemm,
    input_gradients,
    input_projection,
    load_row,
    recurrent_weight_gradient,
    row_dot,
    transpose,
    zeros,
)


@cuda.jit
def _gru_forward_step_after(t, w_hh_t, b_hn, lengths, h_in, h_out, out, gates, aux):
    b = cuda.blockIdx.y
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H = h_in.shape[1]
    sh = cuda.shared.array(0, dtype=out.dtype)
    load_row(sh, h_in[b], H)
    cuda.syncthreads()
    if j < H:
        if t < lengths[b]:
            ar = ZERO
            az = ZERO
            an = ZERO
            for k in range(H):
                hk = sh[k]
                ar += hk * w_hh_t[k, j]
                az += hk * w_hh_t[k, H + j]
                an += hk * w_hh_t[k, 2 * H + j]
            r = d_sigmoid(gates[t, b, j] + ar)
            z = d_sigmoid(gates[t, b, H + j] + az)
            hn = an + b_hn[j]
            n = d_tanh(gates[t, b, 2 * H + j] + r * hn)
            v = (ONE - z) * n + z * h_in[b, j]
            gates[t, b, j] = r
            gates[t, b, H + j] = z
            gates[t, b, 2 * H + j] = n
            aux[t, b, j] = hn
            h_out[b, j] = v
            out[t, b, j] = v
        else:
            # aux is defined on padding too, so results never depend on stale memory.
            out[t, b, j] = ZERO
            aux[t, b, j] = ZERO
            h_out[b, j] = h_in[b, j]


@cuda.jit
def _gru_forward_step_before_rz(t, w_hh_t, lengths, h, gates, rh):
    """Phase 1 of step ``t`` (reset before): r, z and ``rh = r * h_{t-1}``."""
    b = cuda.blockIdx.y
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H = h.shape[1]
    sh = cuda.shared.array(0, dtype=gates.dtype)
    load_row(sh, h[b], H)
    cuda.syncthreads()
    if j < H and t < lengths[b]:
        ar = ZERO
        az = ZERO
        for k in range(H):
            hk = sh[k]
            ar += hk * w_hh_t[k, j]
            az += hk * w_hh_t[k, H + j]
        r = d_sigmoid(gates[t, b, j] + ar)
        gates[t, b, j] = r
        gates[t, b, H + j] = d_sigmoid(gates[t, b, H + j] + az)
        rh[b, j] = r * h[b, j]


@cuda.jit
def _gru_forward_step_before_n(t, w_hh_t, lengths, h, gates, rh, out, aux):
    """Phase 2 of step ``t`` (reset before): ``n = tanh(. + (r h) W_hn^T)``, h updated in place."""
    b = cuda.blockIdx.y
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H = h.shape[1]
    sh = cuda.shared.array(0, dtype=gates.dtype)
    valid = t < lengths[b]
    if valid:
        load_row(sh, rh[b], H)
    cuda.syncthreads()
    if j < H:
        if valid:
            an = ZERO
            for k in range(H):
                an += sh[k] * w_hh_t[k, 2 * H + j]
            z = gates[t, b, H + j]
            n = d_tanh(gates[t, b, 2 * H + j] + an)
            v = (ONE - z) * n + z * h[b, j]
            gates[t, b, 2 * H + j] = n
            aux[t, b, j] = sh[j]
            h[b, j] = v
            out[t, b, j] = v
        else:
            out[t, b, j] = ZERO
            aux[t, b, j] = ZERO


@cuda.jit
def _gru_backward_step_after(t, w_hh, lengths, h0, out, gates, aux, d_out, d_rec, dh, dhp):
    """Step ``t`` of BPTT, reset after (``t = -1`` only finishes ``dh`` = dL/dh0).

    dL/dh_t = ``dhp + d_rec[t+1] @ W_hh`` when step t+1 is valid (``dhp`` = dht*z from it),
    else carried. ``d_rec`` is dA on the recurrent side: [dr, dz, dn * r].
    """
    b = cuda.blockIdx.y
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    T = gates.shape[0]
    H = dh.shape[1]
    sh = cuda.shared.array(0, dtype=gates.dtype)
    nxt = t + 1 < T and t + 1 < lengths[b]
    if nxt:
        load_row(sh, d_rec[t + 1, b], 3 * H)
    cuda.syncthreads()
    if j < H:
        s = dh[b, j]
        if nxt:
            s = dhp[b, j] + row_dot(sh, w_hh, 3 * H, j)
        dh[b, j] = s
        if t >= 0:
            if t < lengths[b]:
                hprev = out[t - 1, b, j] if t > 0 else h0[b, j]
                r = gates[t, b, j]
                z = gates[t, b, H + j]
                n = gates[t, b, 2 * H + j]
                dht = d_out[t, b, j] + s
                dan = dht * (ONE - z) * (ONE - n * n)
                dar = dan * aux[t, b, j] * r * (ONE - r)
                daz = dht * (hprev - n) * z * (ONE - z)
                dhp[b, j] = dht * z
                gates[t, b, j] = dar
                gates[t, b, H + j] = daz
                gates[t, b, 2 * H + j] = dan
                d_rec[t, b, j] = dar
                d_rec[t, b, H + j] = daz
                d_rec[t, b, 2 * H + j] = dan * r
            else:
                for q in range(3):
                    gates[t, b, q * H + j] = ZERO
                    d_rec[t, b, q * H + j] = ZERO


@cuda.jit
def _gru_backward_step_before_zn(t, w_rz, lengths, h0, out, gates, d_out, d_n, dh, dhp):
    """Phase 1 of BPTT step ``t``, reset before: incoming dL/dh_t, then dz, dn."""
    b = cuda.blockIdx.y
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    T = gates.shape[0]
    H = dh.shape[1]
    sh = cuda.shared.array(0, dtype=gates.dtype)
    nxt = t + 1 < T and t + 1 < lengths[b]
    if nxt:
        load_row(sh, gates[t + 1, b], 2 * H)
    cuda.syncthreads()
    if j < H:
        s = dh[b, j]
        if nxt:
            s = dhp[b, j] + row_dot(sh, w_rz, 2 * H, j)
        dh[b, j] = s
        if t >= 0:
            if t < lengths[b]:
                hprev = out[t - 1, b, j] if t > 0 else h0[b, j]
                z = gates[t, b, H + j]
                n = gates[t, b, 2 * H + j]
                dht = d_out[t, b, j] + s
                dan = dht * (ONE - z) * (ONE - n * n)
                gates[t, b, H + j] = dht * (hprev - n) * z * (ONE - z)
                gates[t, b, 2 * H + j] = dan
                d_n[t, b, j] = dan
                dhp[b, j] = dht * z
            else:
                for q in range(3):
                    gates[t, b, q * H + j] = ZERO
                d_n[t, b, j] = ZERO


@cuda.jit
def _gru_backward_step_before_r(t, w_n, lengths, h0, out, gates, d_n, dhp):
    """Phase 2 of BPTT step ``t``, reset before: ``d(rh) = dn W_hn``, then dr and dh += d(rh) r."""
    b = cuda.blockIdx.y
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H = dhp.shape[1]
    sh = cuda.shared.array(0, dtype=gates.dtype)
    valid = t < lengths[b]
    if valid:
        load_row(sh, d_n[t, b], H)
    cuda.syncthreads()
    if j < H and valid:
        drh = row_dot(sh, w_n, H, j)
        hprev = out[t - 1, b, j] if t > 0 else h0[b, j]
        r = gates[t, b, j]
        gates[t, b, j] = drh * hprev * r * (ONE - r)
        dhp[b, j] += drh * r


def gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reset_after, out, gates, aux, h_n, *,
                tile=DEFAULT_TILE, threads=DEFAULT_THREADS):
    """Run one GRU layer in one direction; device arrays, arguments as the CPU kernel.

    ``tile`` is the GEMM tile edge, ``threads`` the threads per block of the step kernels.
    """
    T, B, _ = x.shape
    H = h0.shape[1]
    # Reset after: b_hn stays inside r * (.), so only b_hr, b_hz fold into the projection.
    input_projection(x, w_ih, b_ih, b_hh, 2 * H if reset_after else 3 * H, gates, tile=tile)
    w_t = transpose(w_hh, threads=threads)
    grid = (_blocks(H, threads), B)
    shared = H * x.dtype.itemsize
    if reset_after:
        hs = [cuda.device_array((B, H), dtype=x.dtype) for _ in range(2)]
        copy(h0, hs[0], threads=threads)
        b_hn = b_hh[2 * H :]
        for t in range(T):
            _gru_forward_step_after[grid, threads, 0, shared](
                t, w_t, b_hn, lengths, hs[t % 2], hs[(t + 1) % 2], out, gates, aux
            )
        copy(hs[T % 2], h_n, threads=threads)
    else:
        h = cuda.device_array((B, H), dtype=x.dtype)
        copy(h0, h, threads=threads)
        rh = zeros((B, H), x.dtype, threads=threads)
        for t in range(T):
            _gru_forward_step_before_rz[grid, threads, 0, shared](t, w_t, lengths, h, gates, rh)
            _gru_forward_step_before_n[grid, threads, 0, shared](
                t, w_t, lengths, h, gates, rh, out, aux
            )
        copy(h, h_n, threads=threads)


def gru_backward(x, w_ih, w_hh, h0, lengths, reset_after, out, gates, aux, d_out, dh_n,
                 need_dx, dx, dw_ih, dw_hh, db_ih, db_hh, dh0, *,
                 tile=DEFAULT_TILE, threads=DEFAULT_THREADS):  # fmt: skip
    """Exact BPTT through one GRU layer and direction (``gates`` becomes dA, input side)."""
    T, B, _ = x.shape
    H = h0.shape[1]
    dt = x.dtype
    dh = cuda.device_array((B, H), dtype=dt)
    copy(dh_n, dh, threads=threads)
    dhp = zeros((B, H), dt, threads=threads)
    grid = (_blocks(H, threads), B)
    if reset_after:
        d_rec = zeros((T, B, 3 * H), dt, threads=threads)
        shared = 3 * H * dt.itemsize
        for t in range(T - 1, -2, -1):
            _gru_backward_step_after[grid, threads, 0, shared](
                t, w_hh, lengths, h0, out, gates, aux, d_out, d_rec, dh, dhp
            )
        input_gradients(x, gates, w_ih, need_dx, dx, dw_ih, db_ih, tile=tile, threads=threads)
        recurrent_weight_gradient(h0, out, d_rec, dw_hh, tile=tile)
        column_sums(d_rec.reshape(T * B, 3 * H), db_hh, threads=threads)
    else:
        d_n = zeros((T, B, H), dt, threads=threads)
        w_rz = w_hh[: 2 * H]
        w_n = w_hh[2 * H :]
        for t in range(T - 1, -2, -1):
            _gru_backward_step_before_zn[grid, threads, 0, 2 * H * dt.itemsize](
                t, w_rz, lengths, h0, out, gates, d_out, d_n, dh, dhp
            )
            if t >= 0:
                _gru_backward_step_before_r[grid, threads, 0, H * dt.itemsize](
                    t, w_n, lengths, h0, out, gates, d_n, dhp
                )
        input_gradients(x, gates, w_ih, need_dx, dx, dw_ih, db_ih, tile=tile, threads=threads)
        # r and z rows see h_{t-1}; the n rows see r*h (kept in aux).
        recurrent_weight_gradient(h0, out, gates, dw_hh, tile=tile)
        gemm(d_n.reshape(T * B, H), aux.reshape(T * B, H), dw_hh[2 * H :], trans_a=True, tile=tile)
        copy(db_ih, db_hh, threads=threads)
    copy(dh, dh0, threads=threads)

"""GRU forward and BPTT on the GPU (same contract as :mod:`numrnn.kernels.cpu.gru`).

Two ways through the time loop, same math and same stored activations (see
:mod:`numrnn.kernels.cuda.rnn`): per-step kernels whose blocks cover ``tj`` hidden units of
``rows`` batch rows (``W_hh`` tiles in shared memory reused by the rows), or one persistent
cooperative kernel for all steps with the block's ``W_hh`` slice resident in shared memory.

``reset_after=True``: one fused kernel per step (r, z and ``h W_hn^T + b_hn`` all need only
``h_{t-1}``). ``reset_after=False`` needs ``(r h) W_hn^T``, which depends on every unit's r
of the row: two kernels per step (r, z and r*h; then n and h), likewise in BPTT; the
persistent kernel separates the two phases with a grid-wide sync.
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
def _fwd_after_elem(t, b, j, ar, az, an, b_hn, lengths, hs, pin, out, gates, aux):
    H = out.shape[2]
    if t < lengths[b]:
        r = d_sigmoid(gates[t, b, j] + ar)
        z = d_sigmoid(gates[t, b, H + j] + az)
        hn = an + b_hn[j]
        n = d_tanh(gates[t, b, 2 * H + j] + r * hn)
        v = (ONE - z) * n + z * hs[pin, b, j]
        gates[t, b, j] = r
        gates[t, b, H + j] = z
        gates[t, b, 2 * H + j] = n
        aux[t, b, j] = hn
        hs[1 - pin, b, j] = v
        out[t, b, j] = v
    else:
        # aux is defined on padding too, so results never depend on stale memory.
        out[t, b, j] = ZERO
        aux[t, b, j] = ZERO
        hs[1 - pin, b, j] = hs[pin, b, j]


@cuda.jit(device=True, inline=True)
def _fwd_before_rz_elem(t, b, j, ar, az, lengths, h, gates, rh):
    """Phase 1 (reset before): r, z and ``rh = r * h_{t-1}``; ``h``, ``rh`` are (1, B, H)."""
    H = h.shape[2]
    if t < lengths[b]:
        r = d_sigmoid(gates[t, b, j] + ar)
        gates[t, b, j] = r
        gates[t, b, H + j] = d_sigmoid(gates[t, b, H + j] + az)
        rh[0, b, j] = r * h[0, b, j]


@cuda.jit(device=True, inline=True)
def _fwd_before_n_elem(t, b, j, an, lengths, h, gates, rh, out, aux):
    """Phase 2 (reset before): ``n = tanh(. + (r h) W_hn^T)``, h updated in place."""
    H = h.shape[2]
    if t < lengths[b]:
        z = gates[t, b, H + j]
        n = d_tanh(gates[t, b, 2 * H + j] + an)
        v = (ONE - z) * n + z * h[0, b, j]
        gates[t, b, 2 * H + j] = n
        aux[t, b, j] = rh[0, b, j]
        h[0, b, j] = v
        out[t, b, j] = v
    else:
        out[t, b, j] = ZERO
        aux[t, b, j] = ZERO


@cuda.jit(device=True, inline=True)
def _bwd_after_elem(t, b, j, s_rec, lengths, h0, out, gates, aux, d_out, d_rec, dh, dhp):
    """dL/dh_t = ``dhp + d_rec[t+1] @ W_hh`` (``s_rec`` the product) if step t+1 is valid."""
    T = gates.shape[0]
    H = dh.shape[1]
    s = dh[b, j]
    if t + 1 < T and t + 1 < lengths[b]:
        s = dhp[b, j] + s_rec
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


@cuda.jit(device=True, inline=True)
def _bwd_before_zn_elem(t, b, j, s_rec, lengths, h0, out, gates, d_out, d_n, dh, dhp):
    """Phase 1 of BPTT step ``t``, reset before: incoming dL/dh_t, then dz, dn."""
    T = gates.shape[0]
    H = dh.shape[1]
    s = dh[b, j]
    if t + 1 < T and t + 1 < lengths[b]:
        s = dhp[b, j] + s_rec
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


@cuda.jit(device=True, inline=True)
def _bwd_before_r_elem(t, b, j, drh, lengths, h0, out, gates, dhp):
    """Phase 2, reset before: ``drh = (dn W_hn)[j]``, then dr and dh += drh * r."""
    if t < lengths[b]:
        hprev = out[t - 1, b, j] if t > 0 else h0[b, j]
        r = gates[t, b, j]
        gates[t, b, j] = drh * hprev * r * (ONE - r)
        dhp[b, j] += drh * r


# ----------------------------------------------------------------------------- per step
@cuda.jit(device=True, inline=True)
def _unit_row():
    """(j0, j, b, rows per block) of a per-step block of (tj, rows) threads."""
    j0 = cuda.blockIdx.x * cuda.blockDim.x
    return (
        j0, j0 + cuda.threadIdx.x, cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y,
        cuda.blockDim.y,
    )  # fmt: skip


@cuda.jit
def _gru_forward_step_after(t, w_hh_t, b_hn, lengths, hs, pin, out, gates, aux, kt):
    B = out.shape[1]
    H = out.shape[2]
    j0, j, b, R = _unit_row()
    sh = cuda.shared.array(0, dtype=out.dtype)
    stage_rows(sh, 0, hs, pin, lengths, cuda.blockIdx.y * R, R, 1, H, False)
    ar, az, an, _ = tiled_dots(sh, 0, H, w_hh_t, 0, H, 3, j0, cuda.blockDim.x, H, R * H, kt)
    if j < H and b < B:
        _fwd_after_elem(t, b, j, ar, az, an, b_hn, lengths, hs, pin, out, gates, aux)


@cuda.jit
def _gru_forward_step_before_rz(t, w_hh_t, lengths, h, gates, rh, kt):
    """Phase 1 of step ``t`` (reset before): r, z and ``rh = r * h_{t-1}``."""
    B = h.shape[1]
    H = h.shape[2]
    j0, j, b, R = _unit_row()
    sh = cuda.shared.array(0, dtype=gates.dtype)
    stage_rows(sh, 0, h, 0, lengths, cuda.blockIdx.y * R, R, 1, H, False)
    ar, az, _, _ = tiled_dots(sh, 0, H, w_hh_t, 0, H, 2, j0, cuda.blockDim.x, H, R * H, kt)
    if j < H and b < B:
        _fwd_before_rz_elem(t, b, j, ar, az, lengths, h, gates, rh)


@cuda.jit
def _gru_forward_step_before_n(t, w_hh_t, lengths, h, gates, rh, out, aux, kt):
    """Phase 2 of step ``t`` (reset before): ``n = tanh(. + (r h) W_hn^T)``, h updated in place."""
    B = h.shape[1]
    H = h.shape[2]
    j0, j, b, R = _unit_row()
    sh = cuda.shared.array(0, dtype=gates.dtype)
    stage_rows(sh, 0, rh, 0, lengths, cuda.blockIdx.y * R, R, 1, H, False)
    an, _, _, _ = tiled_dots(sh, 0, H, w_hh_t, 2 * H, H, 1, j0, cuda.blockDim.x, H, R * H, kt)
    if j < H and b < B:
        _fwd_before_n_elem(t, b, j, an, lengths, h, gates, rh, out, aux)


@cuda.jit
def _gru_backward_step_after(t, w_hh, lengths, h0, out, gates, aux, d_out, d_rec, dh, dhp, kt):
    """Step ``t`` of BPTT, reset after (``t = -1`` only finishes ``dh`` = dL/dh0).

    ``d_rec`` is dA on the recurrent side: [dr, dz, dn * r].
    """
    B = dh.shape[0]
    H = dh.shape[1]
    j0, j, b, R = _unit_row()
    sh = cuda.shared.array(0, dtype=gates.dtype)
    stage_rows(sh, 0, d_rec, t + 1, lengths, cuda.blockIdx.y * R, R, 1, 3 * H, True)
    s, _, _, _ = tiled_dots(sh, 0, 3 * H, w_hh, 0, H, 1, j0, cuda.blockDim.x, H, R * 3 * H, kt)
    if j < H and b < B:
        _bwd_after_elem(t, b, j, s, lengths, h0, out, gates, aux, d_out, d_rec, dh, dhp)


@cuda.jit
def _gru_backward_step_before_zn(t, w_rz, lengths, h0, out, gates, d_out, d_n, dh, dhp, kt):
    """Phase 1 of BPTT step ``t``, reset before: incoming dL/dh_t, then dz, dn."""
    B = dh.shape[0]
    H = dh.shape[1]
    j0, j, b, R = _unit_row()
    sh = cuda.shared.array(0, dtype=gates.dtype)
    stage_rows(sh, 0, gates, t + 1, lengths, cuda.blockIdx.y * R, R, 1, 2 * H, True)
    s, _, _, _ = tiled_dots(sh, 0, 2 * H, w_rz, 0, H, 1, j0, cuda.blockDim.x, H, R * 2 * H, kt)
    if j < H and b < B:
        _bwd_before_zn_elem(t, b, j, s, lengths, h0, out, gates, d_out, d_n, dh, dhp)


@cuda.jit
def _gru_backward_step_before_r(t, w_n, lengths, h0, out, gates, d_n, dhp, kt):
    """Phase 2 of BPTT step ``t``, reset before: ``d(rh) = dn W_hn``, then dr and dh += d(rh) r."""
    B = dhp.shape[0]
    H = dhp.shape[1]
    j0, j, b, R = _unit_row()
    sh = cuda.shared.array(0, dtype=gates.dtype)
    stage_rows(sh, 0, d_n, t, lengths, cuda.blockIdx.y * R, R, 1, H, True)
    drh, _, _, _ = tiled_dots(sh, 0, H, w_n, 0, H, 1, j0, cuda.blockDim.x, H, R * H, kt)
    if j < H and b < B:
        _bwd_before_r_elem(t, b, j, drh, lengths, h0, out, gates, dhp)


# ----------------------------------------------------------------------------- persistent
@cuda.jit
def _gru_forward_persistent(w_hh_t, b_hn, lengths, reset_after, hs, rh, out, gates, aux, hc,
                            rpp):  # fmt: skip
    """All steps in one cooperative launch; block (x, y) owns units ``[x*hc, x*hc + hc)`` of
    rows ``y, y + gridDim.y, ...`` with that slice of ``W_hh^T`` (r, z, n) in shared memory.

    Reset after: h_{t-1} in ``hs[t % 2]``. Reset before: h in place in ``hs[0]``; phase 1
    writes ``rh`` (1, B, H), a grid-wide sync, then phase 2 reads all of it.
    """
    T, B, H = out.shape
    c0 = cuda.blockIdx.x * hc
    gy = cuda.gridDim.y
    mine = (B - cuda.blockIdx.y + gy - 1) // gy
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    grid = cuda.cg.this_grid()
    sh = cuda.shared.array(0, dtype=out.dtype)
    load_slice(sh, w_hh_t, H, 0, H, 3, c0, hc, H)
    xoff = 3 * H * hc
    cuda.syncthreads()
    for t in range(T):
        pin = t % 2 if reset_after else 0
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
                    if reset_after:
                        ar, az, an, _ = resident_dots(sh, xoff + r * H, H, 0, 3, 0, 3, cc, hc)
                        _fwd_after_elem(
                            t, b, j, ar, az, an, b_hn, lengths, hs, pin, out, gates, aux
                        )
                    else:
                        ar, az, _, _ = resident_dots(sh, xoff + r * H, H, 0, 3, 0, 2, cc, hc)
                        _fwd_before_rz_elem(t, b, j, ar, az, lengths, hs, gates, rh)
            cuda.syncthreads()
        grid.sync()
        if not reset_after:
            for m0 in range(0, mine, rpp):
                n = min(rpp, mine - m0)
                stage_own_rows(sh, xoff, rh, 0, lengths, m0, n, H, False)
                cuda.syncthreads()
                for e in range(tid, n * hc, nt):
                    r = e // hc
                    cc = e - r * hc
                    j = c0 + cc
                    if j < H:
                        b = cuda.blockIdx.y + (m0 + r) * gy
                        an, _, _, _ = resident_dots(sh, xoff + r * H, H, 0, 3, 2, 1, cc, hc)
                        _fwd_before_n_elem(t, b, j, an, lengths, hs, gates, rh, out, aux)
                cuda.syncthreads()
            grid.sync()


@cuda.jit
def _gru_backward_persistent(w_hh, lengths, reset_after, h0, out, gates, aux, d_out, d_rec, d_n,
                             dh, dhp, hc, rpp):  # fmt: skip
    """All BPTT steps (T-1 down to -1) in one cooperative launch; the block's slice of
    ``W_hh`` (3H x hc) stays in shared memory. Reset before: phase 1 (dz, dn), a grid-wide
    sync, phase 2 (``dn W_hn`` needs all of the row's dn), another sync.
    """
    T, B, H = out.shape
    c0 = cuda.blockIdx.x * hc
    gy = cuda.gridDim.y
    mine = (B - cuda.blockIdx.y + gy - 1) // gy
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    grid = cuda.cg.this_grid()
    sh = cuda.shared.array(0, dtype=out.dtype)
    load_slice(sh, w_hh, 3 * H, 0, H, 1, c0, hc, H)
    xoff = 3 * H * hc
    K1 = 3 * H if reset_after else 2 * H
    cuda.syncthreads()
    for t in range(T - 1, -2, -1):
        for m0 in range(0, mine, rpp):
            n = min(rpp, mine - m0)
            if reset_after:
                stage_own_rows(sh, xoff, d_rec, t + 1, lengths, m0, n, K1, True)
            else:
                stage_own_rows(sh, xoff, gates, t + 1, lengths, m0, n, K1, True)
            cuda.syncthreads()
            for e in range(tid, n * hc, nt):
                r = e // hc
                cc = e - r * hc
                j = c0 + cc
                if j < H:
                    b = cuda.blockIdx.y + (m0 + r) * gy
                    s, _, _, _ = resident_dots(sh, xoff + r * K1, K1, 0, 1, 0, 1, cc, hc)
                    if reset_after:
                        _bwd_after_elem(
                            t, b, j, s, lengths, h0, out, gates, aux, d_out, d_rec, dh, dhp
                        )
                    else:
                        _bwd_before_zn_elem(
                            t, b, j, s, lengths, h0, out, gates, d_out, d_n, dh, dhp
                        )
            cuda.syncthreads()
        grid.sync()
        if not reset_after and t >= 0:
            for m0 in range(0, mine, rpp):
                n = min(rpp, mine - m0)
                stage_own_rows(sh, xoff, d_n, t, lengths, m0, n, H, True)
                cuda.syncthreads()
                for e in range(tid, n * hc, nt):
                    r = e // hc
                    cc = e - r * hc
                    j = c0 + cc
                    if j < H:
                        b = cuda.blockIdx.y + (m0 + r) * gy
                        drh, _, _, _ = resident_dots(sh, xoff + r * H, H, 2 * H, 1, 0, 1, cc, hc)
                        _bwd_before_r_elem(t, b, j, drh, lengths, h0, out, gates, dhp)
                cuda.syncthreads()
            grid.sync()

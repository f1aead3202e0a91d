"""GRU forward and BPTT on the GPU (same contract as :mod:`numrnn.kernels.cpu.gru`).

The element math of one hidden unit, and its kernels in the two time loops of
:mod:`numrnn.kernels.cuda.time_loop` (same math, same stored activations): per step, or
one persistent cooperative kernel for all steps.

``reset_after=True``: one phase per step (r, z and ``h W_hn^T + b_hn`` all need only
``h_{t-1}``): one fused kernel per step. ``reset_after=False`` needs ``(r h) W_hn^T``, which
depends on every unit's r of the row: two phases per step (r, z and r*h; then n and h),
likewise in BPTT (dz, dn; then ``dn W_hn``, dr): two kernels per step, or a grid-wide sync
between the phases of the persistent kernel.
"""

from __future__ import annotations

from numba import cuda

from numrnn.kernels.cuda.common import ONE, ZERO, d_sigmoid, d_tanh
from numrnn.kernels.cuda.time_loop import (
    DOUBLE_BUFFER,
    IN_PLACE,
    NEXT,
    SAME,
    Phase,
    incoming_grad,
    per_step,
    persistent,
)


# ----------------------------------------------------------------------------- element math
@cuda.jit(device=True, inline=True)
def _fwd_after_elem(t, b, j, acc, lengths, state):
    """Reset after: r, z, ``h W_hn^T + b_hn`` (kept in aux), n and h_t, fused."""
    b_hn, hs, out, gates, aux = state
    ar, az, an, _ = acc
    H = out.shape[2]
    pin = t % 2
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
def _fwd_before_rz_elem(t, b, j, acc, lengths, state):
    """Phase 1 (reset before): r, z and ``rh = r * h_{t-1}``; h_{t-1} in ``h[0]``."""
    h, gates, rh, _out, _aux = state
    ar, az, _, _ = acc
    H = h.shape[2]
    if t < lengths[b]:
        r = d_sigmoid(gates[t, b, j] + ar)
        gates[t, b, j] = r
        gates[t, b, H + j] = d_sigmoid(gates[t, b, H + j] + az)
        rh[0, b, j] = r * h[0, b, j]


@cuda.jit(device=True, inline=True)
def _fwd_before_n_elem(t, b, j, acc, lengths, state):
    """Phase 2 (reset before): ``n = tanh(. + (r h) W_hn^T)``, h updated in place."""
    h, gates, rh, out, aux = state
    an = acc[0]
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
def _bwd_after_elem(t, b, j, acc, lengths, state):
    """dL/dh_t = ``dhp + d_rec[t+1] @ W_hh`` (``acc[0]`` the product) if step t+1 is valid.

    ``d_rec`` is dA on the recurrent side: [dr, dz, dn * r].
    """
    h0, out, gates, aux, d_out, d_rec, dh, dhp = state
    H = dh.shape[1]
    s = incoming_grad(t, b, j, gates.shape[0], lengths, dh, dhp[b, j] + acc[0])
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
def _bwd_before_zn_elem(t, b, j, acc, lengths, state):
    """Phase 1 of BPTT step ``t``, reset before: incoming dL/dh_t, then dz, dn."""
    h0, out, gates, d_out, d_n, dh, dhp = state
    H = dh.shape[1]
    s = incoming_grad(t, b, j, gates.shape[0], lengths, dh, dhp[b, j] + acc[0])
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
def _bwd_before_r_elem(t, b, j, acc, lengths, state):
    """Phase 2, reset before: ``drh = (dn W_hn)[j]``, then dr and dh += drh * r."""
    h0, out, gates, _d_out, _d_n, _dh, dhp = state
    drh = acc[0]
    if t < lengths[b]:
        hprev = out[t - 1, b, j] if t > 0 else h0[b, j]
        r = gates[t, b, j]
        gates[t, b, j] = drh * hprev * r * (ONE - r)
        dhp[b, j] += drh * r


# reset after, forward state (b_hn, hs, out, gates, aux): stage h_{t-1}
FORWARD_AFTER = Phase(_fwd_after_elem, source=1, step=DOUBLE_BUFFER, rows=1, nq=3)
# reset before, forward state (h, gates, rh, out, aux): stage h_{t-1} (in place), then r*h
FORWARD_RZ = Phase(_fwd_before_rz_elem, source=0, step=IN_PLACE, rows=1, nq=2)
FORWARD_N = Phase(_fwd_before_n_elem, source=2, step=IN_PLACE, rows=1, q0=2)
# reset after, backward state (h0, out, gates, aux, d_out, d_rec, dh, dhp): stage d_rec[t+1]
BACKWARD_AFTER = Phase(_bwd_after_elem, source=5, step=NEXT, rows=3)
# reset before, backward state (h0, out, gates, d_out, d_n, dh, dhp): stage dr, dz of
# step t+1 (in gates) against W_hr, W_hz; then dn of step t against W_hn
BACKWARD_ZN = Phase(_bwd_before_zn_elem, source=2, step=NEXT, rows=2)
BACKWARD_R = Phase(_bwd_before_r_elem, source=4, step=SAME, rows=1, kb=2)

_forward_after_step = per_step(FORWARD_AFTER)
_forward_rz_step = per_step(FORWARD_RZ)
_forward_n_step = per_step(FORWARD_N)
_backward_after_step = per_step(BACKWARD_AFTER)
_backward_zn_step = per_step(BACKWARD_ZN)
_backward_r_step = per_step(BACKWARD_R)
_forward_after_all = persistent(3, FORWARD_AFTER)
_forward_before_all = persistent(3, FORWARD_RZ, FORWARD_N)
_backward_after_all = persistent(3, BACKWARD_AFTER)
_backward_before_all = persistent(3, BACKWARD_ZN, BACKWARD_R)


# ----------------------------------------------------------------------------- per step
@cuda.jit
def _gru_forward_step_after(t, w_hh_t, b_hn, lengths, hs, out, gates, aux, kt):
    """Step ``t``, reset after; ``hs`` (2, B, H): h_{t-1} in ``hs[t % 2]``."""
    _forward_after_step(t, w_hh_t, out.shape, lengths, kt, (b_hn, hs, out, gates, aux))


@cuda.jit
def _gru_forward_step_before_rz(t, w_hh_t, lengths, hs, rh, out, gates, aux, kt):
    """Phase 1 of step ``t`` (reset before): r, z and ``rh = r * h_{t-1}`` (h in ``hs[0]``)."""
    _forward_rz_step(t, w_hh_t, out.shape, lengths, kt, (hs, gates, rh, out, aux))


@cuda.jit
def _gru_forward_step_before_n(t, w_hh_t, lengths, hs, rh, out, gates, aux, kt):
    """Phase 2 of step ``t`` (reset before): ``n = tanh(. + (r h) W_hn^T)``, h updated in place."""
    _forward_n_step(t, w_hh_t, out.shape, lengths, kt, (hs, gates, rh, out, aux))


@cuda.jit
def _gru_backward_step_after(t, w_hh, lengths, h0, out, gates, aux, d_out, d_rec, dh, dhp, kt):
    """Step ``t`` of BPTT, reset after (``t = -1`` only finishes ``dh`` = dL/dh0)."""
    state = (h0, out, gates, aux, d_out, d_rec, dh, dhp)
    _backward_after_step(t, w_hh, out.shape, lengths, kt, state)


@cuda.jit
def _gru_backward_step_before_zn(t, w_hh, lengths, h0, out, gates, d_out, d_n, dh, dhp, kt):
    """Phase 1 of BPTT step ``t``, reset before: incoming dL/dh_t, then dz, dn."""
    state = (h0, out, gates, d_out, d_n, dh, dhp)
    _backward_zn_step(t, w_hh, out.shape, lengths, kt, state)


@cuda.jit
def _gru_backward_step_before_r(t, w_hh, lengths, h0, out, gates, d_out, d_n, dh, dhp, kt):
    """Phase 2 of BPTT step ``t``, reset before: ``d(rh) = dn W_hn``, then dr and dh += d(rh) r."""
    state = (h0, out, gates, d_out, d_n, dh, dhp)
    _backward_r_step(t, w_hh, out.shape, lengths, kt, state)


# ----------------------------------------------------------------------------- persistent
@cuda.jit
def _gru_forward_persistent_after(w_hh_t, b_hn, lengths, hs, out, gates, aux, hc, rpp):
    """All steps in one cooperative launch, reset after; h_T ends in ``hs[T % 2]``."""
    _forward_after_all(w_hh_t, out.shape, lengths, hc, rpp, (b_hn, hs, out, gates, aux))


@cuda.jit
def _gru_forward_persistent_before(w_hh_t, lengths, hs, rh, out, gates, aux, hc, rpp):
    """All steps in one cooperative launch, reset before; h in place in ``hs[0]``."""
    _forward_before_all(w_hh_t, out.shape, lengths, hc, rpp, (hs, gates, rh, out, aux))


@cuda.jit
def _gru_backward_persistent_after(w_hh, lengths, h0, out, gates, aux, d_out, d_rec, dh, dhp,
                                   hc, rpp):  # fmt: skip
    """All BPTT steps (T-1 down to -1) in one cooperative launch, reset after."""
    state = (h0, out, gates, aux, d_out, d_rec, dh, dhp)
    _backward_after_all(w_hh, out.shape, lengths, hc, rpp, state)


@cuda.jit
def _gru_backward_persistent_before(w_hh, lengths, h0, out, gates, d_out, d_n, dh, dhp, hc,
                                    rpp):  # fmt: skip
    """All BPTT steps (T-1 down to -1) in one cooperative launch, reset before."""
    state = (h0, out, gates, d_out, d_n, dh, dhp)
    _backward_before_all(w_hh, out.shape, lengths, hc, rpp, state)

"""The two time loops of the cell kernels, written once for every cell and direction.

A time step of a cell is one *phase* (:class:`Phase`), or two for the GRU with
``reset_after=False`` (``(r h) W_hn^T`` needs every unit's ``r`` of the row first): stage
rows of an operand (``h_{t-1}``, or the gate gradients of step ``t + 1``) in shared memory,
multiply them by ``W_hh`` (or its transpose) and hand the products to the cell's element
math (``elem``), one thread per (batch row, hidden unit).

- :func:`per_step` runs ONE phase at ONE step: a block of ``(tj, rows)`` threads covers
  ``tj`` hidden units of ``rows`` batch rows, staging the rows and tiles of the weights
  (each tile reused by all the rows).
- :func:`persistent` runs every step and phase in ONE cooperative launch: block (x, y)
  keeps the slice of ``W_hh`` of hidden units ``[x*hc, x*hc + hc)`` resident in shared
  memory, strides over rows ``y, y + gridDim.y, ...`` (``rpp`` staged at a time), and
  separates phases and steps with ``cuda.cg.this_grid().sync()``.

Both return ``inline`` device functions; each cell module wraps them in ``@cuda.jit``
kernels that only name their arguments (numba-cuda kernels cannot take ``*args``) and pack
the cell's arrays into a ``state`` tuple that ``elem`` unpacks. Every kernel receives the
``(T, B, H)`` shape of its layer as ``dims`` and the sequence lengths.

The recurrent products below sum ``k`` in order; no atomics: the same bits on every run.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from numba import cuda

from numrnn.kernels.cuda.common import ZERO

#: Default batch rows per block of the per-step kernels (their ``W_hh`` tiles are reused
#: across these rows from shared memory).
DEFAULT_ROWS = 4
#: Shared memory a kernel may use without opting in (bytes), the persistent kernels' budget.
SHARED_BUDGET = 48 * 1024

# Which step of the staged operand a phase reads at time step t.
#: ``t % 2``: h_{t-1} of a double-buffered state (2, B, H) (h_t goes to the other half).
DOUBLE_BUFFER = 0
#: ``0``: a state updated in place (1 or 2, B, ...).
IN_PLACE = 1
#: ``t + 1``: gradients flowing back from the later step (BPTT).
NEXT = 2
#: ``t``: gradients of this step, written by the phase before (BPTT).
SAME = 3


class Phase(NamedTuple):
    """One phase of a time step of a cell kernel.

    Parameters
    ----------
    elem : device function ``(t, b, j, acc, lengths, state)``
        The cell's math of hidden unit ``j`` of batch row ``b`` at step ``t``; ``acc`` holds
        the ``nq`` products (a 4-tuple, the rest zero).
    source : int
        Index in ``state`` of the operand staged in shared memory.
    step : int
        Which step of the operand is staged: :data:`DOUBLE_BUFFER`, :data:`IN_PLACE`,
        :data:`NEXT` or :data:`SAME`.
    rows : int
        Staged row length in units of H (the ``K`` of the product).
    nq : int, default=1
        Products per unit (<= 4): column blocks ``q0 .. q0 + nq - 1`` of the weights.
    q0 : int, default=0
        First column block (of ``H`` columns) of the product.
    kb : int, default=0
        First weight row of the product, in units of H.
    """

    elem: Any
    source: int
    step: int
    rows: int
    nq: int = 1
    q0: int = 0
    kb: int = 0

    @property
    def backward(self) -> bool:
        """A BPTT phase: it stages gradients, zero on padding and past T."""
        return self.step in (NEXT, SAME)


@cuda.jit(device=True, inline=True)
def _staged_step(t, rule):
    """The step of the operand a phase stages at time step ``t`` (see :class:`Phase`)."""
    if rule == DOUBLE_BUFFER:
        return t % 2
    if rule == NEXT:
        return t + 1
    if rule == SAME:
        return t
    return 0


@cuda.jit(device=True, inline=True)
def incoming_grad(t, b, j, T, lengths, dh, recurrent):
    """BPTT: dL/dh_t of unit ``j``, row ``b`` (without step t's own output gradient).

    ``recurrent`` (what step t+1 sends back through ``W_hh``) if step t+1 is valid, else
    the value carried in ``dh`` (from the final state's gradient, past padding). Stored in
    ``dh`` (each thread owns its element: no double buffer) and returned.
    """
    s = dh[b, j]
    if t + 1 < T and t + 1 < lengths[b]:
        s = recurrent
    dh[b, j] = s
    return s


# ----------------------------------------------------------------------------- per step
def per_step(phase: Phase):
    """Device function ``run(t, w, dims, lengths, kt, state)``: ``phase`` at step ``t``.

    ``w`` is the weight matrix of the product (``W_hh^T`` forward, ``W_hh`` backward), read
    in tiles of ``kt`` rows.
    """
    elem, source, rule, rows, nq, q0, kb = phase
    backward = phase.backward

    @cuda.jit(device=True, inline=True)
    def run(t, w, dims, lengths, kt, state):
        B = dims[1]
        H = dims[2]
        K = rows * H
        tj = cuda.blockDim.x
        R = cuda.blockDim.y
        j0 = cuda.blockIdx.x * tj
        j = j0 + cuda.threadIdx.x
        b = cuda.blockIdx.y * R + cuda.threadIdx.y
        src = state[source]
        sh = cuda.shared.array(0, dtype=src.dtype)
        stage_rows(
            sh, 0, src, _staged_step(t, rule), lengths, cuda.blockIdx.y * R, R, 1, K, backward
        )
        acc = tiled_dots(sh, 0, K, w, kb * H, q0 * H, nq, j0, tj, H, R * K, kt)
        if j < H and b < B:
            elem(t, b, j, acc, lengths, state)

    return run


# ----------------------------------------------------------------------------- persistent
def persistent(gates: int, first: Phase, second: Phase | None = None):
    """Device function ``run(w, dims, lengths, hc, rpp, state)``: the whole time loop.

    Forward ``t = 0 .. T-1``, ``w = W_hh^T`` (H x gates*H); backward (BPTT phases)
    ``t = T-1 .. -1`` (the last only finishes dL/dh0), ``w = W_hh`` (gates*H x H). Each step
    runs ``first``, then ``second`` if given (not at ``t = -1``), each followed by a
    grid-wide sync. A block keeps its ``K_w x nq x hc`` slice of ``w`` in shared memory and
    stages up to ``rpp`` rows after it.
    """
    backward = first.backward
    K_w, nq_all = (gates, 1) if backward else (1, gates)
    phase1 = _resident_phase(first, nq_all)
    two = second is not None
    phase2 = _resident_phase(second, nq_all) if two else phase1

    @cuda.jit(device=True, inline=True)
    def run(w, dims, lengths, hc, rpp, state):
        T = dims[0]
        B = dims[1]
        H = dims[2]
        c0 = cuda.blockIdx.x * hc
        gy = cuda.gridDim.y
        mine = (B - cuda.blockIdx.y + gy - 1) // gy  # rows of this block
        grid = cuda.cg.this_grid()
        sh = cuda.shared.array(0, dtype=w.dtype)
        stage_weights(sh, 0, w, 0, K_w * H, 0, H, nq_all, c0, hc, H)
        xoff = gates * H * hc
        cuda.syncthreads()
        if backward:
            t0, t1, dt = T - 1, -2, -1
        else:
            t0, t1, dt = 0, T, 1
        for t in range(t0, t1, dt):
            phase1(t, sh, xoff, c0, hc, rpp, mine, H, lengths, state)
            grid.sync()
            if two and t >= 0:
                phase2(t, sh, xoff, c0, hc, rpp, mine, H, lengths, state)
                grid.sync()

    return run


def _resident_phase(phase: Phase, nq_all: int):
    """One phase of a persistent step, over the block's rows ``rpp`` at a time."""
    elem, source, rule, rows, nq, q0, kb = phase
    backward = phase.backward

    @cuda.jit(device=True, inline=True)
    def run(t, sh, xoff, c0, hc, rpp, mine, H, lengths, state):
        K = rows * H
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        gy = cuda.gridDim.y
        src = state[source]
        st = _staged_step(t, rule)
        for m0 in range(0, mine, rpp):
            n = min(rpp, mine - m0)
            stage_own_rows(sh, xoff, src, st, lengths, m0, n, K, backward)
            cuda.syncthreads()
            for e in range(tid, n * hc, nt):
                r = e // hc
                c = e - r * hc
                j = c0 + c
                if j < H:
                    b = cuda.blockIdx.y + (m0 + r) * gy
                    acc = resident_dots(sh, xoff + r * K, K, kb * H, nq_all, q0, nq, c, hc)
                    elem(t, b, j, acc, lengths, state)
            cuda.syncthreads()

    return run


# ----------------------------------------------------------------------------- products
@cuda.jit(device=True, inline=True)
def stage_rows(sh, off, src, t, lengths, row0, nrows, row_step, K, check):
    """Copy rows ``src[t, row0 + r * row_step, :K]`` (``r < nrows``) to ``sh[off + r*K + k]``.

    ``src`` is (T, B, >=K). Rows past B are staged as zeros, and so (``check``) are rows
    whose step ``t`` is past T or padding. All threads of the block take part.
    """
    B = src.shape[1]
    tid = cuda.threadIdx.y * cuda.blockDim.x + cuda.threadIdx.x
    nt = cuda.blockDim.x * cuda.blockDim.y
    for e in range(tid, nrows * K, nt):
        r = e // K
        k = e - r * K
        b = row0 + r * row_step
        v = ZERO
        if b < B:
            if not check or (t < src.shape[0] and t < lengths[b]):
                v = src[t, b, k]
        sh[off + e] = v


@cuda.jit(device=True, inline=True)
def tiled_dots(sh, xoff, K, m, kb, coff, nq, j0, tj, H, woff, kt):
    """Per-step product with ``W`` tiles staged in shared memory and reused across rows.

    Thread ``(tx, ty)`` returns ``a_q = sum_k sh[xoff + ty*K + k] * m[kb + k, coff + q*H +
    j]`` for ``q < nq`` (<= 4; the others are 0), ``j = j0 + tx``, summing k in order. Tiles
    of ``kt`` rows of the block's ``nq * tj`` columns go to ``sh[woff:]`` (zero past ``H``).
    Every thread of the block must call it (it synchronizes). Its first barrier also
    publishes rows staged just before the call (no barrier needed in between); it ends
    without one, so the caller must not write shared memory afterwards.
    """
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    xb = xoff + ty * K
    a0 = ZERO
    a1 = ZERO
    a2 = ZERO
    a3 = ZERO
    for k0 in range(0, K, kt):
        kn = min(kt, K - k0)
        stage_weights(sh, woff, m, kb + k0, kn, coff, H, nq, j0, tj, H)
        cuda.syncthreads()
        for kk in range(kn):
            xk = sh[xb + k0 + kk]
            a0, a1, a2, a3 = _add_products(a0, a1, a2, a3, nq, xk, sh, woff + kk * nq * tj + tx, tj)
        if k0 + kt < K:  # the next tile overwrites this one; after the last, nothing does
            cuda.syncthreads()
    return a0, a1, a2, a3


@cuda.jit(device=True, inline=True)
def stage_weights(sh, off, m, k0, K, coff, cstride, nq, c0, hc, jlim):
    """``sh[off + (k*nq + q)*hc + c] = m[k0 + k, coff + q*cstride + c0 + c]`` (0 past jlim).

    ``k < K``, ``q < nq``, ``c < hc``: ``hc`` columns of each of ``nq`` column blocks (a
    per-step kernel's tile, or the persistent kernels' resident slice). All threads of
    the block take part.
    """
    tid = cuda.threadIdx.y * cuda.blockDim.x + cuda.threadIdx.x
    nt = cuda.blockDim.x * cuda.blockDim.y
    for e in range(tid, K * nq * hc, nt):
        k = e // (nq * hc)
        rem = e - k * (nq * hc)
        q = rem // hc
        c = rem - q * hc
        v = ZERO
        if c0 + c < jlim:
            v = m[k0 + k, coff + q * cstride + c0 + c]
        sh[off + e] = v


@cuda.jit(device=True, inline=True)
def resident_dots(sh, xoff, K, kb, nq_all, q0, nq, c, hc):
    """Persistent kernels: ``a_q = sum_{k<K} sh[xoff + k] * W[kb + k, q0 + q, c]`` (q < nq <= 4)

    with the block's weight slice resident at ``sh[(k*nq_all + q)*hc + c]`` (:func:`stage_weights`).
    """
    a0 = ZERO
    a1 = ZERO
    a2 = ZERO
    a3 = ZERO
    step = nq_all * hc
    base = (kb * nq_all + q0) * hc + c
    for k in range(K):
        a0, a1, a2, a3 = _add_products(a0, a1, a2, a3, nq, sh[xoff + k], sh, base + k * step, hc)
    return a0, a1, a2, a3


@cuda.jit(device=True, inline=True)
def _add_products(a0, a1, a2, a3, nq, xk, sh, w, stride):
    """``a_q += xk * sh[w + q*stride]`` for ``q < nq`` (one k of up to four products)."""
    a0 += xk * sh[w]
    if nq > 1:
        a1 += xk * sh[w + stride]
    if nq > 2:
        a2 += xk * sh[w + 2 * stride]
    if nq > 3:
        a3 += xk * sh[w + 3 * stride]
    return a0, a1, a2, a3


@cuda.jit(device=True, inline=True)
def stage_own_rows(sh, off, src, t, lengths, m0, np_, K, check):
    """Persistent kernels: stage rows ``b = blockIdx.y + (m0 + r) * gridDim.y`` (r < np_)."""
    stage_rows(
        sh, off, src, t, lengths, cuda.blockIdx.y + m0 * cuda.gridDim.y, np_, cuda.gridDim.y,
        K, check,
    )  # fmt: skip

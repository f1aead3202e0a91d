"""Backpropagation through time over one minibatch: full, or truncated in chunks.

DESIGN §1, *BPTT*. With ``bptt_steps=k`` the minibatch is cut into chunks of ``k`` steps. A
chunk runs from the state carried out of the previous chunk; that state is carried
*detached* (no gradient flows into the previous chunk) and the parameters are updated after
every chunk, so memory is O(k), not O(T). Without ``bptt_steps`` the one chunk is the whole
minibatch (full BPTT). Samples of a ragged batch that have already ended are left out of
later chunks and keep their state.

* Per-step targets (``per_step=True``): the loss of a chunk is the loss on its valid steps.
* One target per sequence: a sample's loss is taken in the chunk holding its last valid
  step; chunks where no sample ends are run forward only (state carried, no update). The
  gradient therefore reaches back at most ``k`` steps from the end of each sequence.

Losses are weighted means, normalised over the *whole minibatch* (all its samples, or all
its valid steps): a chunk's loss is scaled by its share of the total weight, so the chunk
losses of a minibatch add up to the minibatch's loss.

:func:`run_minibatch` is the only definition of this loop. What a chunk computes is the
engine's: a host engine (NumPy, the CPU fit) or a device engine (the GPU fit). An engine
provides

``initial_state(B)``
    The carried state before the first chunk (whatever the engine's kind).
``advance(state, s, k, rows, chunk_lengths) -> state``
    Forward only over steps ``[s, s + k)`` of samples ``rows`` (the active ones), carrying
    the state.
``gradients(state, s, k, rows, chunk_lengths, row_weights, scale) -> (grads, state)``
    Forward, readout, head, loss (weighted by ``row_weights``, multiplied by ``scale``) and
    backward over the chunk; the gradients by parameter name and the carried state (which
    an engine may leave None after the last chunk: nothing reads it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["run_minibatch"]


def run_minibatch(
    engine,
    lengths: np.ndarray,
    weights: np.ndarray | None,
    *,
    bptt_steps: int | None,
    per_step: bool,
    update: Callable,
) -> tuple[float, float]:
    """Train on one minibatch: every chunk's gradient, then ``update(grads) -> loss``.

    Parameters
    ----------
    engine : host or device engine (see the module docstring)
    lengths : int array (B,)
        Valid steps per sample.
    weights : float array (B,) or None
        Sample weights (None: all 1).
    bptt_steps : int or None
        Chunk length (None: full BPTT).
    per_step : bool
        One target per valid step (``output='sequence'``) rather than per sequence.
    update : callable
        Applied to each chunk's gradients; returns that chunk's (unscaled) loss, e.g.
        :func:`numrnn.nn.step.apply_update` bound to the engine.

    Returns
    -------
    loss_sum, weight_sum : float
        The minibatch's weighted loss times its weight (sum of the scaled chunk losses), and
        its total sample weight, for the epoch's weighted mean.
    """
    B = lengths.shape[0]
    T = int(lengths.max())
    k = min(bptt_steps if bptt_steps is not None else T, T)
    w_all = np.ones(B) if weights is None else weights
    w_total = float(w_all.sum())
    # the normaliser: total weight over all valid steps (per_step) or all samples
    norm_total = float((w_all * lengths).sum()) if per_step else w_total
    if norm_total <= 0:
        return 0.0, 0.0
    state = engine.initial_state(B)
    loss_sum = 0.0
    for s in range(0, T, k):
        chunk_lengths = np.clip(lengths - s, 0, k)
        rows = np.flatnonzero(chunk_lengths > 0)
        lc = chunk_lengths[rows]
        if per_step:
            row_w = w_all[rows]
            wsum = float((row_w * lc).sum())
        else:
            ends = lengths[rows] <= s + k
            if not ends.any():
                state = engine.advance(state, s, k, rows, lc)
                continue
            row_w = w_all[rows] * ends
            wsum = float(row_w.sum())
        scale = wsum / norm_total
        grads, state = engine.gradients(state, s, k, rows, lc, row_w, scale)
        loss_sum += update(grads) * scale
    return loss_sum, w_total

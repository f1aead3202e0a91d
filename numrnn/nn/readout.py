"""Sequence-to-one readouts and their exact gradients (DESIGN §1, *Readout*).

The readout turns what a recurrent network produced for a batch into one feature row per
sequence, the input of the head:

``'last'``
    The final state of each direction of the top layer, merged like the layer outputs
    (``merge_mode``): forward, the state after each sequence's last valid step; reverse, the
    state after reading back to step 0. Not ``out[:, -1]``, which for the reverse direction
    has seen one step only, and which for a padded sequence is padding.
``'mean'``
    The mean of the top layer's (merged) output over each sequence's valid steps.
``'max'``
    The element-wise maximum of that output over the valid steps; the gradient goes to the
    step that attains it (the first such step on ties).
``'last+mean+max'``
    The three side by side, ``[last | mean | max]`` (three times the width): the head sees
    where a sequence ended, its average and its peaks at once. Its gradient is the sum of
    the three parts' gradients (``d_state`` from 'last', ``d_out`` from the pools).

Padded steps never contribute, to the feature or to the gradient.

The estimators' ``readout='auto'`` is not a readout of its own: :func:`resolve_readout` turns
it into one of the above at fit time, by whether the sequences are folded into segments
(:mod:`numrnn.nn.segments`).

The functions here are the only definition of this mathematics. ``'last'`` is generic over a
backend (``merge`` / ``split`` of :mod:`numrnn.backends`), so the host fit and the device fit
(``numrnn.estimators._device``) call the same code; the pooled readouts on host arrays are
NumPy, and their device versions are the kernels of :mod:`numrnn.kernels.cuda.readout`,
tested against these.
"""

from __future__ import annotations

import numpy as np

from numrnn._validation import READOUTS, check_param
from numrnn.backends.cpu import CPUBackend

__all__ = [
    "READOUTS",
    "last_backward",
    "last_forward",
    "last_state_grad",
    "pool_backward",
    "pool_forward",
    "readout_backward",
    "readout_forward",
    "readout_size",
    "resolve_readout",
]

#: The concatenated readout (one of READOUTS) and the readouts it joins, in its feature order.
COMBINED = "last+mean+max"
_COMBINED_PARTS = ("last", "mean", "max")


def readout_size(mode: str, layer_output_size: int) -> int:
    """Width of the readout's features for a network whose top layer outputs
    ``layer_output_size`` features per step."""
    return len(_COMBINED_PARTS) * layer_output_size if mode == COMBINED else layer_output_size


def resolve_readout(readout: str, segment_length: int, *, pooled_ok: bool = True) -> str:
    """``readout`` (one of :data:`READOUTS` or ``'auto'``) as a readout for this fit.

    ``'auto'`` is ``'last+mean+max'`` when the sequences are not folded into segments
    (``segment_length == 1``) and ``'last'`` when they are. Measured on the classification
    benchmark (``benchmarks/classification_accuracy.py``, 10 UCR/UEA sets, seeds 0-2, with
    augmentation): on the sets of at most 25 steps, which are not folded, the pooled
    features were at or above 'last' (UnitTest +0.091, ItalyPowerDemand -0.001), while on
    the folded sets, whose ~25 recurrent steps each already summarise a segment, they lost
    (ArrowHead -0.144, PickupGestureWiimoteZ -0.033). 'auto' itself, one full run against
    'last': mean 0.839 against 0.836, UnitTest 0.939 against 0.909 (seeds 3-9: 0.955
    against 0.896), the folded sets unchanged (the same fits). ``pooled_ok=False`` (``output=
    'sequence'`` or truncated BPTT, where a pooled readout is not defined) resolves
    ``'auto'`` to ``'last'``. Any other value is returned as it is.
    """
    readout = check_param("readout", readout)
    if readout != "auto":
        return readout
    return COMBINED if segment_length == 1 and pooled_ok else "last"


_HOST = CPUBackend()  # merge / split of NumPy arrays


def last_forward(h, num_layers: int, num_directions: int, merge_mode: str, backend=None):
    """The merged final states of the top layer.

    Parameters
    ----------
    h : array (L*D, B, H), or a list of L*D arrays (B, H)
        Final hidden states per layer and direction (PyTorch's ``h_n`` layout; for the LSTM
        the ``h`` part of ``(h_n, c_n)``).
    num_layers, num_directions : int
    merge_mode : {'concat', 'sum', 'mean', 'mul'}
    backend : numrnn backend, optional
        Supplies ``merge`` for its arrays (default: the CPU backend, NumPy arrays).

    Returns
    -------
    feat : array (B, D_out)
    ctx : what :func:`last_backward` needs (None for one direction).
    """
    top = (num_layers - 1) * num_directions
    hf = h[top]
    if num_directions == 1:
        return hf, None
    hb = h[top + 1]
    B, H = hf.shape
    f3, b3 = hf.reshape(1, B, H), hb.reshape(1, B, H)
    feat = (backend or _HOST).merge([f3, b3], merge_mode)
    return feat.reshape(B, feat.shape[2]), (f3, b3)


def last_backward(dfeat, ctx, merge_mode: str, backend=None) -> list:
    """Gradient of :func:`last_forward`: one (B, H) array per direction of the top layer."""
    if ctx is None:
        return [dfeat]
    f3, b3 = ctx
    B, H = f3.shape[1], f3.shape[2]
    d3 = dfeat.reshape(1, B, dfeat.shape[1])
    df, db = (backend or _HOST).split(d3, merge_mode, [f3, b3], 2)
    return [df.reshape(B, H), db.reshape(B, H)]


def last_state_grad(state, top_grads: list, num_layers: int, num_directions: int):
    """The gradient w.r.t. a host network's returned state (``h_n`` or ``(h_n, c_n)``) when
    the loss reads only the top layer's final ``h`` (``top_grads``, one per direction)."""
    h = state[0] if isinstance(state, tuple) else state
    dh = np.zeros_like(h)
    top = (num_layers - 1) * num_directions
    for d, g in enumerate(top_grads):
        dh[top + d] = g
    if isinstance(state, tuple):
        return (dh, np.zeros_like(state[1]))
    return dh


def _valid(lengths, T: int) -> np.ndarray:
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


def pool_forward(out: np.ndarray, lengths, mode: str):
    """Pool a batch-first output (B, T, D) over each sequence's valid steps.

    Returns ``(feat, ctx)``: ``feat`` (B, D) in ``out``'s dtype; ``ctx`` for
    :func:`pool_backward`.
    """
    lengths = np.asarray(lengths)
    B, T, D = out.shape
    valid = _valid(lengths, T)[:, :, None]
    if mode == "mean":
        total = np.where(valid, out, out.dtype.type(0)).sum(axis=1)
        feat = total / lengths.astype(out.dtype)[:, None]
        return feat, ("mean", lengths, T)
    if mode == "max":
        arg = np.where(valid, out, out.dtype.type(-np.inf)).argmax(axis=1)  # (B, D)
        feat = np.take_along_axis(out, arg[:, None, :], axis=1)[:, 0]
        return feat, ("max", arg, T)
    raise ValueError(f"mode must be 'mean' or 'max', got {mode!r}.")


def pool_backward(dfeat: np.ndarray, ctx) -> np.ndarray:
    """Gradient of :func:`pool_forward` w.r.t. ``out``: (B, T, D), zero at padded steps."""
    mode, info, T = ctx
    B, D = dfeat.shape
    if mode == "mean":
        lengths = info
        share = dfeat / lengths.astype(dfeat.dtype)[:, None]
        return np.where(_valid(lengths, T)[:, :, None], share[:, None, :], dfeat.dtype.type(0))
    d_out = np.zeros((B, T, D), dtype=dfeat.dtype)
    np.put_along_axis(d_out, info[:, None, :], dfeat[:, None, :], axis=1)
    return d_out


def readout_forward(mode, out, state, lengths, num_layers, num_directions, merge_mode):
    """Host readout of a network's ``forward`` result ``(out, state)``: ``(feat, ctx)``."""
    if mode == COMBINED:
        parts = [
            readout_forward(m, out, state, lengths, num_layers, num_directions, merge_mode)
            for m in _COMBINED_PARTS
        ]
        feat = np.concatenate([f for f, _ in parts], axis=1)
        return feat, (COMBINED, [c for _, c in parts], [f.shape[1] for f, _ in parts])
    if mode == "last":
        h = state[0] if isinstance(state, tuple) else state
        feat, ctx = last_forward(h, num_layers, num_directions, merge_mode)
        return feat, ("last", ctx, state, merge_mode, num_layers, num_directions)
    return pool_forward(out, lengths, mode)


def readout_backward(dfeat, ctx):
    """Gradient of :func:`readout_forward`: ``(d_out, d_state)`` for ``network.backward``
    (``d_out`` None for ``'last'``: the loss reads the final state only)."""
    if ctx[0] == COMBINED:
        d_out, d_state, start = None, None, 0
        for part, width in zip(ctx[1], ctx[2], strict=True):
            do, ds = readout_backward(dfeat[:, start : start + width], part)
            start += width
            if do is not None:
                d_out = do if d_out is None else d_out + do
            if ds is not None:
                d_state = ds
        return d_out, d_state
    if ctx[0] == "last":
        _, lctx, state, merge_mode, L, D = ctx
        tops = last_backward(dfeat, lctx, merge_mode)
        return None, last_state_grad(state, tops, L, D)
    return pool_backward(dfeat, ctx), None

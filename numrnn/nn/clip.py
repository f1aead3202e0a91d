"""Gradient clipping, in place, with PyTorch's semantics.

``grads`` is a dict of arrays (as in ``net.grads``) or a list of arrays; every array is
modified in place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = [
    "clip_coefficient",
    "clip_grad_norm",
    "clip_grad_value",
    "global_grad_norm",
    "scale_grads",
    "squared_grad_norm",
]

Grads = Mapping[str, np.ndarray] | Iterable[np.ndarray]


def _arrays(grads: Grads) -> list[np.ndarray]:
    if isinstance(grads, Mapping):
        return list(grads.values())
    if isinstance(grads, np.ndarray):
        return [grads]
    return list(grads)


def squared_grad_norm(grads: Grads) -> float:
    """``sum_i ||g_i||^2`` over all arrays (NaN or inf when a gradient is not finite)."""
    total = 0.0
    for g in _arrays(grads):
        v = g.ravel()  # a view for contiguous arrays: no copy
        total += float(np.dot(v, v))
    return total


def global_grad_norm(grads: Grads) -> float:
    """Global L2 norm over all arrays, ``sqrt(sum_i ||g_i||^2)``.

    Returns NaN or inf when a gradient is not finite.
    """
    return math.sqrt(squared_grad_norm(grads))


def clip_coefficient(norm: float, max_norm: float) -> float | None:
    """The factor ``max_norm / (norm + 1e-6)`` of ``torch.nn.utils.clip_grad_norm_``, or
    None when it is not below 1 (no clipping needed)."""
    coef = max_norm / (norm + 1e-6)
    return coef if coef < 1.0 else None


def scale_grads(grads: Grads, coef: float) -> None:
    """``g *= coef`` in place for every array, ``coef`` cast to each array's dtype."""
    for g in _arrays(grads):
        g *= g.dtype.type(coef)


def clip_grad_norm(grads: Grads, max_norm: float, *, error_if_nonfinite: bool = False) -> float:
    """Rescale gradients in place so that their global L2 norm is at most ``max_norm``.

    Exactly ``torch.nn.utils.clip_grad_norm_`` (``norm_type=2``): with
    ``coef = max_norm / (norm + 1e-6)``, every gradient is multiplied by ``coef`` when
    ``coef < 1`` (i.e. when ``norm > max_norm``, up to the ``1e-6``).

    Parameters
    ----------
    grads : dict of ndarray or list of ndarray
        Gradients, modified in place.
    max_norm : float
        Largest allowed global norm (> 0).
    error_if_nonfinite : bool, default=False
        Raise ``FloatingPointError`` when the norm is NaN or infinite (gradients untouched).
        Otherwise an infinite norm scales every gradient by 0 (as torch does) and a NaN norm
        leaves them untouched (torch would make them all NaN).

    Returns
    -------
    norm : float
        The global norm before clipping.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm!r}.")
    arrays = _arrays(grads)
    norm = global_grad_norm(arrays)
    if not math.isfinite(norm):
        if error_if_nonfinite:
            raise FloatingPointError(
                f"The total norm of the gradients is {norm}; the gradients are not finite. "
                "Lower the learning rate or clip by value first."
            )
    coef = clip_coefficient(norm, max_norm)
    if coef is not None:
        scale_grads(arrays, coef)
    return norm


def clip_grad_value(grads: Grads, clip_value: float) -> None:
    """Clamp every gradient entry to ``[-clip_value, clip_value]`` in place.

    Like ``torch.nn.utils.clip_grad_value_``. NaN entries stay NaN.
    """
    if not clip_value > 0:
        raise ValueError(f"clip_value must be > 0, got {clip_value!r}.")
    for g in _arrays(grads):
        c = g.dtype.type(clip_value)
        np.clip(g, -c, c, out=g)

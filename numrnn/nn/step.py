"""One parameter update from a gradient (DESIGN §1, *Clipping*; §2 ``alpha``).

The order, the same on every device:

1. **penalty**: ``alpha * W`` added to the gradient of every weight (L2 penalty
   ``0.5 * alpha * ||W||^2`` on weight matrices and vectors, not biases: PyTorch's
   ``weight_decay``, not divided by the batch size as scikit-learn's MLP does);
2. **finiteness**: a non-finite loss or gradient raises :class:`NonFiniteLossError` (loss
   first, then the first parameter, in parameter order), before anything is changed;
3. **clip_value**: every entry clamped to ``[-clip_value, clip_value]``;
4. **clip_norm**: the global L2 norm over all gradients (after 3) scaled down to
   ``clip_norm`` (``torch.nn.utils.clip_grad_norm_``'s coefficient);
5. **optimizer** update.

The arithmetic of each primitive is the engine's: a host engine (NumPy arrays, the estimator
fit on the CPU) or a device engine (``numrnn.estimators._device``, arrays on the GPU). An
engine provides ``add_weight_decay(grads, alpha)``, ``check(grads) -> (loss, name or None)``,
``clip_value(grads, v)``, ``squared_norm(grads) -> float``, ``scale(grads, coef)``,
``optimizer_step(grads)`` and, for :func:`penalty`, ``weight_squared_norm() -> float``.
"""

from __future__ import annotations

import math

from numrnn.exceptions import NonFiniteLossError
from numrnn.nn.clip import clip_coefficient

__all__ = ["apply_update", "is_weight", "penalty"]


def is_weight(name: str) -> bool:
    """True for the parameters the L2 penalty covers (weights and peepholes, not biases)."""
    return name.startswith("weight") or name == "head.weight"


def penalty(engine, alpha: float) -> float:
    """``0.5 * alpha * sum ||W||^2`` over the weights (the loss term of the penalty)."""
    if alpha == 0:
        return 0.0
    return 0.5 * alpha * engine.weight_squared_norm()


def apply_update(engine, grads, *, alpha: float, clip_value, clip_norm) -> float:
    """Penalty, finiteness check, clipping and the optimizer update, in that order.

    ``grads`` (name -> array, the engine's kind) is modified in place. Returns the loss the
    gradients belong to, as the engine reports it (a float).
    """
    if alpha > 0:
        engine.add_weight_decay(grads, alpha)
    loss, bad = engine.check(grads)
    if not math.isfinite(loss):
        raise NonFiniteLossError("loss")
    if bad is not None:
        raise NonFiniteLossError(bad)
    if clip_value is not None:
        engine.clip_value(grads, clip_value)
    if clip_norm is not None:
        coef = clip_coefficient(math.sqrt(engine.squared_norm(grads)), clip_norm)
        if coef is not None:
            engine.scale(grads, coef)
    engine.optimizer_step(grads)
    return loss

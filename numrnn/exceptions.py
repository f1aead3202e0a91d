"""Exceptions numrnn raises beyond the built-in ones (DESIGN §3: the bottom layer)."""

from __future__ import annotations

__all__ = ["NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient.

    Training stops at once. The estimator keeps the weights of the last finished epoch
    (with ``early_stopping``, those with the best validation score so far); when no epoch
    finished, the model it had before the call (unfitted for a first ``fit``).
    ``kept_epoch`` is the epoch whose weights were kept, or None.
    """

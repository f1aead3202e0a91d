"""Exceptions numrnn raises beyond the built-in ones (DESIGN §3: the bottom layer)."""

from __future__ import annotations

__all__ = ["FileFormatError", "InvalidParameterError", "NonFiniteLossError"]


class InvalidParameterError(ValueError, TypeError):
    """A parameter has a value or a type its argument does not accept.

    Both a ``ValueError`` and a ``TypeError`` (scikit-learn's ``InvalidParameterError`` is
    too), so code that catches either keeps working whichever was wrong. The message names
    the argument, what it accepts, what it got and how to fix it.
    """


class FileFormatError(ValueError):
    """A file that is not a numrnn model, is damaged, or does not fit this numrnn."""


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient.

    Training stops at once. The estimator keeps the weights of the last finished epoch
    (with ``early_stopping``, those with the best validation score so far); when no epoch
    finished, the model it had before the call (unfitted for a first ``fit``).
    ``kept_epoch`` is the epoch whose weights were kept, or None.
    """

"""Learning-rate schedules for the estimators' epoch loop (any optimizer with an ``lr``).

Names follow :class:`sklearn.neural_network.MLPClassifier`'s ``learning_rate``:

* ``'constant'``: ``lr = learning_rate_init`` throughout.
* ``'adaptive'`` (reduce on plateau): each time the monitored loss (training loss, or
  validation loss with ``early_stopping``) has not improved by ``tol`` for more than
  ``n_iter_no_change`` epochs, the rate is divided by :data:`PLATEAU_FACTOR` instead of
  stopping; training stops on the plateau after the rate has reached its floor,
  ``learning_rate_init * MIN_LR_RATIO``. This is scikit-learn MLP's rule (it divides by 5
  down to an absolute 1e-6 for its default 1e-3). A spike of the loss therefore costs a
  smaller rate, not the end of the run.
* ``'cosine'``: ``lr = learning_rate_init * (1 + cos(pi * epoch / max_iter)) / 2``, from the
  initial rate down to zero at ``max_iter`` (Loshchilov & Hutter's annealing, no restarts).

The whole state of a schedule is its current rate (the epoch count is the estimator's
``n_iter_``), so rolling back or saving a fit needs no extra object.
"""

from __future__ import annotations

import math

from numrnn._validation import SCHEDULES, check_param

__all__ = ["SCHEDULES", "PLATEAU_FACTOR", "MIN_LR_RATIO", "LearningRateSchedule"]

#: Divisor of the rate on a plateau: scikit-learn MLP's ``'adaptive'`` value.
PLATEAU_FACTOR = 5.0
#: ``'adaptive'`` stops on a plateau once the rate is at or below this fraction of
#: ``learning_rate_init``: 5 divisions by 5, as MLP's 1e-6 floor for its ``lr=1e-3``.
MIN_LR_RATIO = 1e-3


class LearningRateSchedule:
    """The rate per epoch for one of :data:`SCHEDULES`.

    Parameters
    ----------
    kind : {'constant', 'adaptive', 'cosine'}
    lr_init : float
        The first epoch's rate.
    max_iter : int
        Epochs of the run ('cosine' reaches zero there).
    lr : float, optional
        Continue from this rate (default: ``lr_init``).
    """

    def __init__(self, kind: str, lr_init: float, max_iter: int, lr: float | None = None):
        self.kind = check_param("learning_rate", kind)
        self.lr_init = float(lr_init)
        self.max_iter = int(max_iter)
        self.lr = self.lr_init if lr is None else float(lr)

    def after_epoch(self, epochs_done: int) -> float:
        """The rate for the epoch after ``epochs_done`` finished epochs of this run."""
        if self.kind == "cosine":
            frac = min(epochs_done, self.max_iter) / max(self.max_iter, 1)
            self.lr = self.lr_init * 0.5 * (1.0 + math.cos(math.pi * frac))
        return self.lr

    def on_plateau(self) -> bool:
        """The monitored loss stalled: lower the rate ('adaptive') or say stop (True)."""
        if self.kind != "adaptive" or self.lr <= self.lr_init * MIN_LR_RATIO:
            return True
        self.lr /= PLATEAU_FACTOR
        return False

"""RNNRegressor: a recurrent network with a linear head trained on mean squared error."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from numrnn._validation import check_real_input
from numrnn.estimators._base import BaseRNN, _pad_sequence_targets
from numrnn.nn.losses import mse_loss


class RNNRegressor(RegressorMixin, BaseRNN):
    """Recurrent neural network regressor (RNN, LSTM or GRU with a linear readout).

    ``X`` is (n_samples, n_timesteps, n_features), a 2-D (n_samples, n_timesteps) array
    meaning one feature per step, or a ragged list of (T_i, n_features) arrays; trailing
    all-NaN steps of an array are padding. ``y`` is (n_samples,) or (n_samples, n_outputs)
    with ``output='last'``, and (n_samples, n_timesteps[, n_outputs]) (or a ragged list)
    with ``output='sequence'`` (padded steps are ignored).

    Parameters
    ----------
    cell : {'rnn', 'lstm', 'gru'}, default='lstm'
    hidden_size : int, default=64
    num_layers : int, default=1
    bidirectional : bool, default=False
    merge_mode : {'concat', 'sum', 'mean', 'mul'}, default='concat'
        How the two directions are merged, in every layer and in the 'last' readout.
    nonlinearity : {'tanh', 'relu'}, default='tanh'  (cell='rnn' only)
    peephole : bool, default=False  (cell='lstm' only)
    reset_after : bool, default=True  (cell='gru' only)
    dropout : float in [0, 1), default=0
        Between stacked layers, in training only.
    output : {'last', 'sequence'}, default='last'
        'last': one target per sequence, read from the final state of each direction.
        'sequence': one target per valid step.
    readout : {'last', 'mean', 'max'}, default='last'
        What the head reads with ``output='last'`` (``numrnn.nn.readout``): 'last', the final
        state of each direction; 'mean' / 'max', the top layer's output pooled over each
        sequence's valid steps (padding never contributes). Pooled readouts need
        ``bptt_steps=None``. The default keeps the behaviour of earlier releases until the
        classification benchmark chooses one.
    bptt_steps : int or None, default=None
        Truncated BPTT chunk length (None: full BPTT). See ``numrnn.estimators._base``.
    clip_norm, clip_value : float or None, default=None
        Global L2-norm clipping (over all parameters, head included) and element clipping.
    solver : {'adam', 'sgd'}, default='adam'
    alpha : float, default=1e-4
        L2 penalty (weight decay on weights, not biases).
    batch_size : int or 'auto', default='auto'
        'auto' = min(200, n_samples).
    learning_rate_init : float, default=1e-3
    max_iter : int, default=200
        Epochs.
    shuffle : bool, default=True
    random_state : int, RandomState or None
        Seeds initialisation, shuffling, the validation split and dropout.
    tol : float, default=1e-4
    verbose : bool, default=False
        Print the loss of every epoch.
    warm_start : bool, default=False
    momentum : float, default=0.9  (sgd)
    nesterovs_momentum : bool, default=True  (sgd)
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` and stop when the validation score has not
        improved by ``tol`` for ``n_iter_no_change`` epochs; the best weights are restored.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float  (adam)
    n_iter_no_change : int, default=10
    dtype : {'float32', 'float64'}, default='float32'
    device : {'auto', 'cpu', 'cuda'}, default='auto'

    Attributes
    ----------
    network_ : numrnn.nn.RNN, LSTM or GRU
    head_ : numrnn.nn.linear.Linear
    coef_, intercept_ : ndarray
        The head's weight (n_outputs, features) and bias.
    loss_curve_ : list of float
        Training loss per epoch (with the L2 penalty).
    validation_loss_curve_ : list of float
        Validation loss per epoch (early_stopping only).
    validation_scores_ : list of float
        Validation R^2 per epoch (early_stopping only).
    best_loss_ : float or None
        Lowest training loss (None with early_stopping).
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run.
    t_ : int
        Training samples seen.
    n_features_in_ : int
        Features per time step for 3-D/ragged X; for 2-D (tabular) X its number of columns
        (time steps), which later 2-D input must match.
    feature_names_in_ : ndarray of str
        Column names of a 2-D DataFrame X (its time steps).
    n_outputs_ : int
    """

    def _prepare_y(self, y, Xp, lengths, *, incremental, classes):
        n, T = Xp.shape[:2]
        if self.output == "sequence":
            Y = _numeric_y(_pad_sequence_targets(y, lengths, T, numeric=True))
            valid = Y[self._seq_mask(lengths, T)]
            if not np.isfinite(valid).all():
                raise ValueError(
                    "y must be finite at every valid step, got NaN or infinity inside a "
                    f"target sequence ({int((~np.isfinite(valid)).sum())} values). Only padded "
                    "steps (past each sequence's length) may be NaN: impute or drop them."
                )
            self._y_ndim = Y.ndim
            if Y.ndim == 2:
                Y = Y[:, :, None]
            Y = np.where(np.isfinite(Y), Y, 0.0)
        else:
            if y is None:
                raise ValueError(
                    "RNNRegressor requires y to be passed, but the target y is None. "
                    "Pass targets of shape (n_samples,) or (n_samples, n_outputs)."
                )
            Y = _numeric_y(y)
            if Y.ndim not in (1, 2):  # before sklearn's check_array and its "dim <= 2"
                raise ValueError(
                    f"y must be (n_samples,) or (n_samples, n_outputs) for output='last', got "
                    f"shape {Y.shape}. For per-step targets use output='sequence'."
                )
            Y = check_array(
                Y, ensure_2d=False, dtype=np.float64, input_name="y", ensure_all_finite=False
            )
            _check_finite_y(Y)
            if Y.ndim not in (1, 2):
                raise ValueError(
                    f"y must be (n_samples,) or (n_samples, n_outputs) for output='last', got "
                    f"shape {Y.shape}. For per-step targets use output='sequence'."
                )
            if Y.shape[0] != n:
                raise ValueError(
                    f"X and y have inconsistent numbers of samples: {n} sequences in X, "
                    f"{Y.shape[0]} targets in y. Pass one target per sequence."
                )
            self._y_ndim = Y.ndim
            if Y.ndim == 1:
                Y = Y[:, None]
        self.n_outputs_ = int(Y.shape[-1])
        return Y

    def _loss(self, z, target, mask, weight):
        return mse_loss(z, target, mask=mask, sample_weight=weight)

    def _score_encoded(self, Xp, lengths, Y, sw, z=None):
        if z is None:
            z = self._forward_predict(Xp, lengths)
        if self.output == "sequence":
            mask = self._seq_mask(lengths, Y.shape[1])
            w = None if sw is None else np.broadcast_to(sw[:, None], mask.shape)[mask]
            return r2_score(Y[mask], z[:, : Y.shape[1]][mask], sample_weight=w)
        return r2_score(Y, z, sample_weight=sw)

    def fit(self, X, y, sample_weight=None):
        """Train on sequences ``X`` and targets ``y`` (see the class docstring)."""
        return self._fit(X, y, sample_weight)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X, y``, continuing from the current weights and optimizer state."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predict: (n,) or (n, n_outputs) for 'last'; (n, T[, n_outputs]) for 'sequence'
        with NaN at padded steps (a list of (T_i[, n_outputs]) arrays for a ragged list X)."""
        check_is_fitted(self, "network_")
        Xp, lengths, ragged = self._validate_X(X, reset=False, pad=False)
        z = self._forward_predict(Xp, lengths)
        if ragged and self.output == "sequence":  # a list of (T_i, K) arrays
            return [zi[:, 0] if self._y_ndim == 2 else zi for zi in _float64(z)]
        z = z.astype(np.float64)
        if self.output == "last":
            return z[:, 0] if self._y_ndim == 1 else z
        if self._y_ndim == 2:
            z = z[..., 0]
        if ragged:
            return [z[i, : lengths[i]] for i in range(z.shape[0])]
        z[~self._seq_mask(lengths, z.shape[1])] = np.nan
        return z

    def score(self, X, y, sample_weight=None):
        """R^2 of the prediction; for 'sequence' over all valid steps (flattened)."""
        if self.output == "last":
            return super().score(X, y, sample_weight=sample_weight)
        check_is_fitted(self, "network_")
        Xp, lengths, _ = self._validate_X(X, reset=False)
        Y = np.asarray(_pad_sequence_targets(y, lengths, Xp.shape[1], numeric=True), float)
        if Y.ndim == 2:
            Y = Y[:, :, None]
        sw = self._validate_sample_weight(sample_weight, Xp.shape[0])
        return self._score_encoded(Xp, lengths, Y, sw)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def _numeric_y(y):
    """y as float64, or one clear error for labels / objects / complex / masked values."""
    check_real_input("y", y)
    try:
        return np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        try:
            dt = np.asarray(y).dtype
        except Exception:
            dt = type(y).__name__
        raise ValueError(
            f"y must be numeric for RNNRegressor, got values of dtype {dt} that cannot be "
            "converted to float. Convert targets to numbers, or use RNNClassifier for labels."
        ) from None


def _check_finite_y(Y):
    bad = ~np.isfinite(Y)
    if bad.any():
        i = int(np.argwhere(bad)[0][0])
        raise ValueError(
            f"y must be finite, got NaN or infinity in {int(bad.sum())} target value(s) "
            f"(first at sample {i}: {Y[i]!r}). Drop those samples or impute their targets."
        )


def _float64(arrays: list) -> list:
    return [a.astype(np.float64) for a in arrays]

"""Scaling of sequence data for scikit-learn pipelines.

scikit-learn's ``StandardScaler`` accepts 2-D tables only, so it cannot stand in front of an
:class:`~numrnn.RNNRegressor` that reads 3-D ``(n_samples, n_timesteps, n_features)`` input
or a ragged list of sequences. :class:`SequenceScaler` scales such data per feature, with
statistics over every valid time step of every sequence.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from numrnn._validation import check_sequences
from numrnn.estimators._base import _rectangular

__all__ = ["SequenceScaler"]


class SequenceScaler(TransformerMixin, BaseEstimator):
    """Standardise sequences per feature: ``(x - mean_) / scale_`` at every valid step.

    The statistics of feature ``f`` are taken over all valid steps of all sequences (padding
    is not data), so a long sequence weighs more than a short one, as it does in training.
    The output has the form of the input: a padded 3-D array stays padded (its all-NaN
    padding steps stay NaN), a ragged list comes back as a list of arrays of the same
    shapes, a 2-D array stays 2-D (a list of equal-length sequences is read as an array, as
    the estimators read it, and comes back as one).

    Parameters
    ----------
    with_mean : bool, default=True
        Subtract the mean (else ``mean_`` is 0).
    with_std : bool, default=True
        Divide by the standard deviation (else ``scale_`` is 1). A feature that is constant
        over the training data gets ``scale_ = 1``, as in ``StandardScaler``.

    Attributes
    ----------
    mean_ : ndarray of shape (n_step_features,)
        Per-feature mean over the valid steps of ``fit``'s data.
    var_ : ndarray of shape (n_step_features,)
        Per-feature (population) variance over the same steps.
    scale_ : ndarray of shape (n_step_features,)
        ``sqrt(var_)``, 1 where the variance is 0 (or ``with_std=False``).
    n_steps_seen_ : int
        Valid steps the statistics were computed from.
    n_features_in_ : int
        As the numrnn estimators count it: the columns of a 2-D ``X`` (one feature per
        step, so ``mean_`` has one entry), the features per step of 3-D or ragged ``X``.

    Notes
    -----
    Input conventions are the estimators' (see :class:`~numrnn.RNNRegressor`): 3-D arrays
    ``(n_samples, n_timesteps, n_features)`` whose trailing all-NaN steps are padding,
    ragged lists of ``(T_i, n_features)`` (or 1-D) arrays, and 2-D arrays ``(n_samples,
    n_timesteps)`` of one feature per step (one mean and one scale for all their columns,
    so a sequence keeps its shape over time). NaN inside a sequence is an error, as in the
    estimators.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from numrnn import RNNRegressor
    >>> from numrnn.preprocessing import SequenceScaler
    >>> X = np.random.default_rng(0).normal(1000.0, 50.0, size=(40, 6, 2))
    >>> SequenceScaler().fit_transform(X).mean(axis=(0, 1)).round(12) + 0.0
    array([0., 0.])
    >>> model = make_pipeline(SequenceScaler(), RNNRegressor(hidden_size=4, max_iter=2))
    """

    def __init__(self, with_mean: bool = True, with_std: bool = True):
        self.with_mean = with_mean
        self.with_std = with_std

    # -- input ---------------------------------------------------------------------------
    def _read(self, X, *, reset: bool):
        """(form, padded float64 (n, T, F), lengths, original) of X; form names the input."""
        if isinstance(X, (list, tuple)) and len(X) and _rectangular(X):
            X = np.asarray(X)  # equal lengths: an array, as the estimators read it
        if isinstance(X, (list, tuple)):
            form = "list"
        else:
            ndim = getattr(X, "ndim", None)
            if ndim is None and not hasattr(X, "tocsr"):
                ndim = np.asarray(X).ndim
            form = "2d" if ndim is None or ndim <= 2 else "3d"
        if reset:
            self._fit_form_2d = form == "2d"
        elif self._fit_form_2d != (form == "2d"):
            fitted = (
                "a 2-D array (n_samples, n_timesteps)" if self._fit_form_2d else "3-D or ragged X"
            )
            raise ValueError(
                f"X must have the form seen in fit, {fitted}, got "
                f"{'a 2-D array' if form == '2d' else '3-D or ragged X'}. Transform data of "
                "the same form as the training data."
            )
        if form == "2d":
            # scikit-learn's own checks: sparse, complex, 1-D, column count and names
            X = validate_data(self, X, reset=reset, dtype="numeric", ensure_all_finite="allow-nan")
        else:
            if reset and hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            if form == "3d":
                X = np.asarray(X)
                if np.iscomplexobj(X):
                    raise ValueError(
                        "Complex data not supported: X has complex values. Pass real numbers."
                    )
            else:
                for k, s in enumerate(X):
                    if np.iscomplexobj(np.asarray(s)):
                        raise ValueError(
                            f"Complex data not supported: X[{k}] has complex values. Pass "
                            "real numbers."
                        )
        expected = None if reset or form == "2d" else self.mean_.shape[0]
        padded, lengths = check_sequences(
            X, n_features=expected, dtype=np.float64, allow_2d=True, nan_padding=True
        )
        if reset and form != "2d":
            self.n_features_in_ = int(padded.shape[2])
        return form, padded, lengths, X

    # -- estimator API -------------------------------------------------------------------
    def fit(self, X, y=None):
        """Compute the per-feature mean and scale over the valid steps of ``X``.

        Parameters
        ----------
        X : array-like (n_samples, n_timesteps, n_features), (n_samples, n_timesteps), or a
            list of (T_i, n_features) arrays
        y : ignored

        Returns
        -------
        self : SequenceScaler
        """
        for name in ("with_mean", "with_std"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(
                    f"{name} must be True or False, got {value!r}. Pass {name}=True or False."
                )
        _, padded, lengths, _ = self._read(X, reset=True)
        valid = np.arange(padded.shape[1])[None, :] < lengths[:, None]
        steps = padded[valid]  # (n_valid_steps, F), in float64
        mean = steps.mean(axis=0)
        var = ((steps - mean) ** 2).mean(axis=0)  # two passes: exact for large offsets
        self.mean_ = mean if self.with_mean else np.zeros_like(mean)
        self.var_ = var
        scale = np.sqrt(var)
        # constant features (up to rounding of the mean) are left unscaled
        tiny = scale <= 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        self.scale_ = np.where(tiny | (not self.with_std), 1.0, scale)
        self.n_steps_seen_ = int(steps.shape[0])
        return self

    def _apply(self, X, inverse: bool):
        check_is_fitted(self, "mean_")
        form, _, _, Xc = self._read(X, reset=False)
        mean, scale = self.mean_, self.scale_

        def one(a):
            a = np.asarray(a)
            dtype = a.dtype if a.dtype in (np.float32, np.float64) else np.float64
            m = mean if a.ndim != 1 else mean[0]
            s = scale if a.ndim != 1 else scale[0]
            out = a * s + m if inverse else (a - m) / s
            return out.astype(dtype, copy=False)

        if form == "list":
            return [one(s) for s in Xc]
        return one(Xc)

    def transform(self, X):
        """Scale ``X``: ``(x - mean_) / scale_`` per feature; padding stays NaN.

        Returns
        -------
        X_scaled : the form of ``X`` (3-D array, 2-D array or list of arrays); float32 input
            stays float32, anything else becomes float64.
        """
        return self._apply(X, inverse=False)

    def inverse_transform(self, X):
        """Undo :meth:`transform`: ``x * scale_ + mean_`` per feature."""
        return self._apply(X, inverse=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.two_d_array = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

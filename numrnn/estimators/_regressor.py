"""RNNRegressor: a recurrent network with a linear head trained on mean squared error."""

from __future__ import annotations

import inspect

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from numrnn._validation import check_dtype, check_real_input, fail
from numrnn.estimators._base import BaseRNN, _check_bool, _pad_sequence_targets
from numrnn.nn import losses


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
    readout : {'last', 'mean', 'max', 'last+mean+max', 'auto'}, default='last'
        What the head reads with ``output='last'`` (``numrnn.nn.readout``): 'last', the final
        state of each direction; 'mean' / 'max', the top layer's output pooled over each
        sequence's valid steps (padding never contributes); 'last+mean+max', the three side
        by side (a head three times as wide); 'auto', chosen by the first fit
        (``readout_``, :func:`numrnn.nn.readout.resolve_readout`): 'last+mean+max' when the
        sequences are not folded into segments (``segment_length_ == 1``), 'last' when they
        are, and 'last' wherever a pooled readout is undefined (``output='sequence'``,
        ``bptt_steps``). :class:`RNNClassifier`'s default is 'auto' (see its docstring).
        Pooled readouts need ``bptt_steps=None``;
        'last' is the default
        because on the classification benchmark
        (``benchmarks/classification_accuracy.py``, with segments) it beat both pooled
        readouts: mean accuracy 0.858 against 0.801 ('mean') and 0.806 ('max').
        'last+mean+max' reached 0.816 against 0.805 in one full run (seeds 0-2), but it is
        not the default: it gained on UnitTest (+0.09) and OSULeaf (+0.07) and lost on
        ArrowHead and PickupGestureWiimoteZ (-0.03 each), and it needs ``output='last'``.
        With augmentation (``augment='auto'`` in epochs of 128 samples; one full run,
        seeds 0-2): mean 0.829 against 0.824 with 'last', UnitTest 0.955 (= 1-NN DTW; 'last' 0.864), OSULeaf
        0.691 (0.617), ACSF1 0.787 (0.717), but ArrowHead 0.568 (0.712; DTW 0.703) and
        PickupGestureWiimoteZ 0.760 (0.793): at or above DTW on 8 sets against 9. Hence
        'auto' (the classifier's default): the gains were on the unfolded sets, the losses
        on the folded ones. Default 'last' here: no regression benchmark measured 'auto'.
    segment_length : None, int or 'auto', default='auto'
        Fold this many consecutive time steps into one recurrent input step of
        ``segment_length * n_features`` features (SegRNN / PatchTST patching,
        ``numrnn.nn.segments``); a final partial segment is zero-filled, never read from
        padding. 'auto' (``output='last'`` only; ``'sequence'`` never folds) picks
        ``ceil(T / 25)`` for the longest training sequence ``T``, so that about 25 recurrent
        steps remain: the largest single gain on the classification benchmark
        (``benchmarks/classification_accuracy.py``: +0.11 mean accuracy alone; without it GunPoint falls from 0.97 to 0.53), and fits
        ``T / 25`` times cheaper. Sequences of up to 25 steps are not folded. Fixed by the
        first fit (``segment_length_``).
    augment : None, 'auto' or dict, default=None
        Training-set augmentation (``numrnn.nn.augment``): every minibatch trains on a
        fresh random variant of its samples -- shifted in time by up to ``shift`` times
        each sequence's length (edge values repeated; never into padding), amplitudes
        scaled around each feature's mean by a normal factor of mean 1 and standard
        deviation ``scale``, and uniform noise of standard deviation ``jitter`` times the
        feature's added -- and an epoch makes ``variants`` such passes over the training
        set, one stream cut into full minibatches; the data is never copied. A dict names
        what it uses, e.g. ``{'shift': 0.05, 'jitter': 0.05, 'variants': 2}`` (missing
        strengths are 0, ``variants`` 1; no strength: off). ``'auto'``: a set of fewer than
        128 samples whose sequences are folded into segments (``segment_length_ > 1``) gets
        ``{'shift': 0.05, 'scale': 0.1, 'jitter': 0.05}`` with ``ceil(128 / n_samples)``
        variants per epoch (128 to 255 samples an epoch: its fit costs about what a fit on
        that many samples costs); other sets none. The draws come from ``random_state`` (same seed, same fit,
        on the CPU or the GPU: ``device='cuda'`` draws the variants on the host and uploads
        each minibatch). ``predict`` never augments. With ``output='sequence'`` a shift would
        misalign the targets: a dict's ``shift`` must be 0 ('auto' is off there: nothing is
        folded). Default None here (no regression benchmark measured it);
        :class:`RNNClassifier`'s default is 'auto', chosen on the classification benchmark
        (see its docstring: mean accuracy 0.805 to 0.832).
    bptt_steps : int or None, default=None
        Truncated BPTT chunk length (None: full BPTT), in recurrent steps (segments when
        folding). See ``numrnn.estimators._base``.
    clip_norm : float or None, default=1.0
        Global L2-norm clipping (over all parameters, head included). Default 1.0: gradient
        norms spike to 40-75 times their median before every loss spike on real data
        (the classification benchmark), clipping at 1 added 0.05 mean accuracy there and 0.009 on top of the
        other defaults; with standardised inputs and targets a norm of 1 rarely binds
        otherwise.
    clip_value : float or None, default=None
        Element-wise clipping.
    solver : {'adam', 'sgd'}, default='adam'
    alpha : float, default=1e-4
        L2 penalty (weight decay on weights, not biases).
    batch_size : int or 'auto', default='auto'
        'auto' = min(32, n_samples). The training budget is counted in updates, not epochs:
        with scikit-learn MLP's min(200, n_samples) a 40-sample set gets one Adam update
        per epoch, 200 in all, far too few (benchmark: GunPoint 0.83 with full batches,
        0.97 with 32). 32 is the smallest power of two that kept every set's accuracy on the
        benchmark while its fits stayed within the time target.
    learning_rate : {'constant', 'adaptive', 'cosine'}, default='adaptive'
        The schedule (``numrnn.nn.schedules``), for 'adam' and 'sgd'. 'adaptive': when the
        monitored loss (training loss; validation loss with ``early_stopping``) has not
        improved by ``tol`` for more than ``n_iter_no_change`` epochs, divide the rate by 5
        instead of stopping; stop on the plateau after five divisions (scikit-learn MLP's
        rule). Default because the benchmark's mean accuracy fell by 0.08 with 'constant',
        where a noisy spike of the loss ends the run. 'cosine' anneals to zero at
        ``max_iter``. ``partial_fit`` always uses ``learning_rate_init``.
    learning_rate_init : float, default=1e-3
    max_iter : int, default=200
        Epochs.
    shuffle : bool, default=True
    random_state : int, RandomState or None
        Seeds initialisation, shuffling, the validation split and dropout.
    tol : float, default=1e-4
        The least fall of the monitored loss that counts as an improvement (stopping rule,
        'adaptive' schedule). A fit that reaches ``max_iter`` ends with a
        ``ConvergenceWarning`` only while the monitored loss still falls: by more than
        ``tol`` over the last ``n_iter_no_change`` epochs (over the last tenth of the run
        when ``n_iter_no_change >= max_iter``, a fixed budget). Reaching ``max_iter`` on a
        flat loss, with 'adaptive' still lowering the rate, is convergence.
    verbose : int or bool, default=False
        1 (or True): one progress line on standard error, redrawn every epoch, with the
        loss, the validation loss and the time left (``tqdm`` when installed); 2: one line
        per epoch on standard output (``Iteration k, loss = ...``).
    warm_start : bool, default=False
    momentum : float, default=0.9  (sgd)
    nesterovs_momentum : bool, default=True  (sgd)
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` and monitor the validation loss instead of the
        training loss (stopping rule, 'adaptive' schedule, kept weights).
    validation_fraction : float, default=0.1
    validation_split : {'random', 'last'}, default='random'
        Which ``ceil(validation_fraction * n_samples)`` samples ``early_stopping`` holds out:
        ``'random'`` draws them (stratified by class for a classifier, as scikit-learn's
        MLP); ``'last'`` takes the last ones in the order given, for samples in time order
        such as forecasting windows, where a random split leaks (a held-out window overlaps
        its neighbours in the training set) and the validation loss flatters overfitting.
    beta_1, beta_2, epsilon : float  (adam)
    n_iter_no_change : int, default=10
    dtype : {'float32', 'float64'}, default='float32'
    device : {'cpu', 'cuda', 'auto'}, default='cpu'
        Where the fit runs; ``'auto'`` takes the GPU when one is usable. Default ``'cpu'``,
        measured on an H200 host with 16 cores (``docs/gpu.rst``): fits of 2048 sequences of
        50 steps (batch 32, 5 epochs) took 0.28 / 0.55 / 2.0 s on the CPU and 4.1 / 4.3 /
        4.9 s on the GPU for hidden sizes 16 / 64 / 256; ask for ``'cuda'`` for large
        networks and batches, where the GPU's forward + backward was 5-8x faster.
    scale_y : bool, default=True
        Train on ``(y - y_mean_) / y_scale_`` (per output, over the training targets, without
        the rows ``early_stopping`` holds out; fixed by the first fit) and fold the inverse
        map into the linear head at the end of ``fit``, so ``predict``, ``coef_`` and saved models are in ``y``'s units. Targets of
        any size then train with the same learning rate (unscaled, y around 200 gave
        R^2 = -72). ``loss_curve_`` is in standardised units.

    At the end of ``fit`` the model holds the weights of the epoch with the lowest monitored
    loss (``best_epoch_``), as Keras' ``restore_best_weights``.

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
    best_epoch_ : int
        The epoch (counted like ``n_iter_``) whose weights the model holds.
    segment_length_ : int
        Time steps per recurrent step (1: no folding).
    readout_ : str
        The readout the head reads (``readout``, with 'auto' resolved by the first fit).
    y_mean_, y_scale_ : ndarray of shape (n_outputs,)
        The target scaling (``scale_y=True`` only).
    t_ : int
        Training samples seen.
    n_features_in_ : int
        Features per time step for 3-D/ragged X; for 2-D (tabular) X its number of columns
        (time steps), which later 2-D input must match.
    feature_names_in_ : ndarray of str
        Column names of a 2-D DataFrame X (its time steps).
    n_outputs_ : int
    """

    def __init__(self, cell="lstm", hidden_size=64, *, scale_y=True, **params):
        super().__init__(cell, hidden_size, **params)
        self.scale_y = scale_y

    def _validate_hyperparameters(self):
        super()._validate_hyperparameters()
        _check_bool("scale_y", self.scale_y)

    def _reset_target_scaling(self, valid, *, incremental):
        """Before a fresh fit: check ``valid`` (every target) fits the model's dtype and drop
        the last fit's scaling; a warm start keeps the units its head was trained in."""
        reuse = hasattr(self, "network_") and (incremental or self.warm_start)
        if reuse:
            return
        if self.scale_y:
            self._check_target_range(valid)  # before anything of the last fit is dropped
        for name in ("y_mean_", "y_scale_", "_head_weight_trained", "_head_bias_trained"):
            self.__dict__.pop(name, None)

    def _scale_fit_targets(self, Y, lengths, sw, rows, reuse):
        """Standardise ``Y`` with ``y_mean_`` / ``y_scale_`` (scale_y), which a fresh fit takes
        from the training ``rows`` only: the rows ``early_stopping`` holds out must not shape
        the model they judge. Weighted moments (``sw``), so a weight of 2 scales like a
        repeated sample; for ``output='sequence'`` over the valid steps of those rows.
        """
        if not reuse and self.scale_y:
            valid, w = Y[rows], None if sw is None else sw[rows]
            if self.output == "sequence":
                mask = self._seq_mask(lengths[rows], Y.shape[1])
                valid = valid[mask]
                w = None if w is None else np.broadcast_to(w[:, None], mask.shape)[mask]
            w = np.ones(valid.shape[0]) if w is None else w
            mean = np.average(valid, axis=0, weights=w)
            std = np.sqrt(np.average((valid - mean) ** 2, axis=0, weights=w))
            self.y_mean_ = mean
            self.y_scale_ = np.where(std > 0, std, 1.0)
        if not hasattr(self, "y_mean_"):
            return Y
        return (Y - self.y_mean_) / self.y_scale_

    def _check_target_range(self, valid):
        # the head is folded into the user's units (_head_to_user_units), so predictions
        # are formed in the network's dtype: targets near its largest value would overflow
        # to inf silently; 1e-4 of the range leaves room for a head output of a few units
        dtype = check_dtype(self.dtype)
        limit = float(np.finfo(dtype).max) * 1e-4
        largest = float(np.max(np.abs(valid))) if valid.size else 0.0
        if largest > limit:
            fail(
                "y",
                f"smaller than {limit:.1e} in magnitude for a {dtype.name} model "
                "(its predictions are formed in that dtype)",
                largest,
                "Pass dtype='float64' or rescale y.",
            )

    def _head_to_user_units(self):
        # the head is linear: predicting y_mean_ + y_scale_ * z is the same as a head with
        # weight y_scale_ * W and bias y_scale_ * b + y_mean_, so predict, generate, plots
        # and saved files all see one head in the user's units
        if not hasattr(self, "y_mean_"):
            return
        w, b = self.head_.weight, self.head_.bias
        self._head_weight_trained, self._head_bias_trained = w.copy(), b.copy()
        s = self.y_scale_
        w[...] = s[:, None] * w.astype(np.float64)
        b[...] = s * b.astype(np.float64) + self.y_mean_

    def _head_to_training_units(self):
        if not hasattr(self, "y_mean_"):
            return
        w, b = self.head_.weight, self.head_.bias
        kw = getattr(self, "_head_weight_trained", None)
        kb = getattr(self, "_head_bias_trained", None)
        if kw is not None and kb is not None:
            # unchanged since the last fit: continue from the exact trained values
            s = self.y_scale_
            same = np.array_equal(w, (s[:, None] * kw.astype(np.float64)).astype(w.dtype))
            if same and np.array_equal(
                b, (s * kb.astype(np.float64) + self.y_mean_).astype(b.dtype)
            ):
                w[...], b[...] = kw, kb
                return
        w[...] = w.astype(np.float64) / self.y_scale_[:, None]
        b[...] = (b.astype(np.float64) - self.y_mean_) / self.y_scale_

    def _prepare_y(self, y, Xp, lengths, *, incremental, classes, sample_weight=None):
        n = len(Xp)
        T = int(lengths.max()) if isinstance(Xp, list) else Xp.shape[1]
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
            self._reset_target_scaling(Y[self._seq_mask(lengths, T)], incremental=incremental)
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
            self._reset_target_scaling(Y, incremental=incremental)
        self.n_outputs_ = int(Y.shape[-1])
        return Y

    def _loss(self, z, target, mask, weight):
        # looked up at call time: numrnn.nn.losses is the one definition (tests wrap it)
        return losses.mse_loss(z, target, mask=mask, sample_weight=weight)

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


def _with_scale_y(init):
    """``__init__``'s signature as scikit-learn reads it: BaseRNN's parameters + scale_y."""
    base = list(inspect.signature(BaseRNN.__init__).parameters.values())
    extra = inspect.Parameter("scale_y", inspect.Parameter.KEYWORD_ONLY, default=True)
    init.__signature__ = inspect.Signature(base + [extra])
    return init


RNNRegressor.__init__ = _with_scale_y(RNNRegressor.__init__)


def _float64(arrays: list) -> list:
    return [a.astype(np.float64) for a in arrays]

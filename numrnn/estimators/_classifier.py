"""RNNClassifier: a recurrent network with a softmax head trained on cross-entropy."""

from __future__ import annotations

import inspect

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from numrnn._validation import check_param
from numrnn.estimators._base import BaseRNN, _pad_sequence_targets
from numrnn.nn import losses
from numrnn.nn.losses import softmax

#: ``n_models``' default (see the class docstring for the measurement behind it).
N_MODELS_DEFAULT = 5
#: ``hidden_size``' default for the classifier (RNNRegressor's is 64): see the docstring.
HIDDEN_SIZE_DEFAULT = 32
#: ``augment``'s default for the classifier (RNNRegressor's is None): see the docstring.
AUGMENT_DEFAULT = "auto"
#: ``readout``'s default for the classifier (RNNRegressor's is 'last'): see the docstring.
READOUT_DEFAULT = "auto"


class RNNClassifier(ClassifierMixin, BaseRNN):
    """Recurrent neural network classifier (RNN, LSTM or GRU with a softmax readout).

    Labels may be of any type (ints, strings, ...). With ``output='last'`` ``y`` is
    (n_samples,); with ``output='sequence'`` every valid step has a label: ``y`` is
    (n_samples, n_timesteps) (padded steps are ignored) or a ragged list of label sequences.

    Parameters are those of :class:`numrnn.RNNRegressor` (without ``scale_y``), except:

    hidden_size : int, default=32
        Half the regressor's 64: in the ensemble below, five networks of 32 beat three of
        64 at about the same fit time (benchmark, 5 seeds: mean accuracy 0.828 against
        0.801; one network of 32 alone 0.769, of 64 alone 0.775).
    n_models : int, default=5
        Networks trained (from seeds drawn from ``random_state``, as ``RNNForecaster``'s
        ``n_models``) and combined by averaging their class probabilities: a seed ensemble.
        Default 5: on the classification benchmark (``benchmarks/classification_accuracy.py``,
        10 UCR/UEA sets, seeds 0-4 of the candidates' runs) averaging networks of 32 units
        raised the mean accuracy from 0.769 (one network) to 0.805 (three) and 0.828
        (five), the largest gain of any change measured there: networks trained on small
        sets overfit in different ways, and one network's accuracy varied by up to 0.3
        between seeds (ArrowHead). In one full run of the benchmark (seeds 0-2) the default
        reached 0.805 against 0.777 (one network of 32), 0.790 (one of 64), 0.789 (1-NN
        DTW) and 0.916 (MiniRocket), at most 13 CPU seconds a fit. The fit and predict cost
        five times one network's (about three times one network of 64 units).
    augment : None, 'auto' or dict, default='auto'
        As the regressor's (whose default is None: no regression benchmark measured it).
        'auto' augments training sets of fewer than 128 samples whose sequences are folded
        into segments, with ``ceil(128 / n_samples)`` variants an epoch; other sets train
        as with None. Default 'auto': in one full run of the classification benchmark
        (seeds 0-2, load average 3-5) it raised the mean accuracy from 0.805 (None) to
        0.832 (1-NN DTW 0.789, MiniRocket 0.916) and put the default at or above 1-NN DTW
        on 9 of the 10 sets instead of 8: ArrowHead 0.733 against 0.570 (DTW 0.703),
        PickupGestureWiimoteZ 0.800 against 0.747, GunPoint 0.980 against 0.956, ACSF1
        0.777 against 0.740; the six other sets are not augmented (unchanged; UnitTest
        0.864 stays below DTW's 0.955). Its slowest fit, ACSF1 (seed 0, 2 cores, load
        0.7), took 14.3 s wall / 28.4 CPU s (both threads) against 5.7 s / 11.3 s with
        None; the other augmented sets 8-10 s wall. Epochs of exactly 128 samples (a
        fraction of a pass) cost less but reached 0.824 (ACSF1 0.717).

    readout : {'last', 'mean', 'max', 'last+mean+max', 'auto'}, default='auto'
        As the regressor's (whose default is 'last'). 'auto' resolves at fit time
        (``readout_``, :func:`numrnn.nn.readout.resolve_readout`) to 'last+mean+max' when
        the sequences are not folded into segments (``segment_length_ == 1``) and to 'last'
        when they are. Default 'auto': in one full run of the classification benchmark
        (recipes ``default`` and ``last``, seeds 0-2) it raised the mean accuracy from 0.836
        ('last') to 0.839 (1-NN DTW 0.789, MiniRocket 0.916): UnitTest 0.939 against 0.909
        (DTW 0.955; one seed of three one test sample short of it), ItalyPowerDemand 0.966
        against 0.967 (one test sample of 1029 in one seed), the seven folded sets the same
        fits bit for bit. Over seeds 3-9 UnitTest reached 0.955 in every seed against 0.896
        ('last'), ItalyPowerDemand 0.966 with both. 'last+mean+max' on every set lost on
        folded ones (ArrowHead -0.144, PickupGestureWiimoteZ -0.033; see the regressor's
        ``readout``).

    ``score`` is accuracy.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    readout_ : str
        The readout the head reads: 'auto' resolved by the first fit.
    extra_models_ : list of RNNClassifier
        The other ``n_models - 1`` networks, each a fitted ``RNNClassifier`` with
        ``n_models=1`` (absent when ``n_models=1``); ``network_``, ``head_`` and the
        curves are the first network's.
    network_, head_, coef_, intercept_, loss_curve_, validation_loss_curve_,
    validation_scores_ (accuracy), best_loss_, best_validation_score_, n_iter_, t_,
    n_features_in_, n_outputs_ (= n_classes) : see :class:`numrnn.RNNRegressor`.
    """

    _is_classifier = True

    def __init__(
        self, cell="lstm", hidden_size=HIDDEN_SIZE_DEFAULT, *, n_models=N_MODELS_DEFAULT, **params
    ):
        params.setdefault("augment", AUGMENT_DEFAULT)
        params.setdefault("readout", READOUT_DEFAULT)
        super().__init__(cell, hidden_size, **params)
        self.n_models = n_models

    def _validate_hyperparameters(self):
        super()._validate_hyperparameters()
        check_param("n_models", self.n_models)

    def _set_classes(self, labels, *, incremental, classes):
        fitted = hasattr(self, "classes_") and hasattr(self, "network_")
        if incremental:
            if not fitted:
                if classes is None:
                    raise ValueError(
                        "classes must be passed on the first call to partial_fit, got None. "
                        "Pass classes=np.unique(y_all) (every label that will ever occur)."
                    )
                self.classes_ = np.unique(np.asarray(classes))
        elif not (self.warm_start and fitted):
            self.classes_ = np.unique(labels)
        unknown = np.setdiff1d(np.unique(labels), self.classes_)
        if unknown.size:
            if incremental:
                fix = (
                    "Pass every label that will ever occur as classes= on the first "
                    "partial_fit call (e.g. classes=np.unique(y_all)), or refit with fit."
                )
            else:
                fix = (
                    "With warm_start=True the label set must stay the same; set "
                    "warm_start=False to refit."
                )
            raise ValueError(
                f"y contains labels {unknown.tolist()} not in classes_ {self.classes_.tolist()} "
                f"fixed by the first fit or partial_fit. {fix}"
            )
        if self.classes_.shape[0] < 2:
            raise ValueError(
                f"RNNClassifier needs samples of at least 2 classes in the data, but y has only "
                f"1 class: {self.classes_.tolist()[0]!r}. Pass data with two or more labels."
            )
        self.n_outputs_ = int(self.classes_.shape[0])

    def _prepare_y(self, y, Xp, lengths, *, incremental, classes, sample_weight=None):
        n = len(Xp)
        T = int(lengths.max()) if isinstance(Xp, list) else Xp.shape[1]
        if self.output == "sequence":
            Y = _pad_sequence_targets(y, lengths, T, numeric=False)
            if Y.ndim != 2:
                raise ValueError(
                    f"y must be (n_samples, n_timesteps) labels for output='sequence', got "
                    f"shape {Y.shape}. Multi-output classification is not supported."
                )
            mask = self._seq_mask(lengths, T)
            labels = Y[mask]
            if labels.dtype == object:
                try:
                    labels = np.asarray(labels.tolist())
                except (TypeError, ValueError):
                    pass
            _reject_none_labels(labels)
            check_classification_targets(labels)
            self._set_classes(labels, incremental=incremental, classes=classes)
            enc = np.zeros((n, T), dtype=np.int64)
            enc[mask] = np.searchsorted(self.classes_, labels)
            return enc
        if y is None:
            raise ValueError(
                "RNNClassifier requires y to be passed, but the target y is None. "
                "Pass one label per sequence."
            )
        y = column_or_1d(y, warn=True)
        if y.shape[0] != n:
            raise ValueError(
                f"X and y have inconsistent numbers of samples: {n} sequences in X, "
                f"{y.shape[0]} labels in y. Pass one label per sequence."
            )
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise ValueError(
                f"y must hold a label for every sequence, got NaN at {int(np.isnan(y).sum())} "
                f"position(s) (first at sample {int(np.argmax(np.isnan(y)))}). Drop unlabeled "
                "sequences before fitting."
            )
        _reject_none_labels(y)
        check_classification_targets(y)
        self._set_classes(y, incremental=incremental, classes=classes)
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _loss(self, z, target, mask, weight):
        return losses.softmax_cross_entropy(z, target, mask=mask, sample_weight=weight)

    def _score_encoded(self, Xp, lengths, Y, sw, z=None):
        if z is None:
            z = self._forward_predict(Xp, lengths)
        if self.output == "sequence":
            mask = self._seq_mask(lengths, Y.shape[1])
            w = None if sw is None else np.broadcast_to(sw[:, None], mask.shape)[mask]
            return accuracy_score(Y[mask], z[:, : Y.shape[1]].argmax(-1)[mask], sample_weight=w)
        return accuracy_score(Y, z.argmax(-1), sample_weight=sw)

    def fit(self, X, y, sample_weight=None):
        """Train on sequences ``X`` and labels ``y`` (see the class docstring)."""
        return self._fit(X, y, sample_weight)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``X, y``; ``classes`` (all labels) is required on the first call."""
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _proba(self, X):
        check_is_fitted(self, "network_")
        Xp, lengths, ragged = self._validate_X(X, reset=False, pad=False)
        # float64 before softmax: the mean over n_models networks is then formed in float64
        p = self._ensemble_outputs(Xp, lengths, _probabilities)
        return p, lengths, ragged

    def predict_proba(self, X):
        """Class probabilities: (n, n_classes) for 'last'; (n, T, n_classes) for 'sequence'
        with NaN at padded steps (a list of (T_i, n_classes) arrays for a ragged list X)."""
        p, lengths, ragged = self._proba(X)
        if self.output == "sequence":
            if ragged:
                return p
            p[~self._seq_mask(lengths, p.shape[1])] = np.nan
        return p

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        p = self.predict_proba(X)
        if isinstance(p, list):
            return [np.log(a) for a in p]
        return np.log(p)

    def predict(self, X):
        """Labels: (n,) for 'last'; (n, T) for 'sequence' (a list of (T_i,) arrays for a
        ragged list X; for a padded array, padded steps hold None, or NaN for float labels)."""
        p, lengths, ragged = self._proba(X)
        if isinstance(p, list):
            return [self.classes_[pi.argmax(-1)] for pi in p]
        labels = self.classes_[p.argmax(-1)]
        if self.output == "last":
            return labels
        pad = ~self._seq_mask(lengths, labels.shape[1])
        if pad.any():
            if labels.dtype.kind == "f":
                labels[pad] = np.nan
            else:
                labels = labels.astype(object)
                labels[pad] = None
        return labels

    def score(self, X, y, sample_weight=None):
        """Accuracy; for 'sequence' over all valid steps (flattened)."""
        if self.output == "last":
            return super().score(X, y, sample_weight=sample_weight)
        check_is_fitted(self, "network_")
        Xp, lengths, _ = self._validate_X(X, reset=False)
        Y = _pad_sequence_targets(y, lengths, Xp.shape[1], numeric=False)
        mask = self._seq_mask(lengths, Xp.shape[1])
        y_true = np.asarray(Y[mask].tolist())
        p = self._proba(X)[0]
        if isinstance(p, list):  # a ragged list X: one (T_i, K) array per sample
            pred = np.zeros(mask.shape, dtype=np.int64)
            for i, pi in enumerate(p):
                pred[i, : pi.shape[0]] = pi.argmax(-1)
        else:
            pred = p.argmax(-1)
        y_pred = self.classes_[pred][mask]
        sw = self._validate_sample_weight(sample_weight, Xp.shape[0])
        w = None if sw is None else np.broadcast_to(sw[:, None], mask.shape)[mask]
        return accuracy_score(y_true, y_pred, sample_weight=w)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = False
        tags.classifier_tags.multi_class = True
        return tags


def _reject_none_labels(labels) -> None:
    """``None`` cannot be ordered with other labels (classes_ is sorted): name it."""
    if labels.dtype == object:
        none = np.array([v is None for v in labels.ravel()])
        if none.any():
            raise ValueError(
                f"y contains None at {int(none.sum())} position(s) (first at index "
                f"{int(np.argmax(none))}); every sequence needs a label. Drop unlabeled "
                "sequences or give them a label."
            )


def _probabilities(z):
    """Softmax of head outputs (an array, or a list of (T_i, K) arrays), as float64."""
    if isinstance(z, list):  # ragged 'sequence': one (T_i, K) array per sample
        return [softmax(zi).astype(np.float64) for zi in z]
    return softmax(z).astype(np.float64)


def _with_n_models(init):
    """``__init__``'s signature as scikit-learn reads it: BaseRNN's parameters (hidden_size's
    and augment's defaults the classifier's) + n_models."""
    own = {
        "hidden_size": HIDDEN_SIZE_DEFAULT,
        "augment": AUGMENT_DEFAULT,
        "readout": READOUT_DEFAULT,
    }
    base = [
        p.replace(default=own[p.name]) if p.name in own else p
        for p in inspect.signature(BaseRNN.__init__).parameters.values()
    ]
    extra = inspect.Parameter("n_models", inspect.Parameter.KEYWORD_ONLY, default=N_MODELS_DEFAULT)
    init.__signature__ = inspect.Signature(base + [extra])
    return init


RNNClassifier.__init__ = _with_n_models(RNNClassifier.__init__)

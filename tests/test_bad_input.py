"""Bad input at the estimator level (issue #7, DESIGN.md §6).

Each case checks one error whose message names the argument, what was expected, what was
given and how to fix it: every listed fragment must appear (case-insensitive).
"""

import re
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from numrnn._config import cuda_available
from numrnn.estimators import RNNClassifier, RNNRegressor

N, T, F = 10, 5, 2
_rng = np.random.default_rng(0)
X = _rng.standard_normal((N, T, F))
Y = X.sum(axis=(1, 2))
LABELS = (Y > 0).astype(int)


def _small(cls=RNNRegressor, **kw):
    return cls(**{"cell": "rnn", "hidden_size": 2, "max_iter": 1, "random_state": 0, **kw})


def _quiet_fit(m, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return m.fit(*args, **kw)


@pytest.fixture(scope="module")
def reg():
    return _quiet_fit(_small(), X, Y)


@pytest.fixture(scope="module")
def clf():
    return _quiet_fit(_small(RNNClassifier), X, LABELS)


def _raises(fn, parts, exc=ValueError):
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    for p in parts:
        assert re.search(p, msg, flags=re.IGNORECASE), f"{p!r} not in: {msg}"
    return msg


def _with(X0, idx, value):
    Xc = X0.copy()
    Xc[idx] = value
    return Xc


# -- shapes ---------------------------------------------------------------------------------
def test_fit_4d_X():
    _raises(
        lambda: _small().fit(X[None], Y),
        [
            "^X must be 3-D",
            r"n_samples, n_timesteps, n_features",
            r"shape \(1, 10, 5, 2\)",
            "Reshape",
        ],
    )


def test_fit_1d_X():
    _raises(
        lambda: _small().fit(X[0, 0], Y[:2]),
        ["^X must be 3-D", r"1-D array of shape \(2,\)", r"Reshape your data", "reshape"],
    )


def test_predict_wrong_ndim(reg):
    _raises(lambda: reg.predict(X[None]), ["^X must be 3-D", r"\(1, 10, 5, 2\)", "Reshape"])


@pytest.mark.parametrize("method", ["predict", "partial_fit"])
def test_feature_count_differs_from_fit(reg, method):
    args = (X[:, :, :1],) + ((Y,) if method == "partial_fit" else ())
    _raises(
        lambda: getattr(reg, method)(*args),
        [
            "^X has 1 features per step",
            "2 were expected",
            "n_features_in_",
            "same number of features",
        ],
    )


def test_feature_count_ragged(reg):
    _raises(lambda: reg.predict([X[0][:, :1]]), ["X has 1 features per step", "2 were expected"])


def test_2d_columns_differ_from_fit():
    m = _quiet_fit(_small(), X[:, :, 0], Y)  # 2-D: columns are time steps (sklearn contract)
    _raises(lambda: m.predict(X[:, :3, 0]), ["X has 3 features", "expecting 5 features"])


# -- NaN / inf --------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_inside_sequence_fit(value):
    _raises(
        lambda: _small().fit(_with(X, (1, 2, 0), value), Y),
        [
            "^X contains NaN or inf inside a sequence",
            "sample 1, step 2, feature 0",
            "trailing all-NaN steps",
            "impute or drop",
        ],
    )


def test_non_finite_inside_sequence_predict(reg):
    _raises(
        lambda: reg.predict(_with(X, (3, 0, 1), np.nan)),
        ["X contains NaN or inf", "sample 3, step 0, feature 1"],
    )


def test_nan_inside_ragged_sequence(reg):
    seq = X[0].copy()
    seq[1, 0] = np.nan
    _raises(lambda: reg.predict([seq, X[1][:3]]), ["X contains NaN or inf", "sample 0, step 1"])


def test_trailing_all_nan_steps_are_padding(reg):
    Xp = _with(X, (slice(0, 3), slice(3, None)), np.nan)
    padded = reg.predict(Xp)
    ragged = reg.predict([X[i, :3] if i < 3 else X[i] for i in range(N)])
    np.testing.assert_allclose(padded, ragged, rtol=1e-6)
    _quiet_fit(_small(), Xp, Y)  # fit accepts padding too


def test_partly_nan_step_at_end_is_not_padding(reg):
    _raises(
        lambda: reg.predict(_with(X, (0, -1, 0), np.nan)),
        ["NaN or inf inside a sequence", "sample 0, step 4, feature 0"],
    )


# -- empty input, zero-length sequences --------------------------------------------------------
@pytest.mark.parametrize("Xe", [np.empty((0, T, F)), []], ids=["array", "list"])
def test_empty_X_fit(Xe):
    _raises(lambda: _small().fit(Xe, np.empty(0)), ["^X is empty", "0 s", "at least one sequence"])


def test_empty_X_predict(reg):
    _raises(lambda: reg.predict(np.empty((0, T, F))), ["^X is empty", r"\(0, 5, 2\)"])


def test_zero_timesteps():
    _raises(
        lambda: _small().fit(np.empty((3, 0, F)), Y[:3]),
        ["X has 0 time steps", r"\(3, 0, 2\)", "at least one step"],
    )


def test_zero_length_sequence_in_list(reg):
    _raises(
        lambda: reg.predict([X[0], np.empty((0, F))]),
        [r"X\[1\] has 0 time steps", "at least one step"],
    )


def test_all_nan_sequence_is_empty():
    _raises(
        lambda: _small().fit(_with(X, 4, np.nan), Y),
        [
            "sequence lengths must lie in",
            "at least one valid step",
            "got 0 for sample 4",
            "Remove empty",
        ],
    )


# -- y ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls,y", [(RNNRegressor, Y), (RNNClassifier, LABELS)])
def test_X_y_lengths_differ(cls, y):
    _raises(
        lambda: _small(cls).fit(X, y[:-1]),
        [
            "X and y have inconsistent numbers of samples",
            "10 sequences in X",
            "9 ",
            "one (target|label) per sequence",
        ],
    )


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_regressor_y_non_finite(value):
    _raises(
        lambda: _small().fit(X, _with(Y, 3, value)),
        ["^y must be finite", "NaN or infinity", "first at sample 3", "Drop those samples"],
    )


def test_regressor_sequence_y_nan_at_valid_step():
    Ys = X[:, :, 0].copy()
    Ys[2, 1] = np.nan
    _raises(
        lambda: _small(output="sequence").fit(X, Ys),
        ["^y must be finite at every valid step", "padded", "impute or drop"],
    )


def test_classifier_y_nan():
    _raises(
        lambda: _small(RNNClassifier).fit(X, _with(LABELS.astype(float), 0, np.nan)),
        ["^y must hold a label for every sequence", "NaN", "sample 0", "Drop unlabeled"],
    )


def test_regressor_y_strings():
    _raises(
        lambda: _small().fit(X, np.array(["a"] * N)),
        ["^y must be numeric", "dtype <U1", "RNNClassifier"],
    )


def test_single_class():
    _raises(
        lambda: _small(RNNClassifier).fit(X, np.zeros(N)),
        ["at least 2 classes", "only 1 class: 0.0", "two or more labels"],
    )


def test_partial_fit_first_call_needs_classes():
    _raises(
        lambda: _small(RNNClassifier).partial_fit(X, LABELS),
        [
            "^classes must be passed on the first call to partial_fit",
            "got None",
            "classes=np.unique",
        ],
    )


def test_partial_fit_unknown_labels():
    m = _small(RNNClassifier).partial_fit(X, LABELS, classes=[0, 1])
    _raises(
        lambda: m.partial_fit(X, np.full(N, 2)),
        [r"y contains labels \[2\] not in classes_ \[0, 1\]", "first partial_fit call", "classes="],
    )


# -- non-numeric X --------------------------------------------------------------------------
def test_string_3d_X():
    _raises(
        lambda: _small().fit(np.full((3, 4, F), "a"), Y[:3]),
        ["^X must contain numbers", "dtype <U1", "Convert strings"],
    )


def test_object_3d_X():
    Xo = np.empty((3, 4, F), dtype=object)
    Xo[...] = object()
    _raises(
        lambda: _small().fit(Xo, Y[:3]),
        ["^X must contain numbers", "Convert objects"],
        exc=TypeError,
    )


def test_string_2d_X():
    # 2-D input is scikit-learn's tabular contract: its message
    _raises(lambda: _small().fit(np.full((3, 4), "a"), Y[:3]), ["numeric", "Convert"])


def test_string_in_ragged_list():
    _raises(
        lambda: _small().fit([X[0], np.full((2, F), "x")], Y[:2]),
        [r"^X\[1\] must contain numbers", "dtype <U1", "Convert"],
    )


# -- hyperparameters ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "param,value,parts",
    [
        ("hidden_size", 0, ["^hidden_size must be an integer >= 1", "got 0", "whole number"]),
        ("hidden_size", 2.5, ["^hidden_size must be an integer", "got 2.5"]),
        ("hidden_size", "8", ["^hidden_size must be an integer", "got '8'"]),
        ("num_layers", True, ["^num_layers must be an integer", "got True"]),
        (
            "cell",
            "lstn",
            [r"^cell must be one of \('rnn', 'lstm', 'gru'\)", "got 'lstn'", "Pass one of"],
        ),
        (
            "dropout",
            1.5,
            [r"^dropout must be a real number in \[0.0, 1.0\)", "got 1.5", "in that range"],
        ),
        ("dropout", "x", ["^dropout must be a real number", "got 'x'"]),
        ("bptt_steps", 0, ["^bptt_steps must be an integer >= 1 or None", "got 0"]),
        ("bptt_steps", 1.5, ["^bptt_steps must be an integer", "got 1.5"]),
        ("max_iter", 0, ["^max_iter must be an integer >= 1", "got 0"]),
        (
            "learning_rate_init",
            -1.0,
            ["^learning_rate_init must be a real number in \\(0.0", "got -1.0"],
        ),
        (
            "batch_size",
            0,
            ["^batch_size must be 'auto' or an integer >= 1", "got 0", "batch_size=32"],
        ),
        ("solver", "lbfgs", [r"^solver must be one of \('adam', 'sgd'\)", "got 'lbfgs'"]),
        ("dtype", "float16", ["^dtype must be 'float32' or 'float64'", "got 'float16'"]),
        ("device", "gpu", [r"^device must be one of \('auto', 'cpu', 'cuda'\)", "got 'gpu'"]),
        ("merge_mode", "avg", ["^merge_mode must be one of", "got 'avg'"]),
        ("validation_fraction", 1.0, ["^validation_fraction must be a real number", "got 1.0"]),
    ],
)
@pytest.mark.parametrize("cls", [RNNRegressor, RNNClassifier])
def test_bad_hyperparameter(cls, param, value, parts):
    y = Y if cls is RNNRegressor else LABELS
    m = _small(cls, **{param: value})
    _raises(lambda: m.fit(X, y), parts)
    assert not hasattr(m, "network_")


def test_bptt_with_bidirectional():
    _raises(
        lambda: _small(bptt_steps=2, bidirectional=True).fit(X, Y),
        [
            "^bptt_steps must be None when bidirectional=True",
            "got bptt_steps=2",
            "Set bptt_steps=None",
        ],
    )


def test_bad_hyperparameter_in_partial_fit():
    _raises(lambda: _small(hidden_size=0).partial_fit(X, Y), ["hidden_size must be an integer"])


# -- not fitted, device ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "cls,method",
    [
        (RNNRegressor, "predict"),
        (RNNRegressor, "score"),
        (RNNClassifier, "predict"),
        (RNNClassifier, "predict_proba"),
        (RNNClassifier, "predict_log_proba"),
        (RNNClassifier, "score"),
    ],
)
def test_not_fitted(cls, method):
    args = (X,) if method.startswith("predict") else (X, Y if cls is RNNRegressor else LABELS)
    _raises(
        lambda: getattr(cls(), method)(*args),
        [f"This {cls.__name__} instance is not fitted yet", "Call 'fit'"],
        exc=NotFittedError,
    )


@pytest.mark.skipif(cuda_available(), reason="a GPU is present")
def test_cuda_without_gpu():
    m = _small(device="cuda")
    _raises(lambda: m.fit(X, Y), ["device='cuda'", "no CUDA GPU is available", "device='cpu'"])
    assert not hasattr(m, "network_")


def test_failed_fit_keeps_previous_model(reg):
    before = reg.predict(X)
    with pytest.raises(ValueError):
        reg.fit(_with(X, (0, 0, 0), np.nan), Y)
    np.testing.assert_array_equal(reg.predict(X), before)

"""SequenceScaler: per-feature statistics over valid steps, every input form, pipelines."""

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from numrnn.estimators import RNNRegressor
from numrnn.preprocessing import SequenceScaler

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@parametrize_with_checks([SequenceScaler(), SequenceScaler(with_mean=False)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _ragged(seed=0, n=25, F=3):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 12, size=n)
    offsets = np.array([1000.0, -3.0, 0.0])[:F]
    seqs = [offsets + rng.normal(size=(L, F)) * [50.0, 0.01, 1.0][:F] for L in lengths]
    padded = np.full((n, lengths.max(), F), np.nan)
    for i, s in enumerate(seqs):
        padded[i, : len(s)] = s
    return seqs, padded


def test_statistics_are_over_valid_steps_only():
    seqs, padded = _ragged()
    steps = np.concatenate(seqs)  # every valid step once, no padding
    for X in (seqs, padded):
        sc = SequenceScaler().fit(X)
        np.testing.assert_allclose(sc.mean_, steps.mean(axis=0), rtol=1e-13)
        np.testing.assert_allclose(sc.scale_, steps.std(axis=0), rtol=1e-12)
        assert sc.n_features_in_ == 3 and sc.n_steps_seen_ == steps.shape[0]


def test_padded_and_ragged_give_the_same_values_and_keep_their_form():
    seqs, padded = _ragged()
    out_list = SequenceScaler().fit(seqs).transform(seqs)
    out_pad = SequenceScaler().fit_transform(padded)
    assert isinstance(out_list, list) and [a.shape for a in out_list] == [a.shape for a in seqs]
    assert out_pad.shape == padded.shape
    for i, a in enumerate(out_list):
        np.testing.assert_array_equal(out_pad[i, : len(a)], a)
        assert np.isnan(out_pad[i, len(a) :]).all()  # padding stays padding
    steps = np.concatenate(out_list)
    np.testing.assert_allclose(steps.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(steps.std(axis=0), 1.0, rtol=1e-12)


@pytest.mark.parametrize("form", ["3d", "list", "list1d", "2d"])
def test_inverse_transform_round_trip(form):
    seqs, padded = _ragged()
    X = {
        "3d": padded,
        "list": seqs,
        "list1d": [s[:, 0] for s in seqs],
        "2d": padded[:, :, 0],  # one feature per step, trailing NaN padding
    }[form]
    sc = SequenceScaler().fit(X)
    back = sc.inverse_transform(sc.transform(X))
    if isinstance(X, list):
        for a, b in zip(X, back, strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(b, a, rtol=1e-12)
    else:
        np.testing.assert_allclose(back, X, rtol=1e-12)  # NaN padding compares equal
    if form == "2d":  # 2-D: one statistic for all columns, so sequences keep their shape
        assert sc.mean_.shape == (1,) and sc.n_features_in_ == X.shape[1]


def test_float32_stays_float32_and_constant_features_are_not_scaled():
    X = np.random.default_rng(1).normal(size=(10, 5, 2)).astype(np.float32)
    X[:, :, 1] = 7.0
    sc = SequenceScaler().fit(X)
    out = sc.transform(X)
    assert out.dtype == np.float32 and sc.scale_[1] == 1.0
    np.testing.assert_array_equal(out[:, :, 1], 0.0)


def test_input_errors_name_the_problem():
    seqs, padded = _ragged()
    sc = SequenceScaler().fit(padded)
    with pytest.raises(ValueError, match="3 were expected"):
        sc.transform(padded[:, :, :2])
    with pytest.raises(ValueError, match="form seen in fit"):
        sc.transform(padded[:, :, 0])
    bad = padded.copy()
    bad[0, 0, 0] = np.nan  # NaN inside a sequence is missing data, not padding
    with pytest.raises(ValueError, match="NaN or inf inside a sequence"):
        SequenceScaler().fit(bad)
    with pytest.raises(ValueError, match="with_std must be True or False"):
        SequenceScaler(with_std="yes").fit(padded)


def test_in_a_pipeline_before_the_regressor():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 10, 2)) * [50.0, 0.02] + [1000.0, 5.0]
    y = (X[:, -3:, 0].mean(axis=1) - 1000.0) / 50.0 + (X[:, -1, 1] - 5.0) / 0.02
    params = dict(hidden_size=8, max_iter=30, learning_rate_init=0.02, random_state=0)
    with pytest.raises(ValueError):  # the reason this class exists
        make_pipeline(StandardScaler(), RNNRegressor(**params)).fit(X, y)
    pipe = make_pipeline(SequenceScaler(), RNNRegressor(**params)).fit(X, y)
    by_hand = RNNRegressor(**params).fit(SequenceScaler().fit_transform(X), y)
    np.testing.assert_array_equal(
        pipe.predict(X), by_hand.predict(SequenceScaler().fit(X).transform(X))
    )
    unscaled = RNNRegressor(**params).fit(X, y)
    # inputs near 1000 saturate the gates; scaled, the same model learns the target
    assert pipe.score(X, y) > 0.8 > unscaled.score(X, y)

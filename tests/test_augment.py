"""Training-set augmentation (``augment``, ``numrnn.nn.augment``; issue #14)."""

import numpy as np
import pytest

from numrnn import InvalidParameterError, RNNClassifier, RNNRegressor
from numrnn.io import load, save
from numrnn.nn.augment import (
    AUTO_AUGMENT,
    AUTO_EPOCH_SAMPLES,
    augment_sequences,
    feature_moments,
    resolve_augment,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
TINY = dict(cell="gru", hidden_size=4, random_state=0, max_iter=4)


def _ragged(n=24, seed=0):
    rng = np.random.default_rng(seed)
    lens = [13, 7, 10, 5, 11, 9] * (n // 6)
    seqs = [rng.normal(size=(L, 2)) for L in lens]
    y = np.array([s[:, 0].sum() > 0 for s in seqs]).astype(int)
    return seqs, y


def _padded(seqs, T, fill):
    out = np.full((len(seqs), T, seqs[0].shape[1]), fill)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def _weights(est):
    sd = est.network_.state_dict()
    return [sd[k] for k in sorted(sd)] + [est.head_.weight, est.head_.bias]


# -- the transform -------------------------------------------------------------------------
def test_shift_moves_each_sequence_and_repeats_its_edge_value():
    seqs, _ = _ragged(6)
    lens = np.array([len(s) for s in seqs])
    x = _padded(seqs, 13, 0.0)
    out = augment_sequences(x, lens, np.random.default_rng(3), shift=0.4)
    shifts = set()
    for i, L in enumerate(lens):
        reach = int(np.floor(0.4 * L))
        # the float64 reference: x shifted by d, edges repeated; exactly one d matches
        match = [
            d
            for d in range(-reach, reach + 1)
            if np.array_equal(out[i, :L], x[i, np.clip(np.arange(L) - d, 0, L - 1)])
        ]
        assert len(match) == 1, (i, match)
        shifts.add(match[0])
        assert not out[i, L:].any()  # zeros past the length
    assert len(shifts) > 1  # a shift per sequence, not one for the batch


def test_scale_acts_around_the_mean_and_jitter_follows_the_spread():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 30, 2)) * np.array([1.0, 10.0]) + np.array([5.0, -3.0])
    lens = np.full(400, 30)
    center, spread = feature_moments(x, lens)
    np.testing.assert_allclose(center, [5.0, -3.0], atol=0.2)
    np.testing.assert_allclose(spread, [1.0, 10.0], rtol=0.05)
    scaled = augment_sequences(
        x, lens, np.random.default_rng(0), scale=0.1, center=center, spread=spread
    )
    ratio = (scaled - center) / (x - center)  # one factor per sequence and feature
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :1], ratio.shape), rtol=1e-9)
    assert 0.08 < ratio[:, 0].std() < 0.12 and abs(ratio[:, 0].mean() - 1) < 0.02
    noisy = augment_sequences(
        x, lens, np.random.default_rng(0), jitter=0.05, center=center, spread=spread
    )
    np.testing.assert_allclose((noisy - x).std(axis=(0, 1)), 0.05 * spread, rtol=0.05)


def test_padding_is_never_read():
    seqs, _ = _ragged(12)
    lens = np.array([len(s) for s in seqs])
    kw = dict(shift=0.3, scale=0.2, jitter=0.1)
    clean = augment_sequences(_padded(seqs, 13, 0.0), lens, np.random.default_rng(1), **kw)
    dirty = augment_sequences(_padded(seqs, 13, np.nan), lens, np.random.default_rng(1), **kw)
    np.testing.assert_array_equal(clean, dirty)
    assert np.isfinite(dirty).all()


def test_same_state_same_variant_and_float32_stays_float32():
    x = np.random.default_rng(0).normal(size=(5, 8, 3)).astype(np.float32)
    lens = np.array([8, 3, 5, 1, 8])
    a = augment_sequences(x, lens, np.random.default_rng(7), **AUTO_AUGMENT)
    b = augment_sequences(x, lens, np.random.default_rng(7), **AUTO_AUGMENT)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(
        a, augment_sequences(x, lens, np.random.default_rng(8), **AUTO_AUGMENT)
    )


def test_resolve_augment():
    assert resolve_augment(None, 10) is None and resolve_augment({"scale": 0.0}, 10) is None
    assert resolve_augment("auto", 40) == dict(AUTO_AUGMENT, variants=4)  # ceil(128 / 40)
    assert resolve_augment("auto", AUTO_EPOCH_SAMPLES) is None  # a large set: none
    assert resolve_augment("auto", 40, folded=False) is None  # short sequences: none
    assert resolve_augment({"jitter": 0.2}, 10) == dict(shift=0, scale=0, jitter=0.2, variants=1)


# -- in the estimators ---------------------------------------------------------------------
@pytest.mark.parametrize("est_cls", [RNNClassifier, RNNRegressor])
def test_augmented_fit_is_deterministic_and_differs_from_plain(est_cls):
    seqs, y = _ragged()
    kw = dict(TINY, segment_length=3, augment="auto")
    if est_cls is RNNClassifier:
        kw["n_models"] = 2
    a = est_cls(**kw).fit(seqs, y)
    b = est_cls(**kw).fit(seqs, y)
    plain = est_cls(**dict(kw, augment=None)).fit(seqs, y)
    for wa, wb in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a.predict(seqs), b.predict(seqs))
    assert a.loss_curve_ == b.loss_curve_
    assert any(not np.array_equal(p, q) for p, q in zip(_weights(a), _weights(plain), strict=True))
    assert a.loss_curve_ != plain.loss_curve_


def test_variants_are_passes_per_epoch_and_auto_leaves_large_sets_alone():
    seqs, y = _ragged()
    kw = dict(TINY, n_models=1, max_iter=2, n_iter_no_change=100, segment_length=2)
    three = RNNClassifier(augment={"jitter": 0.1, "variants": 3}, batch_size=10, **kw)
    three.fit(seqs, y)
    assert three.t_ == 2 * 3 * len(seqs)
    # the 3 passes are one stream of 72 rows: 8 minibatches of 10 (the last of 2) an epoch,
    # not 3 passes of 3 (10, 10, 4)
    assert three._optimizer.t == 2 * 8
    auto = RNNClassifier(augment="auto", **kw).fit(seqs, y)  # 24 samples: ceil(128/24) = 6
    assert auto.t_ == 2 * 6 * len(seqs)
    big, yb = _ragged(AUTO_EPOCH_SAMPLES + 6)
    assert len(big) >= AUTO_EPOCH_SAMPLES
    unfolded = dict(kw, segment_length=None)
    for X, labels, params in ((big, yb, kw), (seqs, y, unfolded)):  # 'auto' is off for both
        off = RNNClassifier(augment=None, **params).fit(X, labels)
        on = RNNClassifier(augment="auto", **params).fit(X, labels)
        for wa, wb in zip(_weights(off), _weights(on), strict=True):
            np.testing.assert_array_equal(wa, wb)


def test_augmented_fit_never_reads_padding():
    # a ragged list and the same sequences NaN-padded (with segments: partial final
    # segments) train bit-identical networks
    seqs, y = _ragged()
    kw = dict(TINY, segment_length=4, augment={"shift": 0.2, "scale": 0.1, "jitter": 0.1})
    ragged = RNNClassifier(n_models=1, **kw).fit(seqs, y)
    padded = RNNClassifier(n_models=1, **kw).fit(_padded(seqs, 16, np.nan), y)
    for wa, wb in zip(_weights(ragged), _weights(padded), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_predict_does_not_augment(tmp_path):
    seqs, y = _ragged()
    est = RNNClassifier(n_models=2, augment={"shift": 0.3, "jitter": 0.5}, **TINY).fit(seqs, y)
    proba = est.predict_proba(seqs)
    np.testing.assert_array_equal(est.predict_proba(seqs), proba)  # no draws at predict
    state = est._rng.get_state()
    est.set_params(augment=None)  # predict never reads the option
    np.testing.assert_array_equal(est.predict_proba(seqs), proba)
    assert np.array_equal(est._rng.get_state()[1], state[1])
    est.set_params(augment={"shift": 0.3, "jitter": 0.5})
    save(est, tmp_path / "m.npz")  # the dict parameter round-trips
    back = load(tmp_path / "m.npz")
    assert back.get_params()["augment"] == {"shift": 0.3, "jitter": 0.5}
    np.testing.assert_array_equal(back.predict_proba(seqs), proba)


def test_per_step_targets_are_never_shifted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 8, 1))
    Y = np.cumsum(X[..., 0], axis=1)
    RNNRegressor(output="sequence", augment={"jitter": 0.1}, **TINY).fit(X, Y)
    with pytest.raises(InvalidParameterError, match=r"^augment must be a dict with shift 0"):
        RNNRegressor(output="sequence", augment={"shift": 0.1}, **TINY).fit(X, Y)


@pytest.mark.parametrize(
    "bad, match",
    [
        ("yes", r"^augment must be None, 'auto' or a dict of strengths, got 'yes'\. Pass"),
        ({"shfit": 0.1}, r"^augment must be a dict with keys from .* Remove \['shfit'\]"),
        ({"shift": 1.0}, r"^augment\['shift'\] must be a real number in \[0\.0, 1\.0\), got 1\.0"),
        ({"jitter": -0.1}, r"^augment\['jitter'\] must be a real number in \[0\.0, inf\)"),
        ({"scale": "0.1"}, r"^augment\['scale'\] must be a real number"),
        ({"jitter": 0.1, "variants": 0}, r"^augment\['variants'\] must be an integer >= 1"),
    ],
)
def test_bad_augment_gets_one_clear_error_and_leaves_the_model(bad, match):
    seqs, y = _ragged()
    est = RNNClassifier(n_models=1, **TINY).fit(seqs, y)
    before = [w.copy() for w in _weights(est)]
    with pytest.raises(InvalidParameterError, match=match):
        est.set_params(augment=bad).fit(seqs, y)
    for w, b in zip(_weights(est), before, strict=True):
        np.testing.assert_array_equal(w, b)

"""The training recipe (issue #14): schedules, best weights, segments, progress, y scaling."""

import sys

import numpy as np
import pytest

from numrnn import RNNClassifier, RNNRegressor
from numrnn.nn.schedules import MIN_LR_RATIO, PLATEAU_FACTOR, LearningRateSchedule
from numrnn.nn.segments import AUTO_STEPS, auto_segment_length, fold_segments

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
TINY = dict(cell="gru", hidden_size=4, random_state=0)


def _data(n=40, T=12, F=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, F))
    y = X[:, :, 0].mean(axis=1) + 0.5 * X[:, -1, -1]
    return X, y


# -- schedules ---------------------------------------------------------------------------
def test_schedules_adaptive_divides_on_plateau_and_cosine_anneals():
    s = LearningRateSchedule("adaptive", 1e-2, 100)
    assert s.after_epoch(1) == 1e-2  # no plateau: unchanged
    divisions = 0
    while not s.on_plateau():
        divisions += 1
    assert divisions == 5 and s.lr == pytest.approx(1e-2 / PLATEAU_FACTOR**5)
    assert s.lr <= 1e-2 * MIN_LR_RATIO
    c = LearningRateSchedule("cosine", 1.0, 10)
    assert [round(c.after_epoch(e), 6) for e in (0, 5, 10, 20)] == [1.0, 0.5, 0.0, 0.0]
    assert c.on_plateau() and LearningRateSchedule("constant", 1.0, 5).on_plateau()


def test_adaptive_rate_drops_on_a_plateau_instead_of_stopping():
    X, y = _data()
    # tol=10: no epoch ever improves, so every n_iter_no_change + 1 = 2 epochs is a plateau
    kw = dict(TINY, max_iter=100, tol=10.0, n_iter_no_change=1, learning_rate_init=0.01)
    const = RNNRegressor(learning_rate="constant", **kw).fit(X, y)
    assert const.n_iter_ == 3 and const._optimizer.lr == 0.01
    adap = RNNRegressor(learning_rate="adaptive", **kw).fit(X, y)
    # divided after epochs 3, 5, 7, 9, 11; the plateau after epoch 13 is at the floor: stop
    assert adap.n_iter_ == 13
    assert adap._optimizer.lr == pytest.approx(0.01 / PLATEAU_FACTOR**5)
    cos = RNNRegressor(learning_rate="cosine", **dict(kw, tol=0.0, max_iter=4)).fit(X, y)
    assert cos._optimizer.lr == pytest.approx(0.0, abs=1e-12)


# -- best weights ------------------------------------------------------------------------
def test_fit_whose_last_epochs_diverge_keeps_the_best_epoch():
    X, y = _data()
    kw = dict(TINY, solver="sgd", learning_rate="constant", learning_rate_init=0.8,
              momentum=0.9, n_iter_no_change=1000, dtype="float64", scale_y=False)  # fmt: skip
    est = RNNRegressor(max_iter=25, **kw).fit(X, y)
    curve = np.array(est.loss_curve_)
    best = int(np.argmin(curve)) + 1
    assert est.best_epoch_ == best < est.n_iter_ and curve[-1] > curve.min()  # diverged late
    ref = RNNRegressor(max_iter=best, **kw).fit(X, y)  # the same run, stopped at the best
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))


def test_early_stopping_keeps_the_lowest_validation_loss():
    X, y = _data(n=60)
    est = RNNRegressor(
        early_stopping=True, n_iter_no_change=3, learning_rate_init=0.05, max_iter=30, **TINY
    ).fit(X, y)
    assert est.best_epoch_ == int(np.argmin(est.validation_loss_curve_)) + 1


# -- segments ----------------------------------------------------------------------------
def test_fold_segments_is_step_major_and_zeroes_past_the_end():
    X = np.arange(2 * 5 * 2, dtype=float).reshape(2, 5, 2) + 1
    S, L = fold_segments(X, np.array([5, 3]), 2)
    assert S.shape == (2, 3, 4) and L.tolist() == [3, 2]
    np.testing.assert_array_equal(S[0, 0], X[0, :2].ravel())
    np.testing.assert_array_equal(S[0, 2], [X[0, 4, 0], X[0, 4, 1], 0, 0])
    np.testing.assert_array_equal(S[1, 1], [X[1, 2, 0], X[1, 2, 1], 0, 0])
    assert auto_segment_length(150) == 6 and auto_segment_length(AUTO_STEPS) == 1


def test_segments_never_leak_padding():
    rng = np.random.default_rng(0)
    lens = [13, 7, 10, 5, 11, 9] * 4
    seqs = [rng.normal(size=(L, 2)) for L in lens]
    y = np.array([s[:, 0].sum() > 0 for s in seqs])
    est = RNNClassifier(segment_length=4, max_iter=3, **TINY).fit(seqs, y)
    assert est.segment_length_ == 4 and est.network_.input_size == 8
    batch = est.predict_proba(seqs)
    padded = np.full((len(seqs), 16, 2), np.nan)
    for i, s in enumerate(seqs):
        padded[i, : len(s)] = s
    np.testing.assert_array_equal(est.predict_proba(padded), batch)
    for i in (1, 3):  # each sequence alone, its final segment partial
        # a batch of one row rounds float32 matmuls differently in the last bit (BLAS picks
        # other kernels; seen in 3 of the 5 networks); leaked padding would move it by O(1)
        np.testing.assert_allclose(est.predict_proba(seqs[i][None])[0], batch[i], rtol=1e-6)
    auto = RNNClassifier(max_iter=1, **TINY).fit(np.stack([s[:5] for s in seqs]), y)
    assert auto.segment_length_ == 1  # 5 steps: nothing to fold
    with pytest.raises(ValueError, match="segment_length must be None or 'auto'"):
        RNNRegressor(output="sequence", segment_length=3).fit(seqs, [s[:, 0] for s in seqs])


# -- progress ----------------------------------------------------------------------------
def test_verbose_1_draws_one_progress_line_and_2_prints_each_epoch(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # the plain fallback
    X, y = _data()
    RNNRegressor(max_iter=3, verbose=1, early_stopping=True, **TINY).fit(X, y)
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1
    last = out.err.split("\r")[-1]
    assert "epoch 3/3" in last and "loss=" in last and "val_loss=" in last and "ETA" in last
    RNNRegressor(max_iter=3, verbose=2, **TINY).fit(X, y)
    assert capsys.readouterr().out.count("Iteration") == 3


def test_verbose_1_uses_tqdm_when_installed(capsys):
    pytest.importorskip("tqdm")
    X, y = _data()
    RNNRegressor(max_iter=3, verbose=1, **TINY).fit(X, y)
    err = capsys.readouterr().err
    assert "3/3" in err and "loss=" in err


# -- y scaling ---------------------------------------------------------------------------
def test_regressor_scales_y_and_undoes_it_on_predict(tmp_path):
    from numrnn.io import load, save

    X, y = _data(n=60)
    kw = dict(TINY, max_iter=40, learning_rate_init=0.01, dtype="float64")
    base = RNNRegressor(**kw).fit(X, y)
    shifted = RNNRegressor(**kw).fit(X, 200 + 30 * y)
    assert shifted.y_mean_ == pytest.approx(200 + 30 * y.mean())
    # trained on the same standardised targets: the same model up to the affine map
    np.testing.assert_allclose(shifted.predict(X), 200 + 30 * base.predict(X), rtol=1e-6)
    assert shifted.score(X, 200 + 30 * y) > 0.5
    unscaled = RNNRegressor(scale_y=False, **kw).fit(X, 200 + 30 * y)
    assert unscaled.score(X, 200 + 30 * y) < shifted.score(X, 200 + 30 * y)
    path = tmp_path / "m.npz"
    save(shifted, path)
    np.testing.assert_array_equal(load(path).predict(X), shifted.predict(X))
    # a warm start trains on from the exact standardised head, not a re-derived one
    w, b = shifted.head_.weight.copy(), shifted.head_.bias.copy()
    shifted._head_to_training_units()
    np.testing.assert_array_equal(shifted.head_.weight, shifted._head_weight_trained)
    shifted._head_to_user_units()
    np.testing.assert_array_equal(shifted.head_.weight, w)
    np.testing.assert_array_equal(shifted.head_.bias, b)


def test_y_scaling_weighs_like_repetition():
    X, y = _data(n=20)
    w = np.arange(20) % 3  # 0, 1, 2: dropped, once, twice
    kw = dict(TINY, max_iter=1)
    a = RNNRegressor(**kw).fit(X, 50 + 10 * y, sample_weight=w)
    b = RNNRegressor(**kw).fit(X.repeat(w, axis=0), (50 + 10 * y).repeat(w))
    np.testing.assert_allclose(a.y_mean_, b.y_mean_, rtol=1e-13)
    np.testing.assert_allclose(a.y_scale_, b.y_scale_, rtol=1e-13)


@pytest.mark.parametrize("output", ["last", "sequence"])
def test_y_scaling_ignores_the_validation_rows(output):
    # early_stopping's held-out rows must not shape the model they judge: changing only
    # them leaves the scaling (and so the training) exactly as it was
    X, y = _data(n=20)
    if output == "sequence":
        y = np.repeat(y[:, None], X.shape[1], axis=1) + X[:, :, 0]
    kw = dict(TINY, max_iter=3, output=output, early_stopping=True, validation_split="last",
              validation_fraction=0.25, dtype="float64")  # fmt: skip
    outlying = y.copy()
    outlying[-5:] = 1e3  # only the 5 validation rows
    a = RNNRegressor(**kw).fit(X, 50 + 10 * y)
    b = RNNRegressor(**kw).fit(X, 50 + 10 * outlying)
    train = (50 + 10 * y)[:15]
    np.testing.assert_allclose(a.y_mean_, train.mean(), rtol=1e-12)
    np.testing.assert_array_equal(a.y_mean_, b.y_mean_)
    np.testing.assert_array_equal(a.y_scale_, b.y_scale_)
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)


# -- seed ensemble (RNNClassifier n_models) ---------------------------------------------
def _labels(n=30, seed=0):
    X, y = _data(n=n, seed=seed)
    return X, np.where(y > np.median(y), "up", "down")


def test_n_models_averages_the_probabilities_of_networks_from_drawn_seeds():
    X, y = _labels()
    kw = dict(TINY, max_iter=6)
    ens = RNNClassifier(n_models=3, **kw).fit(X, y)
    one = RNNClassifier(n_models=1, **kw).fit(X, y)
    assert len(ens.extra_models_) == 2 and not hasattr(one, "extra_models_")
    # the first network is the n_models=1 fit; the others are fits from seeds drawn from
    # random_state (as RNNForecaster's n_models)
    np.testing.assert_array_equal(ens.network_.state_dict()["weight_hh_l0"],
                                  one.network_.state_dict()["weight_hh_l0"])  # fmt: skip
    seeds = np.random.RandomState(0).randint(0, 2**31 - 1, size=2)
    assert [m.random_state for m in ens.extra_models_] == seeds.tolist()
    members = [one] + [RNNClassifier(n_models=1, **dict(kw, random_state=int(s))).fit(X, y)
                       for s in seeds]  # fmt: skip
    mean = np.mean([m.predict_proba(X) for m in members], axis=0)
    np.testing.assert_allclose(ens.predict_proba(X), mean, rtol=1e-12)
    assert not np.allclose(mean, one.predict_proba(X))  # the members differ
    np.testing.assert_array_equal(ens.predict(X), ens.classes_[mean.argmax(1)])


def test_n_models_warm_start_partial_fit_and_save_load(tmp_path):
    from numrnn import io

    X, y = _labels()
    ens = RNNClassifier(n_models=2, max_iter=3, **TINY).fit(X, y)
    io.save(ens, tmp_path / "m.npz")
    back = io.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.predict_proba(X), ens.predict_proba(X))
    ens.set_params(warm_start=True, max_iter=2).fit(X, y)  # every network continues
    assert ens.n_iter_ == 5 and ens.extra_models_[0].n_iter_ == 5
    inc = RNNClassifier(n_models=2, **TINY)
    inc.partial_fit(X, y, classes=["down", "up"])
    inc.partial_fit(X, y)
    assert inc.n_iter_ == 2 and inc.extra_models_[0].n_iter_ == 2


def test_n_models_failure_of_another_network_keeps_the_previous_model(monkeypatch):
    from numrnn.estimators import _base

    X, y = _labels()
    ens = RNNClassifier(n_models=3, max_iter=2, **TINY).fit(X, y)
    before = ens.predict_proba(X)
    third = ens.extra_models_[1].random_state
    fit_loop = _base.BaseRNN._fit_loop

    def fail_in_the_third_network(self, *args):
        if self.random_state == third:
            raise ValueError("boom")
        return fit_loop(self, *args)

    monkeypatch.setattr(_base.BaseRNN, "_fit_loop", fail_in_the_third_network)
    # a warm start: the first two networks continue in place before the third fails
    with pytest.raises(ValueError, match="boom"):
        ens.set_params(max_iter=3, warm_start=True).fit(X, y)
    monkeypatch.undo()
    assert ens.n_iter_ == 2 and [m.n_iter_ for m in ens.extra_models_] == [2, 2]
    np.testing.assert_array_equal(ens.predict_proba(X), before)
    with pytest.raises(ValueError, match="n_models"):
        RNNClassifier(n_models=0).fit(X, y)


def test_gpu_fit_with_augment_and_combined_readout_matches_cpu_on_the_simulator():
    """device='cuda' with ``augment`` (variants drawn on the host, uploaded per minibatch)
    and readout='last+mean+max' (the head reads three column blocks) equals device='cpu'
    (tests/_cuda_recipe_cases.py, on Numba's CUDA simulator in a subprocess, as
    tests/test_cuda.py runs its cases), and the augmentation acted."""
    import importlib.util
    import os
    import subprocess
    import sys
    from pathlib import Path

    if importlib.util.find_spec("numba_cuda") is None:
        pytest.skip("numba-cuda is not installed (pip install 'numrnn[cuda]')")
    here = Path(__file__).resolve().parent
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(here.parent), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(here / "_cuda_recipe_cases.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    cases = [line.split() for line in proc.stdout.splitlines() if line.startswith("CASE ")]
    assert len(cases) == 6, proc.stdout
    for _, name, err, tol in cases:
        assert float(err) <= float(tol), f"{name}: {err} > {tol}"

"""Forecaster transforms, scalers, ensembles, quantiles, persistence and bad input (#13, #19).

Kept fast: tiny networks and few epochs; accuracy against the classical models lives in
benchmarks/forecast_accuracy.py, not here.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import clone

from numrnn.estimators import RNNRegressor
from numrnn.forecasting import RNNForecaster
from numrnn.forecasting import transforms as tf
from numrnn.parallel import SeriesFitError, fit_many_series

TINY = dict(hidden_size=8, max_iter=15, random_state=0)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _seasonal_trend(n=120, m=12):
    """Positive, multiplicative: (level + trend) * seasonal factor."""
    t = np.arange(n)
    return (50.0 + 0.8 * t) * (1.0 + 0.3 * np.sin(2 * np.pi * t / m))


# -- transforms -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "steps",
    [("log",), ("diff",), ("seasonal_diff",), ("log", "seasonal_diff", "diff"),
     (("boxcox", 0.5), "diff"), ("seasonal_diff", "diff")],
)  # fmt: skip
def test_transform_round_trip_recovers_the_future(steps):
    y = _seasonal_trend(150)[:, None]
    train, future = y[:120], y[120:]
    z_all, _ = tf.apply(y, steps, 12)
    _, tails = tf.apply(train, steps, 12)
    # The transformed future (known here) inverted from the training tails is the future.
    back = tf.invert(z_all[-30:], steps, tails, 12)
    np.testing.assert_allclose(back, future, rtol=1e-12)


def test_transform_errors_name_the_fix():
    with pytest.raises(ValueError, match="positive series.*transform=None"):
        tf.apply(np.array([[1.0], [0.0], [2.0]]), ("log",), 1)
    with pytest.raises(ValueError, match="season_length >= 2"):
        tf.normalize(["seasonal_diff"], 1)
    with pytest.raises(ValueError, match="'log', \\('boxcox', lam\\)"):
        tf.normalize(["sqrt"], 12)


def test_auto_differences_a_random_walk_not_white_noise():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.standard_normal(300))
    noise = rng.standard_normal(300)
    assert tf.choose(walk, 1) == ("diff",)
    assert tf.choose(noise, 1) == ()
    # A strong season is differenced seasonally; multiplicative growth gets the log.
    assert tf.choose(_seasonal_trend(144), 12) == ("log", "seasonal_diff")
    assert "seasonal_diff" not in tf.choose(noise + 10, 12)


def test_season_from_pandas_frequency():
    pd = pytest.importorskip("pandas")
    for freq, m in (("MS", 12), ("QS", 4), ("D", 7), ("h", 24), ("W-SUN", 52)):
        assert tf.season_from_index(pd.date_range("2000-01-01", periods=10, freq=freq)) == m
    assert tf.season_from_index(pd.RangeIndex(10)) is None
    y = pd.Series(_seasonal_trend(72), index=pd.date_range("2000-01-01", periods=72, freq="MS"))
    f = RNNForecaster(transform="auto", **TINY).fit(y)
    # the inferred season makes the seasonal difference one of the candidates 'auto' backtests
    assert f.season_length_ == 12 and "seasonal_diff" in f.backtest_scores_


def test_forecaster_recovers_a_seasonal_trend_process():
    # Seasonal difference of trend + season is a constant: the forecast is exact up to the
    # network's small error on a constant input.
    t = np.arange(130)
    y = 10.0 + 0.5 * t + 3.0 * np.sin(2 * np.pi * t / 12)
    f = RNNForecaster(season_length=12, transform=["seasonal_diff"], scaler="standard", **TINY)
    p = f.fit(y[:106]).predict(24)
    assert np.abs(p - y[106:]).max() < 0.05


@pytest.mark.parametrize("scaler", ["window", "standard", "robust"])
def test_scalers_undo_on_output(scaler):
    t = np.arange(100)
    y = 1000.0 + 50.0 * np.sin(0.5 * t)
    f = RNNForecaster(window=12, transform=None, scaler=scaler, **TINY).fit(y)
    p = f.predict(5)
    assert p.shape == (5,) and np.all(np.abs(p - 1000.0) < 150.0)


# -- parameters, ensembles, quantiles --------------------------------------------------------
def test_every_regressor_parameter_is_reachable():
    names = set(RNNForecaster().get_params())
    reg = set(RNNRegressor().get_params()) - {"output"}
    assert reg <= names
    f = clone(RNNForecaster(peephole=True, clip_value=0.5, beta_1=0.8, window=6, max_iter=2))
    assert f.get_params()["peephole"] is True and f.beta_1 == 0.8
    f.fit(np.sin(np.arange(40.0)))
    assert f.regressor_.peephole is True and f.regressor_.clip_value == 0.5
    # time-ordered early stopping on the windows (the last ones are the latest in time)
    f = RNNForecaster(window=6, max_iter=3, early_stopping=True, validation_split="last")
    f.fit(np.sin(np.arange(40.0)))
    assert f.regressor_.validation_split == "last" and len(f.validation_loss_curve_) == 3
    with pytest.raises(TypeError, match="unknown parameter"):
        RNNForecaster(output="sequence")


def test_ensemble_is_deterministic_and_differs_from_one_model():
    y = np.sin(np.arange(80) * 0.4)
    a = RNNForecaster(window=8, n_models=3, **TINY).fit(y)
    b = RNNForecaster(window=8, n_models=3, **TINY).fit(y)
    assert len(a.regressors_) == 3
    np.testing.assert_array_equal(a.predict(6), b.predict(6))
    one = RNNForecaster(window=8, n_models=1, **TINY).fit(y).predict(6)
    assert not np.array_equal(a.predict(6), one)


def test_epochs_chosen_on_the_latest_windows_then_all_windows_trained():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(80)  # noise: the held-out windows stop it before max_iter
    kw = dict(window=8, n_models=2, hidden_size=6, max_iter=20, random_state=0)
    f = RNNForecaster(**kw).fit(y)
    # the probe: the first model's seed, early stopping on the last 30 % of the 72 windows
    probe = RNNRegressor(**{**f.regressor_.get_params(), "max_iter": 20, "early_stopping": True})
    X, Y = _windows(f, y)
    probe.fit(X, Y)
    expected = min(20, int(np.ceil(probe.best_epoch_ / 0.7)))
    assert f.n_epochs_ == expected < 20
    assert [r.n_iter_ for r in f.regressors_] == [expected, expected]
    assert len(f.regressor_.validation_loss_curve_) == 0  # the final fit holds nothing out
    again = RNNForecaster(**kw).fit(y)
    np.testing.assert_array_equal(again.predict(5), f.predict(5))
    # off, or too few windows to hold two out, or explicit early stopping: max_iter epochs
    assert RNNForecaster(**kw, choose_epochs=False).fit(y).regressor_.n_iter_ == 20
    assert RNNForecaster(**kw).fit(y[:11]).n_epochs_ == 20  # 3 windows: none held out
    es = RNNForecaster(**kw, early_stopping=True).fit(y)
    assert es.n_epochs_ == 20 and len(es.regressor_.validation_loss_curve_) == 20
    with pytest.raises(ValueError, match="choose_epochs must be True or False"):
        RNNForecaster(choose_epochs="yes").fit(y)


def _windows(f, y):
    """The scaled, window-normalised training windows of a fitted single-series forecaster."""
    from numrnn.forecasting import make_windows

    Zs = (y[:, None] - f.mean_) / f.scale_
    X, Y = make_windows(Zs[:, 0], f.window_, 1)
    Xn, loc, sc = f._normalise_windows(X, 1)
    return Xn, ((Y[:, :, None] - loc) / sc).reshape(-1)


def test_quantile_heads_are_ordered_and_calibrated():
    rng = np.random.default_rng(1)
    n, sigma = 400, 0.5
    t = np.arange(n)
    y = np.sin(2 * np.pi * t / 10) + sigma * rng.standard_normal(n)
    f = RNNForecaster(
        window=10, season_length=10, transform=None, scaler="standard", quantiles=(0.1, 0.5, 0.9),
        hidden_size=12, max_iter=60, learning_rate_init=0.01, random_state=0,
    )  # fmt: skip
    f.fit(y[:360])
    point, q = f.predict(40, return_quantiles=True)
    assert q.shape == (40, 3) and np.all(np.diff(q, axis=1) >= 0)
    np.testing.assert_array_equal(q, f.predict_quantiles(40))
    width = (q[:, 2] - q[:, 0]).mean()
    ideal = 2 * 1.2816 * sigma  # the 10-90 % width of the noise
    assert 0.6 * ideal < width < 1.6 * ideal, (width, ideal)
    inside = np.mean((y[360:] >= q[:, 0]) & (y[360:] <= q[:, 2]))
    assert 0.6 <= inside <= 0.975, inside
    assert np.abs(point - np.sin(2 * np.pi * t[360:] / 10)).mean() < 0.35


def test_predict_quantiles_needs_quantiles():
    f = RNNForecaster(window=5, **TINY).fit(np.sin(np.arange(40.0)))
    with pytest.raises(ValueError, match="quantiles="):
        f.predict_quantiles(3)


# -- persistence -----------------------------------------------------------------------------
def test_save_load_bit_identical(tmp_path):
    pd = pytest.importorskip("pandas")
    from numrnn.io import load, save

    y = pd.Series(_seasonal_trend(80), index=pd.date_range("2001-01-01", periods=80, freq="MS"))
    f = RNNForecaster(n_models=2, quantiles=(0.1, 0.9), **TINY).fit(y)
    save(f, tmp_path / "f.npz")
    g = load(tmp_path / "f.npz")
    assert isinstance(g, RNNForecaster) and g.transform_ == f.transform_
    assert g.n_epochs_ == f.n_epochs_
    a, b = f.predict(7), g.predict(7)
    assert a.index.equals(b.index)
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    np.testing.assert_array_equal(f.predict_quantiles(5), g.predict_quantiles(5))
    # unfitted, and a plain array series
    save(RNNForecaster(scaler="robust"), tmp_path / "u.npz")
    assert load(tmp_path / "u.npz").scaler == "robust"
    h = RNNForecaster(window=5, **TINY).fit(np.sin(np.arange(50.0)))
    save(h, tmp_path / "h.npz")
    np.testing.assert_array_equal(load(tmp_path / "h.npz").predict(4), h.predict(4))


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params,y,match",
    [
        (dict(transform=["log"]), np.arange(-3.0, 50.0), "positive series"),
        (dict(season_length=60), np.arange(1.0, 51.0), "season_length=60 is not shorter"),
        (dict(quantiles=(0.0, 0.5)), np.arange(1.0, 51.0), "strictly between 0 and 1"),
        (dict(quantiles=(0.5, 1.2)), np.arange(1.0, 51.0), "strictly between 0 and 1"),
        (dict(scaler="minmax"), np.arange(1.0, 51.0), "scaler must be"),
        (dict(n_models=0), np.arange(1.0, 51.0), "n_models must be"),
        (dict(transform="sqrt"), np.arange(1.0, 51.0), "transform steps must be"),
    ],
)
def test_bad_input_one_clear_error(params, y, match):
    with pytest.raises(ValueError, match=match):
        RNNForecaster(**params, **TINY).fit(y)


def test_exogenous_X_for_a_model_without_X_is_refused():
    # #19 item 9: it used to be ignored silently.
    f = RNNForecaster(window=5, **TINY).fit(np.sin(np.arange(40.0)))
    with pytest.raises(ValueError, match="fitted without exogenous features"):
        f.predict(3, X=np.ones((3, 1)))


def test_huge_series_forecast_is_finite_or_fails_clearly():
    # #19 item 10: 1e200 * sin gave inf with only a RuntimeWarning (its variance overflowed).
    y = 1e200 * np.sin(np.arange(80) * 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        p = RNNForecaster(window=8, **TINY).fit(y).predict(4)
    assert np.isfinite(p).all() and np.abs(p).max() < 2e200
    f = RNNForecaster(window=8, transform=["log"], **TINY).fit(np.exp(np.linspace(1, 700, 80)))
    with pytest.raises(FloatingPointError, match="not finite"):
        f.predict(30)


def test_fit_many_series_names_the_failing_series():
    # #19 item 7: one bad series aborted all without its name.
    ys = {"good": np.sin(np.arange(40.0)), "bad": np.array([1.0, np.nan, 2.0, 3.0] * 5)}
    with pytest.raises(SeriesFitError, match="series 'bad' failed.*NaN") as info:
        fit_many_series(ys, horizon=2, window=4, **TINY)
    assert info.value.series_id == "bad"
    out = fit_many_series(ys, horizon=2, window=4, errors="return", **TINY)
    assert out["good"].shape == (2,) and isinstance(out["bad"], SeriesFitError)
    with pytest.raises(ValueError, match="errors must be"):
        fit_many_series(ys, errors="ignore")


# -- command line ------------------------------------------------------------------------------
def test_cli_forecast_season_quantiles_models(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from numrnn.cli import main

    t = np.arange(60)
    p = tmp_path / "s.csv"
    rows = [f"{i},{10 + np.sin(2 * np.pi * i / 6) + 0.01 * i:.4f}" for i in t]
    p.write_text("step,value\n" + "\n".join(rows) + "\n")
    png = tmp_path / "f.png"
    args = ["forecast", str(p), "--column", "value", "--date-column", "none", "--horizon", "4",
            "--season-length", "6", "--quantiles", "0.1,0.9", "--models", "2", "--max-iter", "3",
            "--hidden-size", "4", "--plot", str(png)]  # fmt: skip
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "step,value,value_q0.1,value_q0.9" and len(lines) == 5
    vals = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:]])
    assert np.all(vals[:, 1] <= vals[:, 2]) and png.stat().st_size > 0
    with pytest.raises(SystemExit) as exc:
        main(args[:-2] + ["--quantiles", "0.5,1.5"])
    assert exc.value.code == 2
    assert "--quantiles must be" in capsys.readouterr().err

"""Conformal intervals and the backtest rule of transform='auto' (#13).

Kept fast: tiny networks and few epochs; coverage and transform choices on real series are
measured by benchmarks/forecast_accuracy.py, not here.
"""

import os
import re
import warnings

import numpy as np
import pytest

from numrnn.forecasting import RNNForecaster
from numrnn.forecasting._forecaster import _holdout_size

TINY = dict(hidden_size=8, max_iter=20, random_state=0)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _noisy_season(n, sigma, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 3.0 * np.sin(2 * np.pi * t / 12) + sigma * rng.standard_normal(n)


# -- conformal intervals ---------------------------------------------------------------------
def test_conformal_intervals_cover_known_noise():
    # Season + Gaussian noise (sigma 0.5): the one-step 80 % interval from held-out residuals
    # covers ~80 % of 150 later points (forecast from each origin), and its half-width is
    # near the noise's 1.28 sigma (a little wider: the network's own error adds to it).
    sigma = 0.5
    y = _noisy_season(550, sigma)
    f = RNNForecaster(season_length=12, conformal=True, **TINY).fit(y[:400])
    assert f.quantiles_.tolist() == [0.1, 0.5, 0.9]
    c = _holdout_size(400, 12)
    assert f.residuals_.shape == (c, c, 1) and c == 80
    hits, half = [], []
    for t in range(400, 550):
        q = f.predict_quantiles(1, history=y[:t])[0]
        hits.append(q[0] <= y[t] <= q[2])
        half.append((q[2] - q[0]) / 2)
    cover = np.mean(hits)
    assert 0.7 <= cover <= 0.92, cover
    assert 1.0 * 1.2816 * sigma < np.mean(half) < 2.0 * 1.2816 * sigma, np.mean(half)


def test_conformal_keeps_the_point_forecast_and_is_deterministic():
    y = _noisy_season(150, 0.3)
    plain = RNNForecaster(season_length=12, **TINY).fit(y)
    a = RNNForecaster(season_length=12, conformal=True, quantiles=(0.05, 0.25), **TINY).fit(y)
    b = RNNForecaster(season_length=12, conformal=True, quantiles=(0.05, 0.25), **TINY).fit(y)
    # The backtest fold is a separate model: the final networks are the plain forecaster's.
    np.testing.assert_array_equal(a.predict(40), plain.predict(40))
    point, q = a.predict(40, return_quantiles=True)
    np.testing.assert_array_equal(q, b.predict_quantiles(40))
    assert q.shape == (40, 2)  # the levels asked for (0.5 is the point forecast)
    assert np.all(q[:, 0] <= q[:, 1]) and np.all(q[:, 1] <= point)
    # Wider far ahead than one step ahead; past the backtest's longest horizon (36 here) the
    # half-width grows as sqrt(j / 36).
    lower = point - q[:, 0]
    assert a.residuals_.shape[1] == 36 and lower[-1] > lower[0] > 0
    np.testing.assert_allclose(lower[36:] / lower[35], np.sqrt(np.arange(37, 41) / 36))


def test_conformal_save_load_bit_identical(tmp_path):
    from numrnn.io import load, save

    y = _noisy_season(120, 0.3) + 10
    f = RNNForecaster(season_length=12, conformal=True, transform="auto", **TINY).fit(y)
    save(f, tmp_path / "f.npz")
    g = load(tmp_path / "f.npz")
    assert g.backtest_scores_ == f.backtest_scores_ and g.transform_ == f.transform_
    np.testing.assert_array_equal(g.predict_quantiles(15), f.predict_quantiles(15))


def test_conformal_bad_input_one_clear_error():
    with pytest.raises(ValueError, match="conformal must be True or False, got 'yes'"):
        RNNForecaster(conformal="yes").fit(np.arange(50.0))
    with pytest.raises(ValueError, match="too short for the backtest fold.*longer series"):
        RNNForecaster(window=13, conformal=True, **TINY).fit(np.sin(np.arange(20.0)))
    with pytest.raises(ValueError, match="quantiles=... or conformal=True"):
        RNNForecaster(window=5, **TINY).fit(np.sin(np.arange(40.0))).predict_quantiles(3)


# -- transform='auto': one-fold backtest -----------------------------------------------------
def test_auto_picks_the_seasonal_difference_for_trend_and_season():
    # Trend + season: the seasonal difference is a constant the network forecasts exactly;
    # without it the network must extrapolate the trend.
    t = np.arange(144)
    y = 10.0 + 0.5 * t + 3.0 * np.sin(2 * np.pi * t / 12)
    f = RNNForecaster(season_length=12, transform="auto", **TINY).fit(y)
    assert f.transform_ == ("seasonal_diff",), f.backtest_scores_
    assert set(f.backtest_scores_) == {"none", "diff", "seasonal_diff"}
    assert f.backtest_scores_["seasonal_diff"] == min(f.backtest_scores_.values())


def test_auto_differences_a_random_walk_not_white_noise():
    # With the global 'standard' scaler a random walk leaves the range the network saw: the
    # fold's forecast is better on differences. White noise is never differenced.
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.standard_normal(200))
    noise = rng.standard_normal(200)
    f = RNNForecaster(transform="auto", scaler="standard", **TINY).fit(walk)
    assert f.transform_ == ("diff",), f.backtest_scores_
    for scaler in ("standard", "window"):
        f = RNNForecaster(transform="auto", scaler=scaler, **TINY).fit(noise)
        assert f.transform_ == (), f.backtest_scores_
    # With the default 'window' scaler (which follows the level) the walk is not differenced:
    # the fold measures that the differenced forecast drifts with the window's mean slope.
    f = RNNForecaster(transform="auto", **TINY).fit(walk)
    assert f.backtest_scores_["none"] < f.backtest_scores_["diff"] and f.transform_ == ()


def test_auto_keeps_no_transform_unless_clearly_better():
    # A candidate replaces "no transform" only when its backtest error is 20 % lower.
    y = _noisy_season(150, 0.3) + 10
    f = RNNForecaster(season_length=12, transform="auto", **TINY).fit(y)
    sc = f.backtest_scores_
    best = min(sc, key=sc.get)
    expect = () if sc[best] > 0.8 * sc["none"] else tuple(best.split("+"))
    assert f.transform_ == expect and "log" not in "".join(sc)
    # The conformal residuals are those of the chosen transform's fold.
    g = RNNForecaster(season_length=12, transform=list(expect), conformal=True, **TINY).fit(y)
    np.testing.assert_array_equal(g.residuals_, f.residuals_)


def test_cli_forecast_conformal(tmp_path, capsys):
    from numrnn.cli import main

    p = tmp_path / "s.csv"
    y = _noisy_season(80, 0.3) + 10
    p.write_text("value\n" + "\n".join(f"{v:.4f}" for v in y) + "\n")
    args = ["forecast", str(p), "--column", "value", "--date-column", "none", "--horizon", "5",
            "--season-length", "12", "--conformal", "--max-iter", "3", "--hidden-size", "4"]  # fmt: skip
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "step,value,value_q0.1,value_q0.9" and len(lines) == 6
    vals = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:]])
    assert np.all(vals[:, 1] < vals[:, 0]) and np.all(vals[:, 0] < vals[:, 2])


def test_forecast_accuracy_benchmark_prints_coverage_and_transforms(monkeypatch, capsys):
    # The benchmark's tables on a toy series (its real series need the bench extra).
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    monkeypatch.syspath_prepend(root)  # plain `pytest` does not put the root on sys.path
    from benchmarks import forecast_accuracy as fa

    toy = np.abs(_noisy_season(90, 0.3)) + 5
    monkeypatch.setattr(fa, "SERIES", {"toy": (lambda: toy, 6, 12)})
    monkeypatch.setattr(fa, "classical", lambda train, h, m: {"seasonal naive": train[-h:]})
    argv = ["--seeds", "1", "--models", "0", "--intervals", "both", "--transforms", "none;diff",
            "--param", "max_iter=3", "--param", "hidden_size=4", "--param", "transform='auto'",
            "--origins", "2", "--rules"]  # fmt: skip
    assert fa.main(argv) == 0
    out = capsys.readouterr().out
    assert "80 % intervals, conformal=True (1 seed(s)): coverage" in out
    assert "80 % intervals, quantiles=(0.1, 0.5, 0.9) (seed 0): coverage" in out
    assert "per-series best fixed one on" in out and "fixed diff" in out
    assert "earlier origins (2 held-out blocks" in out
    assert re.search(r"toy\s+\|\s+[\d.]+\s+[\d.]+ \| \d of 2", out)
    # --rules: every rule scored on the last block and on both earlier ones
    table = out.split("rules falling back to")[1].split("transform used")[0].splitlines()
    rows = [line for line in table if "|" in line][1:]
    assert len(rows) == 10 and rows[0].startswith("network ")
    assert all(re.search(r"\| +[\d.]+ +\d of 2$", line) for line in rows), rows

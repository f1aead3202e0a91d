"""Global forecasting over a panel of series (issue 15): input forms, per-series scaling,
ragged lengths, backtests without refits, streaming updates."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import TimeSeriesSplit

from numrnn.forecasting import RNNForecaster, backtest, cross_val_forecast, forecast_metrics

# one network, max_iter epochs: these tests are about the panel machinery (fast)
KW = dict(window=8, hidden_size=6, max_iter=4, batch_size=16, random_state=0, n_models=1,
          choose_epochs=False)  # fmt: skip


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _series(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return {
        f"s{i}": 3.0 * i + np.sin(np.arange(n) * 0.6 + i) + 0.1 * rng.standard_normal(n)
        for i, n in enumerate(lengths)
    }


def _long(ys, start="2021-01-04"):
    parts = [
        pd.DataFrame({"unique_id": k, "ds": pd.date_range(start, periods=len(v), freq="D"), "y": v})
        for k, v in ys.items()
    ]
    return pd.concat(parts, ignore_index=True)


def test_three_panel_forms_give_the_same_forecasts():
    ys = _series([50, 50, 50])
    ref = RNNForecaster(**KW).fit(ys).predict(5)  # dict in -> dict out
    assert list(ref) == ["s0", "s1", "s2"] and ref["s0"].shape == (5,)
    lst = RNNForecaster(**KW).fit(list(ys.values())).predict(5)
    long_out = RNNForecaster(**KW).fit(_long(ys)).predict(5)
    wide = pd.DataFrame(ys, index=pd.date_range("2021-01-04", periods=50, freq="D"))
    wide_out = RNNForecaster(wide="panel", **KW).fit(wide).predict(5)
    assert list(long_out.columns) == ["unique_id", "ds", "forecast"]
    assert list(wide_out.columns) == list(ys)
    # the future ds continues each series at its frequency
    assert wide_out.index[0] == wide.index[-1] + pd.Timedelta(days=1)
    for j, k in enumerate(ys):
        np.testing.assert_array_equal(lst[j], ref[k])
        np.testing.assert_array_equal(long_out.loc[long_out.unique_id == k, "forecast"], ref[k])
        np.testing.assert_array_equal(wide_out[k].to_numpy(), ref[k])
    # a wide frame without wide='panel' stays one multivariate series (one joint model)
    joint = RNNForecaster(**KW).fit(wide)
    assert joint.panel_ is None and joint.n_series_ == 3


def test_ragged_lengths_and_future_ds_per_series():
    ys = _series([30, 70, 160])
    df = _long(ys)
    f = RNNForecaster(**KW).fit(df)
    out = f.predict(3)
    assert out.shape == (9, 3) and np.isfinite(out["forecast"]).all()
    for k, v in ys.items():
        last = pd.Timestamp("2021-01-04") + pd.Timedelta(days=len(v) - 1)
        got = out.loc[out.unique_id == k, "ds"].tolist()
        assert got == list(pd.date_range(last, periods=4, freq="D")[1:])
    sub = f.predict(3, ids=["s2", "s0"])
    assert sub.unique_id.tolist() == ["s2"] * 3 + ["s0"] * 3
    np.testing.assert_array_equal(
        sub.loc[sub.unique_id == "s0", "forecast"], out.loc[out.unique_id == "s0", "forecast"]
    )
    with pytest.raises(ValueError, match=r"ids \['nope'\] are not series"):
        f.predict(2, ids=["nope"])
    with pytest.raises(ValueError, match=r"series \['tiny'\] of y are too short"):
        RNNForecaster(**KW).fit({**ys, "tiny": np.arange(6.0)})


def test_time_ordered_early_stopping_holds_out_the_latest_windows_of_every_series():
    ys = _series([50, 50, 50])
    kw = dict(KW, scaler=None, scale_y=False, early_stopping=True, validation_split="last")
    kw["validation_fraction"] = 0.25  # the 32 latest of 126 windows: 10-11 per series
    ref = RNNForecaster(**kw).fit(ys)
    # the last 9 steps of a series are only in held-out windows: the training loss ignores them
    tail = {**ys, "s0": np.concatenate([ys["s0"][:-9], ys["s0"][-9:] + 5.0])}
    np.testing.assert_array_equal(RNNForecaster(**kw).fit(tail).loss_curve_, ref.loss_curve_)
    early = {**ys, "s2": np.concatenate([ys["s2"][:30], ys["s2"][30:] + 5.0])}
    assert RNNForecaster(**kw).fit(early).loss_curve_ != ref.loss_curve_


def test_each_series_keeps_its_own_scaling():
    y = _series([60])["s0"]
    # b is an affine copy of a: with per-series scaling the network sees the same windows,
    # so b's forecast is the same affine map of a's
    f = RNNForecaster(scaler="standard", **KW).fit({"a": y, "b": 1000.0 * y + 500.0})
    out = f.predict(4)
    np.testing.assert_allclose(out["b"], 1000.0 * out["a"] + 500.0, rtol=1e-9)
    alone = RNNForecaster(scaler="standard", **KW).fit(y)
    np.testing.assert_allclose(f.series_mean_, [alone.mean_[0], 1000 * alone.mean_[0] + 500])
    np.testing.assert_allclose(f.series_scale_, [alone.scale_[0], 1000 * alone.scale_[0]])
    # a shared scale would put a at ~0 and b far away: its forecast would not be affine
    assert np.ptp(out["a"]) > 0


def test_per_series_transforms_and_history_of_a_new_series():
    rng = np.random.default_rng(1)
    t = np.arange(120)
    ys = {
        "trend": 50.0 + 0.8 * t + rng.standard_normal(120),
        "flat": np.sin(t * 0.9) + 0.2 * rng.standard_normal(120),
    }
    f = RNNForecaster(transform=["diff"], **KW).fit(ys)
    ref = f.predict(3)
    # a known series given as history keeps its fitted scaling: same forecast
    again = f.predict(3, history={"trend": ys["trend"]})
    np.testing.assert_allclose(again["trend"], ref["trend"])
    # a new series gets its own scaling from its history
    new = f.predict(3, history={"new": 10.0 * ys["flat"] + 7.0})
    assert set(new) == {"new"} and np.isfinite(new["new"]).all()
    assert abs(new["new"].mean() - 7.0) < 15.0
    with pytest.raises(ValueError, match="X is not used with a panel"):
        RNNForecaster(**KW).fit(ys, X=np.zeros((120, 1)))


def test_panel_quantiles_in_long_form():
    ys = _series([40, 55])
    f = RNNForecaster(quantiles=(0.1, 0.9), **KW).fit(_long(ys))
    point, q = f.predict(3, return_quantiles=True)
    assert list(q.columns) == ["unique_id", "ds", "q0.1", "q0.9"]
    assert (q["q0.1"] <= q["q0.9"]).all()
    assert point.shape == (6, 3)


# -- backtests without refits -------------------------------------------------------------
def test_backtest_without_refit_equals_the_loop_of_predict_calls():
    ys = _series([60, 90])
    h, n_origins = 3, 4
    f = RNNForecaster(transform=["diff"], **KW)
    res = backtest(f, ys, h, n_origins=n_origins, step=2)
    fc = res.attrs["forecasts"]
    assert list(res.index) == ["s0", "s1", "all"]
    assert list(res.columns) == ["mae", "rmse", "smape", "mase"]
    # the same clone, fitted on each series up to its first origin, and one predict per origin
    first = {k: len(v) - (h + (n_origins - 1) * 2) for k, v in ys.items()}
    ref = clone(f).fit({k: v[: first[k]] for k, v in ys.items()})
    for k, v in ys.items():
        for j in range(n_origins):
            o = first[k] + 2 * j
            want = ref.predict(h, history={k: v[:o]})[k]
            got = fc[(fc.unique_id == k) & (fc.origin == o)]
            np.testing.assert_allclose(got.forecast, want, rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(got.actual, v[o : o + h])
    mine = forecast_metrics(
        fc[fc.unique_id == "s1"].actual, fc[fc.unique_id == "s1"].forecast, ys["s1"][: first["s1"]]
    )
    assert res.loc["s1", "mase"] == pytest.approx(mine["mase"])
    assert res.loc["all", "smape"] == pytest.approx(res.loc[["s0", "s1"], "smape"].mean())
    # refit every 2 origins: two fits, forecasts of the second group differ from refit=False
    res2 = backtest(f, ys, h, n_origins=n_origins, step=2, refit=2)
    both = fc.merge(res2.attrs["forecasts"], on=["unique_id", "origin", "step"])
    first_group = both.origin < both.unique_id.map(first) + 4
    np.testing.assert_allclose(
        both.forecast_x[first_group], both.forecast_y[first_group], rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(both.forecast_x[~first_group], both.forecast_y[~first_group])


def test_cross_val_forecast_without_refit_equals_predict_from_each_origin():
    y = _series([80])["s0"]
    f = RNNForecaster(**KW)
    cv = TimeSeriesSplit(n_splits=3, test_size=4)
    res = cross_val_forecast(f, y, cv=cv, refit=False)
    splits = list(cv.split(y))
    ref = clone(f).fit(y[splits[0][0]])
    for (tr, te), got in zip(splits, res["forecasts"], strict=True):
        want = ref.predict(len(te), history=y[: tr[-1] + 1])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="refit must be True, False or an integer"):
        cross_val_forecast(f, y, cv=cv, refit=0)


def test_forecast_metrics_by_hand():
    m = forecast_metrics([1.0, 2.0], [2.0, 2.0], [0.0, 1.0, 2.0, 3.0])
    assert m["mae"] == pytest.approx(0.5)
    assert m["rmse"] == pytest.approx(np.sqrt(0.5))
    assert m["smape"] == pytest.approx(100 * (2 / 3) / 2)
    assert m["mase"] == pytest.approx(0.5)


# -- streaming ----------------------------------------------------------------------------
def test_update_then_predict_equals_predict_on_the_extended_history():
    y = pd.Series(
        _series([90])["s0"] + 10.0, index=pd.date_range("2022-01-01", periods=90, freq="D")
    )
    f = RNNForecaster(transform=["log", "diff"], **KW).fit(y.iloc[:80])
    want = f.predict(4, history=y)
    f.update(y.iloc[80:85]).update(y.iloc[85:].to_numpy())
    got = f.predict(4)
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())
    assert got.index[0] == y.index[-1] + pd.Timedelta(days=1)
    # a panel: only the updated series moves
    ys = _series([70, 50])
    g = RNNForecaster(**KW).fit({k: v[:-6] for k, v in ys.items()})
    before = g.predict(2)
    g.update({"s1": ys["s1"][-6:]})
    after = g.predict(2)
    np.testing.assert_array_equal(after["s0"], before["s0"])
    np.testing.assert_array_equal(after["s1"], g.predict(2, history={"s1": ys["s1"]})["s1"])
    with pytest.raises(ValueError, match="not fitted on"):
        g.update({"zz": np.ones(3)})


# -- covariates ---------------------------------------------------------------------------
def _promo_panel(n=120, seed=0, kinds=(("shop", 4.0), ("web", 4.0))):
    """Series with a known answer: ``effect`` on the steps where the promotion flag is on."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, (kind, effect) in enumerate(kinds):
        level = 10.0 * (k + 1)
        promo = (rng.random(n) < 0.3).astype(float)
        temp = rng.standard_normal(n)
        y = level + np.sin(np.arange(n) * 0.5) + effect * promo + 0.1 * rng.standard_normal(n)
        y[1:] += 2.0 * temp[:-1]  # yesterday's temperature, a past-only covariate
        parts.append(
            pd.DataFrame(
                {
                    "unique_id": f"s{k}",
                    "ds": pd.date_range("2020-01-01", periods=n, freq="D"),
                    "y": y,
                    "promo": promo,
                    "temp": temp,
                    "kind": kind,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _future(df, h, promo):
    last = df.groupby("unique_id").ds.max()
    return pd.concat(
        [
            pd.DataFrame(
                {"unique_id": k, "ds": pd.date_range(t, periods=h + 1, freq="D")[1:],
                 "promo": promo}
            )
            for k, t in last.items()
        ],
        ignore_index=True,
    )  # fmt: skip


def test_future_known_covariate_moves_the_forecast_the_right_way():
    df = _promo_panel()
    f = RNNForecaster(
        window=6, hidden_size=12, max_iter=40, batch_size=32, random_state=0,
        scaler="standard", future_covariates=["promo"], past_covariates=["temp"],
        static_covariates=["kind"],
    ).fit(df)  # fmt: skip
    assert f.n_exog_ == 1 + 1 + 2  # promo (led one step), temp, kind one-hot
    on = f.predict(3, X=_future(df, 3, 1.0))
    off = f.predict(3, X=_future(df, 3, 0.0))
    lift = (on.forecast - off.forecast).to_numpy()
    assert ((lift > 2.5) & (lift < 5.5)).all(), lift  # the true lift is 4 (measured ~4)
    # the past-only covariate: yesterday's temperature +1.5 vs -1.5 (true effect +-3)
    warm, cold = df.copy(), df.copy()
    last = df.groupby("unique_id").ds.transform("max") == df.ds
    warm.loc[last, "temp"], cold.loc[last, "temp"] = 1.5, -1.5
    fut = _future(df, 1, 0.0)
    d = f.predict(1, X=fut, history=warm).forecast - f.predict(1, X=fut, history=cold).forecast
    assert ((d > 4.0) & (d < 8.0)).all(), d.to_numpy()  # the true difference is 6 (~6.1)
    with pytest.raises(ValueError, match=r"future-known covariates \['promo'\].*3 forecast"):
        f.predict(3)
    short = _future(df, 2, 1.0)
    with pytest.raises(ValueError, match="has 2 row.*horizon is 3"):
        f.predict(3, X=short)
    with pytest.raises(ValueError, match=r"lacks the future covariate column\(s\) \['promo'\]"):
        f.predict(3, X=short.drop(columns="promo"))
    # update with new rows (and their covariates) = a fresh predict on the extended history
    cut = df.groupby("unique_id").ds.transform("max") - pd.Timedelta(days=4)
    g = clone(f).fit(df[df.ds <= cut])
    g.update(df[df.ds > cut])
    fut = _future(df, 3, 1.0)
    pd.testing.assert_frame_equal(g.predict(3, X=fut), g.predict(3, X=fut, history=df))
    with pytest.raises(ValueError, match="changes over time"):
        bad = df.copy()
        bad.loc[0, "kind"] = "web"
        clone(f).fit(bad)


def test_static_covariate_tells_series_apart():
    # the promotion lifts 'shop' series and lowers 'web' ones: only the static kind says which
    kinds = [("shop", 4.0), ("web", -4.0), ("shop", 4.0), ("web", -4.0)]
    df = _promo_panel(kinds=kinds, seed=3)
    f = RNNForecaster(
        window=6, hidden_size=12, max_iter=40, batch_size=32, random_state=0,
        scaler="standard", future_covariates=["promo"], static_covariates=["kind"],
    ).fit(df)  # fmt: skip
    lift = (
        f.predict(2, X=_future(df, 2, 1.0)).forecast - f.predict(2, X=_future(df, 2, 0.0)).forecast
    )
    lift = lift.to_numpy().reshape(4, 2)
    # true lifts +4 / -4 (measured 3.4..4.5 in size)
    assert ((lift[[0, 2]] > 2.5) & (lift[[0, 2]] < 5.5)).all(), lift
    assert ((lift[[1, 3]] < -2.5) & (lift[[1, 3]] > -5.5)).all(), lift


def test_calendar_features_learn_a_weekly_pattern_without_future_x():
    # a weekday effect: +3 on Saturdays and Sundays; the calendar gives it for the horizon
    parts = []
    for k in range(2):
        ds = pd.date_range("2021-01-04", periods=140, freq="D")  # a Monday
        y = (
            5.0 * (k + 1)
            + 3.0 * (ds.day_of_week >= 5)
            + 0.1 * np.random.default_rng(k).standard_normal(140)
        )
        parts.append(pd.DataFrame({"unique_id": f"s{k}", "ds": ds, "y": y}))
    df = pd.concat(parts, ignore_index=True)
    f = RNNForecaster(
        window=3, hidden_size=12, max_iter=40, batch_size=32, random_state=0,
        scaler="standard", calendar=("dayofweek",),
    ).fit(df)  # fmt: skip
    out = f.predict(7)  # Monday .. Sunday after the data
    dow = out.ds.dt.day_of_week.to_numpy()
    weekend = out.forecast.to_numpy()[dow >= 5].reshape(2, 2)
    weekday = out.forecast.to_numpy()[dow < 5].reshape(2, 5)
    # true gap 3 (measured ~2.9)
    assert ((weekend.mean(axis=1) - weekday.mean(axis=1)) > 2.5).all()
    assert (weekend.min(axis=1) - weekday.max(axis=1) > 1.5).all()
    with pytest.raises(ValueError, match="calendar must name attributes"):
        RNNForecaster(calendar=("moon",)).fit(df)
    with pytest.raises(ValueError, match="read from a long DataFrame panel"):
        RNNForecaster(calendar=("month",)).fit(np.arange(50.0))


def test_backtest_of_quantiles_scores_pinball_and_coverage():
    ys = _series([50, 60])
    res = backtest(RNNForecaster(quantiles=(0.1, 0.9), **KW), ys, 2, n_origins=3)
    fc = res.attrs["forecasts"]
    assert list(res.columns) == ["mae", "rmse", "smape", "mase", "pinball", "coverage"]
    assert (fc["q0.1"] <= fc["q0.9"]).all()
    part = fc[fc.unique_id == "s0"]
    a, q = part.actual.to_numpy(), part[["q0.1", "q0.9"]].to_numpy()
    d = a[:, None] - q
    tau = np.array([0.1, 0.9])
    assert res.loc["s0", "pinball"] == pytest.approx(np.mean(np.maximum(tau * d, (tau - 1) * d)))
    assert res.loc["s0", "coverage"] == pytest.approx(np.mean((q[:, 0] <= a) & (a <= q[:, 1])))
    m = forecast_metrics([1.0, 3.0], [1.0, 1.0], [0.0, 1.0], quantiles=[[0, 2], [0, 2]],
                         levels=[0.1, 0.9])  # fmt: skip
    assert m["coverage"] == 0.5  # 1 inside [0, 2], 3 outside
    assert m["pinball"] == pytest.approx(np.mean([0.1, 0.1, 0.3, 0.9]))


def test_backtest_refits_on_a_dask_cluster_match_the_local_run():
    distributed = pytest.importorskip("distributed")
    ys = _series([50, 60])
    f = RNNForecaster(**KW)
    local = backtest(f, ys, 2, n_origins=4, refit=2)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = backtest(f, ys, 2, n_origins=4, refit=2, client=client)
    pd.testing.assert_frame_equal(remote, local)
    pd.testing.assert_frame_equal(remote.attrs["forecasts"], local.attrs["forecasts"])


def test_save_load_keeps_update_and_panels_pickle(tmp_path):
    import pickle

    from numrnn.io import load, save

    y = _series([80])["s0"]
    f = RNNForecaster(transform=["diff"], **KW).fit(y[:70])
    save(f, tmp_path / "f.npz")
    g = load(tmp_path / "f.npz")
    np.testing.assert_array_equal(g.update(y[70:]).predict(3), f.update(y[70:]).predict(3))
    p = RNNForecaster(**KW).fit(_series([40, 50]))
    q = pickle.loads(pickle.dumps(p))
    np.testing.assert_array_equal(q.predict(2)["s1"], p.predict(2)["s1"])


@pytest.mark.parametrize("form", ["long", "dict", "list"])
def test_save_load_panel(tmp_path, form):
    # a panel forecaster round-trips through the .npz format: same forecasts in the same
    # form (ids, future dates), the same update, its own transform per series
    from numrnn.io import load, save

    raw = _series([40, 50, 45])
    ys = {k: pd.Series(v, index=pd.date_range("2000-01", periods=v.size, freq="MS"))
          for k, v in raw.items()}  # fmt: skip
    data = {"long": _long(raw), "dict": ys, "list": list(ys.values())}[form]
    f = RNNForecaster(transform="auto", **KW).fit(data)
    save(f, tmp_path / "p.npz")
    g = load(tmp_path / "p.npz")

    def same(a, b):
        if form == "long":
            pd.testing.assert_frame_equal(a, b)
            return
        for u, v in zip(*(x.values() if form == "dict" else x for x in (a, b)), strict=True):
            pd.testing.assert_series_equal(u, v)

    same(f.predict(3), g.predict(3))
    assert g.series_transform_ == f.series_transform_
    if form == "long":  # two new days of s1
        new = _long(
            {"s1": raw["s1"][-2:] + 1.0},
            start=str(pd.Timestamp("2021-01-04") + 50 * pd.Timedelta("1D")),
        )
    else:
        new = {"s1": ys["s1"].iloc[-2:] + 1.0}
        new["s1"].index = pd.date_range("2004-03", periods=2, freq="MS")
    if form != "list":
        same(f.update(new).predict(2), g.update(new).predict(2))


def test_save_refuses_panels_with_covariates(tmp_path):
    from numrnn.io import save

    ys = _series([40, 50])
    df = _long(ys)
    df["promo"] = np.arange(len(df)) % 2
    f = RNNForecaster(future_covariates=["promo"], **KW).fit(df)
    with pytest.raises(ValueError, match="panel forecaster with covariates"):
        save(f, tmp_path / "c.npz")

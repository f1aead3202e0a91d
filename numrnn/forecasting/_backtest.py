"""Rolling-origin backtests without refits: every origin in one batched forward pass.

A fitted forecaster forecasts ``horizon`` steps from many origins (cut points of each series)
at once: the windows ending at all origins are stacked as the rows of one batch and run
through :meth:`RNNForecaster._row_paths`, the same code ``predict`` runs for one window, so
the result equals the loop of ``predict(horizon, history=y[:origin])`` calls it replaces.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import clone

from numrnn._validation import check_int, check_param
from numrnn.forecasting import transforms as _transforms
from numrnn.forecasting._forecaster import _pandas

__all__ = ["backtest", "forecast_metrics"]


def origin_rows(f, Y, origins, steps, mean, sd):
    """Scaled windows ending at each origin of ``Y`` (n, k) and the transform tails there."""
    m, w = f.season_length_, f.window_
    tails, ttails = [], []
    if not steps:  # no transform: the windows are rows of one scaled series, gathered at once
        o = np.asarray(origins, dtype=np.intp)
        if o.size and o.min() < w:
            raise ValueError(f"origin {o.min()} leaves {o.min()} steps, fewer than window={w}.")
        Zs = (Y - mean) / sd
        return list(Zs[o[:, None] - w + np.arange(w)]), [[] for _ in range(o.size)]
    for o in origins:
        Z, tl = _transforms.apply(Y[:o], steps, m)
        if Z.shape[0] < w:
            raise ValueError(
                f"origin {o} leaves {Z.shape[0]} steps after the transforms {steps}, fewer "
                f"than window={w}."
            )
        tails.append(((Z - mean) / sd)[-w:])
        ttails.append(tl)
    return tails, ttails


def forecast_origins(f, series, origins, horizon, levels=None):
    """Point forecasts (R, h, k) of the fitted ``f`` from ``origins[i]`` of ``series[i]``.

    ``series`` are (n_i, k) arrays; for a panel forecaster ``series[i]`` is the series with
    id ``f.ids_[i]`` (its fitted transform and scaling are used), else the single series.
    All windows are run as one batch. Returns (forecasts, the series of each row) and, with
    ``levels``, the quantiles (R, h, k, n_levels) of the sample paths as a third value.
    """
    if f.n_exog_:
        raise ValueError(
            "a backtest without refits does not take exogenous features or covariates yet; "
            "use cross_val_forecast(..., refit=True)."
        )
    tails, means, scales, steps, ttails, counts = [], [], [], [], [], []
    for i, (Y, origs) in enumerate(zip(series, origins, strict=True)):
        if f.panel_ is not None:
            st = f._states[i]
            s_steps, mean, sd = st["steps"], st["mean"], st["sd"]
        else:
            s_steps, mean, sd = f.transform_, f.mean_, f.scale_
        t, tt = origin_rows(f, Y, origs, s_steps, mean, sd)
        tails += t
        ttails += tt
        means.append(mean)
        scales.append(sd)
        steps += [s_steps] * len(origs)
        counts.append(len(origs))
    # one row per origin; a series' location and scale repeated over its origins
    owner = np.repeat(np.arange(len(counts)), counts)
    rows = (np.stack(tails), np.stack(means)[owner], np.stack(scales)[owner], steps, ttails,
            horizon, None)  # fmt: skip
    paths = f._row_paths(*rows, False)
    point = paths[0][:, 0] if len(paths) == 1 else np.median(np.concatenate(paths, axis=1), axis=1)
    if levels is None:
        return point, owner
    allp = np.concatenate(f._row_paths(*rows, True), axis=1)  # (R, P, h, k)
    q = np.sort(np.quantile(allp, levels, axis=1), axis=0)  # (nq, R, h, k), never crossing
    return point, owner, np.moveaxis(q, 0, -1)


# -- metrics ------------------------------------------------------------------------------
def forecast_metrics(actual, forecast, train, season_length=1, quantiles=None, levels=None):
    """MAE, RMSE, sMAPE (percent, 0..200) and MASE of one series' forecasts.

    ``actual`` and ``forecast`` hold the same steps (any shape); ``train`` is the series
    before the first forecast, whose in-sample seasonal-naive MAE (lag ``season_length``, or
    1 when the series is too short for it) scales the MASE. With ``quantiles`` (n_steps,
    n_levels) at ``levels``, also ``pinball`` (the mean pinball loss over steps and levels)
    and ``coverage`` (the share of actuals inside [lowest level, highest level]).
    """
    a = np.asarray(actual, dtype=np.float64).ravel()
    p = np.asarray(forecast, dtype=np.float64).ravel()
    err = p - a
    denom = np.abs(a) + np.abs(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(denom > 0, 2.0 * np.abs(err) / denom, 0.0)
    tr = np.asarray(train, dtype=np.float64).ravel()
    lag = season_length if tr.size > season_length else 1
    scale = np.mean(np.abs(tr[lag:] - tr[:-lag])) if tr.size > lag else np.nan
    mae = float(np.mean(np.abs(err)))
    out = {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(err**2))),
        "smape": float(100.0 * np.mean(ratio)),
        "mase": float(mae / scale) if scale > 0 else np.nan,
    }
    if quantiles is not None:
        q = np.asarray(quantiles, dtype=np.float64).reshape(a.size, -1)
        tau = np.asarray(levels, dtype=np.float64)
        d = a[:, None] - q
        out["pinball"] = float(np.mean(np.maximum(tau * d, (tau - 1.0) * d)))
        out["coverage"] = float(np.mean((q[:, 0] <= a) & (a <= q[:, -1])))
    return out


def _check_refit(refit):
    if refit is True:
        return 1
    if refit is False:
        return None
    if isinstance(refit, numbers.Integral) and not isinstance(refit, bool) and refit >= 1:
        return int(refit)
    raise ValueError(
        f"refit must be True, False or an integer >= 1 (refit every k origins), got {refit!r}."
    )


def _fit_and_forecast(group, forecaster, ids, values, indexes, is_panel, horizon, levels):
    """Fit a clone on each series up to its first origin of ``group``; forecast the group's
    origins in one batched pass: (season length, forecasts, row owners, quantiles)."""
    pd = _pandas()
    # each series up to its first origin of the group, keeping its time index
    train = [
        Y[: o[0], 0] if ix is None else pd.Series(Y[: o[0], 0], index=ix[: o[0]])
        for Y, o, ix in zip(values, group, indexes, strict=True)
    ]
    est = clone(forecaster).fit(dict(zip(ids, train, strict=True)) if is_panel else train[0])
    fc, owner, *q = forecast_origins(est, values, group, horizon, levels)
    return est.season_length_, fc, owner, (q[0] if q else None)


def backtest(forecaster, y, horizon, *, n_origins=10, step=1, refit=False, client=None):
    """Rolling-origin backtest of an :class:`RNNForecaster` on one series or a panel.

    Each series is cut at ``n_origins`` origins, ``step`` steps apart, the last one
    ``horizon`` steps before its end; the ``horizon`` steps after each origin are forecast
    and scored.

    Parameters
    ----------
    forecaster : RNNForecaster
        Not fitted itself: clones are fitted on the data before the first origin of their
        group (each series' own origins, for a panel).
    y : series or panel
        Anything :meth:`RNNForecaster.fit` accepts without ``X``.
    horizon : int >= 1
    n_origins : int >= 1, default=10
    step : int >= 1, default=1
    refit : bool or int, default=False
        False: fit once, then forecast every origin in one batched forward pass (no
        ``predict`` per origin). True: refit before every origin. k: refit every k origins,
        each group of k origins forecast in one pass.
    client : distributed.Client, optional
        Run the refits (one task per group of origins) on this dask cluster; the results
        are those of a local run.

    Returns
    -------
    metrics : pandas.DataFrame
        One row per series (index: the series id; 0 for a single series) and a last row
        ``'all'`` (the mean over series), columns ``mae``, ``rmse``, ``smape``, ``mase``
        and, for a forecaster with ``quantiles``, ``pinball`` and ``coverage`` (of the
        interval between the lowest and highest level; see :func:`forecast_metrics`).
        ``metrics.attrs['forecasts']`` is a long DataFrame ``unique_id``, ``origin``, ``step``,
        ``actual``, ``forecast`` (and ``q<level>`` columns).
    """
    from numrnn.forecasting import _panel

    pd = _pandas()
    check_param("horizon", horizon)
    check_int("n_origins", n_origins, 1)
    check_int("step", step, 1)
    every = _check_refit(refit) or n_origins
    panel = _panel.read_panel(y, forecaster)
    if panel is None:
        Y, _ = _panel._as_2d_float(y, "y")
        if Y.shape[1] != 1:
            raise ValueError(
                f"backtest takes one series or a panel; y has {Y.shape[1]} columns. Pass "
                "wide='panel' to the forecaster for separate series, or use "
                "cross_val_forecast for one multivariate series."
            )
        ids, values, indexes = [0], [Y], [getattr(y, "index", None)]
    else:
        ids, values, indexes = panel.ids, panel.values, panel.indexes
    span = horizon + (n_origins - 1) * step
    origins = []
    for key, Y in zip(ids, values, strict=True):
        if Y.shape[0] <= span:
            raise ValueError(
                f"series {key!r} has {Y.shape[0]} steps, too few for {n_origins} origins "
                f"{step} apart and horizon={horizon} ({span + 1} needed at least)."
            )
        origins.append([Y.shape[0] - span + j * step for j in range(n_origins)])
    records = []
    levels = forecaster._quantile_levels()
    if levels is not None:
        levels = np.unique(np.asarray(forecaster.quantiles, dtype=np.float64).ravel())
    groups = [[o[g : g + every] for o in origins] for g in range(0, n_origins, every)]
    args = (forecaster, ids, values, indexes, panel is not None, horizon, levels)
    if client is None:
        results = [_fit_and_forecast(group, *args) for group in groups]
    else:
        results = client.gather(
            client.map(_fit_and_forecast, groups, *[[a] * len(groups) for a in args])
        )
    m = results[0][0]  # the season length the fits used
    for group, (_m, fc, owner, q) in zip(groups, results, strict=True):
        r = 0
        for i, (key, Y) in enumerate(zip(ids, values, strict=True)):
            for o in group[i]:
                assert owner[r] == i
                for s in range(horizon):
                    extra = () if levels is None else tuple(q[r, s, 0])
                    records.append((key, o, s + 1, Y[o + s, 0], fc[r, s, 0], *extra))
                r += 1
    qcols = [] if levels is None else [f"q{lv:g}" for lv in levels]
    forecasts = pd.DataFrame(
        records, columns=["unique_id", "origin", "step", "actual", "forecast", *qcols]
    )
    rows = {}
    for i, key in enumerate(ids):
        part = forecasts[forecasts.unique_id == key] if len(ids) > 1 else forecasts
        rows[key] = forecast_metrics(
            part.actual,
            part.forecast,
            values[i][: origins[i][0], 0],
            m,
            None if levels is None else part[qcols].to_numpy(),
            levels,
        )
    metrics = pd.DataFrame.from_dict(rows, orient="index")
    metrics.loc["all"] = metrics.mean(axis=0)
    metrics.attrs["forecasts"] = forecasts
    return metrics

"""Covariates of a panel: future-known, past-only and static, as extra input columns.

Each input step of a window is ``[y_t, future_{t+1}, past_t, static]``:

* a *future-known* covariate (calendar, promotion, holiday) enters one step ahead, so the
  step that predicts ``y_{t+1}`` reads its value at ``t + 1``; a forecast needs it for every
  horizon step;
* a *past-only* covariate (known up to now) enters at its own time; beyond the origin of a
  recursive forecast its last known value is held;
* a *static* covariate (one value per series) is repeated at every step; a non-numeric one
  is one-hot encoded over the categories seen in ``fit`` (an unseen category: all zeros).

*calendar* features (``calendar=('month', 'dayofweek')``) are future-known covariates made
  from the time column: each attribute as ``sin`` and ``cos`` of its phase in its cycle, so
  December sits next to January; ``predict`` makes them for the horizon from the series'
  frequency (no ``X`` needed).

Covariates are scaled over the whole panel (one location and scale per column), not per
series: a promotion flag means the same in every series.
"""

from __future__ import annotations

import numpy as np

from numrnn.forecasting._forecaster import _as_2d_float, _pandas, _scale_stats


def names(f):
    """(future, past, static) column names configured on the forecaster ``f``."""
    out = []
    for attr in ("future_covariates", "past_covariates", "static_covariates"):
        v = getattr(f, attr)
        if v is None:
            out.append([])
        elif isinstance(v, str):
            out.append([v])
        else:
            out.append(list(v))
    return tuple(out)


# the cycle of each calendar attribute
CALENDAR = {
    "month": 12,
    "quarter": 4,
    "weekofyear": 53,
    "dayofyear": 366,
    "day": 31,
    "dayofweek": 7,
    "hour": 24,
    "minute": 60,
}


# pandas' attribute names (its 'dayofweek' spelling is deprecated in pandas 3)
_ATTRIBUTE = {"dayofweek": "day_of_week", "dayofyear": "day_of_year", "weekofyear": "week"}


def calendar_names(f) -> list:
    cal = getattr(f, "calendar", None)
    if cal is None:
        return []
    cal = [cal] if isinstance(cal, str) else list(cal)
    bad = [c for c in cal if c not in CALENDAR]
    if bad:
        raise ValueError(
            f"calendar must name attributes among {sorted(CALENDAR)}, got {bad}. Pass e.g. "
            "calendar=('month', 'dayofweek')."
        )
    return cal


def calendar_features(index, cal, what):
    """(n, 2 * len(cal)) sin/cos of each attribute's phase for a DatetimeIndex/PeriodIndex."""
    pd = _pandas()
    if not cal:
        return np.zeros((len(index), 0))
    if not isinstance(index, (pd.DatetimeIndex, pd.PeriodIndex)):
        raise ValueError(
            f"calendar features need dates: {what} has a {type(index).__name__}, not a regular "
            "DatetimeIndex / PeriodIndex. Pass datetimes in the time column (at a regular "
            "frequency for the forecast steps), or calendar=None."
        )
    cols = []
    for c in cal:
        v = (
            np.asarray(index.isocalendar().week, dtype=np.float64)
            if c == "weekofyear" and isinstance(index, pd.DatetimeIndex)
            else np.asarray(getattr(index, _ATTRIBUTE.get(c, c)), np.float64)
        )
        a = 2.0 * np.pi * v / CALENDAR[c]
        cols += [np.sin(a), np.cos(a)]
    return np.stack(cols, axis=1)


def any_configured(f) -> bool:
    return any(names(f)) or bool(calendar_names(f))


def read_group(g, f, key, name):
    """Covariates of one series' rows ``g`` (sorted by time): a dict of raw arrays."""
    fut, past, static = names(f)
    missing = [c for c in fut + past + static if c not in g.columns]
    if missing:
        raise ValueError(
            f"{name} has no column(s) {missing} named as covariates; it has "
            f"{list(g.columns)}. Add them, or drop them from future_covariates / "
            "past_covariates / static_covariates."
        )
    cal = calendar_names(f)
    if cal:
        pd = _pandas()
        if f.time_col not in g.columns:
            raise ValueError(
                f"calendar features need the time column {f.time_col!r}; {name} has "
                f"{list(g.columns)}."
            )
        cal_cols = calendar_features(pd.Index(g[f.time_col]), cal, f"{name}[{f.time_col!r}]")
    else:
        cal_cols = np.zeros((len(g), 0))
    known = (
        _as_2d_float(g[fut].to_numpy(), f"{name} future covariates of {key!r}")[0]
        if fut
        else np.zeros((len(g), 0))
    )
    out = {
        "future": np.concatenate([known, cal_cols], axis=1),
        "past": _as_2d_float(g[past].to_numpy(), f"{name} past covariates of {key!r}")[0]
        if past
        else np.zeros((len(g), 0)),
    }
    values = []
    for c in static:
        col = g[c]
        if col.nunique(dropna=False) > 1:
            raise ValueError(
                f"static covariate {c!r} of series {key!r} changes over time (values "
                f"{col.unique()[:3].tolist()}); a static covariate has one value per series."
            )
        values.append(col.iloc[0])
    out["static"] = values
    return out


def fit_encoding(f, covs):
    """Categories of the static covariates (None for a numeric one), from fitted series."""
    _, _, static = names(f)
    cats = []
    for j, _c in enumerate(static):
        vals = [cv["static"][j] for cv in covs]
        if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in vals):
            cats.append(None)
        else:
            cats.append(sorted({str(v) for v in vals}))
    return cats


def static_row(cov, cats):
    """The static covariates of one series as numbers (categoricals one-hot)."""
    row = []
    for v, c in zip(cov["static"], cats, strict=True):
        if c is None:
            row.append(float(v))
        else:
            row.extend(1.0 if str(v) == cat else 0.0 for cat in c)
    return np.asarray(row, dtype=np.float64)


def exog(cov, cats, n_rows):
    """Unscaled input columns (n, m) of one series: the future covariates led by one step
    (the last row's lead is unknown until ``predict``: zero), past, static."""
    fut = cov["future"]
    lead = np.zeros_like(fut)
    lead[:-1] = fut[1:]
    st = np.broadcast_to(static_row(cov, cats), (fut.shape[0], len(static_row(cov, cats))))
    return np.concatenate([lead, cov["past"], st], axis=1)[-n_rows:]


def fit_scaling(f, blocks):
    """Location and scale of the covariate columns over all series' rows."""
    full = np.concatenate(blocks)
    return _scale_stats(full, None if f.scaler is None else "standard")


def future_block(f, X, key, horizon, cov, cats, mean, sd, future_index):
    """Scaled covariate rows for the ``horizon`` forecast steps of series ``key``.

    ``future_index``: the time index of those steps (for calendar features). Returns (lead
    of the last observed step (m,), rows (horizon, m) fed after each step).
    """
    fut_names, _, _ = names(f)
    nf = len(fut_names)
    if nf:
        fut = _future_values(f, X, key, horizon, fut_names)
    else:
        fut = np.zeros((horizon, 0))
    cal = calendar_features(
        future_index, calendar_names(f), f"the forecast steps of series {key!r}"
    )
    fut = np.concatenate([fut, cal], axis=1)
    past_last = cov["past"][-1] if cov["past"].shape[0] else cov["past"][:0].sum(axis=0)
    st = static_row(cov, cats)
    last = np.concatenate([fut[0], past_last, st])
    lead = np.zeros_like(fut)
    lead[:-1] = fut[1:]
    rows = np.concatenate(
        [lead, np.broadcast_to(past_last, (horizon, len(past_last))),
         np.broadcast_to(st, (horizon, len(st)))],
        axis=1,
    )  # fmt: skip
    return (last - mean) / sd, (rows - mean) / sd


def _future_values(f, X, key, horizon, fut_names):
    pd = _pandas()
    if X is None:
        raise ValueError(
            f"X is required: future-known covariates {fut_names} must be given for the "
            f"{horizon} forecast step(s) of every series, as a long DataFrame with columns "
            f"{[f.id_col, f.time_col, *fut_names]}."
        )
    if pd is None or not isinstance(X, pd.DataFrame) or f.id_col not in X.columns:
        raise ValueError(
            f"X must be a long DataFrame with columns {[f.id_col, f.time_col, *fut_names]} "
            f"(the future covariates of the {horizon} forecast step(s)), got "
            f"{type(X).__name__}."
        )
    missing = [c for c in fut_names if c not in X.columns]
    if missing:
        raise ValueError(
            f"X lacks the future covariate column(s) {missing} (needed for the {horizon} "
            f"forecast step(s)); it has {list(X.columns)}."
        )
    g = X[X[f.id_col] == key]
    if f.time_col in g.columns:
        g = g.sort_values(f.time_col, kind="stable")
    if len(g) < horizon:
        raise ValueError(
            f"X has {len(g)} row(s) of future covariates {fut_names} for series {key!r}, but "
            f"the horizon is {horizon}: give one row per forecast step."
        )
    return _as_2d_float(g[fut_names].to_numpy()[:horizon], f"X of series {key!r}")[0]

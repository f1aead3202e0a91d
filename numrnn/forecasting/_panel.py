"""Panels of many series for one global RNNForecaster: reading, preparing, answering.

A panel is a long DataFrame (``id_col``, ``time_col``, ``target_col``), a dict ``{id:
series}``, a list of series (of any lengths) or, with ``wide='panel'``, a wide DataFrame or
2-D array (one column per series). Each series keeps its own transform and scaling (the
functions of :mod:`numrnn.forecasting._forecaster` and :mod:`~numrnn.forecasting.transforms`,
called per series); the windows of all series train one network, weighted so that every
series carries the same total weight.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from numrnn.forecasting import _covariates as _cov
from numrnn.forecasting import transforms as _transforms
from numrnn.forecasting._forecaster import (
    _as_2d_float,
    _future_index,
    _pandas,
    _scale_stats,
    default_window,
    make_windows,
)


@dataclass
class Panel:
    """Series of a panel as read from the user's input (``form`` says which input)."""

    form: str  # 'long', 'dict', 'list' or 'wide'
    ids: list
    values: list  # (n_i, 1) float64 arrays
    indexes: list  # a pandas index per series, or None
    pandas_series: list = field(default_factory=list)  # was series i a pandas Series?
    frame_index: object = None  # the wide frame's index
    covariates: list | None = None  # per series: _covariates.read_group's dict
    _positions: dict | None = None

    def position(self, key):
        """Position of the series ``key`` (ids compared by repr: 1 and 1.0 differ), or None."""
        if self._positions is None:
            self._positions = {repr(i): j for j, i in enumerate(self.ids)}
        return self._positions.get(repr(key))


def _is_series_like(v) -> bool:
    pd = _pandas()
    return isinstance(v, np.ndarray) or (pd is not None and isinstance(v, pd.Series))


def read_panel(y, f, name="y"):
    """The :class:`Panel` in ``y``, or None when ``y`` is one (possibly multivariate) series."""
    pd = _pandas()
    if pd is not None and isinstance(y, pd.DataFrame) and f.id_col in y.columns:
        return _read_long(y, f, name)
    if isinstance(y, dict):
        items = list(y.items())
        form = "dict"
    elif (
        isinstance(y, (list, tuple))
        and len(y) > 0
        and (
            all(_is_series_like(v) for v in y)
            or all(np.ndim(v) == 1 for v in y)
            and len({len(v) for v in y}) > 1
        )
    ):
        # a list of arrays / Series, or of lists of different lengths (a list of equal-length
        # lists stays a 2-D array: columns of one series, as before panels existed)
        items = list(enumerate(y))
        form = "list"
    elif f.wide == "panel" and (pd is not None and isinstance(y, pd.DataFrame) or np.ndim(y) == 2):
        if pd is not None and isinstance(y, pd.DataFrame):
            items = [(c, y[c]) for c in y.columns]
            p = _from_items(items, "wide", name)
            p.frame_index = y.index
            form = "wide"
            if _cov.any_configured(f):
                items = []  # refused below: covariates need the long form
            else:
                return p
        arr = np.asarray(y)
        items = [(j, arr[:, j]) for j in range(arr.shape[1])]
        form = "wide"
        if not _cov.any_configured(f):
            return _from_items(items, "wide", name)
    else:
        return None
    if _cov.any_configured(f):
        raise ValueError(
            f"covariates are read from a long DataFrame ({f.id_col}, {f.time_col}, "
            f"{f.target_col} and the covariate columns); {name} is a {form} panel. Pass the "
            "panel as a long DataFrame, or no covariates."
        )
    if not items:
        raise ValueError(f"{name} is an empty panel: pass at least one series.")
    return _from_items(items, form, name)


def _from_items(items, form, name):
    pd = _pandas()
    ids, values, indexes, is_pd = [], [], [], []
    for key, v in items:
        arr, _ = _as_2d_float(v, f"{name}[{key!r}]")
        if arr.shape[1] != 1:
            raise ValueError(
                f"{name}[{key!r}] must be one series (1-D), got shape {np.shape(v)}. A panel "
                "holds one 1-D series per id."
            )
        ids.append(key)
        values.append(arr)
        series = pd is not None and isinstance(v, pd.Series)
        indexes.append(v.index if series else None)
        is_pd.append(series)
    if len(set(map(repr, ids))) != len(ids):
        raise ValueError(f"the ids of {name} must be unique; some repeat.")
    return Panel(form, ids, values, indexes, is_pd)


def _read_long(df, f, name):
    pd = _pandas()
    need = [f.id_col, f.target_col] + ([f.time_col] if f.time_col in df.columns else [])
    missing = [c for c in (f.id_col, f.target_col) if c not in df.columns]
    if missing:
        raise ValueError(
            f"{name} is a long DataFrame without the column(s) {missing}; it has "
            f"{list(df.columns)}. Pass id_col=, time_col= and target_col= naming its columns."
        )
    has_time = len(need) == 3
    items, covs = [], []
    for key, g in df.groupby(f.id_col, sort=False):
        if has_time:
            g = g.sort_values(f.time_col, kind="stable")
        if _cov.any_configured(f):
            covs.append(_cov.read_group(g, f, key, name))
        if has_time:
            idx = pd.Index(g[f.time_col])
            if isinstance(idx, pd.DatetimeIndex) and len(idx) >= 3:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        idx.freq = pd.infer_freq(idx)
                except (TypeError, ValueError):
                    pass
            items.append((key, pd.Series(g[f.target_col].to_numpy(), index=idx)))
        else:
            items.append((key, g[f.target_col].to_numpy()))
    p = _from_items(items, "long", name)
    p.covariates = covs or None
    return p


# -- fitting ------------------------------------------------------------------------------
def _season(f, panel):
    m = f.season_length
    if m is None:
        m = next((_transforms.season_from_index(ix) for ix in panel.indexes if ix is not None), 1)
        m = m or 1
    return int(m)


def _prepare(f, Y, m, steps=None, stats=None):
    """Transform and scale one series (n, 1): (scaled Z, steps, transform tails, mean, sd)."""
    if steps is None:
        steps = f._steps(Y, m)
    Z, tails = _transforms.apply(Y, steps, m)
    mean, sd = _scale_stats(Z, f.scaler) if stats is None else stats
    return (Z - mean) / sd, steps, tails, mean, sd


def fit_panel(f, panel):
    """Fit the forecaster ``f`` (its parameters checked) as one global model on ``panel``."""
    m = _season(f, panel)
    short = [(i, v.shape[0]) for i, v in zip(panel.ids, panel.values, strict=True) if m >= v.size]
    if short:
        raise ValueError(
            f"season_length={m} is not shorter than series {short[0][0]!r} ({short[0][1]} "
            "steps). Drop the short series, or pass a smaller season_length (1: no season)."
        )
    prepared = [_prepare(f, Y, m) for Y in panel.values]
    block = f._block()
    nz = np.array([p[0].shape[0] for p in prepared])
    window = f.window
    if window is None:
        # capped by the median series so that most series give several windows
        window = default_window(m, int(np.median(nz)), block)
    need = window + block
    too_short = [i for i, n in zip(panel.ids, nz, strict=True) if n < need]
    if too_short:
        raise ValueError(
            f"series {too_short[:5]} of y are too short: after the transforms they have fewer "
            f"than window={window} + {block} forecast step(s) = {need} steps, so no training "
            "window. Drop them (forecast them later with predict(history=...)), or pass a "
            "smaller window."
        )
    covs, cats, cstats = panel.covariates, None, None
    Es = [None] * len(prepared)
    if covs is not None:
        if f.strategy != "recursive":
            raise ValueError(
                "covariates need strategy='recursive' (the future-known ones enter one step "
                f"ahead of each prediction), got strategy={f.strategy!r}."
            )
        cats = _cov.fit_encoding(f, covs)
        Es = [_cov.exog(cv, cats, p[0].shape[0]) for cv, p in zip(covs, prepared, strict=True)]
        cstats = _cov.fit_scaling(f, Es)
        Es = [(E - cstats[0]) / cstats[1] for E in Es]
    Xs, ys, ws = [], [], []
    for (Zs, *_), E in zip(prepared, Es, strict=True):
        Xw, yw = make_windows(Zs, window, block, exog=E)
        Xs.append(Xw)
        ys.append(yw)
        # every series the same total weight, so long series do not drown short ones
        ws.append(np.full(Xw.shape[0], 1.0 / Xw.shape[0]))
    Xw, yw, sw = np.concatenate(Xs), np.concatenate(ys), np.concatenate(ws)
    sw *= sw.size / sw.sum()  # mean weight 1: the loss keeps its usual size
    from_end = np.concatenate([np.arange(len(x))[::-1] for x in Xs])
    f.regressors_ = f._fit_windows(Xw, yw, 1, sample_weight=sw, from_end=from_end)
    f.window_ = int(window)
    f.season_length_ = m
    f.quantiles_ = f._quantile_levels()
    f.n_series_, f.n_exog_ = 1, 0 if Es[0] is None else Es[0].shape[1]
    f.covariate_categories_, f.covariate_stats_ = cats, cstats
    f.panel_ = panel
    f.ids_ = list(panel.ids)
    f.transform_ = tuple(sorted({p[1] for p in prepared}, key=repr))
    f.series_transform_ = [p[1] for p in prepared]
    f.series_mean_ = np.array([p[3][0] for p in prepared])
    f.series_scale_ = np.array([p[4][0] for p in prepared])
    f.mean_, f.scale_ = np.zeros(1), np.ones(1)
    f._states = [
        _state(p, window, Y, m, E, None if covs is None else covs[i])
        for i, (p, Y, E) in enumerate(zip(prepared, panel.values, Es, strict=True))
    ]
    return f


def _state(prepared, window, Y, m, E=None, cov=None):
    """What a forecast from the end of one series needs (and update() extends)."""
    Zs, steps, tails, mean, sd = prepared
    keep = window + _transforms.total_lag(steps, m)
    full = Zs if E is None else np.concatenate([Zs, E], axis=1)
    return {
        "cov": cov,
        "tail": full[-window:].copy(),
        "tails": tails,
        "steps": steps,
        "mean": mean,
        "sd": sd,
        "raw": Y[-keep:].copy(),
    }


# -- forecasting --------------------------------------------------------------------------
def _states_for(f, horizon, ids, history):
    """(ids, states, panel) for a forecast: the fitted series, or those of ``history``."""
    if history is None:
        panel = f.panel_
        if ids is None:
            return list(f.ids_), f._states, panel
        pos = [panel.position(i) for i in ids]
        unknown = [i for i, p in zip(ids, pos, strict=True) if p is None]
        if unknown:
            raise ValueError(
                f"ids {unknown[:5]} are not series of the panel (it has {f.ids_[:5]}"
                f"{' ...' if len(f.ids_) > 5 else ''}). Pass ids of fitted series, or forecast "
                "new series with history=..."
            )
        return [f.ids_[p] for p in pos], [f._states[p] for p in pos], panel
    else:
        panel = read_panel(history, f, "history")
        if panel is None:
            raise ValueError(
                "history must be a panel like the training data (a long DataFrame with column "
                f"{f.id_col!r}, a dict or a list of series), got {type(history).__name__}."
            )
        states = {}
        for key, Y in zip(panel.ids, panel.values, strict=True):
            p = f.panel_.position(key)
            old = None if p is None else f._states[p]
            # a known series keeps its fitted transform and scaling; a new one gets its own
            p = (
                _prepare(f, Y, f.season_length_)
                if old is None
                else _prepare(f, Y, f.season_length_, old["steps"], (old["mean"], old["sd"]))
            )
            if p[0].shape[0] < f.window_:
                raise ValueError(
                    f"history[{key!r}] is too short: {Y.shape[0]} steps give {p[0].shape[0]} "
                    f"after the transforms {p[1]}, but window={f.window_} are needed."
                )
            E, cov = None, None
            if f.n_exog_:
                cov = panel.covariates[panel.position(key)]
                E = _cov.exog(cov, f.covariate_categories_, p[0].shape[0])
                E = (E - f.covariate_stats_[0]) / f.covariate_stats_[1]
            states[key] = _state(p, f.window_, Y, f.season_length_, E, cov)
    if ids is None:
        ids = list(panel.ids)
    else:
        ids = list(ids)
        by_repr = {repr(i): i for i in states}
        unknown = [i for i in ids if repr(i) not in by_repr]
        if unknown:
            raise ValueError(
                f"ids {unknown[:5]} are not series of the panel (it has {list(states)[:5]}"
                f"{' ...' if len(states) > 5 else ''}). Pass ids of fitted series, or forecast "
                "new series with history=..."
            )
        ids = [by_repr[repr(i)] for i in ids]
    return ids, [states[i] for i in ids], panel


def _stack(arrays: list) -> np.ndarray:
    """``np.stack(arrays)``; one array (a streaming forecast of one series) as a copy with a
    new axis, without np.stack's Python work (a twentieth of a one-step forecast)."""
    return arrays[0][None].copy() if len(arrays) == 1 else np.stack(arrays)


def panel_paths(f, horizon, ids, history, sample, X=None):
    """(forecast paths per network (S, P, h), ids, panel) for the series ``ids``."""
    ids, states, panel = _states_for(f, horizon, ids, history)
    tails = _stack([s["tail"] for s in states])
    fut = None
    if f.n_exog_:
        fut = np.empty((len(ids), horizon, f.n_exog_))
        for r, (key, st) in enumerate(zip(ids, states, strict=True)):
            last, fut[r] = _cov.future_block(
                f, X, key, horizon, st["cov"], f.covariate_categories_, *f.covariate_stats_,
                _future(panel, key, horizon),
            )  # fmt: skip
            tails[r, -1, 1:] = last
    rows = f._row_paths(
        tails,
        _stack([s["mean"] for s in states]),
        _stack([s["sd"] for s in states]),
        [s["steps"] for s in states],
        [s["tails"] for s in states],
        horizon,
        fut,
        sample,
    )
    return [r[..., 0] for r in rows], ids, panel


def point_and_quantiles(f, horizon, ids, history, quantiles, X=None):
    """Median forecast (h, S) and, with ``quantiles``, the levels (h, S, nq)."""
    paths, ids, panel = panel_paths(f, horizon, ids, history, False, X)
    # the median over the networks (one network: its path, without numpy's median cost)
    point = (paths[0][:, 0] if len(paths) == 1 else np.median(np.concatenate(paths, 1), 1)).T
    q = None
    if quantiles is not None:
        paths, _, _ = panel_paths(f, horizon, ids, history, True, X)
        allp = np.concatenate(paths, axis=1)  # (S, P, h)
        q = np.sort(np.quantile(allp, quantiles, axis=1), axis=0)
        q = q.transpose(2, 1, 0)  # (h, S, nq)
    return point, q, ids, panel


def _future(panel, key, horizon):
    pd = _pandas()
    pos = panel.position(key)
    index = None
    if panel.form == "wide":
        index = panel.frame_index
    elif pos is not None:
        index = panel.indexes[pos]
    fidx = _future_index(index, horizon) if pd is not None else None
    if fidx is None and pd is not None:
        fidx = pd.RangeIndex(1, horizon + 1, name="step")
    return fidx


def format_output(f, values, ids, panel, horizon, columns=None):
    """Forecasts ``values`` (h, S) or (h, S, nq) in the form of the panel ``panel``.

    ``columns``: the names of the last axis of a (h, S, nq) array (quantile levels).
    """
    pd = _pandas()
    if panel.form == "long":
        parts = []
        for j, key in enumerate(ids):
            fidx = _future(panel, key, horizon)
            part = {f.id_col: [key] * horizon, f.time_col: np.asarray(fidx)}
            if values.ndim == 2:
                part["forecast"] = values[:, j]
            else:
                for c, name in enumerate(columns):
                    part[name] = values[:, j, c]
            parts.append(pd.DataFrame(part))
        return pd.concat(parts, ignore_index=True)
    if panel.form == "wide":
        if values.ndim == 3 or pd is None or panel.frame_index is None:
            return values
        return pd.DataFrame(values, index=_future(panel, ids[0], horizon), columns=ids)
    out = {}
    for j, key in enumerate(ids):
        v = values[:, j]
        pos = panel.position(key)
        if pd is not None and panel.pandas_series[pos]:
            fidx = _future(panel, key, horizon)
            v = (
                pd.Series(v, index=fidx, name=key)
                if v.ndim == 1
                else pd.DataFrame(v, index=fidx, columns=columns)
            )
        out[key] = v
    return out if panel.form == "dict" else list(out.values())


# -- streaming ----------------------------------------------------------------------------
def extend_index(index, new_index, n_new):
    """``index`` followed by the index of ``n_new`` new steps (theirs, else continued)."""
    pd = _pandas()
    if index is None or pd is None:
        return index
    if new_index is None or isinstance(new_index, pd.RangeIndex) and new_index.start == 0:
        new_index = _future_index(index, n_new)
        if new_index is None:
            return None  # irregular: forecasts are numbered by step from now on
    out = index.append(new_index)
    if isinstance(out, pd.DatetimeIndex) and out.freq is None and index.freq is not None:
        out.freq = index.freq
    return out


def update_panel(f, y_new):
    """Advance the forecast origin of the series in the panel ``y_new`` (see ``update``)."""
    new = read_panel(y_new, f, "y_new")
    if new is None:
        raise ValueError(
            "y_new must be a panel like the training data (a dict, a list of series or a "
            f"long DataFrame with column {f.id_col!r}), got {type(y_new).__name__}."
        )
    unknown = [i for i in new.ids if f.panel_.position(i) is None]
    if unknown:
        raise ValueError(
            f"y_new has series {unknown[:5]} the forecaster was not fitted on. Forecast new "
            "series with predict(h, history=...)."
        )
    for j, (key, Y, ix) in enumerate(zip(new.ids, new.values, new.indexes, strict=True)):
        pos = f.panel_.position(key)
        st = f._states[pos]
        keep = st["raw"].shape[0]
        raw = np.concatenate([st["raw"], Y])[-keep:]
        p = _prepare(f, raw, f.season_length_, st["steps"], (st["mean"], st["sd"]))
        E, cov = None, None
        if f.n_exog_:
            # the covariate rows of the kept steps, extended like the series
            old, add = st["cov"], new.covariates[j]
            cov = {
                part: np.concatenate([old[part], add[part]])[-keep:] for part in ("future", "past")
            }
            cov["static"] = old["static"]
            E = _cov.exog(cov, f.covariate_categories_, p[0].shape[0])
            E = (E - f.covariate_stats_[0]) / f.covariate_stats_[1]
        f._states[pos] = _state(p, f.window_, raw, f.season_length_, E, cov)
        panel = f.panel_
        if panel.form == "wide":
            if pos == 0:
                panel.frame_index = extend_index(panel.frame_index, ix, Y.shape[0])
        else:
            panel.indexes[pos] = extend_index(panel.indexes[pos], ix, Y.shape[0])

"""Invertible target transforms of a forecaster and the rule that picks them per series.

A transform is a sequence of steps applied to the training series before it is cut into
windows, and undone on the forecast:

* ``'log'``, or ``('boxcox', lam)``: Box-Cox with ``lam`` (``lam == 0`` is the log); the
  series must be positive;
* ``'seasonal_diff'``: ``z_t = y_t - y_{t-m}`` (``m = season_length``);
* ``'diff'``: ``z_t = y_t - y_{t-1}``.

Steps run in the order given and are undone in reverse; :func:`apply` returns, next to the
transformed series, the *tails* (the last values each step needs) that :func:`invert` uses to
turn a forecast of the transformed series into a forecast of the series.

:func:`choose` is a test-based rule (``transform='auto'`` of a panel's series; one series is
decided by a backtest fold instead, see :class:`~numrnn.forecasting.RNNForecaster`: on the
forecasting benchmark this rule's choices gave a geometric-mean sMAPE ratio to seasonal naive
of 0.939, against 0.664 for no transform). It reads only the training series:

1. ``'log'`` when the series is positive and its spread grows with its level: over blocks of
   one season (or of ``max(4, n // 10)`` steps without one), the slope ``b`` of
   ``log(std)`` on ``log(mean)`` is at least 0.5 and the block means vary by at least a
   factor 1.5 (Guerrero's range-mean idea: a Box-Cox ``lam = 1 - b <= 0.5`` is nearer the log
   than the identity);
2. ``'seasonal_diff'`` when ``m > 1``, the series holds at least three seasons and the seasonal
   strength ``max(0, 1 - var(R) / var(S + R))`` of a classical decomposition is at least 0.64,
   the threshold of ``forecast::nsdiffs`` / statsforecast's ``nsdiffs`` with ``test='seas'``;
3. otherwise ``'diff'`` when the KPSS level-stationarity statistic of the series after 1
   exceeds its 5 % critical value 0.463 (lags ``trunc(3 sqrt(n) / 13)``), as
   ``ndiffs(test='kpss')``. At most one difference in all: on the benchmark, a seasonal and a
   first difference together integrate the recursive forecast's errors twice (airline sMAPE
   14.7 against 6.5 with the seasonal difference alone).
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "apply",
    "choose",
    "invert",
    "kpss_statistic",
    "normalize",
    "season_from_index",
    "seasonal_strength",
]

# pandas frequency -> season length (DESIGN §7): the cycle most series of that frequency have.
_FREQ_SEASON = {"h": 24, "d": 7, "b": 5, "w": 52, "m": 12, "ms": 12, "me": 12, "q": 4,
                "qs": 4, "qe": 4, "bm": 12, "bms": 12, "bme": 12, "bq": 4}  # fmt: skip
KPSS_CRITICAL_5 = 0.463
SEASONAL_STRENGTH_THRESHOLD = 0.64
LOG_SLOPE_THRESHOLD = 0.5


def season_from_index(index) -> int | None:
    """Season length implied by a pandas index frequency (12 monthly, 7 daily, ...), or None."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        return None
    if index is None or len(index) < 3:
        return None
    freq = None
    if isinstance(index, pd.PeriodIndex):
        freq = index.freqstr
    elif isinstance(index, pd.DatetimeIndex):
        freq = index.freqstr
        if freq is None:
            try:
                freq = pd.infer_freq(index)
            except (TypeError, ValueError):
                freq = None
    if not freq:
        return None
    base = freq.split("-")[0].lstrip("0123456789").lower()
    return _FREQ_SEASON.get(base)


def normalize(transform, season_length) -> tuple:
    """Validate a user's list of steps; return it as a tuple of step names or tuples."""
    if isinstance(transform, str) or (
        isinstance(transform, tuple) and len(transform) == 2 and transform[0] == "boxcox"
    ):
        transform = [transform]
    if not isinstance(transform, (list, tuple)):
        raise ValueError(
            f"transform must be 'auto', None or a list of steps, got {transform!r}. Pass e.g. "
            "transform=['log', 'diff']."
        )
    steps = []
    for s in transform:
        if s == "log":
            steps.append("log")
        elif isinstance(s, (tuple, list)) and len(s) == 2 and s[0] == "boxcox":
            lam = s[1]
            if not isinstance(lam, numbers.Real) or not np.isfinite(lam):
                raise ValueError(f"the Box-Cox lambda must be a finite number, got {lam!r}.")
            steps.append(("boxcox", float(lam)))
        elif s in ("diff", "seasonal_diff"):
            if s == "seasonal_diff" and season_length is not None and season_length < 2:
                raise ValueError(
                    "transform 'seasonal_diff' needs season_length >= 2, got "
                    f"season_length={season_length!r}. Pass season_length (e.g. 12 for monthly "
                    "data) or drop 'seasonal_diff'."
                )
            steps.append(s)
        else:
            raise ValueError(
                f"transform steps must be 'log', ('boxcox', lam), 'diff' or 'seasonal_diff'; got "
                f"{s!r}. Pass transform='auto', None or a list such as ['log', 'diff']."
            )
    return tuple(steps)


def _lag(step, m):
    return m if step == "seasonal_diff" else 1


def total_lag(steps, m) -> int:
    """Steps of a series the differences in ``steps`` consume (the length :func:`apply` drops)."""
    return sum(_lag(s, m) for s in steps if not (s == "log" or isinstance(s, tuple)))


def apply(Y: np.ndarray, steps, m) -> tuple[np.ndarray, list]:
    """Transformed series (shorter by the differences) and the tails :func:`invert` needs.

    ``Y`` is (n, k). Raises ValueError for non-positive input to ``'log'`` / Box-Cox.
    """
    Z = np.asarray(Y, dtype=np.float64)
    tails = []
    for s in steps:
        if s == "log" or isinstance(s, tuple):
            if not np.all(Z > 0):
                bad = float(Z[Z <= 0].min())
                raise ValueError(
                    f"transform {s!r} needs a positive series, but it has values <= 0 (minimum "
                    f"{bad:g}). Shift the series to be positive, or pass transform=None or a "
                    "list without 'log' (e.g. ['diff'])."
                )
            lam = 0.0 if s == "log" else s[1]
            tails.append(None)
            Z = np.log(Z) if lam == 0 else (Z**lam - 1.0) / lam
        else:
            lag = _lag(s, m)
            if Z.shape[0] <= lag:
                raise ValueError(
                    f"the series ({Z.shape[0]} steps after earlier transforms) is too short for "
                    f"{s!r} with lag {lag}. Pass a longer series or a smaller season_length."
                )
            tails.append(Z[-lag:].copy())
            Z = Z[lag:] - Z[:-lag]
    return Z, tails


def invert(F: np.ndarray, steps, tails, m) -> np.ndarray:
    """A forecast ``F`` (h, k) of the transformed series -> the forecast of the series."""
    F = np.asarray(F, dtype=np.float64)
    for s, tail in zip(reversed(steps), reversed(tails), strict=True):
        if s == "log" or isinstance(s, tuple):
            lam = 0.0 if s == "log" else s[1]
            if lam == 0:
                F = np.exp(F)
            else:
                F = np.power(np.maximum(lam * F + 1.0, 0.0), 1.0 / lam)
        else:
            lag = _lag(s, m)
            out = np.concatenate([tail, np.empty_like(F)], axis=0)
            for t in range(F.shape[0]):
                out[lag + t] = out[t] + F[t]
            F = out[lag:]
    return F


# -- the 'auto' rule ------------------------------------------------------------------------------
def kpss_statistic(y: np.ndarray) -> float:
    """KPSS statistic for level stationarity with Newey-West lags ``trunc(3 sqrt(n) / 13)``."""
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    e = y - y.mean()
    s = np.cumsum(e)
    lags = int(3 * np.sqrt(n) / 13)
    lrv = e @ e / n
    for k in range(1, lags + 1):
        lrv += 2.0 * (1.0 - k / (lags + 1.0)) * (e[k:] @ e[:-k]) / n
    if lrv <= 0:
        return 0.0
    return float(s @ s / (n * n * lrv))


def _decompose(y, m):
    """Classical additive decomposition: (trend, seasonal, remainder) on the valid middle."""
    if m % 2 == 0:
        w = np.r_[0.5, np.ones(m - 1), 0.5] / m
    else:
        w = np.ones(m) / m
    trend = np.convolve(y, w, mode="valid")
    off = (w.size - 1) // 2
    det = y[off : off + trend.size] - trend
    phase = (np.arange(trend.size) + off) % m
    season_means = np.array([det[phase == p].mean() for p in range(m)])
    season_means -= season_means.mean()
    seasonal = season_means[phase]
    return trend, seasonal, det - seasonal


def seasonal_strength(y: np.ndarray, m: int) -> float:
    """``max(0, 1 - var(R) / var(S + R))`` of a classical decomposition (0 when too short)."""
    y = np.asarray(y, dtype=np.float64)
    if m < 2 or y.size < 3 * m:
        return 0.0
    _, s, r = _decompose(y, m)
    v = np.var(s + r)
    return 0.0 if v <= 0 else float(max(0.0, 1.0 - np.var(r) / v))


def _log_slope(y, m):
    """Slope of log(block std) on log(block mean), and the ratio of extreme block means."""
    b = m if m and m > 1 else max(4, y.size // 10)
    nb = y.size // b
    if nb < 3:
        return 0.0, 1.0
    blocks = y[y.size - nb * b :].reshape(nb, b)
    mu, sd = blocks.mean(axis=1), blocks.std(axis=1)
    if np.any(sd <= 0):
        return 0.0, 1.0
    lm = np.log(mu)
    if np.ptp(lm) == 0:
        return 0.0, 1.0
    slope = np.polyfit(lm, np.log(sd), 1)[0]
    return float(slope), float(mu.max() / mu.min())


def choose(y: np.ndarray, m) -> tuple:
    """The steps ``transform='auto'`` applies to the 1-D training series ``y`` (module doc)."""
    y = np.asarray(y, dtype=np.float64)
    m = int(m) if m else 1
    steps = []
    if np.all(y > 0):
        slope, ratio = _log_slope(y, m)
        if slope >= LOG_SLOPE_THRESHOLD and ratio >= 1.5:
            steps.append("log")
            y = np.log(y)
    if (
        m > 1
        and seasonal_strength(y / max(np.max(np.abs(y)), 1e-300), m) >= SEASONAL_STRENGTH_THRESHOLD
    ):
        steps.append("seasonal_diff")
        y = y[m:] - y[:-m]
    elif y.size >= 8 and kpss_statistic(y / max(np.max(np.abs(y)), 1e-300)) > KPSS_CRITICAL_5:
        steps.append("diff")
    return tuple(steps)

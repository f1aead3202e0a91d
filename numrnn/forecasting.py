"""Time-series forecasting with recurrent networks.

* :func:`make_windows` cuts a series (with optional exogenous features) into supervised
  (input window, future values) pairs.
* :class:`RNNForecaster` is a scikit-learn style forecaster: ``fit(y, X=None)`` on a series,
  ``predict(horizon)`` after its end (or after a new ``history``), with built-in scaling and
  the ``'recursive'`` or ``'direct'`` multi-step strategy. It keeps a pandas index.
* :func:`cross_val_forecast` evaluates a forecaster on the folds of
  :class:`sklearn.model_selection.TimeSeriesSplit`.
* :func:`generate` runs a fitted network from a seed value, feeding each output back as the
  next input and carrying the recurrent state step by step.
* :func:`numrnn.parallel.fit_many_series` fits one forecaster per series for many series at
  once, locally with joblib or on a dask ``distributed`` cluster (see the "Scaling out with
  Dask" page).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "RNNForecaster",
    "cross_val_forecast",
    "generate",
    "make_windows",
]


# -- windows ------------------------------------------------------------------------------
def _as_2d_float(a, name):
    """(n,) or (n, k) numeric array-like (pandas included) -> float64 (n, k), was_1d."""
    if hasattr(a, "to_numpy"):
        a = a.to_numpy()
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must hold numbers; it has non-numeric entries (dtype "
            f"{np.asarray(a).dtype}). Convert or drop the non-numeric values first."
        ) from None
    if arr.ndim == 0 or arr.ndim > 2:
        raise ValueError(
            f"{name} must be 1-D (n_timesteps,) or 2-D (n_timesteps, n_columns), got shape "
            f"{arr.shape}. Pass one series, or one column per series."
        )
    was_1d = arr.ndim == 1
    if was_1d:
        arr = arr[:, None]
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ValueError(
            f"{name} contains NaN or infinity (first at position {bad}). Fill or drop missing "
            "values (e.g. pandas .interpolate() or .dropna()) before forecasting."
        )
    return arr, was_1d


def make_windows(series, window, horizon=1, stride=1, exog=None):
    """Cut a series into (input window, next ``horizon`` values) pairs.

    Parameters
    ----------
    series : array-like of shape (n_timesteps,) or (n_timesteps, n_series)
        The target series (pandas Series/DataFrame accepted).
    window : int >= 1
        Steps of history in each input window.
    horizon : int >= 1, default=1
        Future steps in each target.
    stride : int >= 1, default=1
        Steps between the starts of consecutive windows.
    exog : array-like of shape (n_timesteps,) or (n_timesteps, n_exog), optional
        Exogenous features, aligned with ``series``. They are appended to the input steps
        (the value of each feature at the same time step as the target value).

    Returns
    -------
    X : ndarray of shape (n_windows, window, n_series + n_exog)
        ``X[i, j] = [series[s + j], exog[s + j]]`` with ``s = i * stride``.
    y : ndarray
        ``series[s + window : s + window + horizon]``: shape (n_windows, horizon) for a 1-D
        ``series``, (n_windows, horizon, n_series) for a 2-D one.

    ``n_windows = (n_timesteps - window - horizon) // stride + 1``.

    Examples
    --------
    >>> X, y = make_windows(np.arange(6.0), window=3, horizon=2)
    >>> X[:, :, 0]
    array([[0., 1., 2.],
           [1., 2., 3.]])
    >>> y
    array([[3., 4.],
           [4., 5.]])
    """
    for name, v in (("window", window), ("horizon", horizon), ("stride", stride)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}.")
    S, was_1d = _as_2d_float(series, "series")
    n = S.shape[0]
    parts = [S]
    if exog is not None:
        E, _ = _as_2d_float(exog, "exog")
        if E.shape[0] != n:
            raise ValueError(
                f"exog must have one row per time step of series ({n}), got {E.shape[0]}. "
                "Align the exogenous features with the series."
            )
        parts.append(E)
    full = np.concatenate(parts, axis=1)
    if n < window + horizon:
        raise ValueError(
            f"series is too short: {n} steps, but window={window} + horizon={horizon} = "
            f"{window + horizon} are needed for one window. Pass a longer series or a smaller "
            "window/horizon."
        )
    starts = np.arange(0, n - window - horizon + 1, stride)
    idx_in = starts[:, None] + np.arange(window)[None, :]
    idx_out = starts[:, None] + window + np.arange(horizon)[None, :]
    X = full[idx_in]
    y = S[idx_out]
    if was_1d:
        y = y[..., 0]
    return X, y


# -- pandas index helpers ----------------------------------------------------------------
def _pandas():
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        return None
    return pd


def _future_index(index, h):
    """Index of the ``h`` steps after ``index`` when it is regular, else None.

    Regular: a RangeIndex, an integer index with a constant step, a PeriodIndex, or a
    DatetimeIndex with a ``freq`` (set or inferable by ``pandas.infer_freq``).
    """
    pd = _pandas()
    if pd is None or index is None or len(index) == 0:
        return None
    if isinstance(index, pd.RangeIndex):
        step = index.step
        start = index[-1] + step
        return pd.RangeIndex(start, start + h * step, step, name=index.name)
    if isinstance(index, pd.PeriodIndex):
        return pd.period_range(index[-1] + 1, periods=h, freq=index.freq, name=index.name)
    if isinstance(index, pd.DatetimeIndex):
        freq = index.freq
        if freq is None and len(index) >= 3:
            try:
                with warnings.catch_warnings():  # pandas 3 warns about its return type
                    warnings.simplefilter("ignore")
                    freq = pd.infer_freq(index)
            except (TypeError, ValueError):
                freq = None
        if freq is None:
            return None
        return pd.date_range(index[-1], periods=h + 1, freq=freq, name=index.name)[1:]
    if pd.api.types.is_integer_dtype(index.dtype) and len(index) >= 2:
        d = np.diff(np.asarray(index))
        if (d == d[0]).all() and d[0] != 0:
            start = int(index[-1]) + int(d[0])
            return pd.RangeIndex(start, start + h * int(d[0]), int(d[0]), name=index.name)
    return None


# -- the forecaster -----------------------------------------------------------------------
class RNNForecaster(BaseEstimator):
    """Multi-step forecaster on a recurrent network (an :class:`~numrnn.RNNRegressor` inside).

    The series is scaled (each column to zero mean and unit variance on the training data;
    the forecast is scaled back), cut into windows of ``window`` steps by
    :func:`make_windows`, and a sequence-to-one regressor is trained on them.

    Parameters
    ----------
    window : int, default=20
        Steps of history the network reads for each forecast.
    strategy : {'recursive', 'direct'}, default='recursive'
        ``'recursive'``: the network predicts one step; for longer horizons each prediction
        is appended to the window (the oldest step drops out) and fed back.
        ``'direct'``: the network predicts ``horizon`` steps at once (one output per step).
        A longer ``predict`` horizon chains such blocks.
    horizon : int, default=1
        Steps predicted at once by the ``'direct'`` strategy (ignored by ``'recursive'``).
    scale : bool, default=True
        Standardise the series and the exogenous features (statistics of ``fit``'s data).
    cell, hidden_size, num_layers, bidirectional, dropout, bptt_steps, clip_norm, solver, \
alpha, batch_size, learning_rate_init, max_iter, tol, n_iter_no_change, early_stopping, \
validation_fraction, shuffle, random_state, verbose, dtype, device
        Passed to :class:`~numrnn.RNNRegressor` unchanged (see there).

    Attributes
    ----------
    regressor_ : RNNRegressor
        The fitted network and head (``regressor_.network_``, ``regressor_.head_``).
    loss_curve_, validation_loss_curve_ : list of float
        The regressor's (on the scaled series).
    n_series_ : int
        Target columns (1 for a 1-D series).
    n_exog_ : int
        Exogenous feature columns (0 without ``X``).
    mean_, scale_ : ndarray of shape ``(n_series_ + n_exog_,)``
        Scaling statistics (0 and 1 with ``scale=False``).

    Notes
    -----
    *Exogenous features* ``X`` are appended to each input step. A recursive forecast of
    ``h`` steps feeds back ``[y_hat_t, X_t]``, so it needs the future ``X`` for the forecast
    steps (``X`` of ``predict``, ``h`` rows; the last is not used). The direct strategy reads
    only past ``X`` for its first block.

    *Cross-validation*: ``score(y)`` is the R^2 of the forecast of ``len(y)`` steps following
    the training series, so ``cross_val_score(forecaster, series, cv=TimeSeriesSplit(k))``
    works for a series without exogenous features (``TimeSeriesSplit`` places each test fold
    right after its training fold). :func:`cross_val_forecast` handles exogenous features,
    ``gap`` and several metrics.

    Examples
    --------
    >>> from numrnn.datasets import sine_wave
    >>> y = sine_wave(200)
    >>> f = RNNForecaster(window=20, hidden_size=16, max_iter=50, random_state=0).fit(y)
    >>> f.predict(10).shape
    (10,)
    """

    def __init__(
        self,
        window=20,
        strategy="recursive",
        horizon=1,
        scale=True,
        *,
        cell="lstm",
        hidden_size=32,
        num_layers=1,
        bidirectional=False,
        dropout=0.0,
        bptt_steps=None,
        clip_norm=None,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate_init=0.001,
        max_iter=200,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        shuffle=True,
        random_state=None,
        verbose=False,
        dtype="float32",
        device="auto",
    ):
        self.window = window
        self.strategy = strategy
        self.horizon = horizon
        self.scale = scale
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.bptt_steps = bptt_steps
        self.clip_norm = clip_norm
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype
        self.device = device

    _PASS = (
        "cell",
        "hidden_size",
        "num_layers",
        "bidirectional",
        "dropout",
        "bptt_steps",
        "clip_norm",
        "solver",
        "alpha",
        "batch_size",
        "learning_rate_init",
        "max_iter",
        "tol",
        "n_iter_no_change",
        "early_stopping",
        "validation_fraction",
        "shuffle",
        "random_state",
        "verbose",
        "dtype",
        "device",
    )

    # -- helpers ------------------------------------------------------------------------
    def _check_params(self):
        for name in ("window", "horizon"):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}. Pass e.g. {name}=10.")
        if self.strategy not in ("recursive", "direct"):
            raise ValueError(f"strategy must be 'recursive' or 'direct', got {self.strategy!r}.")
        if not isinstance(self.scale, (bool, np.bool_)):
            raise ValueError(f"scale must be True or False, got {self.scale!r}.")

    def _block(self):
        return 1 if self.strategy == "recursive" else int(self.horizon)

    def _read_y(self, y, name="y"):
        if y is None:
            raise ValueError(
                f"{name} must be a series (1-D array, pandas Series or DataFrame), got None."
            )
        index = getattr(y, "index", None)
        columns = None
        series_name = None
        pd = _pandas()
        if pd is not None and isinstance(y, pd.DataFrame):
            columns = list(y.columns)
        elif pd is not None and isinstance(y, pd.Series):
            series_name = y.name
        Y, was_1d = _as_2d_float(y, name)
        return Y, was_1d, index, columns, series_name

    def _read_X(self, X, n, name="X"):
        if X is None:
            return None
        E, _ = _as_2d_float(X, name)
        if E.shape[0] != n:
            raise ValueError(
                f"{name} must have one row per step ({n}), got {E.shape[0]} rows. Align the "
                "exogenous features with the series."
            )
        return E

    def _regressor(self):
        from numrnn.estimators import RNNRegressor

        return RNNRegressor(output="last", **{k: getattr(self, k) for k in self._PASS})

    # -- fit ----------------------------------------------------------------------------
    def fit(self, y, X=None):
        """Fit on the series ``y`` (n_timesteps,) or (n_timesteps, n_series).

        Parameters
        ----------
        y : array-like, pandas Series or DataFrame
            The series to forecast, oldest first.
        X : array-like of shape (n_timesteps, n_exog), optional
            Exogenous features aligned with ``y``.

        Returns
        -------
        self
        """
        self._check_params()
        Y, was_1d, index, columns, name = self._read_y(y)
        E = self._read_X(X, Y.shape[0])
        need = self.window + self._block()
        if Y.shape[0] < need + 1:
            raise ValueError(
                f"y is too short: {Y.shape[0]} steps, but window={self.window} + "
                f"{self._block()} forecast step(s) + 1 = {need + 1} are needed for two training "
                "windows. Pass a longer series or a smaller window."
            )
        full = Y if E is None else np.concatenate([Y, E], axis=1)
        if self.scale:
            mean = full.mean(axis=0)
            sd = full.std(axis=0)
            sd[sd < 1e-12] = 1.0
        else:
            mean, sd = np.zeros(full.shape[1]), np.ones(full.shape[1])
        Z = (full - mean) / sd
        k = Y.shape[1]
        Xw, yw = make_windows(
            Z[:, :k], self.window, self._block(), exog=None if E is None else Z[:, k:]
        )
        yw = yw.reshape(yw.shape[0], -1) if yw.ndim == 3 else yw
        if yw.ndim == 2 and yw.shape[1] == 1:
            yw = yw[:, 0]
        reg = self._regressor()
        reg.fit(Xw, yw)
        self.regressor_ = reg
        self.mean_, self.scale_ = mean, sd
        self.n_series_, self.n_exog_ = k, 0 if E is None else E.shape[1]
        self._was_1d, self._index, self._columns, self._name = was_1d, index, columns, name
        self._tail = Z[-self.window :].copy()
        return self

    @property
    def loss_curve_(self):
        check_is_fitted(self, "regressor_")
        return self.regressor_.loss_curve_

    @property
    def validation_loss_curve_(self):
        check_is_fitted(self, "regressor_")
        return self.regressor_.validation_loss_curve_

    # -- predict ------------------------------------------------------------------------
    def _predict_block(self, window_rows):
        """Scaled window (window, F) -> scaled next block (block, n_series)."""
        z = self.regressor_.predict(window_rows[None])
        return np.asarray(z, dtype=np.float64).reshape(self._block(), self.n_series_)

    def predict(self, horizon, X=None, history=None, history_X=None):
        """Forecast the ``horizon`` steps after the training series (or after ``history``).

        Parameters
        ----------
        horizon : int >= 1
            Steps to forecast.
        X : array-like of shape (horizon, n_exog), optional
            Future exogenous features (needed by ``'recursive'`` when fitted with ``X`` and
            ``horizon > 1``; also when a ``'direct'`` forecast chains blocks).
        history : array-like, optional
            A series to forecast from instead of the end of the training series (at least
            ``window`` steps, same columns as ``y``); only its last ``window`` steps are read.
        history_X : array-like, optional
            Exogenous features aligned with ``history`` (required with ``history`` when fitted
            with ``X``).

        Returns
        -------
        forecast : ndarray of shape (horizon,) or (horizon, n_series), or pandas
            A pandas Series/DataFrame when the series (``history`` if given, else ``y``) was
            one. Its index continues the series' index when that is regular (RangeIndex,
            evenly spaced integers, PeriodIndex, DatetimeIndex with a set or inferable
            frequency); otherwise it is the step number 1..horizon.
        """
        check_is_fitted(self, "regressor_")
        if (
            isinstance(horizon, (bool, np.bool_))
            or not isinstance(horizon, numbers.Integral)
            or horizon < 1
        ):
            raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}.")
        horizon = int(horizon)
        k, m, w = self.n_series_, self.n_exog_, self.window
        was_1d, index, columns, name = self._was_1d, self._index, self._columns, self._name
        if history is not None:
            H, h1d, index, hcols, hname = self._read_y(history, "history")
            if H.shape[1] != k:
                raise ValueError(
                    f"history must have {k} column(s) like the training series, got {H.shape[1]}."
                )
            if H.shape[0] < w:
                raise ValueError(
                    f"history is too short: {H.shape[0]} steps, window={w} are needed. Pass at "
                    "least `window` steps of history."
                )
            if m:
                HE = self._read_X(history_X, H.shape[0], "history_X")
                if HE is None:
                    raise ValueError(
                        "history_X is required with history: the forecaster was fitted with "
                        f"{m} exogenous feature(s). Pass them aligned with history."
                    )
                H = np.concatenate([H, HE], axis=1)
            tail = ((H - self.mean_) / self.scale_)[-w:]
            pd = _pandas()
            if pd is not None and isinstance(history, (pd.Series, pd.DataFrame)):
                columns, name, was_1d = hcols, hname, h1d
            else:
                index, columns, name = None, None, None
        else:
            tail = self._tail
        fut = None
        if m:
            if X is not None:
                fut = self._read_X(X, horizon)
                fut = (fut - self.mean_[k:]) / self.scale_[k:]
            elif (
                self.strategy == "recursive"
                and horizon > 1
                or (self.strategy == "direct" and horizon > self._block())
            ):
                raise ValueError(
                    f"X is required: the forecaster was fitted with {m} exogenous feature(s) "
                    f"and the forecast feeds predictions back. Pass X of shape ({horizon}, {m}) "
                    "with the future values of the features."
                )
        buf = np.array(tail, dtype=np.float64)
        preds = []
        done = 0
        while done < horizon:
            block = self._predict_block(buf)
            take = min(block.shape[0], horizon - done)
            preds.append(block[:take])
            rows = block[:take]
            if m:
                ex = fut[done : done + take] if fut is not None else np.zeros((take, m))
                rows = np.concatenate([rows, ex], axis=1)
            buf = np.concatenate([buf, rows], axis=0)[-w:]
            done += take
        Zp = np.concatenate(preds, axis=0)
        out = Zp * self.scale_[:k] + self.mean_[:k]
        if was_1d:
            out = out[:, 0]
        return self._wrap(out, index, columns, name, horizon)

    def _wrap(self, out, index, columns, name, horizon):
        pd = _pandas()
        if pd is None or index is None:
            return out
        fidx = _future_index(index, horizon)
        if fidx is None:
            fidx = pd.RangeIndex(1, horizon + 1, name="step")
        if out.ndim == 1:
            return pd.Series(out, index=fidx, name=name)
        return pd.DataFrame(out, index=fidx, columns=columns)

    def score(self, y, X=None, history=None, history_X=None):
        """R^2 of the forecast of ``len(y)`` steps against ``y``.

        The forecast starts after the training series (or after ``history``), so ``y`` must
        be the steps that follow it. This makes
        ``cross_val_score(forecaster, series, cv=TimeSeriesSplit(n_splits))`` work.
        """
        Yt, _, _, _, _ = self._read_y(y)
        if X is not None and self.n_exog_ == 0:
            X = None  # sklearn passes y=None as X: nothing exogenous to use
        pred = self.predict(Yt.shape[0], X=X, history=history, history_X=history_X)
        P = np.asarray(pred, dtype=np.float64).reshape(Yt.shape)
        return r2_score(Yt, P)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        tags.target_tags.required = False
        return tags


def cross_val_forecast(forecaster, y, X=None, cv=None, *, horizon=None):
    """Evaluate a forecaster with time-ordered splits (``TimeSeriesSplit`` by default).

    For each split, a clone of ``forecaster`` is fitted on the training part and forecasts up
    to the end of the test part (across a ``gap``, if the splitter has one); the test steps
    are scored.

    Parameters
    ----------
    forecaster : RNNForecaster
    y : array-like (n_timesteps,) or (n_timesteps, n_series)
    X : array-like (n_timesteps, n_exog), optional
    cv : int or splitter, default=None
        An int is ``TimeSeriesSplit(n_splits=cv)``; None means 5 splits. Any splitter whose
        test indices follow its training indices (``TimeSeriesSplit``) works.
    horizon : int, optional
        Score only the first ``horizon`` steps of each test fold.

    Returns
    -------
    result : dict
        ``'mae'``, ``'rmse'``, ``'r2'`` (arrays, one value per fold), ``'forecasts'`` and
        ``'actuals'`` (lists of arrays), ``'train_size'`` (array).

    Examples
    --------
    >>> from sklearn.model_selection import TimeSeriesSplit
    >>> res = cross_val_forecast(RNNForecaster(max_iter=20), y, cv=TimeSeriesSplit(3))  # doctest: +SKIP
    >>> res["mae"].mean()  # doctest: +SKIP
    """
    from sklearn.model_selection import TimeSeriesSplit

    if cv is None:
        cv = TimeSeriesSplit(n_splits=5)
    elif isinstance(cv, numbers.Integral):
        cv = TimeSeriesSplit(n_splits=int(cv))
    Y, _ = _as_2d_float(y, "y")
    E = None if X is None else _as_2d_float(X, "X")[0]
    res = {"mae": [], "rmse": [], "r2": [], "forecasts": [], "actuals": [], "train_size": []}
    for tr, te in cv.split(Y):
        if tr.size == 0 or te.size == 0 or te[0] <= tr[-1]:
            raise ValueError(
                "cv must give test indices after the training indices (use TimeSeriesSplit)."
            )
        te = te if horizon is None else te[:horizon]
        est = clone(forecaster).fit(Y[tr], None if E is None else E[tr])
        h = int(te[-1] - tr[-1])
        fut = None if E is None else E[tr[-1] + 1 : tr[-1] + 1 + h]
        P = np.asarray(est.predict(h, X=fut), dtype=np.float64).reshape(h, -1)
        P = P[te - tr[-1] - 1]
        A = Y[te]
        res["mae"].append(float(np.mean(np.abs(P - A))))
        res["rmse"].append(float(np.sqrt(np.mean((P - A) ** 2))))
        res["r2"].append(float(r2_score(A, P)) if len(te) > 1 else np.nan)
        res["forecasts"].append(P[:, 0] if Y.shape[1] == 1 else P)
        res["actuals"].append(A[:, 0] if Y.shape[1] == 1 else A)
        res["train_size"].append(len(tr))
    for key in ("mae", "rmse", "r2", "train_size"):
        res[key] = np.asarray(res[key])
    return res


# -- generation ---------------------------------------------------------------------------
def _unpack_model(model):
    """(network, weight, bias, mean, scale) from a fitted model."""
    if isinstance(model, RNNForecaster):
        check_is_fitted(model, "regressor_")
        if model.strategy != "recursive" or model.n_exog_:
            raise ValueError(
                "generate needs a one-step model without exogenous features: an RNNForecaster "
                "with strategy='recursive' fitted without X."
            )
        reg = model.regressor_
        k = model.n_series_
        return reg.network_, reg.head_.weight, reg.head_.bias, model.mean_[:k], model.scale_[:k]
    if isinstance(model, tuple) and len(model) == 2:
        net, head = model
        return net, head.weight, head.bias, None, None
    if hasattr(model, "network_") and hasattr(model, "head_"):
        return model.network_, model.head_.weight, model.head_.bias, None, None
    raise TypeError(
        "model must be a fitted RNNRegressor, a fitted RNNForecaster or a (network, head) "
        f"tuple, got {type(model).__name__}."
    )


def generate(model, seed, n_steps, *, state=None, return_state=False):
    """Generate ``n_steps`` values from a seed, feeding each output back as the next input.

    The seed is read once; then each step runs the network on a single input with the
    state carried from the previous step (``network.forward(x_t, state)``), so the cost is
    one step per generated value, never a recomputation from the start.

    Parameters
    ----------
    model : RNNRegressor, RNNForecaster or (network, head)
        A fitted model whose output has as many features as its input (a next-step model:
        ``RNNRegressor`` trained with ``output='sequence'`` on ``y_t = x_{t+1}`` as in seed
        ``002``, or with ``output='last'``; or a recursive ``RNNForecaster`` without ``X``,
        whose scaling is applied). Unidirectional only.
    seed : float or array-like
        The first input(s): a number, a 1-D array of seed steps (one feature) or of the
        features of one step, or a 2-D (n_seed_steps, n_features) array.
    n_steps : int >= 1
        Values to generate. The first is the model's output after the last seed step.
    state : array or (h, c) tuple, optional
        Initial recurrent state (zeros by default, as in training).
    return_state : bool, default=False
        Also return the final state (to continue generating later).

    Returns
    -------
    values : ndarray of shape (n_steps,) for one feature, else (n_steps, n_features)
    state : the final state, if ``return_state``
    """
    net, W, b, mean, sd = _unpack_model(model)
    if net.bidirectional:
        raise ValueError(
            "generate needs a unidirectional model: a bidirectional network reads the future, "
            "which does not exist while generating. Fit with bidirectional=False."
        )
    F = net.input_size
    if W.shape[0] != F:
        raise ValueError(
            f"generate feeds the output back as input, so the model needs as many outputs as "
            f"input features; it has {W.shape[0]} output(s) and {F} input feature(s)."
        )
    if (
        isinstance(n_steps, (bool, np.bool_))
        or not isinstance(n_steps, numbers.Integral)
        or n_steps < 1
    ):
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}.")
    s = np.asarray(seed, dtype=np.float64)
    if s.ndim == 0:
        s = s.reshape(1, 1)
    elif s.ndim == 1:
        s = s[:, None] if F == 1 else s[None, :]
    if s.ndim != 2 or s.shape[1] != F or s.shape[0] < 1 or not np.isfinite(s).all():
        raise ValueError(
            f"seed must be finite with {F} feature(s) per step, got shape {np.shape(seed)}."
        )
    if mean is not None:
        s = (s - mean) / sd
    dt = net.dtype
    Wt = np.ascontiguousarray(W.T, dtype=dt)
    bias = np.asarray(b, dtype=dt)
    was_training = net.training
    net.eval()
    out_vals = np.empty((n_steps, F), dtype=np.float64)
    try:
        out, state = net.forward(s[None].astype(dt), state, requires_grad=False)
        y = out[:, -1] @ Wt + bias  # (1, F)
        out_vals[0] = y[0]
        for t in range(1, n_steps):
            out, state = net.forward(y[:, None, :], state, requires_grad=False)
            y = out[:, -1] @ Wt + bias
            out_vals[t] = y[0]
    finally:
        net.train(was_training)
    if mean is not None:
        out_vals = out_vals * sd + mean
    vals = out_vals[:, 0] if F == 1 else out_vals
    if return_state:
        return vals, state
    return vals

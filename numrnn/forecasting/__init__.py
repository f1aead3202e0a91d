"""Time-series forecasting with recurrent networks.

* :func:`make_windows` cuts a series (with optional exogenous features) into supervised
  (input window, future values) pairs.
* :class:`RNNForecaster` is a scikit-learn style forecaster: ``fit(y, X=None)`` on a series,
  ``predict(horizon)`` after its end (or after a new ``history``), with target transforms
  (:mod:`numrnn.forecasting.transforms`), scaling, ensembles, quantile forecasts and the
  ``'recursive'`` or ``'direct'`` multi-step strategy. It keeps a pandas index.
* :func:`cross_val_forecast` evaluates a forecaster on the folds of
  :class:`sklearn.model_selection.TimeSeriesSplit`.
* :func:`backtest` runs a rolling-origin backtest of a forecaster on one series or a panel
  (``refit=False``: every origin in one batched forward pass) and scores it
  (:func:`forecast_metrics`: MAE, RMSE, sMAPE, MASE per series and aggregated).
* :func:`generate` runs a fitted network from a seed value, feeding each output back as the
  next input and carrying the recurrent state step by step.
* :class:`Stream` keeps that state inside: ``Stream(model).step(x_t)`` takes the newest
  observation and returns the next output, for a stream of one-step forecasts.
* :func:`numrnn.parallel.fit_many_series` fits one forecaster per series for many series at
  once, locally with joblib or on a dask ``distributed`` cluster (``docs/dask.rst``); it is
  still importable from here.
"""

from numrnn.forecasting._backtest import backtest, forecast_metrics
from numrnn.forecasting._forecaster import (
    RNNForecaster,
    _pandas,  # noqa: F401 - numrnn.parallel reads pandas through it
    cross_val_forecast,
    make_windows,
)
from numrnn.forecasting._stream import Stream, generate

__all__ = [
    "RNNForecaster",
    "Stream",
    "backtest",
    "forecast_metrics",
    "cross_val_forecast",
    "generate",
    "make_windows",
]


def __getattr__(name):
    # fit_many_series lives in numrnn.parallel (which imports this package): resolved on use,
    # so the old import path keeps working without an import cycle.
    if name in ("fit_many_series", "SeriesFitError"):
        from numrnn import parallel

        return getattr(parallel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Plots: loss curves, forecasts, and gradient norms through time.

matplotlib is an optional dependency (``pip install numrnn[plot]``); it is imported when a
plotting function is called, never by ``import numrnn``. Each function draws on ``ax`` (a
new figure when None) and returns the Axes; save it with ``ax.figure.savefig(path)``. Pass
``path=`` to write a file directly: the file is then drawn with the non-interactive Agg
backend and the figure is closed.

:func:`gradient_norms` (the numbers behind :func:`plot_gradient_norms`) needs no matplotlib.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gradient_norms", "plot_forecast", "plot_gradient_norms", "plot_loss"]


def _plt(path=None):
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            "numrnn.plotting needs matplotlib, which is not installed. Install it with "
            "`pip install numrnn[plot]` (or `pip install matplotlib`)."
        ) from None
    if path is not None:
        import matplotlib.figure

        return matplotlib.figure.Figure  # Agg canvas, independent of pyplot's backend
    import matplotlib.pyplot as plt

    return plt


def _axes(ax, path, figsize=(7, 4)):
    if ax is not None:
        return ax
    mod = _plt(path)
    if path is not None:
        fig = mod(figsize=figsize)
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
        return fig.add_subplot()
    _, ax = mod.subplots(figsize=figsize)
    return ax


def _finish(ax, path):
    if path is not None:
        ax.figure.tight_layout()
        ax.figure.savefig(path, dpi=100)
    return ax


def plot_loss(estimator, ax=None, *, path=None, log=True, title=None, ylabel="loss"):
    """Training loss per epoch and, with early stopping, the validation loss.

    Parameters
    ----------
    estimator : fitted RNNRegressor, RNNClassifier or RNNForecaster
        Reads ``loss_curve_`` and ``validation_loss_curve_``.
    ax : matplotlib Axes, optional
    path : str or path-like, optional
        Write a PNG there (Agg backend).
    log : bool, default=True
        Logarithmic loss axis.
    title : str, optional
        Default: the estimator's class name and "loss per epoch".
    ylabel : str, default='loss'
    """
    ax = _axes(ax, path)
    train = list(getattr(estimator, "loss_curve_", []))
    if not train:
        raise ValueError("estimator has no loss_curve_: fit it first.")
    epochs = np.arange(1, len(train) + 1)
    ax.plot(epochs, train, label="training loss")
    val = list(getattr(estimator, "validation_loss_curve_", []) or [])
    if val:
        ax.plot(np.arange(1, len(val) + 1), val, label="validation loss")
    if log and min(train) > 0:
        ax.set_yscale("log")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel + (" (log scale)" if ax.get_yscale() == "log" else ""))
    ax.set_title(title if title is not None else f"{type(estimator).__name__}: loss per epoch")
    ax.legend()
    return _finish(ax, path)


def _xy(a, start=0, x=None):
    """(x, values) of a series: ``x`` if given, its index for pandas, positions otherwise."""
    if hasattr(a, "index") and hasattr(a, "to_numpy"):
        xs, v = np.asarray(a.index), a.to_numpy(dtype=np.float64)
    else:
        v = np.asarray(a, dtype=np.float64)
        xs = np.arange(start, start + v.shape[0])
    if x is not None:
        xs = np.asarray(x)
        if xs.shape[0] != v.shape[0]:
            raise ValueError(
                f"x has {xs.shape[0]} positions for {v.shape[0]} values. Pass one position "
                "(a number or a date) per value."
            )
    return xs, v


def plot_forecast(
    y_train,
    forecast,
    y_true=None,
    ax=None,
    *,
    n_tail=100,
    path=None,
    title="forecast",
    labels=("training tail", "actual", "forecast"),
    x=None,
    x_forecast=None,
    xlabel=None,
    ylabel="value",
    interval=None,
    interval_label="80 % interval",
):
    """The last ``n_tail`` training values, the forecast and (optionally) the actual values.

    Parameters
    ----------
    y_train : array-like or pandas Series
        The series the forecast continues.
    forecast : array-like or pandas Series
        A 1-D forecast (as returned by :meth:`RNNForecaster.predict` or :func:`generate`).
    y_true : array-like or pandas Series, optional
        The actual values over the forecast period.
    ax : matplotlib Axes, optional
    n_tail : int, default=100
        Training steps shown.
    path : str or path-like, optional
        Write a PNG there (Agg backend).
    title : str
    labels : (str, str, str)
        Legend entries of the training tail, the actual values and the forecast.
    x, x_forecast : array-like, optional
        Positions (numbers or ``datetime64`` dates) of ``y_train`` and of the forecast (and
        ``y_true``). Default: a pandas input's index, else steps ``0 .. n-1`` and
        ``n .. n+h-1``.
    xlabel : str, optional
        Default: ``'date'`` for dates, ``'time step'`` otherwise.
    ylabel : str, default='value'
    interval : (lower, upper) array-likes, optional
        A prediction interval over the forecast steps, drawn as a band.
    interval_label : str
        Its legend entry.
    """
    ax = _axes(ax, path)
    xt, vt = _xy(y_train, x=x)
    n = vt.shape[0]
    ax.plot(xt[-n_tail:], vt[-n_tail:], color="0.4", label=labels[0])
    xf, vf = _xy(forecast, start=n, x=x_forecast)
    if y_true is not None:
        xa, va = _xy(y_true, start=n, x=x_forecast)
        ax.plot(xa, va, color="tab:blue", label=labels[1])
    ax.plot(xf, vf, color="tab:red", ls="--", marker=".", ms=3, label=labels[2])
    if interval is not None:
        lo, hi = (np.asarray(b, dtype=np.float64).ravel() for b in interval)
        ax.fill_between(xf, lo, hi, color="tab:red", alpha=0.2, lw=0, label=interval_label)
    ax.axvline(xt[-1], color="0.7", lw=0.8)
    if xlabel is None:
        xlabel = "date" if np.issubdtype(np.asarray(xt).dtype, np.datetime64) else "time step"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return _finish(ax, path)


def _prepare(estimator, X, y):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 2:
        X = X[:, :, None]
    if X.ndim != 3 or not np.isfinite(X).all():
        raise ValueError(
            "X must be a finite (n_samples, n_timesteps, n_features) array (no padding) for "
            f"gradient_norms, got shape {X.shape}."
        )
    net = estimator.network_
    if net.bidirectional:
        raise ValueError("gradient_norms is defined for unidirectional networks only.")
    X = X.astype(net.dtype)
    if getattr(estimator, "_is_classifier", False):
        labels = np.asarray(y)
        Y = np.searchsorted(estimator.classes_, labels)
    else:
        Y = np.asarray(y, dtype=np.float64)
        if estimator.output == "sequence" and Y.ndim == 2:
            Y = Y[:, :, None]
        elif estimator.output == "last" and Y.ndim == 1:
            Y = Y[:, None]
    return net, X, Y


def gradient_norms(estimator, X, y, *, wrt="state"):
    """Per-step gradient norms of the training loss during BPTT.

    Parameters
    ----------
    estimator : fitted RNNRegressor or RNNClassifier (unidirectional)
    X : array (n_samples, n_timesteps, n_features)
        A batch (no padding).
    y : targets as for ``estimator.fit`` (per sequence for ``output='last'``, per step for
        ``output='sequence'``).
    wrt : {'state', 'input'}, default='state'
        ``'state'``: ``||dL/dh_t||`` for t = 1..T, the gradient of the batch loss with
        respect to the hidden state after step t (all layers' h, not the LSTM's c), through
        every later step and the step's own loss term -- the quantity that vanishes or
        explodes in BPTT. Computed exactly by restarting the forward pass at each t from the
        carried state and back-propagating the rest of the sequence (``net.backward`` gives
        the gradient w.r.t. the initial state): O(T^2) steps, fine for a plot.
        ``'input'``: ``||dL/dx_t||``, the gradient w.r.t. the input at step t from one
        full backward pass (cheap; the same decay, seen through ``W_ih``).

    Returns
    -------
    norms : ndarray of shape (n_timesteps,)
        Frobenius norm over the batch (and layers) of the gradient of the batch-mean loss.
    """
    from numrnn.nn.readout import readout_backward, readout_forward

    if wrt not in ("state", "input"):
        raise ValueError(f"wrt must be 'state' or 'input', got {wrt!r}.")
    net, X, Y = _prepare(estimator, X, y)
    W = estimator.head_.weight
    b = estimator.head_.bias
    seq = estimator.output == "sequence"
    B, T, _ = X.shape
    L = net.num_layers
    was_training = net.training
    net.eval()
    try:
        # per-step head gradients (direct loss terms) from one full forward
        out, hn = net.forward(X, requires_grad=True)
        if seq:
            z = out @ W.T + b
            _, dz = estimator._loss(z, Y, np.ones((B, T), bool), None)
            d_out = (dz @ W).astype(net.dtype)
            dN = None
        else:  # the estimator's readout (numrnn.nn.readout) and its gradient
            feat, ctx = readout_forward(
                getattr(estimator, "readout_", "last"), out, hn, np.full(B, T), L, 1,
                net.merge_mode,
            )  # fmt: skip
            _, dz = estimator._loss(feat @ W.T + b, Y, None, None)
            d_out, dN = readout_backward((dz @ W).astype(net.dtype), ctx)
            if d_out is None:  # 'last': the loss reads the final state only
                d_out = np.zeros_like(out)
        dx = net.backward(d_out, dN)
        if wrt == "input":
            return np.sqrt((dx.astype(np.float64) ** 2).sum(axis=(0, 2)))
        # states after each step, carried one step at a time
        states, st = [], None
        for t in range(T):
            _, st = net.forward(X[:, t : t + 1], st, requires_grad=False)
            states.append(st)
        norms = np.empty(T)
        for t in range(1, T + 1):
            h_t = states[t - 1]
            if t < T:
                net.forward(X[:, t:], h_t, requires_grad=True)
                net.backward(d_out[:, t:], dN)
                g = net.grad_state[0] if isinstance(net.grad_state, tuple) else net.grad_state
                g = g.astype(np.float64)
            else:
                g = np.zeros((L, B, net.hidden_size))
                if dN is not None:
                    g += dN[0] if isinstance(dN, tuple) else dN
            g[L - 1] += d_out[:, t - 1]  # the step's own loss term (zero for 'last')
            norms[t - 1] = np.sqrt((g**2).sum())
    finally:
        net.train(was_training)
    return norms


def plot_gradient_norms(estimator, X, y, ax=None, *, wrt="state", path=None, log=True, title=None):
    """Plot :func:`gradient_norms` against the time step (log scale by default).

    A curve that falls steeply towards t = 1 shows vanishing gradients: early steps barely
    influence the loss; one that rises shows exploding gradients (consider ``clip_norm``).
    The arguments are :func:`gradient_norms`'s, plus ``ax``, ``path`` (write a PNG there),
    ``log`` (logarithmic axis) and ``title`` (replaces the default title).
    """
    norms = gradient_norms(estimator, X, y, wrt=wrt)
    ax = _axes(ax, path)
    ax.plot(np.arange(1, norms.shape[0] + 1), norms, marker=".")
    if log and (norms > 0).all():
        ax.set_yscale("log")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("time step t")
    ylabel = "||dL/dh_t||" if wrt == "state" else "||dL/dx_t||"
    ax.set_ylabel(ylabel + (" (log scale)" if ax.get_yscale() == "log" else ""))
    if title is None:
        title = f"Gradient norm {ylabel} through time ({getattr(estimator, 'cell', '')})"
    ax.set_title(title)
    return _finish(ax, path)

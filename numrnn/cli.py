"""The ``numrnn`` command line.

``numrnn`` (or ``numrnn demo``)
    Trains on the built-in sine wave (forecasting, and generation from one seed value as in
    seed ``002``) and on scikit-learn's digits read row by row; prints progress and metrics
    and writes PNG plots (``--out DIR``, default ``./numrnn-demo``; needs matplotlib for the
    plots, metrics are printed without it).

``numrnn forecast FILE.csv --column NAME --horizon N``
    Fits an :class:`~numrnn.forecasting.RNNForecaster` on one column of a CSV file and
    prints the forecast (``--output`` writes it as CSV, ``--plot`` draws it).

Errors in the input (missing file or column, non-numeric values, too short a series) end
with exit status 2 and one line naming the problem and the fix.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
import warnings

import numpy as np

__all__ = ["main"]


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _parser():
    p = argparse.ArgumentParser(
        prog="numrnn",
        description="Recurrent networks (RNN, LSTM, GRU) with Numba kernels. Without a "
        "command, runs the demo.",
    )
    sub = p.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="train on built-in data and write plots (the default)")
    _demo_args(d)
    f = sub.add_parser("forecast", help="forecast a column of a CSV file")
    f.add_argument("file", help="CSV file with a header row")
    f.add_argument("--column", required=True, help="name of the column to forecast")
    f.add_argument("--horizon", type=int, required=True, help="steps to forecast")
    f.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="lstm")
    f.add_argument(
        "--window",
        type=int,
        default=None,
        help="steps of history per input (default: min(24, n // 3))",
    )
    f.add_argument("--strategy", choices=("recursive", "direct"), default="recursive")
    f.add_argument("--hidden-size", type=int, default=32)
    f.add_argument("--max-iter", type=int, default=200, help="training epochs")
    f.add_argument("--random-state", type=int, default=0)
    f.add_argument("--plot", metavar="PNG", help="write a plot of the forecast")
    f.add_argument("--output", metavar="CSV", help="write the forecast as CSV instead of printing")
    return p


def _demo_args(p):
    p.add_argument(
        "--out", default="numrnn-demo", help="directory for the plots (default: ./numrnn-demo)"
    )
    p.add_argument("--quick", action="store_true", help="fewer epochs (a smoke test)")


def main(argv=None):
    """Entry point of the ``numrnn`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["demo", *argv]
    args = parser.parse_args(argv)
    try:
        if args.command == "forecast":
            return _forecast(args)
        return _demo(args)
    except CLIError as exc:
        print(f"numrnn {args.command}: error: {exc}", file=sys.stderr)
        return 2


# -- demo ---------------------------------------------------------------------------------
def _have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _demo(args):
    from numrnn.datasets import load_digits_sequences, sine_sequences, sine_wave
    from numrnn.estimators import RNNClassifier, RNNRegressor
    from numrnn.forecasting import RNNForecaster, generate, make_windows

    quick = args.quick
    out = os.path.abspath(args.out)
    plots = _have_matplotlib()
    if plots:
        os.makedirs(out, exist_ok=True)
    else:
        print("matplotlib is not installed: metrics only, no plots (pip install numrnn[plot]).")
    written = []
    warnings.simplefilter("ignore")  # ConvergenceWarning for the short demo runs
    t_all = time.perf_counter()

    def say(msg):
        print(msg, flush=True)

    # 1. sine wave: forecasting 50 steps ahead
    say("[1/3] Sine wave: forecasting 50 steps (LSTM, window 20)")
    y = sine_wave(400, 0.0, 40.0)
    train, test = y[:350], y[350:]
    res = {}
    for strategy, h in (("recursive", 1), ("direct", 50)):
        t0 = time.perf_counter()
        f = RNNForecaster(
            window=20,
            strategy=strategy,
            horizon=h,
            hidden_size=16,
            learning_rate_init=0.01,
            max_iter=40 if quick else 200,
            tol=1e-6,
            n_iter_no_change=20,
            random_state=0,
        ).fit(train)
        p = f.predict(50)
        mae = float(np.mean(np.abs(p - test)))
        res[strategy] = (f, p)
        say(
            f"      {strategy:9s}: {f.regressor_.n_iter_} epochs, final loss "
            f"{f.loss_curve_[-1]:.2e}, 50-step MAE {mae:.4f} ({time.perf_counter() - t0:.1f}s)"
        )
    if plots:
        from numrnn.plotting import plot_forecast, plot_gradient_norms, plot_loss

        pth = os.path.join(out, "sine_forecast.png")
        ax = plot_forecast(
            train,
            res["recursive"][1],
            test,
            path=pth,
            title="sine wave: 50-step forecast (recursive LSTM)",
        )
        ax.plot(
            np.arange(350, 400),
            res["direct"][1],
            color="tab:green",
            ls=":",
            label="forecast (direct)",
        )
        ax.legend()
        ax.figure.savefig(pth, dpi=100)
        written.append(pth)
        pth = os.path.join(out, "sine_loss.png")
        plot_loss(res["recursive"][0], path=pth)
        written.append(pth)

    # 2. seed 002: generation from one seed value, state carried step by step
    say("[2/3] Sine wave: generating 100 steps from the seed value 0 (RNN, hidden 16)")
    X, Y = sine_sequences(1, 100)
    t0 = time.perf_counter()
    m = RNNRegressor(
        cell="rnn",
        hidden_size=16,
        output="sequence",
        learning_rate_init=0.01,
        max_iter=300 if quick else 1000,
        tol=0.0,
        n_iter_no_change=10**9,
        alpha=0.0,
        random_state=1,
    ).fit(X, Y)
    g = generate(m, 0.0, 100)
    ref = np.sin(0.1 * np.arange(1, 101))
    say(
        f"      {m.n_iter_} epochs, final loss {m.loss_curve_[-1]:.2e}; generated vs sin: "
        f"MAE {np.mean(np.abs(g - ref)):.4f}, max {np.max(np.abs(g - ref)):.4f} "
        f"({time.perf_counter() - t0:.1f}s)"
    )
    if plots:
        pth = os.path.join(out, "sine_generation.png")
        ax = plot_forecast(
            np.array([0.0]),
            g,
            ref,
            path=pth,
            title="generation from the seed value 0 (100 steps)",
            labels=("seed value", "sin(t)", "generated"),
        )
        written.append(pth)
        Xw, yw = make_windows(train, 20)
        pth = os.path.join(out, "gradient_norms.png")
        f = res["recursive"][0]
        Xs = (Xw[:64] - f.mean_[0]) / f.scale_[0]
        ys = (yw[:64, 0] - f.mean_[0]) / f.scale_[0]
        plot_gradient_norms(f.regressor_, Xs, ys, path=pth)
        written.append(pth)

    # 3. digits read row by row
    say("[3/3] Digits (8x8) read row by row: 8 steps of 8 pixels, LSTM classifier")
    from sklearn.model_selection import train_test_split

    Xd, yd = load_digits_sequences(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(Xd, yd, test_size=0.25, random_state=0, stratify=yd)
    t0 = time.perf_counter()
    c = RNNClassifier(
        cell="lstm",
        hidden_size=32,
        learning_rate_init=0.01,
        batch_size=64,
        max_iter=5 if quick else 25,
        early_stopping=True,
        n_iter_no_change=5,
        random_state=0,
    ).fit(Xtr, ytr)
    say(
        f"      {c.n_iter_} epochs, test accuracy {c.score(Xte, yte):.3f} "
        f"({time.perf_counter() - t0:.1f}s)"
    )
    if plots:
        pth = os.path.join(out, "digits_loss.png")
        plot_loss(c, path=pth)
        written.append(pth)

    say(f"Done in {time.perf_counter() - t_all:.1f}s.")
    if written:
        say(f"Plots written to {out}:")
        for w in written:
            say(f"  {os.path.basename(w)}")
    return 0


# -- forecast -----------------------------------------------------------------------------
def _read_column(path, column):
    """(labels of the first column or None, values) of ``column`` in a CSV file."""
    if not os.path.isfile(path):
        raise CLIError(
            f"file not found: {path!r}. Check the path (it is relative to {os.getcwd()!r})."
        )
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CLIError(f"cannot read {path!r} as CSV ({exc}). Pass a UTF-8 CSV file.") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise CLIError(f"{path!r} is empty. Pass a CSV file with a header row and values.")
    header = [h.strip() for h in rows[0]]
    if column not in header:
        raise CLIError(
            f"column {column!r} not in {path!r}; its columns are "
            f"{', '.join(repr(h) for h in header)}. Pass one of them with --column."
        )
    j = header.index(column)
    labels = [] if j != 0 else None
    values = []
    for lineno, r in enumerate(rows[1:], start=2):
        cell = r[j].strip() if j < len(r) else ""
        try:
            v = float(cell)
        except ValueError:
            what = "an empty (missing) value" if not cell else f"the non-numeric value {cell!r}"
            raise CLIError(
                f"column {column!r} has {what} at line {lineno} of {path!r}. The "
                "forecast needs numbers in every row: fill or remove that row, or "
                "choose a numeric column with --column."
            ) from None
        if not np.isfinite(v):
            raise CLIError(
                f"column {column!r} has {cell!r} at line {lineno} of {path!r}. "
                "Replace non-finite values with numbers."
            )
        values.append(v)
        if labels is not None:
            labels.append(r[0].strip() if r else "")
    return header[0] if labels is not None else None, labels, np.asarray(values)


def _as_series(index_name, labels, values, column):
    """A pandas Series with a DatetimeIndex when the first column holds dates, if possible."""
    try:
        import pandas as pd
    except ImportError:
        return values
    idx = None
    if labels:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                idx = pd.DatetimeIndex(pd.to_datetime(labels), name=index_name)
            except (ValueError, TypeError):
                try:
                    num = np.asarray([int(x) for x in labels])
                    idx = pd.Index(num, name=index_name)
                except ValueError:
                    idx = None
    if idx is None:
        idx = pd.RangeIndex(len(values), name="step")
    return pd.Series(values, index=idx, name=column)


def _forecast(args):
    from numrnn.forecasting import RNNForecaster

    if args.horizon < 1:
        raise CLIError(f"--horizon must be >= 1, got {args.horizon}. Pass e.g. --horizon 12.")
    index_name, labels, values = _read_column(args.file, args.column)
    n = values.shape[0]
    window = args.window
    if window is not None and window < 1:
        raise CLIError(f"--window must be >= 1, got {window}.")
    block = args.horizon if args.strategy == "direct" else 1
    if window is None:
        window = max(1, min(24, n // 3))
    need = window + block + 1
    if n < need or n < 4:
        need = max(need, 4)
        raise CLIError(
            f"column {args.column!r} has {n} values, too short to train with window="
            f"{window} (at least {need} are needed). Pass a longer series or a "
            "smaller --window."
        )
    y = _as_series(index_name, labels, values, args.column)
    f = RNNForecaster(
        window=window,
        strategy=args.strategy,
        horizon=block,
        cell=args.cell,
        hidden_size=args.hidden_size,
        max_iter=args.max_iter,
        learning_rate_init=0.01,
        random_state=args.random_state,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            f.fit(y)
        except ValueError as exc:  # validation messages name the problem and the fix
            raise CLIError(str(exc)) from None
    print(
        f"Fitted {args.cell.upper()} forecaster (window={window}, {args.strategy}) on {n} "
        f"values in {time.perf_counter() - t0:.1f}s; final training loss "
        f"{f.loss_curve_[-1]:.3g}.",
        file=sys.stderr,
    )
    p = f.predict(args.horizon)
    if hasattr(p, "index"):
        if hasattr(p.index, "normalize") and (p.index == p.index.normalize()).all():
            idx = [x.strftime("%Y-%m-%d") for x in p.index]  # dates without 00:00:00
        else:
            idx = [str(x) for x in p.index]
        idx_name = p.index.name or ("date" if hasattr(p.index, "normalize") else "step")
        vals = p.to_numpy()
    else:
        idx, idx_name, vals = [str(i) for i in range(1, args.horizon + 1)], "step", p
    lines = [f"{idx_name},{args.column}"] + [f"{i},{v:.6g}" for i, v in zip(idx, vals, strict=True)]
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        print(f"Forecast written to {os.path.abspath(args.output)}", file=sys.stderr)
    else:
        print("\n".join(lines))
    if args.plot:
        if not _have_matplotlib():
            raise CLIError(
                "--plot needs matplotlib, which is not installed. Install it with "
                "`pip install numrnn[plot]`, or leave out --plot."
            )
        from numrnn.plotting import plot_forecast

        plot_forecast(y, p, path=args.plot, title=f"{args.column}: {args.horizon}-step forecast")
        print(f"Plot written to {os.path.abspath(args.plot)}", file=sys.stderr)
    return 0

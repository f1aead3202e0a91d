"""The ``numrnn`` command line (``numrnn --help`` lists the commands with an example each).

``numrnn`` (or ``numrnn demo``)
    Trains on the built-in sine wave (forecasting, and generation from one seed value) and on
    scikit-learn's digits read row by row; prints progress and metrics and writes PNG plots
    (``--out DIR``, default ``./numrnn-demo``; needs matplotlib for the plots, metrics are
    printed without it).

``numrnn forecast FILE.csv --column NAME --horizon N``
    Fits an :class:`~numrnn.forecasting.RNNForecaster` on one column of a CSV file and
    prints the forecast (``--output`` writes it as CSV, ``--plot`` draws it). A column of
    ISO 8601 dates (the first column, or ``--date-column``; read without pandas) orders the
    rows and gives the forecast's dates: its spacing (days, hours, months, month ends,
    quarters, years, ...) is inferred, and a gap or a repeated date is an error.

Errors in the input (missing file or column, non-numeric values, irregular dates, too short
a series, an output path that cannot be written) end with exit status 2 and one line naming
the problem and the fix, before any training. ``numrnn --version`` prints the version.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import re
import sys
import threading
import time
import warnings

import numpy as np

__all__ = ["main"]


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the command list and its examples as written."""


class _ForecasterDefault:
    """An option's default read from :class:`~numrnn.forecasting.RNNForecaster` when it is
    needed (``--help`` or a run), so the command follows the forecaster's defaults (chosen on
    the benchmark) and parsing imports nothing heavy."""

    def __init__(self, name: str):
        self.name = name

    def value(self):
        from numrnn.forecasting import RNNForecaster

        return RNNForecaster().get_params()[self.name]

    def __str__(self) -> str:
        v = self.value()
        if isinstance(v, bool):
            return "on" if v else "off"
        return "none" if v is None else str(v)


def _resolve_defaults(args: argparse.Namespace) -> None:
    """Replace the options left at the forecaster's default by its value."""
    for name, v in vars(args).items():
        if isinstance(v, _ForecasterDefault):
            setattr(args, name, v.value())


# One example per command, shown by ``numrnn --help`` (a test checks every command has one).
_EXAMPLES: dict[str, str] = {}


def _add_command(sub, name: str, help: str, example: str) -> argparse.ArgumentParser:
    """Register a subcommand with its one-line help and one example command line."""
    _EXAMPLES[name] = example
    return sub.add_parser(
        name,
        help=help,
        description=f"{help[0].upper()}{help[1:]}.\n\nexample:\n  {example}",
        formatter_class=_HelpFormatter,
    )


def _int_arg(option: str, low: int):
    """An argparse type: an integer >= ``low`` (argparse's message names ``option``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(
                f"must be an integer >= {low}, got {text!r}. Pass e.g. {option} {max(low, 1)}."
            )
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    from numrnn import __version__

    p = argparse.ArgumentParser(
        prog="numrnn",
        description="Recurrent networks (RNN, LSTM, GRU) with Numba kernels. Without a "
        "command, runs the demo.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"numrnn {__version__}")
    sub = p.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    d = _add_command(
        sub,
        "demo",
        "train on built-in data and write plots (the default command)",
        "numrnn demo --out plots --quick",
    )
    _demo_args(d)
    f = _add_command(
        sub,
        "forecast",
        "forecast a column of a CSV file",
        "numrnn forecast sales.csv --column units --horizon 12 --plot sales.png",
    )
    _forecast_args(f)
    c = _add_command(
        sub,
        "compile",
        "compile the kernels into the on-disk cache, one process per core (a first fit "
        "then loads them in about a second)",
        "numrnn compile --cells lstm gru --dtypes float32",
    )
    _compile_args(c)
    width = max(len(name) for name in _EXAMPLES)
    p.epilog = "examples:\n" + "\n".join(
        f"  {name:<{width}}  {example}" for name, example in _EXAMPLES.items()
    )
    return p


def _quantiles_arg(text: str) -> tuple:
    """--quantiles: comma-separated levels strictly between 0 and 1."""
    try:
        q = tuple(float(v) for v in text.split(","))
    except ValueError:
        q = ()
    if not q or not all(0.0 < v < 1.0 for v in q):
        raise argparse.ArgumentTypeError(
            f"--quantiles must be comma-separated levels strictly between 0 and 1, got "
            f"{text!r}; e.g. --quantiles 0.1,0.9"
        )
    return q


def _forecast_args(f: argparse.ArgumentParser) -> None:
    f.add_argument("file", help="CSV file with a header row")
    f.add_argument("--column", required=True, help="name of the column to forecast (required)")
    f.add_argument(
        "--horizon",
        type=_int_arg("--horizon", 1),
        required=True,
        help="steps to forecast (required)",
    )
    f.add_argument(
        "--date-column",
        default="auto",
        metavar="NAME",
        help="column of ISO dates (YYYY-MM-DD, YYYY-MM, YYYY-MM-DDTHH:MM[:SS]) giving the "
        "time of each row; rows are sorted by it, its spacing (the frequency) is inferred and "
        "continued in the forecast; 'none': rows are in time order, forecast steps are "
        "numbered (default: auto, the first column when it holds dates)",
    )
    f.add_argument(
        "--cell",
        choices=("rnn", "lstm", "gru"),
        default=_ForecasterDefault("cell"),
        help="recurrent cell (default: %(default)s)",
    )
    f.add_argument(
        "--window",
        type=_int_arg("--window", 1),
        default=None,
        help="steps of history per input (default: two seasons, at least 12, else 12, at "
        "most (n - 2) // 2 for n values)",
    )
    f.add_argument(
        "--strategy",
        choices=("recursive", "direct"),
        default=_ForecasterDefault("strategy"),
        help="recursive: one step at a time, fed back; direct: all --horizon steps at once "
        "(default: %(default)s)",
    )
    f.add_argument(
        "--hidden-size",
        type=_int_arg("--hidden-size", 1),
        default=_ForecasterDefault("hidden_size"),
        help="hidden units of the network (default: %(default)s)",
    )
    f.add_argument(
        "--max-iter",
        type=_int_arg("--max-iter", 1),
        default=_ForecasterDefault("max_iter"),
        help="training epochs, or their cap with --choose-epochs (default: %(default)s)",
    )
    f.add_argument(
        "--season-length",
        type=_int_arg("--season-length", 1),
        default=None,
        metavar="M",
        help="steps per season (12 for monthly data with a yearly cycle); the window then "
        "covers two seasons (default: none)",
    )
    f.add_argument(
        "--quantiles",
        type=_quantiles_arg,
        default=None,
        metavar="Q1,Q2,...",
        help="also forecast these quantile levels, e.g. 0.1,0.9 for an 80%% interval: one "
        "column each in the output, a band in the plot (default: none)",
    )
    f.add_argument(
        "--conformal",
        action="store_true",
        help="make the --quantiles intervals (0.1,0.9 if not given) from held-out forecast "
        "errors of a backtest fold, not from quantile heads (default: off)",
    )
    f.add_argument(
        "--models",
        type=_int_arg("--models", 1),
        default=_ForecasterDefault("n_models"),
        metavar="K",
        help="train K networks from derived seeds and take the median forecast; 1 is about "
        "four times faster to fit (default: %(default)s)",
    )
    f.add_argument(
        "--choose-epochs",
        action=argparse.BooleanOptionalAction,
        default=_ForecasterDefault("choose_epochs"),
        help="choose the number of epochs (at most --max-iter) on the latest 30%% of the "
        "training windows before training (default: %(default)s)",
    )
    f.add_argument(
        "--random-state",
        type=_int_arg("--random-state", 0),
        default=0,
        help="seed of the initial weights and shuffling; same seed, same forecast (default: 0)",
    )
    f.add_argument(
        "--plot",
        metavar="FILE",
        help="also draw the forecast to FILE (.png, .pdf, .svg, ...; needs matplotlib) "
        "(default: no plot)",
    )
    f.add_argument(
        "--output",
        metavar="CSV",
        help="write the forecast to this CSV file instead of printing it (default: print)",
    )


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", default="numrnn-demo", help="directory for the plots (default: ./numrnn-demo)"
    )
    p.add_argument("--quick", action="store_true", help="fewer epochs, a smoke test (default: off)")


def _compile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cells", nargs="+", choices=("rnn", "lstm", "gru"), default=["rnn", "lstm", "gru"],
        help="cells to compile (default: all three)",
    )  # fmt: skip
    p.add_argument(
        "--dtypes", nargs="+", choices=("float32", "float64"), default=["float32"],
        help="dtypes to compile (default: float32, the estimators' default)",
    )  # fmt: skip
    p.add_argument(
        "--processes", type=_int_arg("--processes", 1), default=None,
        help="worker processes (default: one per core)",
    )  # fmt: skip


def _compile(args) -> int:
    from numrnn._jit import kernel_cache_dir
    from numrnn.parallel import compile_kernels

    t0 = time.perf_counter()
    print(f"Compiling numrnn kernels into {kernel_cache_dir()}", flush=True)

    def report(cell, dtype, wall, cpu):
        print(f"  {cell}/{dtype}: {wall:.1f}s ({cpu:.1f}s CPU)", flush=True)

    compile_kernels(args.cells, args.dtypes, args.processes, report=report)
    print(f"Done in {time.perf_counter() - t0:.1f}s.", flush=True)
    return 0


_log_handler = None  # the handler :func:`_print_compile_log` installed, while it is in force


@contextlib.contextmanager
def _print_compile_log(stream):
    """Show the kernels' one-line compile notice (INFO on the ``numrnn`` logger) on
    ``stream`` (stderr where stdout carries a result, as ``forecast``'s) in this block."""
    import logging

    log = logging.getLogger("numrnn")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("      %(message)s"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    global _log_handler
    _log_handler = handler
    try:
        yield handler
    finally:
        _log_handler = None
        log.removeHandler(handler)
        log.setLevel(level)


class _Heartbeat:
    """Prints ``... still compiling kernels (12s)`` (or ``training``) whenever the demo has
    printed nothing for ``every`` seconds, so a cold first fit never looks hung. The default
    4 s, checked twice a second, keeps every silence of a cold demo under 5 s.

    Numba's compiler spends most of its time in LLVM, outside the GIL, so this thread gets
    to print while a kernel compiles. ``write`` is the demo's stream; it records the time of
    the last output.
    """

    def __init__(self, stream, every: float = 4.0):
        self.stream = stream
        self.every = every
        self.last = time.perf_counter()
        self.start = self.last
        self.compiling = 0
        self._stop = threading.Event()

    def write(self, text: str) -> int:
        self.last = time.perf_counter()
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(min(0.5, self.every / 4)):
            now = time.perf_counter()
            if now - self.last >= self.every:
                what = "compiling kernels" if self.compiling else "training"
                self.write(f"      ... still {what} ({now - self.start:.0f}s)\n")
                self.flush()

    def __enter__(self):
        from numba.core import event

        beat = self

        class Compiling(event.Listener):
            def on_start(self, ev):
                beat.compiling += 1

            def on_end(self, ev):
                beat.compiling -= 1

        self._listener = Compiling()
        event.register("numba:compile", self._listener)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        from numba.core import event

        self._stop.set()
        self._thread.join()
        event.unregister("numba:compile", self._listener)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``numrnn`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["demo", *argv]
    args = parser.parse_args(argv)
    try:
        with _print_compile_log(sys.stderr if args.command == "forecast" else sys.stdout):
            if args.command == "forecast":
                return _forecast(args)
            if args.command == "compile":
                return _compile(args)
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
    with _Heartbeat(sys.stdout) as beat:
        if _log_handler is not None:  # the compile notice counts as output
            _log_handler.setStream(beat)
        return _demo_stages(args, beat)


def _demo_stages(args, beat):
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
        print(msg, file=beat, flush=True)

    def stage(msg):
        say(f"{msg} (at {time.perf_counter() - t_all:.1f}s)")

    # 1. sine wave: forecasting 50 steps ahead
    stage("[1/3] Sine wave: forecasting 50 steps (LSTM, window 20)")
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
            # one network trained max_iter epochs: the demo shows the two strategies, and a
            # clean sine needs neither the default's 3 networks nor its epoch choice (4x time)
            n_models=1,
            choose_epochs=False,
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
        _plot_sine_forecasts(pth, train, test, {k: v[1] for k, v in res.items()})
        written.append(pth)
        pth = os.path.join(out, "sine_loss.png")
        plot_loss(
            res["recursive"][0],
            path=pth,
            title="Sine wave, recursive LSTM forecaster (window 20):\ntraining loss per epoch",
            ylabel="mean squared error (scaled series)",
        )
        written.append(pth)

    # 2. generation from one seed value, state carried step by step
    stage("[2/3] Sine wave: generating 100 steps from the seed value 0 (RNN, hidden 16)")
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
            x=np.array([0]),
            x_forecast=np.arange(1, 101),
            path=pth,
            title="RNN generating sin(0.1 t) from the seed value 0\n"
            "(100 steps, each output fed back as the next input)",
            labels=("_seed", "sin(0.1 t)", "generated"),
        )
        ax.plot([0], [0.0], "o", color="0.2", ms=6, zorder=3, label="seed value (t = 0)")
        ax.legend()
        ax.figure.savefig(pth, dpi=100)
        written.append(pth)
        Xw, yw = make_windows(train, 20)
        pth = os.path.join(out, "gradient_norms.png")
        f = res["recursive"][0]
        Xs = (Xw[:64] - f.mean_[0]) / f.scale_[0]
        ys = (yw[:64, 0] - f.mean_[0]) / f.scale_[0]
        plot_gradient_norms(
            f.regressor_,
            Xs,
            ys,
            path=pth,
            title="Recursive LSTM forecaster of the sine wave: gradient of the\n"
            "training loss w.r.t. the hidden state h_t (64 windows of 20 steps)",
        )
        written.append(pth)

    # 3. digits read row by row
    stage("[3/3] Digits (8x8) read row by row: 8 steps of 8 pixels, LSTM classifier")
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
        plot_loss(
            c,
            path=pth,
            title="Digits read row by row, LSTM classifier: loss per epoch\n"
            "(validation: 10% of the training digits, held out for early stopping)",
            ylabel="cross-entropy",
        )
        written.append(pth)

    say(f"Done in {time.perf_counter() - t_all:.1f}s.")
    if written:
        say(f"Plots written to {out}:")
        for w in written:
            say(f"  {os.path.basename(w)}")
    return 0


def _plot_sine_forecasts(path: str, train: np.ndarray, test: np.ndarray, forecasts: dict) -> None:
    """Both strategies' forecasts against the actual values, and their errors per step."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from numrnn.plotting import plot_forecast

    fig = Figure(figsize=(8, 6.5))
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 2))
    n, h = train.shape[0], test.shape[0]
    steps = np.arange(n, n + h)
    styles = {"recursive": ("tab:red", "--", "."), "direct": ("tab:green", ":", "x")}
    plot_forecast(
        train,
        forecasts["recursive"],
        test,
        ax=top,
        title=f"Sine wave: {h}-step LSTM forecasts after {n} training steps (window 20)",
        labels=("training series (last 100 steps)", "actual", "forecast, recursive"),
    )
    color, ls, marker = styles["direct"]
    top.plot(
        steps,
        forecasts["direct"],
        color=color,
        ls=ls,
        marker=marker,
        ms=4,
        label="forecast, direct",
    )
    top.legend(loc="lower left", fontsize="small")
    for name, p in forecasts.items():
        color, ls, marker = styles[name]
        err = np.abs(p - test)
        bottom.plot(
            np.arange(1, h + 1),
            np.maximum(err, 1e-6),
            color=color,
            ls=ls,
            marker=marker,
            ms=4,
            label=f"{name} (MAE {err.mean():.4f})",
        )
    bottom.set_yscale("log")
    bottom.set_xlabel("steps ahead")
    bottom.set_ylabel("|forecast - actual|")
    bottom.set_title("Absolute error of each forecast")
    bottom.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# -- forecast -----------------------------------------------------------------------------
def _read_csv(path: str) -> tuple[list[str], list[list[str]]]:
    """(header, data rows) of a CSV file; blank lines are dropped."""
    if os.path.isdir(path):
        raise CLIError(f"{path!r} is a directory. Pass the path of a CSV file.")
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
    return [h.strip() for h in rows[0]], rows[1:]


def _column_index(header: list[str], column: str, path: str, option: str) -> int:
    if column not in header:
        raise CLIError(
            f"column {column!r} not in {path!r}; its columns are "
            f"{', '.join(repr(h) for h in header)}. Pass one of them with {option}."
        )
    return header.index(column)


def _read_values(rows: list[list[str]], j: int, column: str, path: str) -> np.ndarray:
    values = []
    for lineno, r in enumerate(rows, start=2):
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
    return np.asarray(values)


# ISO 8601 dates and times as numpy's datetime64 parses them (a space may replace the T).
_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}(-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?)?$"
)


def _parse_dates(labels: list[str]) -> np.ndarray | None:
    """``datetime64`` of ISO 8601 labels (pandas for other formats), None when not dates."""
    if labels and all(_ISO_DATE.match(s) for s in labels):
        with warnings.catch_warnings():  # an explicit UTC offset: numpy converts to UTC
            warnings.simplefilter("ignore")
            try:
                return np.array([np.datetime64(s.replace(" ", "T")) for s in labels])
            except ValueError:  # e.g. month 13
                return None
    try:
        import pandas as pd
    except ImportError:
        return None
    if all(s.lstrip("+-").replace(".", "", 1).isdigit() for s in labels):
        return None  # numbers are steps, not dates
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            idx = pd.DatetimeIndex(pd.to_datetime(labels))
        except (ValueError, TypeError, OverflowError):
            return None
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.to_numpy()


def _describe_step(step: tuple) -> str:
    kind, k = step[0], step[1]
    if kind == "fixed":
        return _plural_timedelta(k)
    unit = "year" if k % 12 == 0 else "month"
    n = k // 12 if unit == "year" else k
    what = f"{n} {unit}{'s' if n != 1 else ''}"
    return what + (" (month ends)" if kind == "month_end" else "")


def _plural_timedelta(delta: np.timedelta64) -> str:
    seconds = int(delta / np.timedelta64(1, "s"))
    for name, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0 and seconds >= size:
            n = seconds // size
            return f"{n} {name}{'s' if n != 1 else ''}"
    return f"{seconds} s"


def _infer_step(dates: np.ndarray, lines: np.ndarray, column: str) -> tuple:
    """The regular spacing of sorted, distinct dates, or a CLIError naming the first gap.

    Calendar steps (months, quarters, years; a fixed day of the month or month ends) are
    recognised before fixed durations, so monthly data is regular although months differ in
    length.
    """
    days = dates.astype("datetime64[D]")
    months = dates.astype("datetime64[M]")
    if (dates == days).all():
        dm = np.diff(months.astype(np.int64))
        day_of_month = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
        month_end = days + 1 == (months + 1).astype("datetime64[D]")
        if dm.size and (dm == dm[0]).all() and dm[0] > 0:
            if (day_of_month == day_of_month[0]).all():
                return ("month", int(dm[0]), int(day_of_month[0]))
            if month_end.all():
                return ("month_end", int(dm[0]), 0)
    diffs = np.diff(dates)
    values, counts = np.unique(diffs, return_counts=True)
    if values.size == 1:
        return ("fixed", values[0], 0)
    usual = values[np.argmax(counts)]
    bad = int(np.flatnonzero(diffs != usual)[0])
    unit = "D" if (dates == days).all() else "s"
    a, b = (np.datetime_as_string(dates[i], unit=unit) for i in (bad, bad + 1))
    raise CLIError(
        f"the dates in column {column!r} are not evenly spaced: {a} (line {lines[bad]}) is "
        f"followed by {b} (line {lines[bad + 1]}), {_plural_timedelta(diffs[bad])} later, "
        f"while most steps are {_plural_timedelta(usual)}. The forecast needs one row per "
        "step: fill the missing rows (e.g. by interpolation) or pass --date-column none to "
        "ignore the dates."
    )


def _future_dates(last: np.datetime64, step: tuple, horizon: int) -> np.ndarray:
    kind, k, day = step
    i = np.arange(1, horizon + 1)
    if kind == "fixed":
        return last + k * i
    month = last.astype("datetime64[M]") + k * i
    if kind == "month_end":
        return (month + 1).astype("datetime64[D]") - 1
    length = ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(int)
    return month.astype("datetime64[D]") + np.minimum(day, length) - 1


def _date_strings(dates: np.ndarray, labels: list[str]) -> list[str]:
    """ISO strings of ``dates`` at the coarsest unit that shows the input's precision."""
    if all(len(s) == 7 for s in labels):  # YYYY-MM
        unit = "M"
    elif (dates == dates.astype("datetime64[D]")).all():
        unit = "D"
    elif (dates == dates.astype("datetime64[m]")).all():
        unit = "m"
    else:
        unit = "s"
    sep = " " if " " in labels[-1] else "T"  # keep the file's date-time separator
    return [str(s).replace("T", sep) for s in np.datetime_as_string(dates, unit=unit)]


def _read_series(args: argparse.Namespace):
    """(values, dates, date column, date labels, line numbers) of the forecast's CSV.

    Rows are sorted by date; dates, date column and labels are None without dates.
    """
    header, rows = _read_csv(args.file)
    j = _column_index(header, args.column, args.file, "--column")
    values = _read_values(rows, j, args.column, args.file)
    lines = np.arange(2, len(rows) + 2)
    choice = args.date_column
    if choice == "none":
        return values, None, None, None, lines
    explicit = choice != "auto"
    jd = _column_index(header, choice, args.file, "--date-column") if explicit else 0
    if jd == j:
        if explicit:
            raise CLIError(
                f"--date-column and --column are both {args.column!r}. Pass the column of "
                "dates with --date-column and the values with --column."
            )
        return values, None, None, None, lines
    labels = [r[jd].strip() if jd < len(r) else "" for r in rows]
    dates = _parse_dates(labels)
    if dates is None:
        if explicit:
            raise CLIError(
                f"column {choice!r} of {args.file!r} does not hold dates (first value "
                f"{labels[0]!r}). Dates must be ISO 8601 (2024-01-31, 2024-01, "
                "2024-01-31T14:00); other formats need pandas (pip install pandas)."
            )
        looks_like_dates = (
            any(c.isdigit() for c in labels[0])
            and not labels[0].replace(".", "", 1).lstrip("+-").isdigit()
        )
        if looks_like_dates:
            print(
                f"note: the first column {header[0]!r} was not read as dates (first value "
                f"{labels[0]!r} is not ISO 8601, e.g. 2024-01-31); the rows are taken in file "
                "order and forecast steps are numbered. Pass --date-column none to silence "
                "this, or convert the dates to ISO 8601.",
                file=sys.stderr,
            )
        return values, None, None, None, lines
    order = np.argsort(dates, kind="stable")
    if (order != np.arange(order.size)).any():
        newest_first = (order == np.arange(order.size)[::-1]).all()
        print(
            f"note: rows sorted by {header[jd]!r} oldest first (the file lists them "
            f"{'newest first' if newest_first else 'out of order'}).",
            file=sys.stderr,
        )
        dates, values, lines = dates[order], values[order], lines[order]
        labels = [labels[i] for i in order]
    same = np.flatnonzero(dates[1:] == dates[:-1])
    if same.size:
        i = int(same[0])
        raise CLIError(
            f"the date {labels[i]!r} appears twice in column {header[jd]!r} (lines "
            f"{min(lines[i], lines[i + 1])} and {max(lines[i], lines[i + 1])}). Keep one row "
            "per date."
        )
    return values, dates, header[jd], labels, lines


def _check_output_path(path: str, option: str) -> None:
    """Fail before training when ``path`` cannot be written."""
    full = os.path.abspath(path)
    if os.path.isdir(full):
        raise CLIError(
            f"{option} {path!r} is a directory. Pass a file name, e.g. {os.path.join(path, 'forecast.csv')!r}."
        )
    parent = os.path.dirname(full)
    if not os.path.isdir(parent):
        raise CLIError(
            f"{option} {path!r}: the directory {parent!r} does not exist. Create it first "
            "or pass a path in an existing directory."
        )
    if not os.access(parent, os.W_OK):
        raise CLIError(
            f"{option} {path!r}: the directory {parent!r} is not writable. Pass a path in a "
            "directory you can write to."
        )


def _check_plot_path(path: str) -> None:
    if not _have_matplotlib():
        raise CLIError(
            "--plot needs matplotlib, which is not installed. Install it with "
            "`pip install numrnn[plot]`, or leave out --plot."
        )
    _check_output_path(path, "--plot")
    from matplotlib.figure import Figure

    formats = sorted(Figure().canvas.get_supported_filetypes())
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in formats:
        got = f"extension {'.' + ext!r}" if ext else "no extension"
        raise CLIError(
            f"--plot {path!r} has {got}; matplotlib writes {', '.join(formats)}. "
            "Name the file e.g. forecast.png."
        )


def _forecast(args: argparse.Namespace) -> int:
    from numrnn.estimators import NonFiniteLossError
    from numrnn.forecasting import RNNForecaster
    from numrnn.forecasting._forecaster import default_window

    # everything that can fail is checked before the (possibly long) training
    if args.output:
        _check_output_path(args.output, "--output")
    if args.plot:
        _check_plot_path(args.plot)
    values, dates, date_name, labels, lines = _read_series(args)
    _resolve_defaults(args)
    n = values.shape[0]
    block = args.horizon if args.strategy == "direct" else 1
    window = args.window
    if window is None:
        window = default_window(args.season_length or 1, n, block)
    if args.season_length is not None and args.season_length >= n:
        raise CLIError(
            f"--season-length {args.season_length} is not shorter than the {n} values of "
            f"column {args.column!r}. Pass a smaller --season-length, or a longer series."
        )
    need = window + block + 1
    if n < need or n < 4:
        need = max(need, 4)
        raise CLIError(
            f"column {args.column!r} has {n} values, too short to train with window="
            f"{window} (at least {need} are needed). Pass a longer series or a "
            "smaller --window."
        )
    step = None
    if dates is not None:
        step = _infer_step(dates, lines, date_name)
        print(
            f"Dates: {n} rows from {labels[0]} to {labels[-1]}, one every {_describe_step(step)}.",
            file=sys.stderr,
        )
    f = RNNForecaster(
        window=window,
        strategy=args.strategy,
        horizon=block,
        cell=args.cell,
        hidden_size=args.hidden_size,
        max_iter=args.max_iter,
        random_state=args.random_state,
        season_length=args.season_length,
        n_models=args.models,
        choose_epochs=args.choose_epochs,
        quantiles=(0.1, 0.9) if args.conformal and not args.quantiles else args.quantiles,
        conformal=args.conformal,
    )
    args.quantiles = f.quantiles
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            f.fit(values)
        except NonFiniteLossError as exc:
            raise CLIError(
                f"training diverged on column {args.column!r} ({exc}). Rescale the values "
                "(their magnitude is up to {:.3g}) or try another --random-state.".format(
                    float(np.max(np.abs(values)))
                )
            ) from None
        except ValueError as exc:  # validation messages name the problem and the fix
            raise CLIError(str(exc)) from None
        p = np.asarray(f.predict(args.horizon), dtype=np.float64)
        q = None
        if args.quantiles:
            q = np.asarray(f.predict_quantiles(args.horizon), dtype=np.float64)
            levels = sorted(set(args.quantiles))
    print(
        f"Fitted {args.cell.upper()} forecaster (window={window}, {args.strategy}) on {n} "
        f"values in {time.perf_counter() - t0:.1f}s; final training loss "
        f"{f.loss_curve_[-1]:.3g}.",
        file=sys.stderr,
    )
    if not np.isfinite(p).all():
        first = int(np.flatnonzero(~np.isfinite(p))[0]) + 1
        raise CLIError(
            f"the forecast of column {args.column!r} is not finite from step {first} on "
            f"({p[first - 1]}): the values (up to {np.max(np.abs(values)):.3g} in magnitude) "
            "overflow in the network's arithmetic. Rescale the column (e.g. divide it by a "
            "power of ten) and multiply the forecast back."
        )
    if dates is not None:
        future = _future_dates(dates[-1], step, args.horizon)
        idx, idx_name = _date_strings(future, labels), date_name
    else:
        idx, idx_name = [str(i) for i in range(1, args.horizon + 1)], "step"
    head = f"{idx_name},{args.column}"
    rows = [f"{i},{v:.6g}" for i, v in zip(idx, p, strict=True)]
    if q is not None:
        head += "".join(f",{args.column}_q{lv:g}" for lv in levels)
        rows = [r + "".join(f",{v:.6g}" for v in qr) for r, qr in zip(rows, q, strict=True)]
    table = [head] + rows
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write("\n".join(table) + "\n")
        print(f"Forecast written to {os.path.abspath(args.output)}", file=sys.stderr)
    else:
        print("\n".join(table))
    if args.plot:
        from numrnn.plotting import plot_forecast

        plot_forecast(
            values,
            p,
            x=dates if dates is not None else np.arange(1, n + 1),
            x_forecast=future if dates is not None else np.arange(n + 1, n + args.horizon + 1),
            path=args.plot,
            title=f"{args.column}: {args.horizon}-step {args.cell.upper()} forecast "
            f"({args.strategy}, window {window})",
            xlabel=date_name if dates is not None else "step",
            ylabel=args.column,
            labels=("history", "actual", "forecast"),
            interval=None if q is None else (q[:, 0], q[:, -1]),
            interval_label=None if q is None else f"{levels[0]:g}-{levels[-1]:g} quantiles",
        )
        print(f"Plot written to {os.path.abspath(args.plot)}", file=sys.stderr)
    return 0

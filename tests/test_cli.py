"""The numrnn command line: demo, forecast, and its input errors (exit status 2)."""

import importlib.abc
import os
import subprocess
import sys

import numpy as np
import pytest

from numrnn.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def csv_file(tmp_path):
    t = np.arange(80)
    p = tmp_path / "series.csv"
    lines = ["date,value,label"] + [
        f"{np.datetime64('2020-01-01') + i},{np.sin(0.3 * i):.6f},x{i}" for i in t
    ]
    p.write_text("\n".join(lines) + "\n")
    return p


def test_demo_quick_writes_pngs(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    saved = {}  # file name -> [(title, xlabel, ylabel, legend entries)] per axes
    savefig = Figure.savefig

    def record(fig, path, *args, **kwargs):
        fig.canvas.draw()
        saved[os.path.basename(str(path))] = [
            (
                ax.get_title(),
                ax.get_xlabel(),
                ax.get_ylabel(),
                [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else [],
                # the title is drawn inside the figure, not cut at its edges
                fig.bbox.x0 <= ax.title.get_window_extent().x0
                and ax.title.get_window_extent().x1 <= fig.bbox.x1,
            )
            for ax in fig.axes
        ]
        return savefig(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    for name, axes in saved.items():
        for title, xlabel, ylabel, _, title_fits in axes:
            assert title and xlabel and ylabel and title_fits, (name, title, xlabel, ylabel)
    legends = [entry for ax in saved["sine_forecast.png"] for entry in ax[3]]
    assert any("direct" in e for e in legends) and any("recursive" in e for e in legends)
    assert "seed value (t = 0)" in saved["sine_generation.png"][0][3]
    text = capsys.readouterr().out
    assert "test accuracy" in text and str(out) in text
    pngs = sorted(p.name for p in out.iterdir())
    assert pngs == [
        "digits_loss.png",
        "gradient_norms.png",
        "sine_forecast.png",
        "sine_generation.png",
        "sine_loss.png",
    ]
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_arguments_means_demo(monkeypatch):
    import numrnn.cli as cli

    seen = {}
    monkeypatch.setattr(cli, "_demo", lambda args: seen.setdefault("out", args.out) and 0)
    assert cli.main([]) == 0 and seen["out"] == "numrnn-demo"


def test_forecast_prints_and_writes(csv_file, tmp_path, capsys):
    assert (
        main(
            [
                "forecast",
                str(csv_file),
                "--column",
                "value",
                "--horizon",
                "4",
                "--window",
                "10",
                "--max-iter",
                "5",
                "--cell",
                "gru",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "date,value" and len(lines) == 5
    assert lines[1].startswith("2020-03-21,")  # daily index continued after 2020-03-20
    out = tmp_path / "f.csv"
    plot = tmp_path / "f.png"
    args = [
        "forecast",
        str(csv_file),
        "--column",
        "value",
        "--horizon",
        "3",
        "--window",
        "10",
        "--max-iter",
        "3",
        "--output",
        str(out),
    ]
    if pytest.importorskip("matplotlib"):
        args += ["--plot", str(plot)]
    assert main(args) == 0
    rows = out.read_text().strip().splitlines()
    assert len(rows) == 4 and all(np.isfinite(float(r.split(",")[1])) for r in rows[1:])
    assert plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args,message",
    [
        (["forecast", "MISSING.csv", "--column", "value", "--horizon", "3"], "file not found"),
        (["forecast", "{csv}", "--column", "nope", "--horizon", "3"], "its columns are"),
        (["forecast", "{csv}", "--column", "label", "--horizon", "3"], "non-numeric value 'x0'"),
        (
            ["forecast", "{csv}", "--column", "value", "--horizon", "3", "--window", "79"],
            "too short",
        ),
    ],
)
def test_forecast_errors_exit_2(args, message, csv_file, capsys):
    args = [a.replace("{csv}", str(csv_file)) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert (
        message in err and len(err.splitlines()) == 1 and err.startswith("numrnn forecast: error:")
    )


def test_console_entry_point_runs():
    """``python -m numrnn`` reaches the same parser (help only: no training)."""
    r = subprocess.run(
        [sys.executable, "-m", "numrnn", "forecast", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ROOT},
        timeout=60,
    )
    assert r.returncode == 0 and "--horizon" in r.stdout


# -- help, version, option checks ---------------------------------------------------------
def _subcommands():
    import argparse

    from numrnn.cli import _parser

    parser = _parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return parser, sub.choices


def test_help_lists_every_command_with_an_example(capsys):
    parser, commands = _subcommands()
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert len(commands) >= 2
    for name in commands:
        example = [line for line in text.splitlines() if line.strip().startswith(name + " ")]
        assert any(f"numrnn {name}" in line for line in example), (name, text)


def test_every_option_has_help_and_its_default():
    _, commands = _subcommands()
    for name, sub in commands.items():
        for action in sub._actions:
            if not action.option_strings or action.dest == "help":
                continue
            text = action.help or ""
            assert "default" in text or "(required)" in text, (name, action.option_strings)


def test_version(capsys):
    from numrnn import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"numrnn {__version__}"


@pytest.mark.parametrize("option", ["--random-state", "--horizon", "--window", "--max-iter"])
def test_bad_integer_option_is_named(option, csv_file, capsys):
    args = ["forecast", str(csv_file), "--column", "value", "--horizon", "3", option, "-1"]
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert f"argument {option}: must be an integer >=" in err and "got '-1'" in err


class _Stop(Exception):
    pass


def _forecaster_made(monkeypatch, csv_file, *extra):
    """The parameters ``numrnn forecast`` gives RNNForecaster (stopped before training)."""
    from numrnn.forecasting import RNNForecaster

    seen = {}

    def fit(self, *a, **k):
        seen.update(self.get_params())
        raise _Stop

    monkeypatch.setattr(RNNForecaster, "fit", fit)
    with pytest.raises(_Stop):
        main(["forecast", str(csv_file), "--column", "value", "--horizon", "3", *extra])
    return seen


def test_forecast_defaults_are_the_forecasters(csv_file, monkeypatch):
    from numrnn.forecasting import RNNForecaster

    ours = RNNForecaster().get_params()
    got = _forecaster_made(monkeypatch, csv_file)
    for name in ("n_models", "choose_epochs", "cell", "hidden_size", "max_iter", "strategy",
                 "learning_rate_init", "season_length"):  # fmt: skip
        assert got[name] == ours[name], name
    assert got["window"] == 12  # the forecaster's rule for 80 values without a season
    got = _forecaster_made(
        monkeypatch, csv_file, "--models", "1", "--no-choose-epochs", "--hidden-size", "5"
    )
    assert (got["n_models"], got["choose_epochs"], got["hidden_size"]) == (1, False, 5)


# -- output paths are checked before training ---------------------------------------------
@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if the forecast command starts training."""
    from numrnn.forecasting import RNNForecaster

    def fit(self, *a, **k):
        raise AssertionError("trained before checking the output paths")

    monkeypatch.setattr(RNNForecaster, "fit", fit)


@pytest.mark.parametrize(
    "option,path,message",
    [
        ("--output", "{tmp}/missing/f.csv", "does not exist"),
        ("--output", "{tmp}", "is a directory"),
        ("--plot", "{tmp}/missing/f.png", "does not exist"),
        ("--plot", "{tmp}", "is a directory"),
        ("--plot", "{tmp}/f.pnx", "extension '.pnx'"),
        ("--plot", "{tmp}/f", "no extension"),
    ],
)
def test_unwritable_output_fails_before_training(
    option, path, message, csv_file, tmp_path, no_training, capsys
):
    if option == "--plot":
        pytest.importorskip("matplotlib")
    path = path.replace("{tmp}", str(tmp_path))
    args = ["forecast", str(csv_file), "--column", "value", "--horizon", "3", option, path]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and option in err and message in err, err


def test_huge_values_forecast_or_fail_clearly(tmp_path, capsys, monkeypatch):
    # 1e200 * sin used to overflow (its variance) and print -inf; it is now scaled without
    # overflow and forecast. A forecast that is still not finite fails with exit status 2.
    p = tmp_path / "big.csv"
    p.write_text("value\n" + "".join(f"{1e200 * np.sin(0.3 * i):.6g}\n" for i in range(60)))
    args = ["forecast", str(p), "--column", "value", "--horizon", "3", "--max-iter", "2"]
    assert main(args) == 0
    values = [float(line.split(",")[1]) for line in capsys.readouterr().out.split()[1:]]
    assert len(values) == 3 and all(np.isfinite(v) and abs(v) < 2e200 for v in values)

    from numrnn.forecasting import RNNForecaster

    monkeypatch.setattr(RNNForecaster, "predict", lambda self, h, **kw: np.full(h, -np.inf))
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "inf" not in captured.out and "not finite" in captured.err and "Rescale" in captured.err


# -- dates --------------------------------------------------------------------------------
def _write(path, header, rows):
    path.write_text(header + "\n" + "".join(f"{a},{b}\n" for a, b in rows))
    return path


class _NoPandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r} (the test hides pandas)")
        return None


@pytest.fixture
def no_pandas(monkeypatch):
    """The README's install has no pandas: make ``import pandas`` fail, and take it out of
    ``sys.modules`` as if never imported (scikit-learn looks there, and a None entry breaks its
    DataFrame check inside r2_score)."""
    for name in [n for n in sys.modules if n == "pandas" or n.startswith("pandas.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoPandas(), *sys.meta_path])


def _forecast_lines(path, capsys, *extra):
    args = ["forecast", str(path), "--column", "value", "--horizon", "3", "--window", "8"]
    assert main([*args, "--max-iter", "3", *extra]) == 0
    captured = capsys.readouterr()
    return captured.out.strip().splitlines(), captured.err


def test_dates_without_pandas_continue_the_index(no_pandas, tmp_path, capsys):
    days = np.datetime64("2021-12-20") + np.arange(40)
    path = _write(tmp_path / "d.csv", "day,value", [(d, np.sin(i)) for i, d in enumerate(days)])
    lines, err = _forecast_lines(path, capsys)
    assert [r.split(",")[0] for r in lines] == ["day", "2022-01-29", "2022-01-30", "2022-01-31"]
    assert "one every 1 day" in err


def test_newest_first_file_is_sorted(no_pandas, tmp_path, capsys):
    days = np.datetime64("2022-01-01") + np.arange(40)
    rows = [(d, np.sin(0.4 * i)) for i, d in enumerate(days)]
    lines, _ = _forecast_lines(_write(tmp_path / "a.csv", "date,value", rows), capsys)
    lines_rev, err = _forecast_lines(_write(tmp_path / "b.csv", "date,value", rows[::-1]), capsys)
    assert lines_rev == lines and "newest first" in err  # the same forecast, forwards in time


@pytest.mark.parametrize(
    "dates,message",
    [
        (["2022-01-01", "2022-01-02", "2022-01-04", "2022-01-05"], "not evenly spaced"),
        (["2022-01-01", "2022-01-02", "2022-01-02", "2022-01-03"], "appears twice"),
    ],
)
def test_irregular_dates_fail_with_one_message(dates, message, no_pandas, tmp_path, capsys):
    days = list(np.datetime64("2021-01-01") + np.arange(40)) + dates
    days = [str(d) for d in days[len(dates) :]]
    path = _write(tmp_path / "g.csv", "date,value", [(d, i) for i, d in enumerate(days)])
    assert main(["forecast", str(path), "--column", "value", "--horizon", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "line" in err, err


def test_wrong_date_column_lists_the_columns(csv_file, capsys):
    args = ["forecast", str(csv_file), "--column", "value", "--horizon", "3"]
    assert main([*args, "--date-column", "when"]) == 2
    err = capsys.readouterr().err
    assert "its columns are 'date', 'value', 'label'" in err and "--date-column" in err


@pytest.mark.parametrize(
    "labels,expected,step",
    [
        (["2020-01-31", "2020-02-29", "2020-03-31"], ["2020-04-30", "2020-05-31"], "month ends"),
        (["2019-11-15", "2020-02-15", "2020-05-15"], ["2020-08-15", "2020-11-15"], "3 months"),
        (["2019-01", "2020-01", "2021-01"], ["2022-01", "2023-01"], "1 year"),
        (
            ["2020-03-01 22:00", "2020-03-01 23:00"],
            ["2020-03-02 00:00", "2020-03-02 01:00"],
            "1 hour",
        ),
        (["2020-12-21", "2020-12-28"], ["2021-01-04", "2021-01-11"], "1 week"),
    ],
)
def test_frequency_is_inferred(labels, expected, step):
    from numrnn import cli

    dates = cli._parse_dates(labels)
    inferred = cli._infer_step(dates, np.arange(2, len(labels) + 2), "date")
    assert step in cli._describe_step(inferred)
    future = cli._future_dates(dates[-1], inferred, 2)
    assert cli._date_strings(future, labels) == expected


def test_non_iso_dates_without_pandas_are_not_silently_dropped(no_pandas, tmp_path, capsys):
    rows = [(f"01/{d:02d}/2022", np.sin(d)) for d in range(1, 31)]
    lines, err = _forecast_lines(_write(tmp_path / "us.csv", "date,value", rows), capsys)
    assert lines[0] == "step,value" and "not read as dates" in err and "ISO 8601" in err
    args = ["forecast", str(tmp_path / "us.csv"), "--column", "value", "--horizon", "3"]
    assert main([*args, "--date-column", "date"]) == 2
    assert "pandas" in capsys.readouterr().err

"""The numrnn command line: demo, forecast, and its input errors (exit status 2)."""

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


def test_demo_quick_writes_pngs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
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

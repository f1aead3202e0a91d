"""Compilation: the first-use log line, the read-only fallback, ``numrnn compile``.

Each case runs a fresh interpreter on its own cache directory, so it compiles for real; it
calls one small kernel (``peephole_gradients``, under a second to compile) rather than a
whole fit.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numrnn
from numrnn._jit import COLD_COMPILE_SECONDS

PACKAGE = Path(numrnn.__file__).resolve().parent

_CALL_ONE_KERNEL = """
import logging, warnings
import numpy as np
logging.basicConfig(level=logging.INFO, format="LOG %(message)s")
warnings.simplefilter("always")
from numrnn.kernels.cpu import peephole_gradients
c = np.ones((3, 2, 4), np.float32)
dw = np.empty((3, 4), np.float32)
for _ in range(2):  # a second call compiles nothing and logs nothing
    peephole_gradients(c[0], c, np.ones((3, 2, 16), np.float32), dw)
print("RESULT", float(dw.sum()))
"""


def _run(code: str, env: dict, path: Path) -> subprocess.CompletedProcess:
    full = {**os.environ, **env, "PYTHONPATH": str(path)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env=full, cwd=str(path), timeout=300,
    )  # fmt: skip


def _log_lines(res: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in res.stderr.splitlines() if ln.startswith("LOG compiling numrnn")]


def test_first_compile_logs_one_line_and_nothing_once_cached(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    cold = _run(_CALL_ONE_KERNEL, env, PACKAGE.parent)
    assert cold.returncode == 0, cold.stderr
    assert _log_lines(cold) == [
        "LOG compiling numrnn kernels for lstm/float32 (first use on this machine, about "
        f"{COLD_COMPILE_SECONDS['lstm']} s; cached afterwards)"
    ]
    warm = _run(_CALL_ONE_KERNEL, env, PACKAGE.parent)
    assert warm.returncode == 0, warm.stderr
    assert _log_lines(warm) == []
    assert "RESULT 72.0" in warm.stdout and "RESULT 72.0" in cold.stdout


def _read_only_copy(tmp_path: Path) -> Path:
    """The package copied to a directory where no ``__pycache__`` can be created (a file
    of that name blocks it even for root), then made read-only."""
    root = tmp_path / "site"
    shutil.copytree(PACKAGE, root / "numrnn", ignore=shutil.ignore_patterns("__pycache__"))
    for d in [p for p in (root / "numrnn").rglob("*") if p.is_dir()] + [root / "numrnn"]:
        (d / "__pycache__").write_text("")
    for p in root.rglob("*"):
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return root


def test_read_only_deployment_compiles_in_memory_with_one_warning(tmp_path):
    """Before: ``RuntimeError: cannot cache function ...: no locator available`` (#19)."""
    root = _read_only_copy(tmp_path)
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    env = {
        "NUMBA_CACHE_DIR": str(blocked / "numba"),
        "HOME": str(blocked),
        "XDG_CACHE_HOME": str(blocked / "cache"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    try:
        res = _run(_CALL_ONE_KERNEL, env, root)
    finally:
        for p in root.rglob("*"):
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
    assert res.returncode == 0, res.stderr
    assert "RESULT 72.0" in res.stdout
    assert res.stderr.count("no writable directory for the compiled-kernel cache") == 1
    assert _log_lines(res) == [
        "LOG compiling numrnn kernels for lstm/float32 (about "
        f"{COLD_COMPILE_SECONDS['lstm']} s, in every process: no writable cache)"
    ]


def test_heartbeat_prints_while_silent():
    import io
    import time

    from numrnn.cli import _Heartbeat

    def wait_for(text):
        deadline = time.monotonic() + 30  # a loaded machine may delay the thread
        while text not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        return text in out.getvalue()

    out = io.StringIO()
    with _Heartbeat(out, every=0.2) as beat:
        beat.write("stage\n")
        assert wait_for("still training")
        beat.compiling += 1  # as numba's compile event does
        assert wait_for("still compiling kernels")
        beat.compiling -= 1
    lines = out.getvalue().splitlines()
    assert lines[0] == "stage" and len(lines) >= 3


def test_compile_command_reports_each_cell(monkeypatch, capsys):
    import numrnn.parallel
    from numrnn.cli import main

    calls = []

    def fake(cells, dtypes, processes, report):
        calls.append((list(cells), list(dtypes), processes))
        for c in cells:
            for d in dtypes:
                report(c, d, 1.5, 1.25)

    monkeypatch.setattr(numrnn.parallel, "compile_kernels", fake)
    assert main(["compile", "--cells", "lstm", "gru", "--dtypes", "float64"]) == 0
    assert calls == [(["lstm", "gru"], ["float64"], None)]
    out = capsys.readouterr().out
    assert "  lstm/float64: 1.5s (1.2s CPU)" in out and "  gru/float64: 1.5s" in out

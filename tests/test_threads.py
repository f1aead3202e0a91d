"""Threads on a shared machine: contention detection and the NUMRNN_NUM_THREADS knob."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from numrnn import _threads

BIG = 1 << 30  # multiply-adds far above the threshold


@pytest.fixture
def fresh_reading(monkeypatch):
    monkeypatch.setattr(_threads, "_contention", (-1e9, False))
    monkeypatch.setattr(_threads, "_cpu_count", lambda: 8)
    monkeypatch.delenv("NUMRNN_NUM_THREADS", raising=False)


def _pressure(monkeypatch, tmp_path, avg10):
    path = tmp_path / "cpu"
    path.write_text(f"some avg10={avg10:.2f} avg60=1.00 avg300=1.00 total=1\n")
    real_open = open
    monkeypatch.setattr(
        "builtins.open",
        lambda f, *a, **k: real_open(path if f == "/proc/pressure/cpu" else f, *a, **k),
    )


def test_contended_cpus_mean_one_loop_thread(fresh_reading, monkeypatch, tmp_path):
    """Before: the count ignored other work on the machine (#20: 12 ms vs 0.3 ms)."""
    _pressure(monkeypatch, tmp_path, 99.0)
    assert _threads.cpu_contended()
    assert _threads.loop_threads(64, BIG) == 1
    monkeypatch.setenv("NUMRNN_NUM_THREADS", "4")  # an explicit count wins
    assert _threads.loop_threads(64, BIG) == 4


def test_quiet_cpus_keep_every_thread(fresh_reading, monkeypatch, tmp_path):
    _pressure(monkeypatch, tmp_path, 2.0)
    import numba

    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 8)
    monkeypatch.setattr(_threads, "_numba_threads_launched", False)
    assert not _threads.cpu_contended()
    assert _threads.loop_threads(64, BIG) == 8


def test_without_pressure_file_the_load_average_decides(fresh_reading, monkeypatch):
    real_open = open

    def no_psi(f, *a, **k):
        if f == "/proc/pressure/cpu":
            raise FileNotFoundError(f)
        return real_open(f, *a, **k)

    monkeypatch.setattr("builtins.open", no_psi)
    monkeypatch.setattr(os, "getloadavg", lambda: (20.0, 20.0, 20.0))
    assert _threads._read_contention()
    monkeypatch.setattr(os, "getloadavg", lambda: (3.0, 3.0, 3.0))
    assert not _threads._read_contention()


_COUNT_WORKERS = """
import os, numba, numpy as np
from numrnn import _threads
from numrnn.kernels import cpu as K
from numba import types
from numrnn.kernels.cpu.parallel import native_address, rows_parallel

def tasks():
    return len(os.listdir("/proc/self/task"))

d = np.ones((4, 8, 16), np.float32); w = np.ones((16, 3), np.float32)
dx = np.empty((4, 8, 3), np.float32)
edges = np.array([0, 32], dtype=np.int64)
native_address(K.input_gradient_rows, (d, w, dx))  # compile outside the count
rows_parallel.compile((types.int64, numba.typeof((d, w, dx)), numba.typeof(edges)))
threads = _threads.loop_threads(8, 1 << 30)
before = tasks()
_threads.run_row_ranges(K.input_gradient_rows, (d, w, dx), 32, threads)
one = tasks()
_threads.run_row_ranges(K.input_gradient_rows, (d, w, dx), 32, 2)
print("RESULT", threads, before, one, tasks(), float(dx.sum()))
"""


def test_one_thread_knob_wakes_no_worker_thread(tmp_path):
    """``NUMRNN_NUM_THREADS=1``: the call runs in the caller, no OpenMP worker is started.

    Before: the parallel region ran on all of Numba's threads with one range, so its workers
    were started and spun after every call on a busy machine (#20: the knob did not help).
    """
    env = {
        **os.environ,
        "NUMRNN_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "2",
        "NUMBA_THREADING_LAYER": "omp",
        "PYTHONPATH": os.path.dirname(os.path.dirname(_threads.__file__)),
    }
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_COUNT_WORKERS)],
        capture_output=True, text=True, env=env, timeout=300, cwd=str(tmp_path),
    )  # fmt: skip
    if res.returncode != 0 and "threading layer" in res.stderr.lower():
        pytest.skip("no OpenMP threading layer here")
    assert res.returncode == 0, res.stderr
    threads, before, one, two, total = res.stdout.split("RESULT")[1].split()
    assert int(threads) == 1
    assert int(one) == int(before)  # no worker for a one-range call
    assert int(two) > int(one)  # a two-range call does start one (the check can fail)
    assert float(total) == 4 * 8 * 3 * 16


def test_linear_head_products_run_on_one_blas_thread(monkeypatch):
    """The nn.Linear head's products run under numrnn's BLAS policy (one thread): a
    multi-threaded OpenBLAS call leaves workers spinning, and the network's threaded
    kernels after it ran up to 2x slower in a user's own loop."""
    from contextlib import contextmanager

    from threadpoolctl import threadpool_info

    import numrnn.nn.linear as lin

    monkeypatch.delenv("NUMRNN_BLAS_THREADS", raising=False)
    seen = []
    real = _threads.blas_threads

    @contextmanager
    def spy(n):
        with real(n):
            seen.append([d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"])
            yield

    monkeypatch.setattr(_threads, "blas_threads", spy)  # numrnn_blas_threads enters it
    head = lin.Linear(8, 3, rng=0)
    x = np.random.default_rng(0).standard_normal((4, 5, 8)).astype(np.float32)
    y = head.forward(x)
    head.backward(np.ones_like(y))
    assert len(seen) == 2 and all(n == 1 for threads in seen for n in threads)

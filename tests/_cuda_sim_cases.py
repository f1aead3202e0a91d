"""Run by ``tests/test_cuda.py`` in a subprocess with ``NUMBA_ENABLE_CUDASIM=1``.

Compares the full ``numrnn.nn`` network on the CUDA backend (simulator) with the CPU
backend: outputs, final states, dx, every parameter gradient and the initial-state
gradient. Small block sizes (tile=4, threads=4 for H=7) force several blocks and partial
tiles. Cases without a ``p_`` prefix take the per-step kernels (``rows=2`` of the B=3 batch
rows per block: a partial row group; one case ``rows=1``); ``p_`` cases force the
persistent cooperative kernel, which the simulator can run only as ONE block
(``cuda.cg.this_grid().sync()``), still with 4 threads over 7 units and 2 rows per pass.
Prints one ``CASE <name> <max abs error> <tolerance>`` line per case.

Usage: ``python tests/_cuda_sim_cases.py NAME [NAME ...]`` (names from :data:`CASES`).
"""

from __future__ import annotations

import os
import sys

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run with NUMBA_ENABLE_CUDASIM=1"

import numpy as np  # noqa: E402

import numrnn.nn as nn  # noqa: E402
from numrnn.backends.cuda import CUDABackend  # noqa: E402

STEP = {"persistent": False, "rows": 2}
ROW1 = {"persistent": False, "rows": 1}
PERSIST = {"persistent": True, "rows": 2}
# name: (class, cell options, dtype, bidirectional, layers, merge_mode, backend options)
CASES = {
    "lstm_peep_f64_bi2": (nn.LSTM, {"peephole": True}, "float64", True, 2, "concat", STEP),
    "lstm_f32": (nn.LSTM, {}, "float32", False, 1, "concat", STEP),
    "gru_after_f64_bi": (nn.GRU, {"reset_after": True}, "float64", True, 1, "sum", STEP),
    "gru_before_f32_bi": (nn.GRU, {"reset_after": False}, "float32", True, 1, "mean", STEP),
    "gru_before_f64_2": (nn.GRU, {"reset_after": False}, "float64", False, 2, "concat", STEP),
    "rnn_tanh_f64_bi": (nn.RNN, {"nonlinearity": "tanh"}, "float64", True, 1, "mul", STEP),
    "rnn_relu_f32_2": (nn.RNN, {"nonlinearity": "relu"}, "float32", False, 2, "concat", ROW1),
    "p_rnn_tanh_f64_bi2": (nn.RNN, {"nonlinearity": "tanh"}, "float64", True, 2, "concat", PERSIST),
    "p_rnn_relu_f32": (nn.RNN, {"nonlinearity": "relu"}, "float32", False, 1, "concat", PERSIST),
    "p_lstm_f64_bi": (nn.LSTM, {}, "float64", True, 1, "concat", PERSIST),
    "p_lstm_peep_f32_2": (nn.LSTM, {"peephole": True}, "float32", False, 2, "concat", PERSIST),
    "p_gru_after_f32_bi": (nn.GRU, {"reset_after": True}, "float32", True, 1, "sum", PERSIST),
    "p_gru_before_f64_bi": (nn.GRU, {"reset_after": False}, "float64", True, 1, "concat", PERSIST),
}
B, T, I, H = 3, 4, 5, 7


def _flat(state):
    return list(state) if isinstance(state, tuple) else [state]


def run(name):
    cls, opts, dtype, bidir, layers, merge, backend = CASES[name]
    results = []
    for device in ("cpu", "cuda"):
        net = cls(
            I, H, layers, bidirectional=bidir, merge_mode=merge, dtype=dtype,
            dropout=0.25 if layers > 1 else 0.0, random_state=0, device=device, **opts,
        )  # fmt: skip
        if device == "cuda":
            net.backend = CUDABackend(tile=4, threads=4, **backend)
        rng = np.random.default_rng(1)
        x = rng.standard_normal((B, T, I))
        lengths = np.array([4, 2, 3])
        LD = layers * (2 if bidir else 1)
        state = rng.standard_normal((LD, B, H))
        if cls is nn.LSTM:
            state = (state, rng.standard_normal((LD, B, H)))
        out, fin = net.forward(x, state, lengths=lengths)
        d_out = rng.standard_normal(out.shape)
        d_fin = tuple(rng.standard_normal(s.shape) for s in _flat(fin))
        dx = net.backward(d_out, d_fin if cls is nn.LSTM else d_fin[0])
        results.append([out, *_flat(fin), dx, *net.grads.values(), *_flat(net.grad_state)])
    err = max(float(np.max(np.abs(a - b))) for a, b in zip(*results, strict=True))
    tol = 1e-11 if dtype == "float64" else 2e-5
    print(f"CASE {name} {err:.3e} {tol:.1e}", flush=True)


if __name__ == "__main__":
    for n in sys.argv[1:]:
        run(n)

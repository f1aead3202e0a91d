"""Run by ``tests/test_cuda.py`` in a subprocess with ``NUMBA_ENABLE_CUDASIM=1``.

Compares the full ``numrnn.nn`` network on the CUDA backend (simulator) with the CPU
backend: outputs, final states, dx, every parameter gradient and the initial-state
gradient. Small block sizes (tile=4, threads=4 for H=7) force several blocks and partial
tiles. Prints one ``CASE <name> <max abs error> <tolerance>`` line per case.

Usage: ``python tests/_cuda_sim_cases.py NAME [NAME ...]`` (names from :data:`CASES`).
"""

from __future__ import annotations

import os
import sys

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run with NUMBA_ENABLE_CUDASIM=1"

import numpy as np  # noqa: E402

import numrnn.nn as nn  # noqa: E402
from numrnn.backends.cuda import CUDABackend  # noqa: E402

# name: (class, cell options, dtype, bidirectional, layers, merge_mode)
CASES = {
    "lstm_peep_f64_bi2": (nn.LSTM, {"peephole": True}, "float64", True, 2, "concat"),
    "lstm_f32": (nn.LSTM, {}, "float32", False, 1, "concat"),
    "gru_after_f64_bi": (nn.GRU, {"reset_after": True}, "float64", True, 1, "sum"),
    "gru_before_f32_bi": (nn.GRU, {"reset_after": False}, "float32", True, 1, "mean"),
    "gru_before_f64_2": (nn.GRU, {"reset_after": False}, "float64", False, 2, "concat"),
    "rnn_tanh_f64_bi": (nn.RNN, {"nonlinearity": "tanh"}, "float64", True, 1, "mul"),
    "rnn_relu_f32_2": (nn.RNN, {"nonlinearity": "relu"}, "float32", False, 2, "concat"),
}
B, T, I, H = 3, 4, 5, 7


def _flat(state):
    return list(state) if isinstance(state, tuple) else [state]


def run(name):
    cls, opts, dtype, bidir, layers, merge = CASES[name]
    results = []
    for device in ("cpu", "cuda"):
        net = cls(
            I, H, layers, bidirectional=bidir, merge_mode=merge, dtype=dtype,
            dropout=0.25 if layers > 1 else 0.0, random_state=0, device=device, **opts,
        )  # fmt: skip
        if device == "cuda":
            net.backend = CUDABackend(tile=4, threads=4)
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
        results.append(
            [out, *_flat(fin), dx, *net.grads.values(), *_flat(net.grad_state)]
        )
    err = max(float(np.max(np.abs(a - b))) for a, b in zip(*results, strict=True))
    tol = 1e-11 if dtype == "float64" else 2e-5
    print(f"CASE {name} {err:.3e} {tol:.1e}", flush=True)


if __name__ == "__main__":
    for n in sys.argv[1:]:
        run(n)

"""The one test-case matrix of the backend-parametrized suites.

Every cell variant (:data:`VARIANTS`) and network shape (:data:`SHAPES`, :data:`TOPOLOGIES`)
that ``test_reference`` (the float64 reference against finite differences and PyTorch),
``test_nn_reference`` (the CPU backend against the reference) and ``_cuda_sim_cases`` (the
CUDA backend on the simulator against the reference and the CPU) run, and how to build the
network and the reference's options for one of them. :data:`CUDA_CASES` is the subset the
simulator can afford (it runs every GPU thread as a Python thread), each with its launch
shape.
"""

from __future__ import annotations

import numpy as np

from numrnn.nn import GRU, LSTM, RNN

#: name: (network class, cell, cell options) -- every option value of every cell.
VARIANTS = {
    "rnn_tanh": (RNN, "rnn", {"nonlinearity": "tanh"}),
    "rnn_relu": (RNN, "rnn", {"nonlinearity": "relu"}),
    "lstm": (LSTM, "lstm", {"peephole": False}),
    "lstm_peephole": (LSTM, "lstm", {"peephole": True}),
    "gru": (GRU, "gru", {"reset_after": True}),
    "gru_reset_before": (GRU, "gru", {"reset_after": False}),
}

#: (num_layers, bidirectional, merge_mode, dropout): the networks built from the variants.
SHAPES = [
    (1, False, "concat", 0.0),
    (3, False, "concat", 0.4),
    (1, True, "concat", 0.0),
    (2, True, "concat", 0.3),
    (2, True, "sum", 0.3),
    (2, True, "mean", 0.0),
    (3, True, "mul", 0.3),
]

#: (num_layers, bidirectional, merge_mode): the reference's finite-difference topologies.
TOPOLOGIES = (
    [(n, False, "concat") for n in (1, 2, 3)]
    + [(n, True, "concat") for n in (1, 2, 3)]
    + [(2, True, m) for m in ("sum", "mean", "mul")]
)

#: The simulator's cases: name: (variant, dtype, shape, launch options of the CUDA backend).
#: Block sizes (tile=4, threads=4 for H=7) force several blocks and partial tiles; cases
#: without a ``p_`` prefix take the per-step kernels (``rows=2`` of B=3: a partial row group;
#: one case ``rows=1``); ``p_`` cases force the persistent cooperative kernel, which the
#: simulator runs as ONE block.
_STEP = {"tile": 4, "threads": 4, "persistent": False, "rows": 2}
_ROW1 = {**_STEP, "rows": 1}
_PERSIST = {**_STEP, "persistent": True}
CUDA_CASES = {
    "lstm_peep_f64_bi2": ("lstm_peephole", "float64", (2, True, "concat", 0.25), _STEP),
    "lstm_f32": ("lstm", "float32", (1, False, "concat", 0.0), _STEP),
    "gru_after_f64_bi": ("gru", "float64", (1, True, "sum", 0.0), _STEP),
    "gru_before_f32_bi": ("gru_reset_before", "float32", (1, True, "mean", 0.0), _STEP),
    "gru_before_f64_2": ("gru_reset_before", "float64", (2, False, "concat", 0.25), _STEP),
    "rnn_tanh_f64_bi": ("rnn_tanh", "float64", (1, True, "mul", 0.0), _STEP),
    "rnn_relu_f32_2": ("rnn_relu", "float32", (2, False, "concat", 0.25), _ROW1),
    "p_rnn_tanh_f64_bi2": ("rnn_tanh", "float64", (2, True, "concat", 0.25), _PERSIST),
    "p_rnn_relu_f32": ("rnn_relu", "float32", (1, False, "concat", 0.0), _PERSIST),
    "p_lstm_f64_bi": ("lstm", "float64", (1, True, "concat", 0.0), _PERSIST),
    "p_lstm_peep_f32_2": ("lstm_peephole", "float32", (2, False, "concat", 0.25), _PERSIST),
    "p_gru_after_f32_bi": ("gru", "float32", (1, True, "sum", 0.0), _PERSIST),
    "p_gru_before_f64_bi": ("gru_reset_before", "float64", (1, True, "concat", 0.0), _PERSIST),
}


def shape_id(shape) -> str:
    L, bi, mm, p = shape
    return f"L{L}-bi{int(bi)}-{mm}-p{p}"


def reference_options(variant: str, num_layers: int, bidirectional: bool, merge_mode: str):
    """``(cell, keyword arguments)`` of ``numrnn.testing.network_forward`` for a case."""
    _, cell, opts = VARIANTS[variant]
    return cell, dict(
        num_layers=num_layers, bidirectional=bidirectional, merge_mode=merge_mode, **opts
    )


def build(variant: str, shape, input_size: int, hidden_size: int, *, dtype="float64",
          device="cpu", random_state=3):  # fmt: skip
    """The ``numrnn.nn`` network of a case."""
    cls, _, opts = VARIANTS[variant]
    L, bi, mm, p = shape
    return cls(
        input_size, hidden_size, L, bidirectional=bi, merge_mode=mm, dropout=p, dtype=dtype,
        random_state=random_state, device=device, **opts,
    )  # fmt: skip


def random_state(net, B: int, rng: np.random.Generator):
    """An initial state for ``net`` (a tuple (h0, c0) for the LSTM)."""
    LD = net.num_layers * net.num_directions
    h = rng.standard_normal((LD, B, net.hidden_size))
    if net.cell == "lstm":
        return h, rng.standard_normal((LD, B, net.hidden_size))
    return h


def as_tuple(state) -> tuple:
    return state if isinstance(state, tuple) else (state,)

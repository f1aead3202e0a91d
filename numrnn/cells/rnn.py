"""Elman RNN: ``h_t = φ(a)``, φ ∈ {tanh, relu}; one gate block."""

from numrnn._validation import NONLINEARITIES  # noqa: F401  (its option names, defined once)
from numrnn.cells.base import CellSpec

RNN_SPEC = CellSpec(
    name="rnn", num_gates=1, backward_writes_d_out=True, options=(("nonlinearity", "tanh"),)
)

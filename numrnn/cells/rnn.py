"""Elman RNN: ``h_t = φ(a)``, φ ∈ {tanh, relu}; one gate block."""

from numrnn.cells.base import CellSpec

RNN_SPEC = CellSpec(name="rnn", num_gates=1)
NONLINEARITIES = ("tanh", "relu")

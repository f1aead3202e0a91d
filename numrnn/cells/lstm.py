"""LSTM, gate order i, f, g, o; optional diagonal peepholes ``w_ci``, ``w_cf``, ``w_co``."""

from numrnn.cells.base import CellSpec

LSTM_SPEC = CellSpec(
    name="lstm",
    num_gates=4,
    has_cell_state=True,
    forget_gate=1,
    options=(("peephole", False), ("forget_bias", None)),
)
PEEPHOLE_NAMES = ("weight_ci", "weight_cf", "weight_co")

"""The cell registry: per cell its gate count, state, option names and defaults, and the
layer functions each backend registers (``CellSpec.register``); shapes and initialisation.

Everything that depends on the kind of cell looks it up here (``CELLS[name]``) instead of
testing the name.
"""

from numrnn.cells.base import CellSpec, init_direction_params
from numrnn.cells.gru import GRU_SPEC
from numrnn.cells.lstm import LSTM_SPEC
from numrnn.cells.rnn import RNN_SPEC

CELLS = {spec.name: spec for spec in (RNN_SPEC, LSTM_SPEC, GRU_SPEC)}

__all__ = ["CELLS", "CellSpec", "GRU_SPEC", "LSTM_SPEC", "RNN_SPEC", "init_direction_params"]

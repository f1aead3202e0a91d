"""Cell specifications: gate count, state, parameter shapes and initialisation."""

from numrnn.cells.base import CellSpec, init_direction_params
from numrnn.cells.gru import GRU_SPEC
from numrnn.cells.lstm import LSTM_SPEC
from numrnn.cells.rnn import RNN_SPEC

CELLS = {"rnn": RNN_SPEC, "lstm": LSTM_SPEC, "gru": GRU_SPEC}

__all__ = ["CELLS", "CellSpec", "GRU_SPEC", "LSTM_SPEC", "RNN_SPEC", "init_direction_params"]

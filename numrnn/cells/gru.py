"""GRU, gate order r, z, n; ``reset_after`` chooses PyTorch's or Cho et al.'s candidate."""

from numrnn.cells.base import CellSpec

GRU_SPEC = CellSpec(name="gru", num_gates=3, options=(("reset_after", True),))

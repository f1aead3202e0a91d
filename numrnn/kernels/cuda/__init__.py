"""``numba.cuda`` kernels with the names and arguments of :mod:`numrnn.kernels.cpu`.

Same conventions (time-major C-contiguous buffers, PyTorch parameter layout, ``lengths``,
caller-provided outputs, backward overwriting the gate cache with gate gradients), but every
array is a device array and each function is a host-side launcher that queues kernels:

- one tiled shared-memory GEMM for the input projection of all steps (biases folded in);
- per step ONE fused kernel doing ``h_{t-1} W_hh^T`` and the gate math (two for the GRU
  with ``reset_after=False``, whose ``(r h) W_hn^T`` needs all of a row's r first);
- after BPTT, GEMMs for dX, dW_ih, dW_hh and fixed-order column sums for the biases.

No atomics: results are bit-identical from run to run. Tunables are keyword arguments
(``tile``: GEMM tile edge; ``threads``: threads per block of the step kernels).
"""

from numrnn.kernels.cuda.common import check_persistent, reverse_padded
from numrnn.kernels.cuda.gru import gru_backward, gru_forward
from numrnn.kernels.cuda.lstm import lstm_backward, lstm_forward
from numrnn.kernels.cuda.rnn import rnn_backward, rnn_forward

__all__ = [
    "check_persistent",
    "gru_backward",
    "gru_forward",
    "lstm_backward",
    "lstm_forward",
    "reverse_padded",
    "rnn_backward",
    "rnn_forward",
]

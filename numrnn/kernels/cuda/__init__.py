"""``numba.cuda`` kernels for :class:`numrnn.backends.cuda.CUDABackend`: one launcher per
cell and pass (``lstm_forward``, ``gru_backward``, ...), where the CPU side has
row-range kernels (:mod:`numrnn.kernels.cpu`, ``lstm_forward_rows``, ...).

The same conventions (time-major C-contiguous buffers, PyTorch parameter layout, ``lengths``,
caller-provided outputs, backward overwriting the gate cache with gate gradients), but every
array is a device array and each function is a host-side launcher that queues kernels:

- one tiled shared-memory GEMM for the input projection of all steps (biases folded in);
- the time loop, either per step ONE fused kernel doing ``h_{t-1} W_hh^T`` and the gate
  math (two for the GRU with ``reset_after=False``, whose ``(r h) W_hn^T`` needs all of a
  row's r first), each block covering several batch rows that share its ``W_hh`` tiles in
  shared memory; or ONE persistent cooperative kernel for all steps that keeps each block's
  slice of ``W_hh`` in shared memory and separates steps with ``cuda.cg.this_grid().sync()``;
- after BPTT, GEMMs for dX, dW_ih, dW_hh and fixed-order column sums for the biases.

No atomics: results are bit-identical from run to run. Tunables are keyword arguments
(``tile``: GEMM tile edge and ``W_hh`` tile depth; ``threads``: threads per block;
``rows``: batch rows per block of the step kernels; ``persistent``: 'auto', True or False;
``chunks``: blocks splitting the hidden units in the persistent kernel).
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

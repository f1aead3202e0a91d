"""Numba ``@njit`` kernels: per cell, a forward and a backward time loop, whole loop compiled.

Conventions shared by every kernel (and by :mod:`numrnn.kernels.cuda`'s device arrays):

- time-major, C-contiguous buffers: ``x`` is (T, B, I), outputs (T, B, H);
- parameters in PyTorch layout: ``w_ih`` (G*H, I), ``w_hh`` (G*H, H), biases (G*H,);
- ``lengths`` (B,) int64: steps ``t >= lengths[b]`` are padding. There the state is carried
  unchanged, the output is 0, and nothing flows back;
- the caller passes every output and cache buffer; kernels allocate only per-call workspace;
- backward overwrites the forward's gate cache with the gate gradients (it is read once);
  a gradient buffer may be one the caller no longer needs (``dx`` may be the cached ``x``,
  read only before ``dx`` is written).

A layer call is three parts (see :class:`numrnn.backends.cpu.CPUBackend`): the weights
packed once (:mod:`numrnn.kernels.cpu.gemm`); the time loop, ``*_forward_rows`` /
``*_backward_rows``, over a range of batch rows ``b0..b1`` — rows are independent through
time, so ranges run in threads with no synchronization per step, and a row's arithmetic is
the same whatever range holds it; and, after BPTT, ``*_weight_gradient_rows`` and ``input_gradient_rows``, the hoisted
GEMMs, split by output rows the same way.
"""

from numrnn.kernels.cpu.common import (
    add_reverse_padded,
    input_gradient_rows,
    input_projection_rows,
    reverse_padded,
    weight_gradient_rows,
)
from numrnn.kernels.cpu.gru import (
    gru_backward_rows,
    gru_forward_rows,
    gru_weight_gradient_rows,
)
from numrnn.kernels.cpu.lstm import (
    lstm_backward_rows,
    lstm_forward_rows,
    peephole_gradients,
)
from numrnn.kernels.cpu.rnn import rnn_backward_rows, rnn_forward_rows

__all__ = [
    "add_reverse_padded",
    "gru_backward_rows",
    "gru_forward_rows",
    "gru_weight_gradient_rows",
    "input_gradient_rows",
    "input_projection_rows",
    "lstm_backward_rows",
    "lstm_forward_rows",
    "peephole_gradients",
    "reverse_padded",
    "rnn_backward_rows",
    "rnn_forward_rows",
    "weight_gradient_rows",
]

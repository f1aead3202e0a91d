"""Numba ``@njit`` kernels: one forward and one backward per cell, whole time loop compiled.

Conventions shared by every kernel (and mirrored by :mod:`numrnn.kernels.cuda`):

- time-major, C-contiguous buffers: ``x`` is (T, B, I), outputs (T, B, H);
- parameters in PyTorch layout: ``w_ih`` (G*H, I), ``w_hh`` (G*H, H), biases (G*H,);
- ``lengths`` (B,) int64: steps ``t >= lengths[b]`` are padding. There the state is carried
  unchanged, the output is 0, and nothing flows back;
- the caller passes every output and cache buffer; kernels allocate only per-call workspace;
- backward overwrites the forward's gate cache with the gate gradients (it is read once).
"""

from numrnn.kernels.cpu.common import reverse_padded
from numrnn.kernels.cpu.gru import gru_backward, gru_forward
from numrnn.kernels.cpu.lstm import lstm_backward, lstm_forward
from numrnn.kernels.cpu.rnn import rnn_backward, rnn_forward

__all__ = [
    "gru_backward",
    "gru_forward",
    "lstm_backward",
    "lstm_forward",
    "reverse_padded",
    "rnn_backward",
    "rnn_forward",
]

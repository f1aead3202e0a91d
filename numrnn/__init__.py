"""numrnn: recurrent neural networks with hand-written Numba kernels."""

__version__ = "0.1.0"

"""Recurrent networks for people who write their own training loop (PyTorch-shaped)."""

from numrnn.nn.network import GRU, LSTM, RNN, RecurrentNetwork

__all__ = ["GRU", "LSTM", "RNN", "RecurrentNetwork"]

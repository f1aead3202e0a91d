"""Defaults, environment variables (``NUMRNN_*``) and device resolution."""

from __future__ import annotations

import os

DEFAULT_DEVICE = os.environ.get("NUMRNN_DEVICE", "auto")

_VALID_DEVICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    """Whether a usable CUDA device (or the CUDA simulator) is present."""
    try:
        from numba import cuda
    except ImportError:  # pragma: no cover - numba always ships a cuda module
        return False
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver counts as no GPU
        return False


def resolve_device(device: str | None) -> str:
    """Map ``'auto'`` to ``'cuda'`` or ``'cpu'`` and check an explicit choice.

    Raises
    ------
    ValueError
        For an unknown device name, or ``'cuda'`` when no GPU is present.
    """
    if device is None:
        device = DEFAULT_DEVICE
    if device not in _VALID_DEVICES:
        raise ValueError(
            f"device must be one of {_VALID_DEVICES}, got {device!r}. "
            "Use 'cpu', 'cuda', or 'auto' to pick CUDA when a GPU is present."
        )
    if device == "auto":
        # The simulator is for tests only: 'auto' never picks it.
        if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
            return "cpu"
        return "cuda" if cuda_available() else "cpu"
    if device == "cuda" and not cuda_available():
        raise ValueError(
            "device='cuda' was requested but no CUDA GPU is available "
            "(numba.cuda.is_available() is False). Install the 'cuda' extra "
            "(pip install 'numrnn[cuda]') on a machine with an NVIDIA GPU, or use device='cpu'."
        )
    return device

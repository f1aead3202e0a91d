"""Backends run one layer in one direction; ``numrnn.nn`` does stacking and directions.

A backend has ``layer_forward``, ``layer_backward`` and ``reverse_padded`` with the
signatures of :class:`numrnn.backends.cpu.CPUBackend`.
"""

from __future__ import annotations

from numrnn._config import resolve_device


def get_backend(device: str = "cpu"):
    """Return the backend object for ``device`` ('cpu', 'cuda' or 'auto')."""
    device = resolve_device(device)
    if device == "cuda":
        from numrnn.backends.cuda import CUDABackend

        return CUDABackend()
    from numrnn.backends.cpu import CPUBackend

    return CPUBackend()

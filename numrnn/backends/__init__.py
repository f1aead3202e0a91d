"""Backends run one layer in one direction; ``numrnn.nn`` does stacking and directions.

Every backend implements :class:`~numrnn.backends.base.Backend` and fills the shared
:class:`~numrnn.backends.base.LayerCache`; :func:`backend_options` passes options (such as
the CUDA launch shape) to the backends that networks and estimators create.
"""

from __future__ import annotations

from numrnn._config import resolve_device
from numrnn.backends.base import Backend, LayerCache, backend_options, current_options

__all__ = ["Backend", "LayerCache", "backend_options", "get_backend"]


def get_backend(device: str = "cpu") -> Backend:
    """Return the backend object for ``device`` ('cpu', 'cuda' or 'auto'), configured by
    the enclosing :func:`backend_options`."""
    device = resolve_device(device)
    if device == "cuda":
        from numrnn.backends.cuda import CUDABackend

        return CUDABackend(**current_options("cuda"))
    from numrnn.backends.cpu import CPUBackend

    if current_options("cpu"):
        raise TypeError(
            f"backend_options(cpu={current_options('cpu')!r}): the CPU backend takes no "
            "options. Remove cpu=... (its threads follow numrnn's thread settings)."
        )
    return CPUBackend()

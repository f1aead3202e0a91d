"""What every backend shares: the layer cache, the protocol, and backend options.

A backend runs ONE layer in ONE direction (memory and launches); :mod:`numrnn.nn` does the
stacking and the directions. :class:`Backend` lists what the network calls;
:class:`numrnn.backends.cpu.CPUBackend` and :class:`numrnn.backends.cuda.CUDABackend`
implement it, each registering its per-cell layer functions in :mod:`numrnn.cells`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Backend", "LayerCache", "backend_options", "current_options"]


@dataclass
class LayerCache:
    """What BPTT needs from one layer-direction forward (time-major arrays of the backend)."""

    x: Any
    h0: Any
    c0: Any | None
    lengths: Any
    out: Any
    gates: Any | None = None
    cells: Any | None = None  # LSTM c_t, or GRU aux


class Backend(Protocol):
    """The calls :class:`numrnn.nn.RecurrentNetwork` makes on a backend."""

    name: str

    def asarray(self, a, dtype): ...

    def to_host(self, a): ...

    def merge(self, outs: list, mode: str): ...

    def split(self, d, mode: str, dir_outs, num_directions: int) -> list: ...

    def multiply(self, a, b): ...

    def add_reversed_into(self, a, x, lengths): ...

    def reverse_padded(self, x, lengths): ...

    def layer_forward(self, cell, x, p, h0, c0, lengths, options, requires_grad=True): ...

    def layer_backward(
        self, cell, cache, p, d_out, dh_n, dc_n, need_dx, options, d_out_owned=False,
        x_owned=False,
    ): ...  # fmt: skip


_OPTIONS: contextvars.ContextVar[Mapping[str, Mapping] | None] = contextvars.ContextVar(
    "numrnn_backend_options", default=None
)


@contextlib.contextmanager
def backend_options(**per_backend: Mapping[str, Any]) -> Iterator[None]:
    """Options of the backends created inside the ``with`` block, per backend name.

    Networks and estimator fits made inside it use them, e.g. the CUDA kernels' launch
    shape (the keyword arguments of :class:`~numrnn.backends.cuda.CUDABackend`)::

        with backend_options(cuda={"persistent": False, "rows": 2}):
            RNNRegressor(device="cuda").fit(X, y)

    Nested blocks update the outer one's options. A backend takes its options when it is
    created (a network's constructor, an estimator's fit), not when it runs. The options
    belong to the calling thread (a context variable): fits that ``n_jobs`` hands to other
    threads or processes do not see them.
    """
    merged = {name: dict(opts) for name, opts in (_OPTIONS.get() or {}).items()}
    for name, opts in per_backend.items():
        if not isinstance(opts, Mapping):
            raise TypeError(
                f"backend_options({name}=...) expects a dict of that backend's keyword "
                f"arguments, got {type(opts).__name__}. Pass e.g. {name}={{...}}."
            )
        merged.setdefault(name, {}).update(opts)
    token = _OPTIONS.set(merged)
    try:
        yield
    finally:
        _OPTIONS.reset(token)


def current_options(name: str) -> dict:
    """The options :func:`backend_options` sets for backend ``name`` here (a copy)."""
    return dict((_OPTIONS.get() or {}).get(name, {}))

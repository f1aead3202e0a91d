"""BLAS thread policy around the time loop: decided here, in one place (DESIGN §4).

Numba's ``np.dot`` calls SciPy's OpenBLAS and NumPy's ``@`` its own: two pools whose
threads spin after every call. Measured on these 2-core machines:

- small per-step GEMMs (the tiny/small/long configurations) gain nothing from a second
  thread, and on a loaded machine the spinning threads starve everything else (the sine
  example ran 4-7x faster, an estimator step 50x, with one thread);
- from about a million multiply-adds per step (digits, medium, large) a quiet machine runs
  1.6-1.7x faster with both threads.

``NUMRNN_BLAS_THREADS`` overrides the policy (an integer, or ``default`` to leave BLAS alone).
"""

from __future__ import annotations

import os
from contextlib import contextmanager

#: Below this many multiply-adds per step (B * G*H * H), use one BLAS thread.
SINGLE_THREAD_BELOW = 1 << 19

_blas_controllers: list | None = None


def _blas_libraries() -> list:
    global _blas_controllers
    if _blas_controllers is None:
        # Load SciPy's BLAS (the one Numba calls) before looking, so it is found even when
        # no kernel has been compiled yet in this process.
        import scipy.linalg.cython_blas  # noqa: F401
        from threadpoolctl import ThreadpoolController

        _blas_controllers = [
            lc for lc in ThreadpoolController().lib_controllers if lc.user_api == "blas"
        ]
    return _blas_controllers


def recurrent_blas_threads(batch: int, gate_size: int, hidden_size: int) -> int | None:
    """BLAS threads for a time loop with per-step GEMM (batch, hidden) x (hidden, gate_size).

    Returns 1 for small steps, None (leave BLAS as configured) for large ones.
    """
    override = os.environ.get("NUMRNN_BLAS_THREADS", "").strip()
    if override:
        return None if override == "default" else max(1, int(override))
    return 1 if batch * gate_size * hidden_size < SINGLE_THREAD_BELOW else None


@contextmanager
def blas_threads(n: int | None):
    """Run the block with ``n`` BLAS threads in every loaded BLAS (None: unchanged).

    Only libraries whose count differs are touched, and they are restored afterwards, so
    nesting (an estimator's fit around a network's forward) costs nothing.
    """
    if n is None:
        yield
        return
    changed = []
    for lib in _blas_libraries():
        current = lib.num_threads
        if current != n:
            lib.set_num_threads(n)
            changed.append((lib, current))
    try:
        yield
    finally:
        for lib, current in changed:
            lib.set_num_threads(current)

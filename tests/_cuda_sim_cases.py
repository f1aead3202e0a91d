"""Run by ``tests/test_cuda.py`` in a subprocess with ``NUMBA_ENABLE_CUDASIM=1``.

The full ``numrnn.nn`` network on the CUDA backend (simulator) for every case of
:data:`_cases.CUDA_CASES` (the shared test-case matrix), against the float64 reference
(``numrnn.testing``) and against the CPU backend: outputs, final states, dx, every parameter
gradient and the initial-state gradient. Prints ``CASE <name> <max abs error> <tolerance>``
(against the CPU) and ``CASE ref_<name> <max abs error> <tolerance>`` (against the
reference) per case.

Usage: ``python tests/_cuda_sim_cases.py NAME [NAME ...]`` (names from ``CUDA_CASES``).
"""

from __future__ import annotations

import os
import sys

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run with NUMBA_ENABLE_CUDASIM=1"

import numpy as np  # noqa: E402
from _cases import (  # noqa: E402
    CUDA_CASES,
    as_tuple,
    build,
    random_state,
    reference_options,
)

from numrnn.backends import backend_options  # noqa: E402
from numrnn.testing import network_backward, network_forward  # noqa: E402

B, T, I, H = 3, 4, 5, 7
LENGTHS = np.array([4, 2, 3])
#: max abs error against the CPU backend (same dtype) and against the float64 reference
CPU_TOL = {"float64": 1e-11, "float32": 2e-5}
REF_TOL = {"float64": 1e-11, "float32": 2e-5}


def _flat(out, fin, dx, grads, grad_state):
    return [out, *as_tuple(fin), dx, *grads, *as_tuple(grad_state)]


def _rounded(a, dtype):
    """``a`` as the network's dtype holds it, in float64 (what the reference is given)."""
    if isinstance(a, tuple):
        return tuple(_rounded(v, dtype) for v in a)
    return a.astype(dtype).astype(np.float64)


def run(name):
    variant, dtype, shape, launch = CUDA_CASES[name]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, I))
    results = []
    for device in ("cpu", "cuda"):
        with backend_options(cuda=launch):
            net = build(variant, shape, I, H, dtype=dtype, device=device, random_state=0)
        rng = np.random.default_rng(2)
        state = random_state(net, B, rng)
        out, fin = net.forward(x, state, lengths=LENGTHS)
        if device == "cpu":  # the dropout masks the network drew (the same on both devices)
            masks = [m.transpose(1, 0, 2) for m in net._cache["masks"][:-1]] if shape[3] else None
            params = {k: v.astype(np.float64) for k, v in net.state_dict().items()}
        d_out = rng.standard_normal(out.shape)
        d_fin = tuple(rng.standard_normal(s.shape) for s in as_tuple(fin))
        d_fin = d_fin if len(d_fin) > 1 else d_fin[0]
        dx = net.backward(d_out, d_fin)
        results.append(_flat(out, fin, dx, [net.grads[k] for k in params], net.grad_state))
    err = max(float(np.max(np.abs(a - b))) for a, b in zip(*results, strict=True))
    print(f"CASE {name} {err:.3e} {CPU_TOL[dtype]:.1e}", flush=True)

    # the float64 reference, given the same input, state and gradients as the network's
    # dtype rounds them
    cell, ref_opts = reference_options(variant, *shape[:3])
    r_out, r_fin, cache = network_forward(
        cell, params, _rounded(x, dtype), LENGTHS, _rounded(state, dtype), dropout_masks=masks,
        **ref_opts,
    )  # fmt: skip
    r_dx, r_grads, r_d0 = network_backward(
        cell, params, cache, _rounded(d_out, dtype), _rounded(d_fin, dtype)
    )
    ref = _flat(r_out, r_fin, r_dx, [r_grads[k] for k in params], r_d0)
    err = max(float(np.max(np.abs(a - b))) for a, b in zip(results[1], ref, strict=True))
    print(f"CASE ref_{name} {err:.3e} {REF_TOL[dtype]:.1e}", flush=True)


if __name__ == "__main__":
    for n in sys.argv[1:]:
        run(n)

"""Optimizer updates: one compiled call per group of parameters instead of a dozen NumPy
calls per parameter.

Compiled without fastmath: each element goes through the same float operations in the same
order as :meth:`numrnn.nn.optim.Adam.step`'s NumPy expression, so the two give the same
bits (tested). Figures: docs/performance.rst, *Measured*.
"""

from __future__ import annotations

import numpy as np

from numrnn._jit import exact_kernel

#: Parameters per compiled call. Numba specialises a function for each tuple length, and
#: compiles a tuple indexed in a loop into code that grows with the length (a 15-layer
#: model's first fit spent 37 s compiling, 250 layers exceeded numba's 1000-element limit):
#: the optimizer passes tuples of exactly this many flat arrays (the last one padded with
#: empty arrays), so one compiled version serves any number of parameters.
GROUP = 8


def fixed_groups(arrays: tuple, dtype) -> list[tuple]:
    """``arrays`` cut into tuples of :data:`GROUP`, the last padded with empty arrays."""
    pad = np.empty(0, dtype=dtype)
    out = []
    for i in range(0, len(arrays), GROUP):
        part = tuple(arrays[i : i + GROUP])
        out.append(part + (pad,) * (GROUP - len(part)))
    return out


@exact_kernel
def adam_update(ps, gs, ms, vs, weight_decay, one_minus_beta1, beta2, one_minus_beta2,
                bias_correction2_sqrt, eps, step_size):  # fmt: skip
    """One Adam step, in place, on every parameter of a group: tuples of flat arrays ``ps``
    (parameters), ``gs`` (gradients), ``ms`` (exp_avg), ``vs`` (exp_avg_sq).

    One call for all parameters: a call per parameter cost ~3 us of dispatch each. The
    scalars carry the parameters' dtype, as the NumPy version casts them.
    """
    for q in range(len(ps)):
        p = ps[q]
        g = gs[q]
        m = ms[q]
        v = vs[q]
        for k in range(p.shape[0]):
            d = g[k]
            if weight_decay != 0.0:
                d = p[k] * weight_decay + g[k]
            m[k] += (d - m[k]) * one_minus_beta1
            v[k] = v[k] * beta2 + d * d * one_minus_beta2
            p[k] -= m[k] / (np.sqrt(v[k]) / bias_correction2_sqrt + eps) * step_size

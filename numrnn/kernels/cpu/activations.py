"""Activation functions for the CPU kernels, chosen by dtype at compile time.

float32 uses a clamped rational approximation of tanh (Eigen's ``ptanh`` form: an odd
polynomial over an even one, |x| clamped to 7.905), which vectorizes and is ~100x faster
than the scalar libm call Numba emits for ``np.tanh`` (DESIGN §4); its absolute error is
below 3e-7, under float32 rounding of the results. float64 keeps the exact ``np.tanh`` so
that float64 gradients match finite differences to 1e-6.

Kernels write the constant 1 as :data:`ONE` (``1 - s`` of a gate's derivative): a bare
``1.0`` is float64 in Numba, so ``1.0 - s`` of a float32 ``s`` ran in float64, at half the
vector width and with two conversions per element (the LSTM backward's two gate loops on
the digits shape: 1.0 and 0.6-1.0 ms so, 0.69 and 0.46 ms in float32); in a float64 kernel
``ONE`` promotes exactly.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

#: 1 in float32: keeps ``ONE - s`` in the kernel's own precision (see the module docstring).
ONE = np.float32(1.0)


def tanh(x):
    """tanh for kernels: rational approximation for float32, exact for float64."""
    return np.tanh(x)


def sigmoid(x):
    """Logistic function via tanh, σ(x) = ½·tanh(x/2) + ½ (no overflow for any x)."""
    return 0.5 * np.tanh(0.5 * x) + 0.5


@overload(tanh, jit_options={"fastmath": {"nsz", "arcp", "contract", "afn", "reassoc"}})
def _tanh_overload(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:

        def impl(x):
            # Eigen's generic_fast_tanh_float: clamp, then an odd over an even polynomial
            c = np.float32(7.90531110763549805)
            # Branch-free clamp so the loop around it vectorizes.
            x = c if x > c else x
            x = -c if x < -c else x
            x2 = x * x
            p = x2 * np.float32(-2.76076847742355e-16) + np.float32(2.00018790482477e-13)
            p = p * x2 + np.float32(-8.60467152213735e-11)
            p = p * x2 + np.float32(5.12229709037114e-08)
            p = p * x2 + np.float32(1.48572235717979e-05)
            p = p * x2 + np.float32(6.37261928875436e-04)
            p = p * x2 + np.float32(4.89352455891786e-03)
            p = p * x
            q = x2 * np.float32(1.19825839466702e-06) + np.float32(1.18534705686654e-04)
            q = q * x2 + np.float32(2.26843463243900e-03)
            q = q * x2 + np.float32(4.89352518554385e-03)
            return p / q

        return impl

    def impl(x):
        return np.tanh(x)

    return impl


@overload(sigmoid, jit_options={"fastmath": {"nsz", "arcp", "contract", "afn", "reassoc"}})
def _sigmoid_overload(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:

        def impl(x):
            return np.float32(0.5) * tanh(np.float32(0.5) * x) + np.float32(0.5)

        return impl

    def impl(x):
        return 0.5 * np.tanh(0.5 * x) + 0.5

    return impl

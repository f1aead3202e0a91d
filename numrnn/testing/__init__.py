"""Testing helpers: a float64 NumPy reference network and finite-difference checks.

Nothing here imports the fast kernels; it is what they are tested against.
"""

from numrnn.testing.gradcheck import check_network_gradients, numerical_gradient, relative_error
from numrnn.testing.reference import init_params, network_backward, network_forward

__all__ = [
    "network_forward",
    "network_backward",
    "init_params",
    "numerical_gradient",
    "relative_error",
    "check_network_gradients",
]

"""numrnn: recurrent neural networks with hand-written Numba kernels.

``import numrnn`` is cheap and compiles nothing: the estimators (and scikit-learn behind
them) load on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "RNNRegressor": "numrnn.estimators",
    "RNNClassifier": "numrnn.estimators",
    "NonFiniteLossError": "numrnn.exceptions",
    "InvalidParameterError": "numrnn.exceptions",
    "FileFormatError": "numrnn.exceptions",
    "RNNForecaster": "numrnn.forecasting",
    "nn": "numrnn.nn",
}

__all__ = [
    "FileFormatError",
    "InvalidParameterError",
    "NonFiniteLossError",
    "RNNClassifier",
    "RNNForecaster",
    "RNNRegressor",
    "__version__",
    "nn",
]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if module.__name__ == f"numrnn.{name}" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'numrnn' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)

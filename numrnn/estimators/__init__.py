"""scikit-learn estimators: :class:`RNNRegressor` and :class:`RNNClassifier`."""

from numrnn.estimators._base import NonFiniteLossError
from numrnn.estimators._classifier import RNNClassifier
from numrnn.estimators._regressor import RNNRegressor

__all__ = ["NonFiniteLossError", "RNNClassifier", "RNNRegressor"]

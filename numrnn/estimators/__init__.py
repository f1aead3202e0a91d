"""scikit-learn estimators: :class:`RNNRegressor` and :class:`RNNClassifier`."""

from numrnn.estimators._classifier import RNNClassifier
from numrnn.estimators._regressor import RNNRegressor
from numrnn.exceptions import NonFiniteLossError

__all__ = ["NonFiniteLossError", "RNNClassifier", "RNNRegressor"]

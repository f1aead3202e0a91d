"""scikit-learn estimators (``RNNRegressor``) on the small config: fit and predict.

Skipped (setup raises NotImplementedError) while ``numrnn.estimators`` does not exist.
"""

import warnings

import numpy as np

from .common import CELLS, CONFIGS, make_data

try:
    from numrnn.estimators import RNNRegressor
except ImportError:  # the estimators are not written yet on this commit
    RNNRegressor = None

CFG = CONFIGS["small"]


def _estimator(cell):
    return RNNRegressor(
        cell=cell,
        hidden_size=CFG.H,
        num_layers=CFG.L,
        max_iter=5,
        batch_size=CFG.B,
        random_state=0,
        dtype="float32",
    )


class EstimatorSmall:
    """``fit`` (5 epochs over 4 batches) and ``predict`` of RNNRegressor, small config."""

    params = [list(CELLS)]
    param_names = ["cell"]
    number = 1
    repeat = (3, 10, 20.0)
    warmup_time = 0.0
    timeout = 300

    def setup(self, cell):
        if RNNRegressor is None:
            raise NotImplementedError("numrnn.estimators.RNNRegressor is not available")
        x, _ = make_data(CFG, seed=0)
        x2, _ = make_data(CFG, seed=1)
        self.X = np.concatenate([x, x2, x, x2])  # 4 batches
        self.y = self.X[:, -1, 0] * 0.5
        warnings.simplefilter("ignore")  # ConvergenceWarning after 5 epochs is expected
        self.model = _estimator(cell).fit(self.X, self.y)  # compiles / loads kernels
        self.model.predict(self.X)

    def time_fit(self, cell):
        _estimator(cell).fit(self.X, self.y)

    def time_predict(self, cell):
        self.model.predict(self.X)

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


def _torch_over(make_theirs, ours, repeat: int) -> float:
    """PyTorch's median wall time for the same work over ours (skipped without torch)."""
    from .common import wall_times
    from .torch_ref import torch

    if torch is None:
        raise NotImplementedError("torch is not installed")
    t_theirs = float(np.median(wall_times(make_theirs(), repeat, warmup=1)))
    return t_theirs / float(np.median(wall_times(ours, repeat, warmup=0)))


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


class _OnFitData:
    """Parameters of the benchmarks on the fit mode's data: each cell, on ``small``
    (regression) and ``digits`` (classification) data."""

    params = [list(CELLS), ["small", "digits"]]
    param_names = ["cell", "data"]
    number = 1
    warmup_time = 0.0


class EstimatorFitEndToEnd(_OnFitData):
    """``fit`` end to end (``common.EstimatorFit``: 3 epochs of 16 minibatches, validation,
    shuffling, head, loss, clipping, Adam, bookkeeping); ``track_torch_ratio`` is a plain
    PyTorch loop of the same work over it, measured in the same process (skipped without
    torch)."""

    repeat = (3, 10, 30.0)
    timeout = 600

    def setup(self, cell, data):
        from .common import EstimatorFit

        self.fit = EstimatorFit(cell, CONFIGS[data])
        self.fit()  # compiles / loads kernels

    def time_fit(self, cell, data):
        self.fit()

    def track_torch_ratio(self, cell, data):
        from .torch_ref import TorchFit

        return _torch_over(lambda: TorchFit(cell, CONFIGS[data]), self.fit, 3)

    track_torch_ratio.unit = "ratio"


class EstimatorPredictMany(_OnFitData):
    """``predict`` of a fitted estimator over many short sequences in one call
    (``common.EstimatorPredict``: all ``16 * B`` sequences of the fit mode's data);
    ``track_torch_ratio``: PyTorch's inference over the same batch
    (``torch_ref.TorchPredict``), same process."""

    repeat = (3, 10, 20.0)
    timeout = 300

    def setup(self, cell, data):
        from .common import EstimatorPredict

        self.predict = EstimatorPredict(cell, CONFIGS[data])
        self.predict()  # compiles / loads kernels

    def time_predict(self, cell, data):
        self.predict()

    def track_torch_ratio(self, cell, data):
        from .torch_ref import TorchPredict

        return _torch_over(lambda: TorchPredict(cell, CONFIGS[data]), self.predict, 5)

    track_torch_ratio.unit = "ratio"


class OneStepLatency:
    """One-step forecast with carried state by a hidden-32 LSTM estimator
    (``common.OneStepForecast``), through ``generate``, through a ``Stream`` and through the
    network alone; ``track_torch_ratio``: PyTorch's LSTM step + head over ``generate``,
    ``track_torch_ratio_stream`` over the stream's step, same process."""

    number = 200
    repeat = (3, 10, 10.0)
    warmup_time = 0.0

    def setup(self):
        from .common import OneStepForecast

        self.one = OneStepForecast()
        self.one()
        self.one.stream()
        self.one.network()

    def time_generate_one_step(self):
        self.one()

    def time_stream_one_step(self):
        self.one.stream()

    def time_network_one_step(self):
        self.one.network()

    def _torch_over(self, call) -> float:
        from .common import median_us
        from .torch_ref import TorchOneStep, torch

        if torch is None:
            raise NotImplementedError("torch is not installed")
        return median_us(TorchOneStep(), 1000) / median_us(call, 1000)

    def track_torch_ratio(self):
        return self._torch_over(self.one)

    track_torch_ratio.unit = "ratio"

    def track_torch_ratio_stream(self):
        return self._torch_over(self.one.stream)

    track_torch_ratio_stream.unit = "ratio"

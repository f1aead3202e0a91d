"""Training step and inference of ``numrnn.nn`` networks on the DESIGN §5 configurations.

Every benchmark is parametrized by cell (rnn, lstm, gru) and configuration name. ``setup``
builds the network, head, optimizer and data and runs one warm-up call, so compilation (or
loading kernels from Numba's cache) is never timed.
"""

from .common import CELLS, CONFIGS, Config, OwnLoopStep, TrainingStep

CONFIG_NAMES = list(CONFIGS)


class _NetworkBench:
    params = [list(CELLS), CONFIG_NAMES]
    param_names = ["cell", "config"]
    # One call is long enough to time for every config but tiny; big configs take seconds.
    number = 1
    repeat = (3, 10, 20.0)  # (min repeats, max repeats, max seconds)
    warmup_time = 0.0  # setup() warms up
    timeout = 600

    def setup(self, cell, config):
        self.step = TrainingStep(cell, CONFIGS[config])
        self.step()  # compile / load from cache, allocate Adam state
        self.step.forward()


class TimeForward(_NetworkBench):
    """Inference: forward pass with ``requires_grad=False`` and the linear head."""

    def time_forward(self, cell, config):
        self.step.forward()


class TimeTrainingStep(_NetworkBench):
    """Forward + head + MSE + BPTT + Adam update of every parameter."""

    def time_training_step(self, cell, config):
        self.step()


class PeakMemTrainingStep(_NetworkBench):
    """Peak resident memory of a process that ran a training step (asv's peakmem_: the
    process's maxrss, so it includes the interpreter and Numba).

    Kernels are loaded (or compiled) by a step on a tiny network of the same structure, so
    neither compilation memory nor a second full-size step is in the measurement.
    """

    def setup(self, cell, config):
        cfg = CONFIGS[config]
        warm = Config("warm", 2, 3, cfg.I, 4, cfg.L, cfg.bidirectional)
        TrainingStep(cell, warm)()
        self.step = TrainingStep(cell, cfg)

    def peakmem_training_step(self, cell, config):
        self.step()


class TrackFlops(_NetworkBench):
    """Achieved GFLOP/s of a training step (DESIGN §4 FLOP count; median of up to 3 calls,
    2 once 3 s are spent)."""

    unit = "GFLOP/s"

    def track_training_gflops(self, cell, config):
        import numpy as np

        from .common import train_flops, wall_times

        t = float(np.median(wall_times(self.step, 3, warmup=0, max_seconds=3.0)))
        return train_flops(cell, CONFIGS[config]) / t / 1e9


class TimeOwnLoop(_NetworkBench):
    """A user's own loop (``common.OwnLoopStep``): ``net.forward(x)``, head and MSE on every
    step, ``net.backward(d_out)`` with the input gradient, Adam."""

    def setup(self, cell, config):
        self.step = OwnLoopStep(cell, CONFIGS[config])
        self.step()  # compile / load from cache, allocate Adam state

    def time_own_loop(self, cell, config):
        self.step()


class TrackTorchRatio:
    """PyTorch time / numrnn time of the training step, the forward pass and the own loop,
    both measured in the same process (medians of up to 5 calls); skipped without torch.
    Ratios move less with machine load than either time."""

    params = [list(CELLS), ["tiny", "small", "digits", "medium"]]
    param_names = ["cell", "config"]
    unit = "ratio"
    timeout = 600

    def setup(self, cell, config):
        from .torch_ref import torch

        if torch is None:
            raise NotImplementedError("torch is not installed")

    @staticmethod
    def _ratio(ours, theirs) -> float:
        import numpy as np

        from .common import wall_times

        t_ours = float(np.median(wall_times(ours, 5, warmup=1, max_seconds=3.0)))
        t_theirs = float(np.median(wall_times(theirs, 5, warmup=1, max_seconds=3.0)))
        return t_theirs / t_ours

    def track_training_step_ratio(self, cell, config):
        from .torch_ref import TorchStep

        return self._ratio(TrainingStep(cell, CONFIGS[config]), TorchStep(cell, CONFIGS[config]))

    def track_forward_ratio(self, cell, config):
        from .torch_ref import TorchStep

        ours = TrainingStep(cell, CONFIGS[config])
        return self._ratio(ours.forward, TorchStep(cell, CONFIGS[config]).forward)

    def track_own_loop_ratio(self, cell, config):
        from .torch_ref import TorchOwnLoop

        cfg = CONFIGS[config]
        return self._ratio(OwnLoopStep(cell, cfg), TorchOwnLoop(cell, cfg))

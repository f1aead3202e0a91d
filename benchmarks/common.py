"""Shared pieces of the benchmarks: the DESIGN §5 configurations, data, the FLOP count.

Used by the asv suite (``benchmarks/bench_*.py``), by ``benchmarks/compare_torch.py`` and by
``tests/test_benchmarks.py``. Importable without asv and without torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

from numrnn.kernels.cpu.parallel import set_eager_drivers

# Timed calls run threaded from the first one, as on a machine whose cache holds the
# parallel drivers (a cold one compiles them only once a fit has run long enough).
set_eager_drivers(True)

CELLS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@dataclass(frozen=True)
class Config:
    """One benchmark shape (DESIGN §5): batch, steps, input features, hidden units, layers."""

    name: str
    B: int
    T: int
    I: int  # noqa: E741 - the DESIGN's name
    H: int
    L: int
    bidirectional: bool = False

    @property
    def D(self) -> int:
        return 2 if self.bidirectional else 1


# DESIGN §5, in its order. Keep in sync with the table there.
CONFIGS = {
    c.name: c
    for c in (
        Config("tiny", 1, 100, 1, 16, 1),
        Config("small", 32, 50, 1, 32, 1),
        Config("digits", 64, 28, 28, 128, 1),
        Config("medium", 64, 100, 8, 128, 2),
        Config("bidir", 64, 200, 20, 128, 3, bidirectional=True),
        Config("large", 128, 200, 32, 512, 1),
        Config("long", 16, 1000, 4, 64, 1),
    )
}


def layer_input_sizes(cfg: Config) -> list[int]:
    """Input features of each layer: I for the first, D*H (concatenated directions) after."""
    return [cfg.I] + [cfg.D * cfg.H] * (cfg.L - 1)


def train_flops(cell: str, cfg: Config) -> int:
    """FLOPs of one training step (forward + BPTT) of the recurrent layers (DESIGN §4).

    ``6*G*B*H*(I_l+H)*T`` per layer and direction: the forward's ``x W_ih^T + h W_hh^T``
    (2 FLOPs per multiply-add) and, in BPTT, the same again for dX/dh and for dW. Element-wise
    gate math, the head and the optimizer are not counted (they are O(B*T*H), not O(B*T*H^2)).
    """
    G = GATES[cell]
    return sum(6 * G * cfg.B * cfg.H * (i + cfg.H) * cfg.T * cfg.D for i in layer_input_sizes(cfg))


def forward_flops(cell: str, cfg: Config) -> int:
    """FLOPs of the forward pass alone: one third of :func:`train_flops`."""
    return train_flops(cell, cfg) // 3


def param_count(cell: str, cfg: Config, head_out: int = 1) -> int:
    """Parameters of the network plus the linear head on the last output."""
    G = GATES[cell]
    n = sum(cfg.D * G * cfg.H * (i + cfg.H + 2) for i in layer_input_sizes(cfg))
    return n + head_out * (cfg.D * cfg.H + 1)


def theoretical_train_bytes(cell: str, cfg: Config, itemsize: int = 4) -> dict[str, int]:
    """What a training step must hold, in bytes, by category.

    - ``activations``: what BPTT must keep per layer and direction over all T steps: the
      layer's input (T*B*I_l, for dW_ih) and its outputs h_t (T*B*H); for LSTM and GRU also
      the G gate activations (T*B*G*H) and one more H-wide value per step (LSTM c_t, GRU
      ``h W_hn^T + b_hn`` for the reset-after candidate). An Elman RNN recovers tanh' from
      h_t. In a unidirectional stack (no dropout) layer l's input *is* layer l-1's output,
      one array, counted once. A bidirectional layer's input is counted per direction (the
      reverse direction keeps a reversed copy) and is the previous layer's concatenated
      output, a copy of its directions' outputs: what this design keeps, more than the
      mathematical minimum.
    - ``params``: parameters, their gradients and Adam's two moments (4 copies).
    - ``data``: the input batch x (B*T*I) and the target y (B).

    Gradient buffers are not counted: the LSTM and GRU reuse their stored gates for the
    pre-activation gradients; the Elman RNN has no such storage and needs up to T*B*H more.
    """
    G = GATES[cell]
    per_step = 0
    for layer, i in enumerate(layer_input_sizes(cfg)):
        extra = 0 if cell == "rnn" else (G + 1) * cfg.H
        kept_input = i if (layer == 0 or cfg.D == 2) else 0  # else: the previous output
        per_step += cfg.D * (kept_input + cfg.H + extra)
    act = per_step * cfg.T * cfg.B * itemsize
    params = 4 * param_count(cell, cfg) * itemsize
    data = (cfg.B * cfg.T * cfg.I + cfg.B) * itemsize
    return {"activations": act, "params": params, "data": data, "total": act + params + data}


def parse_list(text: str | None, allowed, what: str) -> list[str]:
    """``'tiny,small'`` -> ['tiny', 'small'], checked against ``allowed`` (None = all)."""
    if not text or text == "all":
        return list(allowed)
    items = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad:
        raise SystemExit(f"unknown {what} {bad}; choose from {', '.join(allowed)}")
    return items


# -- data and the training step ---------------------------------------------------------------
def make_data(cfg: Config, dtype=np.float32, seed: int = 0):
    """Random input x (B, T, I) and a regression target y (B, 1) for the last output."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg.B, cfg.T, cfg.I)).astype(dtype)
    y = rng.standard_normal((cfg.B, 1)).astype(dtype)
    return x, y


def make_network(cell: str, cfg: Config, dtype="float32", seed: int = 0):
    """A numrnn.nn network of the configuration's shape."""
    from numrnn import nn

    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
    return cls(cfg.I, cfg.H, cfg.L, bidirectional=cfg.bidirectional, dtype=dtype, random_state=seed)


def make_trainable(cell: str, cfg: Config, dtype, seed: int, lr: float):
    """A benchmark network, its one-output linear head and Adam over both (head's names
    prefixed ``head.``), as the training-step and own-loop benchmarks use them."""
    from numrnn.nn.linear import Linear
    from numrnn.nn.optim import Adam

    net = make_network(cell, cfg, dtype, seed)
    head = Linear(cfg.D * cfg.H, 1, dtype=dtype, rng=seed + 1)
    params = dict(net.parameters())
    params.update({"head." + k: v for k, v in head.params.items()})
    return net, head, Adam(params, lr=lr)


def trainable_grads(net, head) -> dict:
    """The gradients of :func:`make_trainable`'s parameters, under the optimizer's names."""
    grads = dict(net.grads)
    grads.update({"head." + k: v for k, v in head.grads.items()})
    return grads


class TrainingStep:
    """One numrnn training step: forward, linear head on the 'last' readout, MSE, BPTT, Adam.

    As in PyTorch with an input that does not require grad, no gradient w.r.t. the input is
    computed (``input_grad=False``).

    Everything a step needs is allocated here, so calling the instance is the timed work.
    ``forward()`` is the inference pass alone (``requires_grad=False``).
    """

    def __init__(self, cell: str, cfg: Config, dtype="float32", seed: int = 0, lr=1e-3):
        self.cell, self.cfg = cell, cfg
        self.x, self.y = make_data(cfg, np.dtype(dtype), seed)
        self.net, self.head, self.opt = make_trainable(cell, cfg, dtype, seed, lr)
        self.loss = float("nan")

    def __call__(self) -> float:
        from numrnn.nn.losses import mse_loss
        from numrnn.nn.readout import readout_backward, readout_forward

        out, state = self.net.forward(self.x)
        # the 'last' readout (final state of each direction, numrnn.nn.readout), as
        # RNNRegressor reads it: its gradient goes in as d_state, without a (B, T, H) d_out
        feat, ctx = readout_forward("last", out, state, None, self.cfg.L, self.cfg.D, "concat")
        pred = self.head.forward(feat)
        self.loss, dpred = mse_loss(pred, self.y)
        _, d_state = readout_backward(self.head.backward(dpred), ctx)
        self.net.backward(None, d_state, input_grad=False)
        self.opt.step(trainable_grads(self.net, self.head))
        return self.loss

    def forward(self):
        from numrnn.nn.readout import readout_forward

        out, state = self.net.forward(self.x, requires_grad=False)
        feat, _ = readout_forward("last", out, state, None, self.cfg.L, self.cfg.D, "concat")
        return self.head.forward(feat)


def step_memory(step: TrainingStep) -> tuple[float, float]:
    """(peak bytes NumPy allocates during one step, bytes held before it: params, Adam, data).

    tracemalloc sees every NumPy allocation, and the arrays a kernel allocates inside
    ``@njit`` too (Numba's NRT reports them to tracemalloc: checked with numba 0.68).
    """
    held = sum(a.nbytes for a in step.opt.params.values())  # parameters
    held += sum(a.nbytes for a in step.opt._scratch.values())  # Adam's scratch
    held += sum(a.nbytes for st in step.opt._state.values() for a in st.values())  # moments
    held += step.x.nbytes + step.y.nbytes
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return float(peak - base), float(held)


# -- timing helpers ---------------------------------------------------------------------------
#: The clock of :func:`wall_times`: wall time, or ``time.thread_time`` (CPU time of the calling
#: thread) for single-threaded comparisons on a loaded machine, where it moves far less with
#: other work than wall time does (``compare_torch.py --threads 1 --clock cpu``: numrnn runs
#: one range of rows in the calling thread, PyTorch with one thread runs inline too).
TIMER = time.perf_counter


def wall_times(fn, repeat: int, warmup: int = 1, max_seconds: float | None = None) -> list[float]:
    """Wall times (s) of ``repeat`` calls after ``warmup`` untimed ones.

    Stops early (but after at least 2 timed calls) once ``max_seconds`` of timed work is spent.
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    spent = 0.0
    for _ in range(repeat):
        t0 = TIMER()
        fn()
        dt = TIMER() - t0
        times.append(dt)
        spent += dt
        if max_seconds is not None and spent > max_seconds and len(times) >= 2:
            break
    return times


def sgemm_rates(shapes, repeat: int = 5) -> dict[tuple[int, int, int], float]:
    """Best GFLOP/s of a NumPy float32 ``(M, K) @ (K, N)`` for each ``(M, K, N)`` shape."""
    rates = {}
    rng = np.random.default_rng(0)
    for M, K, N in shapes:
        a = rng.standard_normal((M, K)).astype(np.float32)
        b = rng.standard_normal((K, N)).astype(np.float32)
        out = np.empty((M, N), np.float32)

        def matmul(a=a, b=b, out=out):
            np.matmul(a, b, out=out)

        best = min(wall_times(matmul, repeat, warmup=1))
        rates[(M, K, N)] = 2.0 * M * K * N / best / 1e9
    return rates


def _numrnn_search_path() -> str:
    """The directory this process imports ``numrnn`` from (the checkout, or site-packages
    in an asv environment), so a subprocess benchmarks the same code."""
    import numrnn

    return os.path.dirname(os.path.dirname(os.path.abspath(numrnn.__file__)))


def run_python(code: str, env_extra: dict | None = None, timeout: float = 600) -> str:
    """Run ``code`` in a fresh interpreter that imports the same numrnn; return its stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (_numrnn_search_path(), env.get("PYTHONPATH", "")) if p
    )
    env.update(env_extra or {})
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=tempfile.gettempdir(),  # not the checkout: '' on sys.path must not shadow numrnn
    )
    if res.returncode != 0:
        raise RuntimeError(f"subprocess failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return res.stdout


_STARTUP_CODE = """
import time
import numpy as np
t0 = time.perf_counter()
import numrnn.nn
t1 = time.perf_counter()
import sys
sys.path.insert(0, {bench!r})
from common import CONFIGS, TrainingStep
step = TrainingStep({cell!r}, CONFIGS[{config!r}])
t2 = time.perf_counter()
step()
t3 = time.perf_counter()
step()
t4 = time.perf_counter()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec, so a child would report
# its parent's peak (the benchmark driver's), not its own.
try:
    with open("/proc/self/status") as f:
        peak = [int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")][0]
except (OSError, IndexError):
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("RESULT", t1 - t0, t3 - t2, t4 - t3, peak)
"""


def startup_in_subprocess(
    cell: str, cache_dir: str | None, config: str = "tiny"
) -> dict[str, float]:
    """Start-up costs of numrnn in a new process whose ``NUMBA_CACHE_DIR`` is ``cache_dir``
    (None: inherit this process's environment, usually Numba's default cache).

    Returns ``import`` (seconds to ``import numrnn.nn`` after NumPy, numba included),
    ``first`` and ``second`` (the first and second training step of ``cell`` on ``config``)
    and ``maxrss_kib``. With an empty ``cache_dir`` the first step compiles every kernel it
    needs (cold start) and fills the directory; a second call with the same directory is a
    warm start (kernels load from the cache).
    """
    code = _STARTUP_CODE.format(cell=cell, config=config, bench=os.path.dirname(__file__))
    out = run_python(code, None if cache_dir is None else {"NUMBA_CACHE_DIR": cache_dir})
    line = [s for s in out.splitlines() if s.startswith("RESULT")][-1].split()
    t_import, t_first, t_second, maxrss = map(float, line[1:])
    return {"import": t_import, "first": t_first, "second": t_second, "maxrss_kib": maxrss}


def cold_and_warm_start(cell: str, config: str = "tiny") -> tuple[dict, dict]:
    """:func:`startup_in_subprocess` twice on one fresh cache directory: (cold, warm)."""
    with tempfile.TemporaryDirectory(prefix="numrnn-cache-") as d:
        cold = startup_in_subprocess(cell, d, config)
        warm = startup_in_subprocess(cell, d, config)
    return cold, warm


# -- a user's own loop (issue #18 mode "own loop") --------------------------------------------
class OwnLoopStep:
    """One step of a training loop as a user writes it with ``numrnn.nn`` (the seeds' and
    ``examples/sine_lstm.py``'s pattern): ``out, _ = net.forward(x)`` with the defaults, a
    linear head and MSE on *every* step, ``dx = net.backward(d_out)`` with the input
    gradient returned (the default), Adam on every parameter.

    The PyTorch counterpart (``benchmarks/torch_ref.py``) feeds an input with
    ``requires_grad=True``, so both compute the input gradient.
    """

    def __init__(self, cell: str, cfg: Config, dtype="float32", seed: int = 0, lr=1e-3):
        self.cfg = cfg
        self.x, _ = make_data(cfg, np.dtype(dtype), seed)
        self.y = np.random.default_rng(seed + 2).standard_normal((cfg.B, cfg.T, 1)).astype(dtype)
        self.net, self.head, self.opt = make_trainable(cell, cfg, dtype, seed, lr)
        self.loss = float("nan")
        self.dx = None

    def __call__(self) -> float:
        from numrnn.nn.losses import mse_loss

        out, _ = self.net.forward(self.x)
        self.loss, dpred = mse_loss(self.head.forward(out), self.y)
        self.dx = self.net.backward(self.head.backward(dpred))
        self.opt.step(trainable_grads(self.net, self.head))
        return self.loss


# -- estimator fit end to end (issue #18 mode "fit") ------------------------------------------
#: Configurations whose data the estimator fit mode trains on, with the estimator's task.
FIT_TASKS = {"small": "regression", "digits": "classification", "medium": "regression"}
#: Minibatches per epoch of the fit mode's data (n_samples = FIT_BATCHES * B).
FIT_BATCHES = 16
N_CLASSES = 10


def make_fit_data(cfg: Config, seed: int = 0):
    """A data set of ``FIT_BATCHES * B`` sequences shaped like ``cfg`` (float32) and its
    target: regression (a sum of noisy sines, target the mean of the last steps' first
    feature) or, for ``digits``, 10 classes (a class template per row plus noise, as image
    rows read as a sequence)."""
    rng = np.random.default_rng(seed)
    n = FIT_BATCHES * cfg.B
    if FIT_TASKS[cfg.name] == "classification":
        templates = rng.standard_normal((N_CLASSES, cfg.T, cfg.I))
        y = rng.integers(0, N_CLASSES, n)
        X = templates[y] + 1.5 * rng.standard_normal((n, cfg.T, cfg.I))
        return X.astype(np.float32), y
    t = np.arange(cfg.T)[None, :, None]
    freq = rng.uniform(0.05, 0.3, (n, 1, cfg.I))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, cfg.I))
    X = np.sin(freq * t + phase) + 0.1 * rng.standard_normal((n, cfg.T, cfg.I))
    y = X[:, -5:, 0].mean(axis=1)
    return X.astype(np.float32), y.astype(np.float32)


def make_estimator(cfg: Config, cell: str, epochs: int, seed: int = 0):
    """The estimator of the fit mode: the configuration's sizes, ``epochs`` epochs exactly.

    Defaults otherwise (Adam at 1e-3, ``alpha=1e-4`` on the weights, ``clip_norm=1``,
    shuffling), except what would change the work: no segments (the PyTorch loop reads every
    step), the 'last' readout (the PyTorch loop's head reads ``h_n``; the classifier's
    default 'auto' pools unfolded sequences), no early end (``n_iter_no_change`` past
    ``epochs``) and one network (``n_models=1`` where the estimator has it).
    """
    from numrnn import RNNClassifier, RNNRegressor

    cls = RNNClassifier if FIT_TASKS[cfg.name] == "classification" else RNNRegressor
    # one network: a seed ensemble (RNNClassifier's n_models) would be n times the work
    ensemble = {"n_models": 1} if "n_models" in cls().get_params() else {}
    return cls(
        **ensemble,
        cell=cell,
        hidden_size=cfg.H,
        num_layers=cfg.L,
        bidirectional=cfg.bidirectional,
        batch_size=cfg.B,
        max_iter=epochs,
        n_iter_no_change=epochs + 1,
        segment_length=None,
        readout="last",
        random_state=seed,
    )


class EstimatorFit:
    """``make_estimator(...).fit(X, y)`` on :func:`make_fit_data`, end to end."""

    def __init__(self, cell: str, cfg: Config, epochs: int = 3, seed: int = 0):
        self.cell, self.cfg, self.epochs, self.seed = cell, cfg, epochs, seed
        self.X, self.y = make_fit_data(cfg, seed)
        self.model = None

    def __call__(self):
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed budget of epochs
            self.model = make_estimator(self.cfg, self.cell, self.epochs, self.seed).fit(
                self.X, self.y
            )
        return self.model


class EstimatorPredict:
    """``predict`` of the fit mode's estimator (fitted one epoch) over all
    ``FIT_BATCHES * B`` sequences of :func:`make_fit_data`: many short sequences in one
    call, as a scoring or serving batch."""

    def __init__(self, cell: str, cfg: Config, seed: int = 0):
        self.X = make_fit_data(cfg, seed)[0]
        self.model = EstimatorFit(cell, cfg, epochs=1, seed=seed)()

    def __call__(self):
        return self.model.predict(self.X)


# -- one-step forecast with carried state (issue #18 mode "latency") --------------------------
#: The latency mode's model: a hidden-32 LSTM regressor on one feature (the tiny config's
#: input), the streaming case of a global forecasting model.
LATENCY_HIDDEN = 32


def fitted_latency_model(seed: int = 0):
    """An ``RNNRegressor(cell='lstm', hidden_size=32)`` fitted briefly on sine windows."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from numrnn import RNNRegressor

    cfg = Config("latency", 64, 100, 1, LATENCY_HIDDEN, 1)
    rng = np.random.default_rng(seed)
    t = np.arange(cfg.T + 1)[None, :]
    wave = np.sin(0.1 * t + rng.uniform(0, 2 * np.pi, (cfg.B, 1))).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return RNNRegressor(
            cell="lstm", hidden_size=LATENCY_HIDDEN, max_iter=2, segment_length=None,
            random_state=seed,
        ).fit(wave[:, :-1, None], wave[:, -1])  # fmt: skip


class OneStepForecast:
    """One new observation in, the next value out, the recurrent state carried between calls:
    ``numrnn.forecasting.generate(model, x_t, 1, state=state, return_state=True)``, the public
    call for a fitted estimator that takes the state in and gives it back. ``stream()`` is
    the same step through ``numrnn.forecasting.Stream(model).step(x_t)``, which keeps the
    state inside (same bits). ``network()`` is the step through ``numrnn.nn`` alone
    (``network_.forward(x_t, state, requires_grad=False)`` and the head)."""

    def __init__(self, seed: int = 0):
        self.model = fitted_latency_model(seed)
        net = self.model.network_
        H = net.hidden_size
        self.state = (np.zeros((1, 1, H), np.float32), np.zeros((1, 1, H), np.float32))
        self.x = np.full((1, 1, 1), 0.5, dtype=np.float32)
        self.value = 0.5
        from numrnn.forecasting import Stream

        self.stepper = Stream(self.model)

    def __call__(self):
        from numrnn.forecasting import generate

        y, self.state = generate(self.model, self.value, 1, state=self.state, return_state=True)
        return y

    def stream(self):
        return self.stepper.step(self.value)

    def network(self):
        net, head = self.model.network_, self.model.head_
        out, self.state = net.forward(self.x, self.state, requires_grad=False)
        return out[:, -1] @ head.weight.T + head.bias


def median_us(fn, repeat: int = 2000, warmup: int = 50) -> float:
    """Median wall time of ``fn`` in microseconds (for calls of a few microseconds)."""
    times = wall_times(fn, repeat, warmup)
    return 1e6 * float(np.median(times))

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


class TrainingStep:
    """One numrnn training step: forward, linear head on the 'last' readout, MSE, BPTT, Adam.

    As in PyTorch with an input that does not require grad, no gradient w.r.t. the input is
    computed (``input_grad=False``).

    Everything a step needs is allocated here, so calling the instance is the timed work.
    ``forward()`` is the inference pass alone (``requires_grad=False``).
    """

    def __init__(self, cell: str, cfg: Config, dtype="float32", seed: int = 0, lr=1e-3):
        from numrnn.nn.linear import Linear
        from numrnn.nn.optim import Adam

        self.cell, self.cfg = cell, cfg
        self.x, self.y = make_data(cfg, np.dtype(dtype), seed)
        self.net = make_network(cell, cfg, dtype, seed)
        self.head = Linear(cfg.D * cfg.H, 1, dtype=dtype, rng=seed + 1)
        params = dict(self.net.parameters())
        params.update({"head." + k: v for k, v in self.head.params.items()})
        self.opt = Adam(params, lr=lr)
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
        grads = dict(self.net.grads)
        grads.update({"head." + k: v for k, v in self.head.grads.items()})
        self.opt.step(grads)
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
def wall_times(fn, repeat: int, warmup: int = 1, max_seconds: float | None = None) -> list[float]:
    """Wall times (s) of ``repeat`` calls after ``warmup`` untimed ones.

    Stops early (but after at least 2 timed calls) once ``max_seconds`` of timed work is spent.
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    spent = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
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

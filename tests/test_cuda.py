"""CUDA backend tests.

Without a GPU the kernels run on Numba's CUDA simulator, which must be switched on before
numba is first imported. It is therefore enabled only in *subprocesses*
(``tests/_cuda_sim_cases.py``), never in this pytest process, so the rest of the session
keeps the real CPU and CUDA targets. Cases are batched into four subprocesses run side by
side (the simulator runs every GPU thread as a Python thread, so it is slow).

``test_compile_ptx`` compiles every kernel to PTX for float32 and float64 (no GPU needed,
but libnvvm and NVRTC must be found); ``@pytest.mark.gpu`` tests need a real GPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _cases import CUDA_CASES

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SIM_GROUPS = [  # balanced by simulator time; ``p_`` cases: the persistent kernels
    ["lstm_peep_f64_bi2", "p_lstm_f64_bi", "p_rnn_relu_f32"],
    ["gru_before_f64_2", "p_gru_before_f64_bi", "lstm_f32"],
    ["gru_before_f32_bi", "rnn_tanh_f64_bi", "p_gru_after_f32_bi"],
    ["gru_after_f64_bi", "rnn_relu_f32_2", "p_lstm_peep_f32_2", "p_rnn_tanh_f64_bi2"],
]
# Estimator fits that stay on the device (tests/_cuda_fit_cases.py): function names to run,
# and the CASE names they print.
FIT_GROUPS = [
    ["fit_reg_adam_f64", "fit_clf_sgd_f64", "fit_seq_tbptt_f32", "fit_pooled_f64"],
    ["transfers_per_fit", "kernels_vs_numpy", "fit_lifecycle"],
]
FIT_CASES = [
    "fit_reg_adam_f64", "fit_clf_sgd_f64", "fit_seq_tbptt_f32", "fit_pooled_mean_f64",
    "fit_pooled_max_f64",
    "fit_lifecycle", "transfers_per_fit", "device_fit_deterministic",
    *(f"{k}_{dt}" for dt in ("float64", "float32")
      for k in ("kernels_optim", "clip_norm", "kernels_clip")),
]  # fmt: skip


def _numba_cuda_missing() -> bool:
    """numba-cuda (the 'cuda' extra) absent: numba's bundled, deprecated ``numba.cuda`` is
    then all there is, and it cannot compile these kernels. CUDA tests skip, not fail."""
    import importlib.util

    return importlib.util.find_spec("numba_cuda") is None


NO_NUMBA_CUDA = "numba-cuda is not installed (pip install 'numrnn[cuda]')"


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def sim_results():
    """Launch every simulator group at once; map case name -> (error, tolerance)."""
    jobs = [("_cuda_sim_cases.py", g) for g in SIM_GROUPS]
    jobs += [("_cuda_fit_cases.py", g) for g in FIT_GROUPS]
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / script), *group],
            env=_env(NUMBA_ENABLE_CUDASIM="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for script, group in jobs
    ]
    results = {}
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0 and _numba_cuda_missing():
            pytest.skip(NO_NUMBA_CUDA)
        assert p.returncode == 0, f"simulator subprocess failed:\n{err[-4000:]}"
        for line in out.splitlines():
            if line.startswith("CASE "):
                _, name, e, tol = line.split()
                results[name] = (float(e), float(tol))
    return results


def test_simulator_groups_cover_the_case_matrix():
    assert sorted(c for g in SIM_GROUPS for c in g) == sorted(CUDA_CASES)


@pytest.mark.parametrize("case", [c for g in SIM_GROUPS for c in g])
def test_network_matches_cpu_on_simulator(sim_results, case):
    """Outputs, states, dx, parameter and initial-state gradients equal the CPU backend."""
    err, tol = sim_results[case]
    assert err <= tol, f"{case}: max abs difference {err} > {tol}"


@pytest.mark.parametrize("case", [c for g in SIM_GROUPS for c in g])
def test_network_matches_reference_on_simulator(sim_results, case):
    """The same quantities equal the float64 reference (numrnn.testing)."""
    err, tol = sim_results[f"ref_{case}"]
    assert err <= tol, f"{case}: max abs difference from the reference {err} > {tol}"


@pytest.mark.parametrize("case", FIT_CASES)
def test_device_fit_on_simulator(sim_results, case):
    """device='cuda' estimator fits equal device='cpu' (weights, optimizer state, loss curve,
    predictions); host-to-device transfers per fit do not grow with epochs; the training-step
    kernels equal nn.optim / nn.clip."""
    assert case in sim_results, f"{case}: no result (see the subprocess output)"
    err, tol = sim_results[case]
    assert err <= tol, f"{case}: error {err} > {tol}"


def test_compile_ptx():
    """Every kernel compiles to PTX for float32 and float64; float32 code has no .f64."""
    if _numba_cuda_missing():
        pytest.skip(NO_NUMBA_CUDA)
    env = _env(NUMBA_FORCE_CUDA_CC="8.0")  # no driver: do not ask NVRTC/driver for the arch
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if "CUDA_HOME" not in env and Path("/usr/local/cuda-13.0").is_dir():
        env["CUDA_HOME"] = "/usr/local/cuda-13.0"
    p = subprocess.run(
        [sys.executable, str(HERE / "_cuda_ptx.py")], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    if p.returncode != 0:
        errors = [ln for ln in p.stderr.splitlines() if "Error" in ln and ":" in ln]
        last = (errors or p.stderr.strip().splitlines() or ["?"])[-1].strip()
        if any(s in p.stderr for s in ("nvrtc", "NVRTC", "libnvvm", "NVVM", "libdevice")):
            pytest.skip(f"CUDA toolchain for compile_ptx not found: {last}")
        pytest.fail(p.stderr[-4000:])
    lines = [ln.split() for ln in p.stdout.splitlines() if ln.startswith("PTX ")]
    assert len(lines) == 2 * 28 + 2 * 13  # 13: numrnn.kernels.cuda.train
    assert not [ln for ln in lines if ln[2] == "float32" and ln[4] == "True"]
    # Persistent kernels read other blocks' writes after a grid sync: no read-only-cache
    # loads anywhere, and exactly the persistent kernels synchronize the grid.
    assert not [ln for ln in lines if ln[5] == "True"]
    persistent = {f"_{c}_{d}_persistent" for c in ("rnn", "lstm") for d in ("forward", "backward")}
    persistent |= {f"_gru_{d}_persistent_{r}" for d in ("forward", "backward")
                   for r in ("after", "before")}  # fmt: skip
    assert {ln[1] for ln in lines if ln[6] == "True"} == persistent
    assert "PTX-OK" in p.stdout


def _gpu_available():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return False
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_available(), reason="needs a real CUDA GPU")
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gpu_matches_cpu(cell):
    """On real hardware: a bidirectional 2-layer float64 network equals the CPU backend."""
    import numrnn.nn as nn

    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
    res = []
    for device in ("cpu", "cuda"):
        net = cls(6, 33, 2, bidirectional=True, dtype="float64", random_state=0, device=device)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((5, 9, 6))
        lengths = np.array([9, 3, 7, 1, 9])
        out, _ = net.forward(x, lengths=lengths)
        dx = net.backward(np.ones_like(out))
        res.append([out, dx, *net.grads.values()])
    for a, b in zip(*res, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-10)


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_available(), reason="needs a real CUDA GPU")
@pytest.mark.parametrize(
    "cell,opts",
    [("rnn", {"nonlinearity": "relu"}), ("lstm", {"peephole": True}),
     ("gru", {"reset_after": True}), ("gru", {"reset_after": False})],
)  # fmt: skip
@pytest.mark.parametrize(
    "backend",
    [{"persistent": True}, {"persistent": True, "chunks": 3, "threads": 32},
     {"persistent": False, "rows": 3, "threads": 64}],
    ids=["persistent", "persistent-3-chunks", "per-step-3-rows"],
)  # fmt: skip
def test_gpu_paths_match_cpu(cell, opts, backend):
    """On real hardware: each time-loop path (several cooperative blocks, hidden units split
    over blocks, several rows per block) equals the CPU backend in float64."""
    import numrnn.nn as nn
    from numrnn.backends import backend_options

    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
    res = []
    for device in ("cpu", "cuda"):
        with backend_options(cuda=backend):
            net = cls(
                6, 33, 2, bidirectional=True, dtype="float64", random_state=0, device=device,
                **opts,
            )  # fmt: skip
        rng = np.random.default_rng(0)
        x = rng.standard_normal((7, 9, 6))
        lengths = np.array([9, 3, 7, 1, 9, 4, 8])
        out, _ = net.forward(x, lengths=lengths)
        dx = net.backward(np.ones_like(out))
        res.append([out, dx, *net.grads.values()])
    for a, b in zip(*res, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-10)


def test_cuda_without_gpu_is_a_clear_error(monkeypatch):
    """device='cuda' with no GPU names the problem and the fix."""
    from numrnn import _config

    monkeypatch.setattr(_config, "cuda_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        _config.resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_available(), reason="needs a real CUDA GPU")
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_gpu_fit_matches_cpu(solver):
    """On real hardware: a device-resident float64 fit (clipping on) equals the CPU fit."""
    import warnings

    from numrnn import RNNClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 7, 3))
    X[::3, 5:] = np.nan
    y = (np.nan_to_num(X[:, :, 0]).sum(axis=1) > 0).astype(int)
    res = []
    for device in ("cpu", "cuda"):
        m = RNNClassifier(
            cell="lstm", hidden_size=8, bidirectional=True, solver=solver, max_iter=3,
            batch_size=16, clip_norm=0.5, clip_value=0.2, dtype="float64", random_state=0,
            device=device, n_models=1,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(X, y)
        res.append([m.coef_, *m.network_.state_dict().values(), m.predict_proba(X)])
    for a, b in zip(*res, strict=True):
        # FMA contraction on the GPU: agreement to rounding, not to the bit
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def test_launch_plan_follows_measured_limits(monkeypatch):
    """'auto' keeps W_hh on chip over up to AUTO_MAX_CHUNKS blocks and not beyond; per-step
    blocks shrink to the shared-memory budget instead of failing at launch."""
    if _numba_cuda_missing():
        pytest.skip(NO_NUMBA_CUDA)
    from numrnn.backends import cuda as bc
    from numrnn.kernels.cuda import lstm as KL

    be = bc.CUDABackend()
    monkeypatch.setattr(be, "_cooperative_blocks", lambda *a: 10_000)

    def plan(H):
        return be._plan_persistent(
            None, lambda hc, rpp: (hc, rpp), H=H, B=64, K_w=H, nq=4, row_len=4 * H, itemsize=4
        )

    grid, _, shared, (hc, _) = plan(256)  # LSTM H=256: 24 slices of W_hh (measured faster)
    assert 1 < grid[0] <= bc.AUTO_MAX_CHUNKS and grid[0] * hc >= 256
    assert shared <= bc.SHARED_BUDGET
    assert plan(512) is None  # ~100 slices: the per-step kernels (measured faster)
    step = [(None, KL.BACKWARD, None)]  # stages 4H-wide rows
    be.rows, be.threads = 8, 128
    rows, tj = be._per_step_block(step, 512, 128, 4)
    assert rows < 8 and rows * tj == 128
    assert bc._step_shared(KL.BACKWARD, rows, tj, 512, be.tile, 4) <= bc.SHARED_BUDGET
    with pytest.raises(ValueError, match="hidden_size=8192 is too large"):
        be._per_step_block(step, 8192, 128, 4)

"""The benchmark tools must not rot: FLOP formula, config table, and a tiny compare run."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # `pytest` (not `python -m pytest`) does not put the root on sys.path
    sys.path.insert(0, ROOT)

from benchmarks.common import (  # noqa: E402
    CONFIGS,
    GATES,
    forward_flops,
    layer_input_sizes,
    param_count,
    theoretical_train_bytes,
    train_flops,
)


def test_config_table_matches_design():
    # DESIGN §5: name -> (B, T, I, H, L)
    expected = {
        "tiny": (1, 100, 1, 16, 1),
        "small": (32, 50, 1, 32, 1),
        "digits": (64, 28, 28, 128, 1),
        "medium": (64, 100, 8, 128, 2),
        "bidir": (64, 200, 20, 128, 3),
        "large": (128, 200, 32, 512, 1),
        "long": (16, 1000, 4, 64, 1),
    }
    assert list(CONFIGS) == list(expected)
    for name, shape in expected.items():
        c = CONFIGS[name]
        assert (c.B, c.T, c.I, c.H, c.L) == shape
        assert c.bidirectional == (name == "bidir")
    assert GATES == {"rnn": 1, "lstm": 4, "gru": 3}


def test_flop_formula():
    # One layer, one direction: 6*G*B*H*(I+H)*T.
    c = CONFIGS["large"]
    assert train_flops("lstm", c) == 6 * 4 * 128 * 512 * (32 + 512) * 200
    assert train_flops("rnn", c) * 4 == train_flops("lstm", c)
    assert forward_flops("gru", c) * 3 == train_flops("gru", c)
    # Stacked: the second layer's input is H wide.
    m = CONFIGS["medium"]
    assert layer_input_sizes(m) == [8, 128]
    assert train_flops("gru", m) == 6 * 3 * 64 * 128 * 100 * ((8 + 128) + (128 + 128))
    # Bidirectional, 3 layers: two directions each, inputs I then 2H.
    b = CONFIGS["bidir"]
    assert layer_input_sizes(b) == [20, 256, 256]
    assert train_flops("rnn", b) == 2 * 6 * 64 * 128 * 200 * ((20 + 128) + 2 * (256 + 128))


def test_param_count_and_memory_match_the_network():
    pytest.importorskip("numba")
    from benchmarks.common import make_network

    for cell in GATES:
        for name in ("tiny", "medium", "bidir"):
            cfg = CONFIGS[name]
            net = make_network(cell, cfg)
            n = sum(p.size for p in net.parameters().values())
            assert param_count(cell, cfg) == n + cfg.D * cfg.H + 1  # + head
            need = theoretical_train_bytes(cell, cfg)
            assert need["total"] == need["activations"] + need["params"] + need["data"]
            assert need["params"] == 4 * 4 * param_count(cell, cfg)


@pytest.mark.parametrize("cell", sorted(GATES))
def test_training_step_peak_memory_is_bounded(cell):
    """Issue #5: peak memory of a training step <= 1.3 x (activations BPTT keeps + params +
    data). Memory is deterministic (tracemalloc), unlike time, so this can be a test.

    The Elman RNN stores only x and h; its hoisted weight gradients need the pre-activation
    gradients of all T steps at once, a (T, B, H) buffer the LSTM and GRU find in their
    stored gates. It is held to 1.3 x (need + that buffer) until the backward hoists per
    chunk of steps.
    """
    pytest.importorskip("numba")
    from benchmarks.common import TrainingStep, step_memory

    for name in ("small", "digits"):
        cfg = CONFIGS[name]
        step = TrainingStep(cell, cfg)
        step()  # compile (or load) the kernels outside the measurement
        peak, held = step_memory(step)
        need = theoretical_train_bytes(cell, cfg)["total"]
        if cell == "rnn":
            need += cfg.T * cfg.B * cfg.H * 4
        assert peak + held <= 1.3 * need, (name, cell, (peak + held) / need)


def run_compare_torch(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """``benchmarks/compare_torch.py ARGS`` in a subprocess from the repository root."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = os.path.join(ROOT, "benchmarks", "compare_torch.py")
    return subprocess.run(
        [sys.executable, script, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )


def test_compare_torch_prints_the_table():
    # The training-step table only: the other modes (and their fits on the digits data)
    # are the next test's, and all of them under 120 s did not fit on a loaded 2-core VM.
    res = run_compare_torch(
        ["--modes", "step", "--configs", "tiny", "--cells", "rnn", "--repeat", "2",
         "--no-startup"],
        timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.splitlines()
    header = next(line for line in lines if line.startswith("config"))
    for col in ("train ms", "torch ms", "GFLOP/s", "%sgemm", "fwd ms", "mem MB", "need MB"):
        assert col in header
    row = next(line for line in lines if line.startswith("tiny"))
    assert row.split()[:2] == ["tiny", "rnn"]
    assert float(row.split()[2]) > 0  # numrnn's training step time in ms
    assert "sgemm GFLOP/s" in res.stdout


def test_compare_torch_new_modes_print_their_tables():
    """Issue #18's modes: own loop, estimator fit end to end and predict, one-step latency,
    each with the PyTorch column (or '-' without torch)."""
    res = run_compare_torch(
        [
            "--modes",
            "ownloop,fit,predict,latency",
            "--configs",
            "tiny",
            "--cells",
            "rnn",
            "--fit-data",
            "small",
            "--epochs",
            "1",
            "--fit-repeat",
            "1",
            "--repeat",
            "1",
            "--latency-repeat",
            "20",
        ],  # fmt: skip
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    assert "Own loop" in out and "Estimator fit end to end" in out and "One-step" in out
    assert "Estimator predict over many short sequences" in out
    assert "load average" in out
    lines = out.splitlines()
    own = next(ln for ln in lines if ln.startswith("tiny"))
    assert own.split()[:2] == ["tiny", "rnn"] and float(own.split()[2]) > 0
    fit = next(ln for ln in lines if ln.startswith("small"))
    assert fit.split()[:4] == ["small", "rnn", "regression", "16"] and float(fit.split()[4]) > 0
    predict = [ln for ln in lines if ln.startswith("small")][1]
    assert predict.split()[:4] == ["small", "rnn", "512", "50"] and float(predict.split()[4]) > 0
    step = next(ln for ln in lines if ln.startswith("numrnn generate"))
    assert float(step.split()[-3]) > 0  # microseconds
    stream = next(ln for ln in lines if ln.startswith("numrnn Stream"))
    assert float(stream.split()[-3]) > 0


def test_fit_mode_runs_the_same_work_as_the_torch_loop():
    # the estimator runs exactly `epochs` epochs over FIT_BATCHES minibatches of B, as the
    # PyTorch loop does: no early stop, no segment folding
    from benchmarks.common import FIT_BATCHES, EstimatorFit

    cfg = CONFIGS["small"]
    model = EstimatorFit("gru", cfg, epochs=2)()
    assert model.n_iter_ == 2 and model.t_ == 2 * FIT_BATCHES * cfg.B
    assert model.segment_length_ == 1 and model.network_.hidden_size == cfg.H
    clf = EstimatorFit("rnn", CONFIGS["digits"], epochs=1)()
    assert getattr(clf, "n_models", 1) == 1 and clf.t_ == FIT_BATCHES * CONFIGS["digits"].B


def test_startup_subprocess_reports_times():
    # Numba's default cache (filled by the tests above): the warm path, quick.
    from benchmarks.common import startup_in_subprocess

    r = startup_in_subprocess("rnn", None)
    assert set(r) == {"import", "first", "second", "maxrss_kib"}
    assert r["import"] > 0 and r["first"] > 0 and r["second"] > 0 and r["maxrss_kib"] > 0


def test_classification_accuracy_smallest_mode(capsys):
    # the synthetic set needs no aeon; the real sets and yardsticks are the bench extra's
    from benchmarks.classification_accuracy import RECIPES, main

    res = main(["--synthetic", "--recipes", "default,old", "--seeds", "0", "--max-iter", "3"])
    out = capsys.readouterr().out
    assert set(res["synthetic"]) == {"default", "old"} and "mean accuracy" in out
    acc, std, wall, cpu, epochs = res["synthetic"]["default"]
    assert 0.0 <= acc <= 1.0 and std == 0.0 and epochs == 3 and wall > 0
    assert RECIPES["default"] == {}  # the default column is RNNClassifier() as a user types it


def test_paired_ms_alternates_the_libraries(monkeypatch):
    # A slow phase of the machine must fall on both libraries: long calls alternate call by
    # call, short ones in rounds with an untimed call at each switch.
    from benchmarks import compare_torch as ct

    clock, order = [0.0], []
    monkeypatch.setattr(ct.common, "TIMER", lambda: clock[0])

    def call(name: str, seconds: float):
        def fn():
            order.append(name)
            clock[0] += seconds

        return fn

    ours, theirs = ct.paired_ms(call("o", 0.2), call("t", 0.3), repeat=4, max_seconds=100)
    assert order == ["o", "t"] * 5  # a warm-up each, then 4 timed pairs
    assert (ours, theirs) == pytest.approx((200.0, 300.0))
    order.clear()
    ours, theirs = ct.paired_ms(call("o", 0.001), call("t", 0.002), repeat=6, max_seconds=100)
    rounds = ["o", "o", "o", "t", "t", "t"]  # the first call of each block is untimed
    assert order == ["o", "t"] * 3 + rounds * 2
    assert (ours, theirs) == pytest.approx((1.0, 2.0))
    order.clear()
    ct.paired_ms(call("o", 0.5), call("t", 0.5), repeat=10, max_seconds=2.5)
    assert order == ["o", "t"] * 6  # stops once either library has spent max_seconds
    order.clear()
    ct.paired_ms(call("o", 5.0), call("t", 5.0), repeat=10, max_seconds=4)
    assert order == ["o", "t"] * 4  # but times at least ROUNDS calls of each

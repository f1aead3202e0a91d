"""Reliability under threads, hardened deployments and hostile files (issue #19).

Each case here failed before its fix. Kept fast: tiny models, a sample of bit flips,
subprocesses only where a resource limit or an environment variable is the point.
"""

import threading
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from numrnn.estimators import RNNClassifier, RNNRegressor
from numrnn.nn import GRU, LSTM, RNN


def _quiet_fit(m, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return m.fit(X, y, **kw)


# -- 1. thread-safe predict -------------------------------------------------------------


def _in_threads(fn, n=8):
    """Run ``fn(i)`` in ``n`` threads started together; return the results in order."""
    results, errors = [None] * n, []
    barrier = threading.Barrier(n)

    def work(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("output", ["last", "sequence"])
def test_concurrent_predict_with_dropout_matches_serial(cell, output):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 7, 2))
    y = X.sum(axis=(1, 2)) if output == "last" else X.sum(axis=2)
    m = RNNRegressor(
        cell=cell, hidden_size=6, num_layers=3, dropout=0.5, bidirectional=True,
        output=output, max_iter=2, random_state=0,
    )  # fmt: skip
    _quiet_fit(m, X, y)
    serial = m.predict(X)
    results = _in_threads(lambda i: [m.predict(X) for _ in range(3)])
    for per_thread in results:
        for r in per_thread:
            np.testing.assert_array_equal(r, serial)
    # predict left the network's mode and backward cache alone
    assert m.network_.training is True


def test_concurrent_predict_unidirectional_dropout_classifier():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 9, 3))
    y = (X[:, :, 0].sum(axis=1) > 0).astype(int)
    m = RNNClassifier(cell="lstm", hidden_size=5, num_layers=2, dropout=0.4, max_iter=2,
                      random_state=0)  # fmt: skip
    _quiet_fit(m, X, y)
    serial = m.predict_proba(X)
    for r in _in_threads(lambda i: m.predict_proba(X)):
        np.testing.assert_array_equal(r, serial)


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_network_training_flag_is_a_forward_argument(cls):
    net = cls(3, 4, num_layers=2, dropout=0.5, bidirectional=True, random_state=0)
    x = np.random.default_rng(2).standard_normal((5, 6, 3)).astype(np.float32)
    rng_state = net._rng.bit_generator.state
    ref, _ = net.eval().forward(x, requires_grad=False)
    net.train()
    out, _ = net.forward(x, requires_grad=False, training=False)
    np.testing.assert_array_equal(out, ref)
    assert net.training is True
    assert net._rng.bit_generator.state == rng_state  # no dropout mask drawn
    # The estimators' inference path writes nothing: a training forward's cache survives it.
    net.forward(x)
    np.testing.assert_array_equal(net._inference(x)[0], ref)
    dx = net.backward(np.ones((5, 6, 8), np.float32))
    assert dx.shape == x.shape


# -- 3, 4, 8. persistence ---------------------------------------------------------------
import io as _io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

from numrnn.io import FileFormatError, load, save  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_rs = np.random.default_rng(3)
XS = _rs.standard_normal((12, 5, 2))
YS = XS.sum(axis=(1, 2))


@pytest.fixture(scope="module")
def small_model():
    return _quiet_fit(RNNRegressor(cell="lstm", hidden_size=3, max_iter=1, random_state=0), XS, YS)


@pytest.fixture
def model_file(small_model, tmp_path):
    p = tmp_path / "m.npz"
    save(small_model, p)
    return p


def _edit_header(src, dst, edit):
    """Copy an archive (stored, as save writes it) with its JSON header passed through ``edit``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "__numrnn__.npy":
                h = json.loads(str(np.load(_io.BytesIO(data))[()]))
                h = edit(h) or h
                buf = _io.BytesIO()
                np.save(buf, np.array(json.dumps(h)))
                data = buf.getvalue()
            zout.writestr(info.filename, data)
    return dst


def _run_limited(code, mem_mb=600):
    """Run ``code`` in a subprocess whose address space is capped at ``mem_mb`` MB."""
    prelude = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({mem_mb << 20}, {mem_mb << 20}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, env=env,
        timeout=300,
    )  # fmt: skip


def test_crafted_hidden_size_is_refused_before_allocating(model_file, tmp_path):
    def edit(h):
        h["network"]["hidden_size"] = 12000
        h["params"]["hidden_size"] = 12000

    bad = _edit_header(model_file, tmp_path / "big.npz", edit)
    with pytest.raises(FileFormatError, match="hidden_size"):
        load(bad)
    # the same under a memory cap: refused, not killed (12000 hidden LSTM weights: ~2.3 GB)
    code = (
        "from numrnn.io import load, FileFormatError\n"
        f"try:\n    load({str(bad)!r})\nexcept FileFormatError:\n    print('REFUSED')\n"
    )
    r = _run_limited(code, mem_mb=1500)
    assert "REFUSED" in r.stdout, r.stderr[-2000:]


def test_npy_member_claiming_huge_shape_is_refused(model_file, tmp_path):
    # a member whose .npy header claims 800 GB, listed consistently in the JSON header
    big = tmp_path / "huge.npz"
    hdr = np.lib.format.header_data_from_array_1_0(np.zeros((3,), np.float32))
    hdr["shape"] = (200_000_000_000,)
    buf = _io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, hdr)
    buf.write(b"\0" * 64)

    with zipfile.ZipFile(model_file) as zin, zipfile.ZipFile(big, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "head/bias.npy":
                data = buf.getvalue()
            if info.filename == "__numrnn__.npy":
                h = json.loads(str(np.load(_io.BytesIO(data))[()]))
                h["arrays"]["head/bias"] = [[200_000_000_000], "<f4"]
                b2 = _io.BytesIO()
                np.save(b2, np.array(json.dumps(h)))
                data = b2.getvalue()
            zout.writestr(info.filename, data)
    with pytest.raises(FileFormatError, match="head/bias"):
        load(big)


def test_zip_bomb_is_refused_in_bounded_memory(model_file, tmp_path):
    bomb = tmp_path / "bomb.npz"
    payload = b"\0" * (256 << 20)  # 256 MB of zeros: ~260 KB deflated
    hdr = np.lib.format.header_data_from_array_1_0(np.zeros((64 << 20,), np.float32))
    head = _io.BytesIO()
    np.lib.format.write_array_header_1_0(head, hdr)
    listed = _edit_header(
        model_file, tmp_path / "listed.npz",
        lambda h: h["arrays"].update({"attr/extra": [[64 << 20], "<f4"]}),
    )  # fmt: skip
    with zipfile.ZipFile(listed) as zin, zipfile.ZipFile(bomb, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
        zout.writestr("attr/extra.npy", head.getvalue() + payload, zipfile.ZIP_DEFLATED)
    del payload
    assert bomb.stat().st_size < 2 << 20
    code = (
        "from numrnn.io import load, FileFormatError\n"
        f"try:\n    load({str(bomb)!r})\nexcept FileFormatError as e:\n    print('REFUSED', e)\n"
    )
    r = _run_limited(code, mem_mb=600)  # numrnn imported: ~400 MB of address space
    assert "REFUSED" in r.stdout and "compressed" in r.stdout, r.stdout + r.stderr[-2000:]


def test_header_cannot_set_methods_or_class_attributes(model_file, tmp_path):
    for name in ("predict", "coef_", "_is_classifier", "__class__", "fit"):
        bad = _edit_header(
            model_file, tmp_path / "attr.npz", lambda h, n=name: h["attrs"].update({n: "x"})
        )
        with pytest.raises(FileFormatError, match=repr(name)):
            load(bad)


def test_deeply_nested_header_is_a_file_format_error(model_file, tmp_path):
    bad = tmp_path / "nested.npz"
    with zipfile.ZipFile(model_file) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "__numrnn__.npy":
                buf = _io.BytesIO()
                np.save(buf, np.array("[" * 100_000 + "]" * 100_000))
                data = buf.getvalue()
            zout.writestr(info.filename, data)
    with pytest.raises(FileFormatError):
        load(bad)


def test_single_bit_flips_raise_file_format_error_or_load(model_file, tmp_path):
    """A sample of single-bit flips over the whole file: each loads (a flipped weight) or
    raises FileFormatError, never another exception and never numpy's unsafe-load hint."""
    data = model_file.read_bytes()
    rng = np.random.default_rng(0)
    # every byte of the zip/npy structure near the start and end, plus a random sample
    positions = sorted(
        set(range(0, 160)) | set(range(len(data) - 400, len(data)))
        | set(rng.integers(0, len(data), 300).tolist())
    )  # fmt: skip
    bad = tmp_path / "flip.npz"
    outcomes = {"loaded": 0, "refused": 0}
    for i, pos in enumerate(positions):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << (i % 8)
        bad.write_bytes(bytes(flipped))
        try:
            load(bad)
            outcomes["loaded"] += 1
        except FileFormatError as exc:
            assert "allow_pickle" not in str(exc) and "unsafe" not in str(exc), exc
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0


def test_directory_is_named_as_such(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load(tmp_path)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        save(RNN(2, 3), tmp_path)


def test_save_to_file_object_round_trips(small_model):
    buf = _io.BytesIO()
    save(small_model, buf)
    buf.seek(0)
    again = load(buf)
    np.testing.assert_array_equal(again.predict(XS), small_model.predict(XS))


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_save_honours_umask_and_keeps_existing_mode(tmp_path):
    net = RNN(2, 3, random_state=0)
    old = os.umask(0o022)
    try:
        p = tmp_path / "new.npz"
        save(net, p)
        assert p.stat().st_mode & 0o777 == 0o644  # as np.save / open() would create it
        p.chmod(0o640)
        save(net, p)
        assert p.stat().st_mode & 0o777 == 0o640  # an overwrite keeps the file's mode
    finally:
        os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_save_writes_through_a_symlink(tmp_path):
    target = tmp_path / "v1.npz"
    link = tmp_path / "current.npz"
    save(RNN(2, 3, random_state=0), target)
    link.symlink_to(target)
    save(GRU(2, 3, random_state=0), link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert isinstance(load(target), GRU)


def _fake_cuda(h):
    h["params"]["device"] = "cuda"
    h["network"]["device"] = "cuda"


def test_cuda_trained_estimator_loads_on_cpu(small_model, model_file, tmp_path):
    bad = _edit_header(model_file, tmp_path / "cuda.npz", _fake_cuda)
    ref = small_model.predict(XS)
    for kw in ({}, {"device": "cpu"}):
        m = load(bad, **kw)
        assert m.network_.device == "cpu"
        np.testing.assert_array_equal(m.predict(XS), ref)
    assert load(bad, device="cpu").device == "cpu"


def test_cuda_trained_network_loads_on_cpu(tmp_path):
    net = LSTM(2, 3, random_state=0)
    p = tmp_path / "n.npz"
    save(net, p)
    bad = _edit_header(p, tmp_path / "cuda.npz", lambda h: h["network"].update(device="cuda"))
    x = XS.astype(np.float32)
    for kw in ({}, {"device": "cpu"}):
        assert load(bad, **kw).device == "cpu"
        np.testing.assert_array_equal(load(bad, **kw).forward(x)[0], net.forward(x)[0])


# -- 5. non-finite training -------------------------------------------------------------
from numrnn.estimators import NonFiniteLossError  # noqa: E402

XF = np.random.default_rng(5).standard_normal((20, 6, 2))
YF = XF.sum(axis=(1, 2))


@pytest.mark.parametrize(
    "kw, y",
    [
        ({}, YF * 1e39),  # targets overflow float32
        ({"output": "sequence"}, np.cumsum(XF.sum(axis=2), axis=1) * 1e39),
        ({"solver": "sgd", "learning_rate_init": 1e6}, YF),  # huge step
        ({"solver": "sgd", "learning_rate_init": 1e6, "cell": "rnn", "nonlinearity": "relu"}, YF),
    ],
)
def test_non_finite_training_is_non_finite_loss_error(kw, y):
    # scale_y=False and no clipping: the defaults (standardised targets, clip_norm=1) keep
    # these fits finite, which test_defaults_keep_overflowing_targets_finite checks.
    m = RNNRegressor(
        hidden_size=4, max_iter=3, random_state=0, batch_size=5, scale_y=False,
        clip_norm=None, **kw,
    )  # fmt: skip
    with pytest.raises(NonFiniteLossError, match="epoch 1") as info:
        _quiet_fit(m, XF, y)
    assert "h0" not in str(info.value)
    assert "stays unfitted (no epoch finished)" in str(info.value)
    assert not hasattr(m, "network_")


def test_defaults_keep_overflowing_targets_finite():
    """scale_y standardises targets in float64: a float64 model fits targets beyond
    float32's range; a float32 model refuses them (its folded head would overflow) with an
    error naming the fix, and keeps the model it had."""
    m = _quiet_fit(
        RNNRegressor(hidden_size=4, max_iter=3, random_state=0, dtype="float64"), XF, YF * 1e39
    )
    assert np.all(np.isfinite(m.loss_curve_))
    pred = m.predict(XF)
    assert np.all(np.isfinite(pred)) and np.abs(pred).max() > 1e37
    m32 = _quiet_fit(RNNRegressor(hidden_size=4, max_iter=1, random_state=0), XF, YF)
    before = m32.predict(XF)
    with pytest.raises(
        ValueError, match=r"y must be smaller than .* float32 model.*dtype='float64'"
    ):
        m32.fit(XF, YF * 1e39)
    np.testing.assert_array_equal(m32.predict(XF), before)


def test_divergence_after_a_good_epoch_keeps_it_and_names_the_next_epoch():
    m = RNNRegressor(
        hidden_size=4, max_iter=1, random_state=0, batch_size=5, scale_y=False, clip_norm=None
    )
    _quiet_fit(m, XF, YF)
    before = m.predict(XF)
    m.set_params(warm_start=True, solver="sgd", learning_rate_init=1e6)
    with pytest.raises(NonFiniteLossError, match="in epoch 2.*those of epoch 1") as info:
        _quiet_fit(m, XF, YF)
    assert info.value.kept_epoch == 1
    np.testing.assert_array_equal(m.predict(XF), before)


def test_backward_names_a_non_finite_state_gradient():
    net = LSTM(2, 3)
    x = np.ones((2, 4, 2), np.float32)
    net.forward(x)
    bad = np.full((1, 2, 3), np.nan, np.float32)
    with pytest.raises(ValueError, match="d_state"):
        net.backward(None, (bad, np.zeros_like(bad)))


# -- 9 (nn). complex and other silent coercions in numrnn.nn ------------------------------
@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_nn_rejects_complex_input_state_gradient_and_state_dict(cls):
    net = cls(2, 3, random_state=0)
    x = np.ones((2, 4, 2))
    with pytest.raises((TypeError, ValueError), match="X.*real|complex"):
        net.forward(x + 1j)
    h = np.zeros((1, 2, 3)) + 0j
    state = (h, h.real) if cls is LSTM else h
    with pytest.raises(TypeError, match="h0 must hold real numbers"):
        net.forward(x, state)
    net.forward(x)
    with pytest.raises(TypeError, match="d_out must hold real numbers"):
        net.backward(np.ones((2, 4, 3)) + 1j)
    # the failed check left the forward's cache: backward works now
    assert net.backward(np.ones((2, 4, 3))).shape == x.shape
    sd = net.state_dict()
    before = {k: v.copy() for k, v in sd.items()}
    bad = dict(sd)
    first = next(iter(bad))
    bad[first] = np.ones_like(bad[first]) * 5
    bad[list(bad)[-1]] = bad[list(bad)[-1]] + 1j
    with pytest.raises(TypeError, match="real numbers"):
        net.load_state_dict(bad)
    for k, v in net.state_dict().items():  # atomic: nothing copied
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        net.load_state_dict(list(sd.values()))


def test_failed_backward_shape_check_keeps_the_cache():
    net = GRU(2, 3, random_state=0)
    x = np.ones((2, 4, 2), np.float32)
    net.forward(x)
    with pytest.raises(ValueError, match="d_out must have the shape"):
        net.backward(np.ones((2, 5, 3)))
    assert net.backward(np.ones((2, 4, 3))).shape == x.shape


# -- 9 (estimators). silent coercions, and the misleading messages ------------------------
import pandas as pd  # noqa: E402

X2 = np.random.default_rng(9).standard_normal((20, 6))
Y2 = X2.sum(axis=1)


def _reg(**kw):
    return RNNRegressor(**{"hidden_size": 3, "max_iter": 1, "random_state": 0, **kw})


def _masked(a):
    m = np.ma.masked_array(a.copy(), mask=np.zeros(a.shape, bool))
    m.mask[0, 2] = True
    m.data[0, 2] = 1e30
    return m


BAD_INPUT = {
    "complex y": (lambda: (X2, Y2 + 1j), ValueError, "y must hold real numbers"),
    "complex X": (lambda: (X2 + 1j, Y2), ValueError, "X must hold real numbers"),
    "masked 2-D X": (lambda: (_masked(X2), Y2), ValueError, "masked array"),
    "masked 3-D X": (lambda: (_masked(X2)[:, :, None], Y2), ValueError, "masked array"),
    "masked y": (
        lambda: (X2, np.ma.masked_array(Y2, mask=np.arange(20) == 3)), ValueError, "y is a masked"
    ),
    "datetime64 X": (
        lambda: (np.arange(120).astype("datetime64[D]").reshape(20, 6), Y2),
        TypeError, "dates",
    ),
    "datetime frame": (
        lambda: (pd.DataFrame({"t": pd.date_range("2020", periods=20), "v": Y2}), Y2),
        TypeError, "dates",
    ),
    "pd.NA in a frame": (
        lambda: (pd.DataFrame(X2).astype("Float64").mask(np.eye(20, 6, 5, dtype=bool)), Y2),
        ValueError, "pd.NA",
    ),
    "0 features": (lambda: (np.zeros((20, 6, 0)), Y2), ValueError, "0 features"),
    "dict X": (lambda: ({"a": X2}, Y2), TypeError, "dict"),
    "str X": (lambda: ("data.csv", Y2), TypeError, "str"),
    "generator X": (lambda: ((r for r in X2), Y2), TypeError, "generator"),
    "float32 overflow X": (lambda: (X2 * 1e39, Y2), ValueError, "float32"),
    "3-D y, output='last'": (
        lambda: (X2, np.zeros((20, 6, 1))), ValueError, "output='sequence'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_gets_one_clear_error(case):
    make, exc, match = BAD_INPUT[case]
    X, y = make()
    with pytest.raises(exc, match=match):
        _quiet_fit(_reg(), X, y)


@pytest.mark.parametrize(
    "sw, match",
    [
        (np.r_[np.nan, np.ones(19)], "1 NaN"),
        (np.r_[np.inf, np.ones(19)], "1 infinite"),
        (np.r_[-1.0, np.ones(19)], "1 negative"),
        (np.array(["a"] * 20), "numbers"),
    ],
)
def test_bad_sample_weight_is_named(sw, match):
    with pytest.raises(ValueError, match=f"sample_weight.*{match}"):
        _quiet_fit(_reg(), X2, Y2, sample_weight=sw)


def test_none_label_is_named():
    y = np.array(["a", "b"] * 10, dtype=object)
    y[3] = None
    with pytest.raises(ValueError, match="y contains None"):
        _quiet_fit(RNNClassifier(hidden_size=3, max_iter=1), X2, y)


@pytest.mark.parametrize(
    "param, value",
    [("learning_rate_init", np.inf), ("alpha", np.inf), ("tol", np.inf), ("dtype", None)],
)
def test_non_finite_or_none_hyperparameters_are_named(param, value):
    with pytest.raises(ValueError, match=param):
        _quiet_fit(_reg(**{param: value}), X2, Y2)


def test_early_stopping_needs_two_validation_samples():
    with pytest.raises(ValueError, match="validation"):
        _quiet_fit(_reg(early_stopping=True, validation_fraction=0.05), X2, Y2)


def test_dropout_with_one_layer_warns_like_pytorch():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        _quiet_fit(_reg(dropout=0.3), X2, Y2)
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        LSTM(2, 3, dropout=0.3)


def test_forget_bias_must_be_finite():
    with pytest.raises(ValueError, match="forget_bias"):
        LSTM(2, 3, forget_bias=np.nan)
    with pytest.raises(TypeError, match="forget_bias"):
        LSTM(2, 3, forget_bias="1")


# -- Also: Adam compiled once, whatever the number of parameters ---------------------------
def test_adam_compiles_once_for_any_parameter_count():
    from numrnn.kernels.cpu.optim import adam_update
    from numrnn.nn.optim import Adam

    rng = np.random.default_rng(0)

    def run(n):
        params = {f"p{i}": rng.standard_normal(3 + i % 4).astype(np.float32) for i in range(n)}
        singles = {k: v.copy() for k, v in params.items()}
        opt = Adam(params, lr=0.01)
        one = {k: Adam({k: v}, lr=0.01) for k, v in singles.items()}
        for _ in range(2):
            grads = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
            opt.step(grads)
            for k, o in one.items():
                o.step({k: grads[k]})
        for k in params:  # the grouped update gives each parameter's own bits
            np.testing.assert_array_equal(params[k], singles[k])

    run(5)
    compiled = len(adam_update.signatures)
    run(23)
    run(1100)  # numba refuses tuples of 1000 or more
    assert len(adam_update.signatures) == compiled


# -- 6. ragged predict: memory proportional to the data, same results ---------------------
import tracemalloc  # noqa: E402


def _ragged(n_short=400, long=20000, seed=6):
    rng = np.random.default_rng(seed)
    seqs = [rng.standard_normal((int(t), 1)) for t in rng.integers(3, 12, n_short)]
    seqs.insert(n_short // 2, rng.standard_normal((long, 1)) * 0.1)
    return seqs


def _nan_padded(seqs):
    T = max(len(s) for s in seqs)
    out = np.full((len(seqs), T, seqs[0].shape[1]), np.nan)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def _peak_predict(m, seqs):
    tracemalloc.start()
    got = m.predict(seqs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return got, peak


def test_ragged_predict_memory_does_not_follow_the_longest_sequence():
    """One long sequence among short ones: predict no longer pads every sequence to it
    (401 x 60 000 steps x 4 B = 96 MB); what remains is one time chunk of the batch."""
    fit = _ragged(n_short=40, long=30)
    m = _quiet_fit(RNNRegressor(cell="lstm", hidden_size=4, max_iter=1, random_state=0),
                   fit, np.array([s.sum() for s in fit]))  # fmt: skip
    m.predict(fit)  # compile outside the measurement
    short, peak_short = _peak_predict(m, _ragged(long=20000))
    seqs = _ragged(long=60000)
    got, peak_long = _peak_predict(m, seqs)
    padded_bytes = len(seqs) * 60000 * 4
    # measured: ~12 MB (one 1024-step chunk of the 401-row batch) against 120 MB before
    assert peak_long < padded_bytes / 4, (peak_long, padded_bytes)
    assert peak_long < 1.5 * peak_short + (1 << 20), (peak_short, peak_long)
    np.testing.assert_array_equal(got, m.predict(_nan_padded(seqs)))  # same bits per sample


def test_ragged_sequence_predict_matches_padded_per_sample():
    seqs = _ragged(n_short=50, long=2500)
    fit = seqs[:20]
    m = _quiet_fit(
        RNNRegressor(cell="gru", hidden_size=4, max_iter=1, random_state=0, output="sequence"),
        fit, [s[:, 0] for s in fit],
    )  # fmt: skip
    got = m.predict(seqs)
    ref = m.predict(_nan_padded(seqs))
    for i, s in enumerate(seqs):
        np.testing.assert_array_equal(got[i], ref[i, : len(s)])


def test_ragged_classifier_predict_matches_padded():
    seqs = _ragged(n_short=60, long=3000)
    labels = np.array([int(s[:, 0].sum() > 0) for s in seqs])
    m = _quiet_fit(RNNClassifier(cell="lstm", hidden_size=3, max_iter=1, random_state=0,
                                 bidirectional=True), seqs[:30], labels[:30])  # fmt: skip
    np.testing.assert_array_equal(m.predict_proba(seqs), m.predict_proba(_nan_padded(seqs)))


def _short_plus_long(n_short=2000, short=10, long=50000, seed=7):
    """The issue's case: 2000 x 10 steps plus one 50 000-step sequence (0.56 MB)."""
    rng = np.random.default_rng(seed)
    seqs = [rng.standard_normal((short, 1)) for _ in range(n_short)]
    seqs.insert(n_short // 2, rng.standard_normal((long, 1)) * 0.1)
    return seqs


@pytest.mark.parametrize(
    "make",
    [
        lambda: RNNRegressor(hidden_size=8, bidirectional=True),
        lambda: RNNRegressor(cell="gru", hidden_size=8, readout="mean"),
        lambda: RNNRegressor(hidden_size=8, output="sequence"),
        lambda: RNNClassifier(hidden_size=8, bidirectional=True, output="sequence"),
    ],
    ids=["bidirectional", "pooled", "sequence", "bidirectional-sequence-proba"],
)
def test_predict_memory_is_proportional_to_the_data(make):
    """Batches are formed by length: the long sequence runs alone instead of padding its
    1024-sample batch to 50 000 steps (measured before: 9.0 GB bidirectional, 3.5 GB
    pooled, 2.3 GB 'sequence'; after: 10, 4, 3 MB). Peak allocation for all of it stays
    within the sum of the short ones alone and the long one alone, with headroom."""
    m = make().set_params(max_iter=1, random_state=0)
    fit = _ragged(n_short=30, long=12)
    y = [(s[:, 0] > 0).astype(int) for s in fit] if m.output == "sequence" else None
    if y is None:
        y = np.array([int(s.sum() > 0) for s in fit])
    _quiet_fit(m, fit, y)
    predict = m.predict_proba if isinstance(m, RNNClassifier) else m.predict
    seqs = _short_plus_long()
    predict(seqs)  # compile every path (numba's compiler allocates) outside the measurement

    def peak(X):
        tracemalloc.start()
        out = predict(X)
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return out, used

    got, peak_all = peak(seqs)
    long_i = len(seqs) // 2
    _, peak_short = peak(seqs[:long_i] + seqs[long_i + 1 :])
    _, peak_long = peak([seqs[long_i]])
    assert peak_all < 1.5 * (peak_short + peak_long) + (1 << 20), (
        peak_all, peak_short, peak_long,
    )  # fmt: skip
    width = m.network_.layer_output_size
    whole_call_padding = len(seqs) * 50000 * width * 4  # the layer output padded to 50 000
    assert peak_all < whole_call_padding / 100, (peak_all, whole_call_padding)
    again = predict(seqs)  # same data, same model: the same bits
    for a, b in zip(got, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_length_batches_sort_stably_and_bound_the_padding():
    from numrnn.estimators._base import length_batches

    rng = np.random.default_rng(3)
    lengths = np.concatenate([rng.integers(1, 40, 5000), [50000, 7000, 3]])
    batches = length_batches(lengths, max_rows=256, padded_steps=2048)
    order = np.concatenate(batches)
    np.testing.assert_array_equal(np.sort(order), np.arange(lengths.shape[0]))
    np.testing.assert_array_equal(order, np.argsort(lengths, kind="stable"))
    for b in batches:
        assert 1 <= b.shape[0] <= 256
        padded = b.shape[0] * lengths[b].max()
        assert padded <= 2048 or padded <= 2 * lengths[b].sum(), (b, lengths[b])
    (with_long,) = [b for b in batches if 50000 in lengths[b]]
    assert sorted(lengths[with_long]) == [7000, 50000]  # no short sequence padded to it
    same = length_batches(np.full(1000, 12), max_rows=256, padded_steps=64)
    assert [b.shape[0] for b in same] == [256, 256, 256, 232]  # no padding: full batches

"""Persistence (issue #7): numrnn.io save/load without pickle, pickle/joblib, PyTorch import."""

import io as _io
import json
import pickle
import warnings
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from numrnn.estimators import RNNClassifier, RNNRegressor
from numrnn.io import FileFormatError, load, save
from numrnn.nn import GRU, LSTM, RNN

N, T, F = 16, 5, 2
_rng = np.random.default_rng(0)
X = _rng.standard_normal((N, T, F))
Y = X.sum(axis=(1, 2))
X_NEW = _rng.standard_normal((7, 9, F))


def _fit(m, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return m.fit(*args, **kw)


def _same_fitted(a, b):
    for k, v in a.__dict__.items():
        if k in ("network_", "head_", "_optimizer", "_rng"):
            continue
        w = b.__dict__[k]
        if k == "extra_models_":  # the other networks of a classifier's ensemble (n_models)
            assert len(v) == len(w) == a.n_models - 1
            for m, m2 in zip(v, w, strict=True):
                _same_fitted(m, m2)
            continue
        if isinstance(v, np.ndarray):
            assert v.dtype == w.dtype and v.shape == w.shape, k
            np.testing.assert_array_equal(v, w, err_msg=k)
        else:
            assert v == w or (v != v and w != w), k
    assert a.get_params() == b.get_params()


MODELS = {
    "lstm-reg": lambda: _fit(
        RNNRegressor(cell="lstm", hidden_size=3, max_iter=2, random_state=0, peephole=True), X, Y
    ),
    "gru-bi-clf-str": lambda: _fit(
        RNNClassifier(
            cell="gru",
            hidden_size=3,
            max_iter=2,
            random_state=1,
            bidirectional=True,
            merge_mode="sum",
            dtype="float64",
            reset_after=False,
        ),
        X,
        np.array(["neg", "pos"])[(Y > 0).astype(int)],
    ),
    "rnn-clf-objlabels-early": lambda: _fit(
        RNNClassifier(
            cell="rnn",
            hidden_size=3,
            max_iter=3,
            random_state=2,
            nonlinearity="relu",
            early_stopping=True,
            num_layers=2,
            dropout=0.2,
            solver="sgd",
        ),
        X,
        np.array(["a", "c", "b"], dtype=object)[np.arange(N) % 3],
    ),
    "seq-reg-2d": lambda: _fit(
        RNNRegressor(cell="gru", hidden_size=2, max_iter=1, random_state=3, output="sequence"),
        X[:, :, 0],
        np.cumsum(X[:, :, 0], axis=1),
    ),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request):
    return request.param, MODELS[request.param]()


def _X_for(name):
    return X_NEW[:, :, 0][:, :T] if name == "seq-reg-2d" else X_NEW


def test_round_trip_bit_identical(fitted, tmp_path):
    name, m = fitted
    p = tmp_path / "model.npz"
    save(m, p)
    m2 = load(p)
    assert type(m2) is type(m)
    _same_fitted(m, m2)
    Xn = _X_for(name)
    np.testing.assert_array_equal(m.predict(Xn), m2.predict(Xn))
    if hasattr(m, "predict_proba"):
        np.testing.assert_array_equal(m.predict_proba(Xn), m2.predict_proba(Xn))
        assert m2.classes_.dtype == m.classes_.dtype


def test_file_is_pickle_free(fitted, tmp_path):
    _, m = fitted
    p = tmp_path / "model.npz"
    save(m, p)
    with np.load(p, allow_pickle=False) as z:  # every entry loads without pickle
        for k in z.files:
            assert z[k].dtype != object
        header = json.loads(str(z["__numrnn__"][()]))
    assert header["format"] == "numrnn" and header["class"] == type(m).__name__
    assert header["numrnn_version"] and header["params"]["hidden_size"] == m.hidden_size
    assert "n_features_in_" in header["attrs"] and "loss_curve_" in header["attrs"]


def test_readout_auto_round_trip_and_files_without_readout_(tmp_path):
    """The resolved readout is saved (readout='auto' stays the parameter); a file written
    before readout_ existed loads with the readout it was fitted with."""
    Xs = X[:, :5]  # not folded: 'auto' is 'last+mean+max'
    m = _fit(RNNClassifier(hidden_size=2, n_models=1, max_iter=1, random_state=0), Xs, Y > 0)
    assert (m.readout, m.readout_) == ("auto", "last+mean+max")
    save(m, tmp_path / "auto.npz")
    m2 = load(tmp_path / "auto.npz")
    assert (m2.readout, m2.readout_) == ("auto", "last+mean+max")
    np.testing.assert_array_equal(m.predict_proba(Xs), m2.predict_proba(Xs))
    old = _fit(RNNRegressor(hidden_size=2, max_iter=1, readout="mean", random_state=0), X, Y)
    del old.readout_  # as numrnn wrote it before
    save(old, tmp_path / "old.npz")
    old2 = load(tmp_path / "old.npz")
    assert old2.readout_ == "mean"
    old.readout_ = "mean"
    np.testing.assert_array_equal(old.predict(X_NEW), old2.predict(X_NEW))


def test_partial_fit_after_load_continues_exactly(tmp_path):
    m = MODELS["lstm-reg"]()
    p = tmp_path / "m.npz"
    save(m, p)
    m2 = load(p)
    m.partial_fit(X, Y)
    m2.partial_fit(X, Y)
    np.testing.assert_array_equal(m.predict(X_NEW), m2.predict(X_NEW))
    assert m.loss_curve_ == m2.loss_curve_


def test_dataframe_feature_names_round_trip(tmp_path):
    df = pd.DataFrame(X[:, :, 0], columns=[f"t{i}" for i in range(T)])
    m = _fit(RNNRegressor(cell="rnn", hidden_size=2, max_iter=1, random_state=0), df, Y)
    save(m, tmp_path / "m.npz")
    m2 = load(tmp_path / "m.npz")
    assert list(m2.feature_names_in_) == list(df.columns)
    np.testing.assert_array_equal(m.predict(df), m2.predict(df))


def test_unfitted_estimator_round_trip(tmp_path):
    m = RNNClassifier(cell="gru", hidden_size=7, alpha=0.5)
    save(m, tmp_path / "u.npz")
    m2 = load(tmp_path / "u.npz")
    assert m2.get_params() == m.get_params() and not hasattr(m2, "network_")


def test_non_int_random_state_warns(tmp_path):
    m = _fit(
        RNNRegressor(cell="rnn", hidden_size=2, max_iter=1, random_state=np.random.RandomState(0)),
        X,
        Y,
    )
    with pytest.warns(UserWarning, match="random_state"):
        save(m, tmp_path / "m.npz")
    np.testing.assert_array_equal(load(tmp_path / "m.npz").predict(X), m.predict(X))


@pytest.mark.parametrize(
    "net",
    [
        lambda: LSTM(2, 3, 2, bidirectional=True, peephole=True, dtype="float64", random_state=0),
        lambda: GRU(2, 4, reset_after=False, random_state=1),
        lambda: RNN(
            2,
            3,
            3,
            nonlinearity="relu",
            merge_mode="mul",
            bidirectional=True,
            dropout=0.3,
            random_state=2,
        ),
    ],
    ids=["lstm", "gru", "rnn"],
)
def test_network_round_trip(net, tmp_path):
    a = net()
    save(a, tmp_path / "net.npz")
    b = load(tmp_path / "net.npz")
    assert type(b) is type(a) and repr(b) == repr(a)
    x = X_NEW.astype(a.dtype)
    # training mode with dropout: the generator state is restored too
    out_a, _ = a.forward(x, requires_grad=False)
    out_b, _ = b.forward(x, requires_grad=False)
    np.testing.assert_array_equal(out_a, out_b)


def test_save_rejects_other_objects(tmp_path):
    with pytest.raises(
        TypeError, match="model must be an RNNRegressor, RNNClassifier or a numrnn.nn"
    ):
        save({"a": 1}, tmp_path / "x.npz")


def test_save_writes_exact_path(tmp_path):
    p = tmp_path / "model.bin"
    save(GRU(1, 2), p)
    assert p.exists() and not (tmp_path / "model.bin.npz").exists()
    assert isinstance(load(p), GRU)


# -- bad files ------------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    p = tmp_path / "model.npz"
    save(MODELS["lstm-reg"](), p)
    return p


def _rewrite(src, dst, change):
    """Copy an npz archive, passing each (name, bytes) through ``change``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            out = change(info.filename, zin.read(info.filename))
            if out is not None:
                zout.writestr(info.filename, out)


def _header_bytes(edit):
    def change(name, data):
        if name != "__numrnn__.npy":
            return data
        arr = np.load(_io.BytesIO(data), allow_pickle=False)
        h = json.loads(str(arr[()]))
        edit(h)
        buf = _io.BytesIO()
        np.save(buf, np.array(json.dumps(h)))
        return buf.getvalue()

    return change


def test_truncated_file(saved, tmp_path):
    data = saved.read_bytes()
    bad = tmp_path / "trunc.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match="truncated or corrupt.*save the model again"):
        load(bad)


def test_corrupt_bytes(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    for i in range(200, len(data) - 200, 97):
        data[i] ^= 0xFF
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="corrupt"):
        load(bad)


def test_not_our_file_text(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(FileFormatError, match="notes.txt is not a numrnn model file"):
        load(p)


def test_not_our_npz(tmp_path):
    p = tmp_path / "other.npz"
    np.savez(p, a=np.arange(3))
    with pytest.raises(FileFormatError, match="not a numrnn model file.*no '__numrnn__' header"):
        load(p)


def test_single_npy(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.arange(3))
    with pytest.raises(FileFormatError, match="single .npy array"):
        load(p)


def test_pickled_entry_is_not_executed(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('executed')",))

    p = tmp_path / "evil.npz"
    arr = np.empty(1, dtype=object)
    arr[0] = Boom()
    np.savez(p, __numrnn__=np.array("{}"), evil=arr)
    with pytest.raises(FileFormatError):
        load(p)


def test_pickle_file_rejected(tmp_path):
    p = tmp_path / "m.pkl"
    p.write_bytes(pickle.dumps(MODELS["lstm-reg"]()))
    with pytest.raises(FileFormatError, match="not a numrnn model file"):
        load(p)


def test_newer_format_version(saved, tmp_path):
    bad = tmp_path / "new.npz"
    _rewrite(saved, bad, _header_bytes(lambda h: h.update(format_version=99, numrnn_version="9.0")))
    with pytest.raises(FileFormatError, match="format version 99.*'9.0'.*Upgrade numrnn"):
        load(bad)


def test_unknown_class_is_not_imported(saved, tmp_path):
    bad = tmp_path / "cls.npz"
    _rewrite(saved, bad, _header_bytes(lambda h: h.update({"class": "os.system"})))
    with pytest.raises(FileFormatError, match="unknown estimator class 'os.system'"):
        load(bad)


def test_shape_mismatch(saved, tmp_path):
    def change(name, data):
        if name == "network/weight_hh_l0.npy":
            buf = _io.BytesIO()
            np.save(buf, np.zeros((12, 4), dtype=np.float32))
            return buf.getvalue()
        return data

    bad = tmp_path / "shape.npz"
    _rewrite(saved, bad, change)
    with pytest.raises(FileFormatError, match=r"weight_hh_l0.*shape \(12, 4\).*header says"):
        load(bad)


def test_shape_mismatch_consistent_header(saved, tmp_path):
    def change(name, data):
        if name == "network/weight_hh_l0.npy":
            buf = _io.BytesIO()
            np.save(buf, np.zeros((12, 4), dtype=np.float32))
            return buf.getvalue()
        if name == "__numrnn__.npy":
            return _header_bytes(
                lambda h: h["arrays"].update({"network/weight_hh_l0": [[12, 4], "<f4"]})
            )(name, data)
        return data

    bad = tmp_path / "shape2.npz"
    _rewrite(saved, bad, change)
    with pytest.raises(FileFormatError, match=r"does not fit.*weight_hh_l0.*\(12, 4\)"):
        load(bad)


def test_missing_array(saved, tmp_path):
    bad = tmp_path / "missing.npz"
    _rewrite(saved, bad, lambda n, d: None if n == "head/bias.npy" else d)
    with pytest.raises(FileFormatError, match=r"missing \['head/bias'\]"):
        load(bad)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.npz")


# -- pickle, joblib -------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_pickle_and_joblib_round_trip(fitted, how, tmp_path):
    name, m = fitted
    if how == "pickle":
        m2 = pickle.loads(pickle.dumps(m))
    else:
        joblib.dump(m, tmp_path / "m.joblib")
        m2 = joblib.load(tmp_path / "m.joblib")
    Xn = _X_for(name)
    np.testing.assert_array_equal(m.predict(Xn), m2.predict(Xn))


def test_network_pickle_round_trip():
    net = LSTM(2, 3, random_state=0)
    net2 = pickle.loads(pickle.dumps(net))
    x = X_NEW.astype(np.float32)
    np.testing.assert_array_equal(net.forward(x)[0], net2.forward(x)[0])


# -- PyTorch state_dict ------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_torch_state_dict_round_trip(cell):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tcls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    ncls = {"rnn": RNN, "lstm": LSTM, "gru": GRU}[cell]
    tnet = tcls(F, 4, num_layers=2, bidirectional=True, batch_first=True).double()
    net = ncls(F, 4, 2, bidirectional=True, dtype="float64")
    net.load_state_dict(tnet.state_dict())  # torch tensors load as NumPy arrays
    net.eval()
    x = X_NEW
    out, state = net.forward(x, requires_grad=False)
    with torch.no_grad():
        tout, tstate = tnet(torch.from_numpy(x))
    np.testing.assert_allclose(out, tout.numpy(), rtol=1e-10, atol=1e-12)
    h = state[0] if cell == "lstm" else state
    th = tstate[0] if cell == "lstm" else tstate
    np.testing.assert_allclose(h, th.numpy(), rtol=1e-10, atol=1e-12)
    # and back: our state_dict (NumPy arrays) loads into torch unchanged
    tnet2 = tcls(F, 4, num_layers=2, bidirectional=True, batch_first=True).double()
    tnet2.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
    with torch.no_grad():
        np.testing.assert_allclose(
            tnet2(torch.from_numpy(x))[0].numpy(), out, rtol=1e-10, atol=1e-12
        )

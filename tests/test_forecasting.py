"""Forecasting: windows, RNNForecaster (recursive/direct, pandas, TimeSeriesSplit), generate,
Stream.

Error bars. The series is sin(t) on a 0.1 grid (amplitude 1, so errors are fractions of
the amplitude). Persistence (repeating the last value) over the 50-step horizon used here
has MAE ~0.6 and a linear extrapolation diverges; a model that has learned the oscillation
does ~0.005-0.03 (measured, float32, random_state fixed: recursive LSTM 0.017-0.025, direct
LSTM 0.005-0.02, seed-002 generation RNN 0.020 MAE / 0.055 max). The bars (MAE < 0.1,
max < 0.25 for 50 steps; generation MAE < 0.1 and max < 0.2 over 100 steps) sit ~4x above
what is measured, so they tolerate BLAS/platform rounding, yet are 6x below persistence: a
model that did not learn the wave fails them.
"""

import warnings

import numpy as np
import pytest

from numrnn.datasets import (
    char_sequences,
    load_digits_sequences,
    load_text,
    seasonal_series,
    sine_sequences,
    sine_wave,
)
from numrnn.forecasting import (
    RNNForecaster,
    Stream,
    cross_val_forecast,
    generate,
    make_windows,
)

pd = pytest.importorskip("pandas")

# Global scaling: a 20-step window of a 63-step sine scaled by its own statistics (the
# window scaler) loses the amplitude the recursion needs; these tests are about the machinery.
FAST = dict(
    hidden_size=16,
    learning_rate_init=0.01,
    tol=1e-6,
    n_iter_no_change=20,
    random_state=0,
    scaler="standard",
    batch_size="auto",
    clip_norm=None,
    n_models=1,  # one network, trained until the stopping rule: the machinery, quickly
    choose_epochs=False,
)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- make_windows -------------------------------------------------------------------------
def test_windows_univariate_values_and_shapes():
    X, y = make_windows(np.arange(10.0), window=3, horizon=2, stride=2)
    assert X.shape == (3, 3, 1) and y.shape == (3, 2)
    np.testing.assert_array_equal(X[:, :, 0], [[0, 1, 2], [2, 3, 4], [4, 5, 6]])
    np.testing.assert_array_equal(y, [[3, 4], [5, 6], [7, 8]])


def test_windows_multivariate_with_exog():
    s = np.stack([np.arange(8.0), 10 + np.arange(8.0)], axis=1)
    e = 100 + np.arange(8.0)
    X, y = make_windows(s, window=4, horizon=1, exog=e)
    assert X.shape == (4, 4, 3) and y.shape == (4, 1, 2)
    np.testing.assert_array_equal(X[1, :, 2], [101, 102, 103, 104])
    np.testing.assert_array_equal(y[1, 0], [5, 15])


def test_windows_errors():
    with pytest.raises(ValueError, match="too short"):
        make_windows(np.arange(3.0), window=3)
    with pytest.raises(ValueError, match="window"):
        make_windows(np.arange(5.0), window=0)
    with pytest.raises(ValueError, match="NaN"):
        make_windows(np.array([1.0, np.nan, 2, 3]), window=1)
    with pytest.raises(ValueError, match="exog"):
        make_windows(np.arange(5.0), window=1, exog=np.arange(4.0))


# -- RNNForecaster ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sine():
    y = sine_wave(400, 0.0, 40.0)
    return y[:350], y[350:]


@pytest.mark.parametrize("strategy,horizon", [("recursive", 1), ("direct", 50)])
def test_forecaster_sine_accuracy(sine, strategy, horizon):
    train, test = sine
    f = RNNForecaster(window=20, strategy=strategy, horizon=horizon, max_iter=200, **FAST)
    p = f.fit(train).predict(50)
    assert p.shape == (50,)
    err = np.abs(p - test)
    persistence = np.abs(train[-1] - test).mean()
    assert err.mean() < 0.1 and err.max() < 0.25, (err.mean(), err.max())
    assert err.mean() < persistence / 6


def test_forecaster_from_history_and_scaling_inverted(sine):
    train, test = sine
    f = RNNForecaster(window=20, strategy="direct", horizon=10, max_iter=100, **FAST)
    f.fit(5.0 + 3.0 * train)  # scale/offset must be undone on output
    p = f.predict(10, history=5.0 + 3.0 * test[:30])
    # the 10 steps after test[:30] are test[30:40]
    assert np.abs(p - (5.0 + 3.0 * test[30:40])).mean() < 0.3
    assert f.mean_[0] == pytest.approx(5.0 + 3.0 * train.mean())


def test_forecaster_keeps_pandas_index():
    y = seasonal_series(60, as_frame=True)  # monthly DatetimeIndex, freq='MS'
    f = RNNForecaster(window=12, max_iter=3, **FAST).fit(y)
    p = f.predict(5)
    assert isinstance(p, pd.Series) and p.name == "value"
    expected = pd.date_range("2005-01-01", periods=5, freq="MS")
    assert (p.index == expected).all()
    # inferable frequency (freq not set on the index)
    y2 = pd.Series(y.to_numpy(), index=pd.DatetimeIndex(list(y.index)))
    assert y2.index.freq is None
    assert (f.predict(3, history=y2).index == expected[:3]).all()
    # RangeIndex with a step
    y3 = pd.Series(y.to_numpy(), index=pd.RangeIndex(0, 120, 2))
    p3 = RNNForecaster(window=12, max_iter=2, **FAST).fit(y3).predict(3)
    assert list(p3.index) == [120, 122, 124]
    # irregular index: step numbers
    y4 = pd.Series(y.to_numpy(), index=pd.Index(np.cumsum(np.arange(1, 61)) * 1.5))
    p4 = RNNForecaster(window=12, max_iter=2, **FAST).fit(y4).predict(3)
    assert list(p4.index) == [1, 2, 3]
    # DataFrame (two series) -> DataFrame with the columns
    df = pd.DataFrame({"a": y.to_numpy(), "b": -y.to_numpy()}, index=y.index)
    pdf = RNNForecaster(window=12, max_iter=2, **FAST).fit(df).predict(4)
    assert isinstance(pdf, pd.DataFrame) and list(pdf.columns) == ["a", "b"]
    assert pdf.shape == (4, 2) and (pdf.index == expected[:4]).all()


def test_forecaster_exogenous_features():
    t = np.arange(300)
    ex = np.sin(0.3 * t)  # known in advance
    y = 2.0 * np.roll(ex, 1) + 0.01 * t / 300
    f = RNNForecaster(window=5, max_iter=60, **FAST).fit(y[:280], X=ex[:280])
    with pytest.raises(ValueError, match="X is required"):
        f.predict(5)
    p = f.predict(20, X=ex[280:300])
    assert np.abs(p - y[280:300]).mean() < 0.3


def test_timeseriessplit_cross_validation(sine):
    from sklearn.model_selection import TimeSeriesSplit, cross_val_score

    y = np.concatenate(sine)[:300]
    f = RNNForecaster(window=20, strategy="direct", horizon=10, max_iter=60, **FAST)
    res = cross_val_forecast(f, y, cv=TimeSeriesSplit(n_splits=3, test_size=20, gap=5))
    assert res["mae"].shape == (3,) and (res["mae"] < 0.3).all()
    assert [len(a) for a in res["forecasts"]] == [20, 20, 20]
    np.testing.assert_array_equal(res["actuals"][-1], y[-20:])
    # plain scikit-learn: score(y) = R^2 of the forecast of the test fold
    scores = cross_val_score(f, y, cv=TimeSeriesSplit(n_splits=2, test_size=10))
    assert scores.shape == (2,) and (scores > 0.5).all()


def test_forecaster_errors():
    with pytest.raises(ValueError, match="too short"):
        RNNForecaster(window=10).fit(np.arange(8.0))
    with pytest.raises(ValueError, match="strategy"):
        RNNForecaster(strategy="magic").fit(np.arange(50.0))
    f = RNNForecaster(window=5, max_iter=1, **FAST).fit(np.sin(np.arange(40.0)))
    with pytest.raises(ValueError, match="history is too short"):
        f.predict(3, history=np.arange(3.0))
    with pytest.raises(ValueError, match="horizon"):
        f.predict(0)


# -- generation (seed 002) -----------------------------------------------------------------
def test_generate_sine_from_one_seed_value():
    from numrnn.estimators import RNNRegressor

    X, Y = sine_sequences(1, 100)  # sin(0.1 t), t = 0..100, as in seed 002
    m = RNNRegressor(
        cell="rnn",
        hidden_size=16,
        output="sequence",
        learning_rate_init=0.01,
        max_iter=1000,
        tol=0.0,
        n_iter_no_change=10**9,
        alpha=0.0,
        random_state=1,
    ).fit(X, Y)
    g, state = generate(m, 0.0, 100, return_state=True)
    ref = np.sin(0.1 * np.arange(1, 101))
    err = np.abs(g - ref)
    assert g.shape == (100,) and state.shape == (1, 1, 16)
    assert err.mean() < 0.1 and err.max() < 0.2, (err.mean(), err.max())
    # carried state == one forward over the whole fed-back sequence (no recomputation)
    inputs = np.concatenate([[0.0], g[:-1]]).astype(np.float32)[None, :, None]
    out, _ = m.network_.forward(inputs, requires_grad=False)
    np.testing.assert_allclose(out[0] @ m.head_.weight[0] + m.head_.bias[0], g, atol=1e-5)


def test_generate_from_forecaster_and_errors(sine):
    train, _ = sine
    f = RNNForecaster(window=20, max_iter=5, **FAST).fit(10 + train)
    g = generate(f, 10 + train[-20:], 5)  # scaled in, unscaled out
    assert g.shape == (5,) and np.all(np.abs(g - 10) < 3)
    with pytest.raises(ValueError, match="unidirectional"):
        generate(
            RNNForecaster(window=5, max_iter=1, bidirectional=True, **FAST).fit(train).regressor_,
            0.0,
            3,
        )
    with pytest.raises(TypeError, match="model"):
        generate(object(), 0.0, 3)


def test_generate_in_pieces_carries_the_state(sine):
    train, _ = sine
    f = RNNForecaster(window=20, cell="lstm", max_iter=2, **FAST).fit(train)
    whole = generate(f, train[-20:], 5)
    a, state = generate(f, train[-20:], 2, return_state=True)
    b = generate(f, a[-1], 3, state=state)  # the returned state is carried on as it is
    np.testing.assert_allclose(np.r_[a, b], whole, rtol=1e-5)
    # the same state in float64 (converted), and a non-finite one (named)
    b64 = generate(f, a[-1], 3, state=tuple(s.astype(np.float64) for s in state))
    np.testing.assert_array_equal(b64, b)
    bad = (np.full_like(state[0], np.nan), state[1])
    with pytest.raises(ValueError, match="h0 contains NaN"):
        generate(f, a[-1], 3, state=bad)


# -- Stream ---------------------------------------------------------------------------------
def _stream_models():
    """(model, inputs) pairs: each cell, two layers, a scaled forecaster, several outputs,
    float64."""
    from numrnn import RNNRegressor
    from numrnn.nn import GRU, RNN
    from numrnn.nn.linear import Linear

    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((8, 12, 1)).astype(np.float32)
    reg = dict(hidden_size=8, max_iter=2, random_state=0)
    lstm = RNNRegressor(cell="lstm", **reg).fit(x1, x1[:, -1, 0])
    peep = RNNRegressor(cell="lstm", peephole=True, num_layers=2, **reg).fit(x1, x1[:, -1, 0])
    x3 = rng.standard_normal((8, 12, 3)).astype(np.float32)
    multi = RNNRegressor(cell="gru", **reg).fit(x3, x3[:, -1, :2])  # 3 inputs, 2 outputs
    x64 = x1.astype(np.float64)
    f64 = RNNRegressor(cell="gru", dtype="float64", **reg).fit(x64, x64[:, -1, 0])
    y = 5 + np.sin(0.3 * np.arange(120))
    fc = RNNForecaster(window=10, cell="rnn", max_iter=2, **FAST).fit(y)  # scaled in and out
    gru2 = (GRU(2, 6, num_layers=2, reset_after=False, random_state=1), Linear(6, 2, rng=2))
    elman = (RNN(2, 5, nonlinearity="relu", random_state=3), Linear(5, 2, rng=4))
    x2 = rng.standard_normal((10, 2))
    return [
        (lstm, list(x1[0, :, 0].astype(float))),
        (peep, list(x1[1, :, 0].astype(float))),
        (multi, list(x3[0].astype(np.float64))),
        (f64, list(x64[2, :, 0])),
        (fc, list(y[:10])),
        (gru2, list(x2)),
        (elman, list(x2)),
    ]


def _network_and_head(model):
    if isinstance(model, RNNForecaster):
        return model.regressor_.network_, model.regressor_.head_
    return (model.network_, model.head_) if hasattr(model, "network_") else model


def test_stream_steps_give_generates_bits_and_state():
    """Each step equals ``generate(model, x_t, 1, state=...)`` bit for bit, and so does the
    state it carries, on every cell, stacked layers, peepholes, the forecaster's scaling and
    a model with more inputs than outputs (which generate cannot run: compared with the
    network and head directly)."""
    for model, inputs in _stream_models():
        stream, state = Stream(model), None
        net, head = _network_and_head(model)
        for x in inputs:
            got = stream.step(x)
            if net.input_size == head.weight.shape[0]:
                want, state = generate(model, x, 1, state=state, return_state=True)
                want = want[0]
            else:
                xt = np.asarray(x, dtype=net.dtype)[None, None]
                out, state = net.forward(xt, state, requires_grad=False)
                want = (out[:, -1] @ np.ascontiguousarray(head.weight.T) + head.bias)[0]
            np.testing.assert_array_equal(got, want)
            for a, b in zip(np.atleast_1d(stream.state), np.atleast_1d(state), strict=True):
                np.testing.assert_array_equal(a, b)


def test_generate_feeds_back_through_forward_bit_for_bit():
    """generate's fed-back steps run on a stream's prepared calls: each equals the step
    ``network.forward`` and the head give on the previous output, bit for bit, scaled in the
    forecaster's units as before (each cell, stacked layers, a two-feature model)."""
    for model, inputs in _stream_models():
        net, head = _network_and_head(model)
        if net.input_size != head.weight.shape[0]:
            continue  # generate needs as many outputs as inputs
        seed = np.asarray(inputs[:3], dtype=np.float64).reshape(3, net.input_size)
        mean, sd = (
            (model.mean_[:1], model.scale_[:1]) if isinstance(model, RNNForecaster) else (0, 1)
        )
        for n_steps in (3, 8):  # a few steps through forward's entry, more prepared
            got, state = generate(model, seed, n_steps, return_state=True)
            x = ((seed - mean) / sd).astype(net.dtype)[None]
            w_t = np.ascontiguousarray(head.weight.T)
            want, st = [], None
            for _ in range(n_steps):
                out, st = net.forward(x, st, requires_grad=False)
                y = out[:, -1] @ w_t + head.bias
                want.append(y[0].astype(np.float64))
                x = y[:, None, :]
            want = np.array(want) * sd + mean
            np.testing.assert_array_equal(got, want[:, 0] if net.input_size == 1 else want)
            for a, b in zip(np.atleast_1d(state), np.atleast_1d(st), strict=True):
                np.testing.assert_array_equal(a, b)


def test_stream_without_prepared_calls_gives_the_same_bits(monkeypatch):
    """A backend without ``layer_forward_calls`` (a device network) steps through the
    network's general inference entry: the same numbers as the prepared calls."""

    class WithoutPreparedCalls:  # the CPU backend, less the method the stream looks for
        def __init__(self, backend):
            self._backend = backend

        def __getattr__(self, name):
            if name == "layer_forward_calls":
                raise AttributeError(name)
            return getattr(self._backend, name)

    model, inputs = _stream_models()[1]  # two peephole LSTM layers
    fast = Stream(model)
    prepared = [fast.step(x) for x in inputs]
    net = model.network_
    monkeypatch.setattr(net, "backend", WithoutPreparedCalls(net.backend))
    slow = Stream(model)
    assert slow._calls is None
    assert [slow.step(x) for x in inputs] == prepared
    for a, b in zip(slow.state, fast.state, strict=True):
        np.testing.assert_array_equal(a, b)


def test_stream_state_reset_weights_copy_and_errors(sine):
    model, inputs = _stream_models()[0]
    stream = Stream(model)
    first = [stream.step(x) for x in inputs[:5]]
    carried = stream.state
    rest = [stream.step(x) for x in inputs[5:]]
    # a new stream from the state carries on; reset() starts again from zeros
    carried_on = Stream(model, state=carried)
    assert [carried_on.step(x) for x in inputs[5:]] == rest
    stream.reset()
    assert [stream.step(x) for x in inputs[:5]] == first
    # the stream runs on its own copy of the weights: a later write is not seen
    stream.reset()
    for w in model.network_.parameters().values():
        w *= 2
    assert [stream.step(x) for x in inputs[:5]] == first
    fresh = Stream(model)
    assert [fresh.step(x) for x in inputs[:5]] != first
    # bad input: one error naming x, the expectation and the value; the state is unchanged
    before = stream.state
    for bad in (np.nan, [0.1, 0.2], "a", np.inf):
        with pytest.raises(ValueError, match=r"x must be one finite step of 1 feature"):
            stream.step(bad)
    for a, b in zip(stream.state, before, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="h0 contains NaN"):
        stream.reset((np.full((1, 1, 8), np.nan), np.zeros((1, 1, 8))))
    train, _ = sine
    bi = RNNForecaster(window=5, max_iter=1, bidirectional=True, **FAST).fit(train).regressor_
    with pytest.raises(ValueError, match="Stream needs a unidirectional model"):
        Stream(bi)
    with pytest.raises(TypeError, match="model"):
        Stream(object())


# -- datasets -------------------------------------------------------------------------------
def test_datasets():
    X, y = load_digits_sequences(return_X_y=True)
    assert X.shape == (1797, 8, 8) and 0 <= X.min() and X.max() <= 1 and y.shape == (1797,)
    Xc, Yc, vocab = char_sequences(seq_len=20)
    assert Xc.shape[1:] == (20, len(vocab)) and Yc.shape == Xc.shape[:2]
    assert "".join(vocab[i] for i in Xc[0].argmax(1)) == load_text()[:20]
    assert Yc[0, -1] == load_text()[20]
    t, s = sine_wave(return_t=True)
    assert t.shape == (101,) and s[0] == 0.0 and t[1] == pytest.approx(0.1)


def test_real_series_from_matplotlib():
    pytest.importorskip("matplotlib")
    from numrnn.datasets import load_stock_prices

    s = load_stock_prices()
    assert len(s) > 300 and s.index.is_monotonic_increasing and np.isfinite(s).all()


@pytest.mark.parametrize(
    "params",
    [
        dict(cell="lstm"),
        dict(cell="gru", bidirectional=True, readout="mean"),
        dict(cell="rnn", num_layers=2, segment_length=2),
    ],
)
def test_direct_network_call_equals_the_estimators_predict(params):
    # the forecaster runs small batches of windows through the network itself (the
    # estimator's batching costs more than the network on one window): same bits
    from numrnn.estimators import RNNRegressor
    from numrnn.forecasting._forecaster import _DIRECT_ROWS, _net_predict

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6, 1))
    reg = RNNRegressor(hidden_size=8, max_iter=2, random_state=0, **params)
    reg.fit(X, X[:, -1, 0])
    for rows in (1, 40):
        assert rows <= _DIRECT_ROWS
        np.testing.assert_array_equal(
            _net_predict(reg, X[:rows])[:, 0], reg._forward_predict(*_folded(reg, X[:rows]))[:, 0]
        )
        np.testing.assert_array_equal(_net_predict(reg, X[:rows])[:, 0], reg.predict(X[:rows]))


def _folded(reg, X):
    from numrnn.nn.segments import fold_segments

    return fold_segments(X, np.full(X.shape[0], X.shape[1]), getattr(reg, "segment_length_", 1))

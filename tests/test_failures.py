"""Failures during training and prediction (issue #7): divergence, Ctrl-C, huge inputs."""

import functools
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from numrnn.estimators import NonFiniteLossError, RNNClassifier, RNNRegressor
from numrnn.nn import losses
from numrnn.nn.linear import Linear
from numrnn.nn.optim import Adam

N, T, F = 20, 6, 2


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, T, F))
    return X, X.sum(axis=(1, 2))


def _model(**kw):
    params = dict(
        cell="gru",
        hidden_size=4,
        batch_size=10,
        max_iter=5,
        random_state=0,
        n_iter_no_change=100,
        scale_y=False,  # the divergence tests need y's real overflow
    )
    params.update(kw)
    return RNNRegressor(**params)


def _fit(m, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return m.fit(X, y)


def _weights(m):
    return {**m.network_.state_dict(), **{"head." + k: v for k, v in m.head_.state_dict().items()}}


def _assert_same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)


class _FailOnCall:
    """Wrap a public function or method so that its n-th call (1-based) does something bad.

    The failures are injected through public seams only: the loss functions of
    ``numrnn.nn.losses`` (one call per minibatch and per validation pass), the head's
    ``Linear.backward`` and the optimizer's ``step`` (one call per minibatch each).
    """

    def __init__(self, fn, n, action):
        self.fn, self.n, self.action, self.calls = fn, n, action, 0

    def __get__(self, obj, objtype=None):  # bind like a method
        return self if obj is None else functools.partial(self, obj)

    def __call__(self, est, *args, **kwargs):
        self.calls += 1
        if self.calls == self.n:
            return self.action(self.fn, est, *args, **kwargs)
        return self.fn(est, *args, **kwargs)


def _nan_loss(fn, *args, **kwargs):
    loss, dz = fn(*args, **kwargs)
    return float("nan"), dz


def _interrupt(fn, *args, **kwargs):
    raise KeyboardInterrupt


class _FailOnFunctionCall(_FailOnCall):
    """:class:`_FailOnCall` for a module-level function (no ``self`` to bind)."""

    def __get__(self, obj, objtype=None):
        return self

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.n:
            return self.action(self.fn, *args, **kwargs)
        return self.fn(*args, **kwargs)


def _fail_loss(monkeypatch, n):
    """The n-th evaluation of the regressor's loss (numrnn.nn.losses.mse_loss) is NaN."""
    monkeypatch.setattr(losses, "mse_loss", _FailOnFunctionCall(losses.mse_loss, n, _nan_loss))


def _interrupt_step(monkeypatch, n):
    """Ctrl-C during the n-th optimizer step (numrnn.nn.optim.Adam.step)."""
    monkeypatch.setattr(Adam, "step", _FailOnCall(Adam.step, n, _interrupt))


# -- divergence ---------------------------------------------------------------------------
def test_divergence_keeps_last_finished_epoch(data, monkeypatch):
    X, y = data
    ref = _fit(_model(max_iter=2), X, y)
    # 2 batches per epoch: the 5th loss is the first batch of epoch 3
    _fail_loss(monkeypatch, 5)
    m = _model()
    with pytest.raises(NonFiniteLossError) as err:
        _fit(m, X, y)
    msg = str(err.value)
    assert "non-finite loss in epoch 3" in msg
    assert "learning_rate_init=0.001" in msg and "clip_norm=1.0" in msg
    assert "epoch 2" in msg and "last good weights" in msg
    assert "Lower learning_rate_init" in msg and "clip_norm" in msg
    assert err.value.kept_epoch == 2
    assert m.n_iter_ == 2 and len(m.loss_curve_) == 2
    assert m.loss_curve_ == ref.loss_curve_
    _assert_same_weights(m, ref)
    np.testing.assert_array_equal(m.predict(X), ref.predict(X))


def test_divergence_with_early_stopping_keeps_best(data, monkeypatch):
    X, y = data
    ref = _fit(_model(max_iter=3, early_stopping=True, validation_fraction=0.2), X, y)
    best_epoch = int(np.argmin(ref.validation_loss_curve_)) + 1
    # 16 training samples, batch 10: 2 training losses + 1 validation loss per epoch;
    # the 10th call is the first batch of epoch 4
    _fail_loss(monkeypatch, 10)
    m = _model(max_iter=6, early_stopping=True, validation_fraction=0.2)
    with pytest.raises(NonFiniteLossError, match="best validation loss"):
        _fit(m, X, y)
    assert m.validation_scores_ == ref.validation_scores_
    best = _fit(
        _model(
            max_iter=best_epoch, early_stopping=True, validation_fraction=0.2, n_iter_no_change=100
        ),
        X,
        y,
    )
    _assert_same_weights(m, best)


def test_divergence_in_first_epoch_leaves_model_unfitted(data):
    X, y = data
    m = _model(dtype="float32")
    with pytest.raises(NonFiniteLossError, match="stays unfitted"):
        m.fit(X, y * 1e30)  # squared error overflows float32: a real non-finite loss
    with pytest.raises(NotFittedError):
        m.predict(X)


def test_divergence_in_warm_start_keeps_previous_weights(data):
    X, y = data
    m = _fit(_model(max_iter=2), X, y)
    before = _weights(m)
    pred = m.predict(X)
    m.set_params(warm_start=True)
    with pytest.raises(NonFiniteLossError, match="epoch 2"):
        m.fit(X, y * 1e30)
    for k, v in _weights(m).items():
        np.testing.assert_array_equal(v, before[k])
    np.testing.assert_array_equal(m.predict(X), pred)
    assert m.n_iter_ == 2


def test_non_finite_gradient_is_caught(data, monkeypatch):
    X, y = data

    def nan_grad(fn, head, *args):
        d_in = fn(head, *args)
        head.grads["bias"][...] = np.nan
        return d_in

    # the head's third backward pass (the third minibatch) gives a NaN bias gradient
    monkeypatch.setattr(Linear, "backward", _FailOnCall(Linear.backward, 3, nan_grad))
    m = _model()
    with pytest.raises(NonFiniteLossError, match=r"gradient \(of head.bias\)"):
        _fit(m, X, y)
    assert m.n_iter_ == 1 and np.isfinite(m.predict(X)).all()


# -- KeyboardInterrupt ----------------------------------------------------------------------
def test_keyboard_interrupt_returns_model_of_last_finished_epoch(data, monkeypatch):
    X, y = data
    ref = _fit(_model(max_iter=2), X, y)
    _interrupt_step(monkeypatch, 6)
    m = _model()
    with pytest.warns(UserWarning, match="interrupted by user.*epoch 3.*weights of epoch 2"):
        out = m.fit(X, y)  # returns, as sklearn's MLP does
    assert out is m
    assert m.n_iter_ == 2 and m.t_ == ref.t_ and m.loss_curve_ == ref.loss_curve_
    _assert_same_weights(m, ref)
    np.testing.assert_array_equal(m.predict(X), ref.predict(X))
    # the interrupted model continues like the uninterrupted one (optimizer and RNG restored)
    monkeypatch.undo()
    m.set_params(warm_start=True, max_iter=1)
    ref.set_params(warm_start=True, max_iter=1)
    _assert_same_weights(_fit(m, X, y), _fit(ref, X, y))


def test_keyboard_interrupt_in_first_epoch_reraises(data, monkeypatch):
    X, y = data
    _interrupt_step(monkeypatch, 1)
    m = _model()
    with pytest.raises(KeyboardInterrupt):
        m.fit(X, y)
    with pytest.raises(NotFittedError):
        m.predict(X)


def test_keyboard_interrupt_with_early_stopping_keeps_best(data, monkeypatch):
    X, y = data
    _interrupt_step(monkeypatch, 7)
    m = RNNClassifier(
        cell="rnn",
        hidden_size=4,
        batch_size=10,
        max_iter=6,
        random_state=0,
        early_stopping=True,
        validation_fraction=0.2,
    )
    with pytest.warns(UserWarning, match="best validation loss"):
        m.fit(X, (y > 0).astype(int))
    assert m.n_iter_ == 3
    assert set(m.predict(X)) <= {0, 1}


# -- long sequences, large batches ----------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_predict_long_sequence_in_bounded_memory(cell):
    H, T_long = 16, 100_000
    rng = np.random.default_rng(1)
    m = RNNRegressor(cell=cell, hidden_size=H, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(rng.standard_normal((8, 5, 1)), rng.standard_normal(8))
    X = rng.standard_normal((1, T_long, 1)).astype(np.float32)
    m.predict(X[:, :2000])  # compile outside the measurement
    tracemalloc.start()
    try:
        y = m.predict(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert y.shape == (1,) and np.isfinite(y).all()
    gates = T_long * 4 * H * 4  # what storing every step's gates (float32) would take
    # the input is validated into a copy (float32 + a finiteness mask); nothing per step
    # of the hidden size may be kept
    assert peak < 3 * X.nbytes + 2_000_000, peak
    assert peak < gates / 3, (peak, gates)
    # same result as running the whole sequence at once (chunks carry the exact state)
    net = m.network_
    net.eval()
    _, h_n = net.forward(X, requires_grad=True)
    net.train()
    h = h_n[0] if isinstance(h_n, tuple) else h_n
    np.testing.assert_allclose(
        y, (h[-1] @ m.head_.weight.T + m.head_.bias)[:, 0], rtol=1e-5, atol=1e-6
    )


def test_predict_large_batch_matches_small_batches(data):
    X, y = data
    m = _fit(_model(max_iter=1), X, y)
    rng = np.random.default_rng(2)
    Xb = rng.standard_normal((2500, 3, F))  # more than one internal prediction batch
    full = m.predict(Xb)
    parts = np.concatenate([m.predict(Xb[i : i + 700]) for i in range(0, 2500, 700)])
    np.testing.assert_array_equal(full, parts)


def test_predict_ragged_long_and_short(data):
    X, y = data
    m = _fit(_model(max_iter=1), X, y)
    rng = np.random.default_rng(3)
    long_seq, short_seq = rng.standard_normal((3000, F)), rng.standard_normal((4, F))
    both = m.predict([long_seq, short_seq])
    np.testing.assert_allclose(both[0], m.predict([long_seq])[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both[1], m.predict([short_seq])[0], rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_keyboard_interrupt_in_an_ensemble_keeps_the_networks_trained(data, monkeypatch):
    """RNNClassifier(n_models=3): Ctrl-C in the second network's third epoch stops the fit:
    the first network complete, the second at its last finished epoch, no third."""
    X, y = data
    kw = dict(cell="rnn", hidden_size=4, batch_size=10, max_iter=4, random_state=0, n_models=3)
    steps = int(np.ceil(len(X) / 10))  # optimizer steps per epoch
    _interrupt_step(monkeypatch, 4 * steps + 2 * steps + 1)
    m = RNNClassifier(**kw)
    with pytest.warns(UserWarning, match="interrupted by user"):
        m.fit(X, (y > 0).astype(int))
    assert m.n_iter_ == 4 and len(m.extra_models_) == 1 and m.extra_models_[0].n_iter_ == 2
    assert set(m.predict(X)) <= {0, 1}

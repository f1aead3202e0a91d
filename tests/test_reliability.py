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

"""Readouts (nn.readout), the chunk loop (nn.bptt) and the update step (nn.step) against the
float64 reference (numrnn.testing.reference) and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from numrnn import RNNClassifier, RNNRegressor, nn
from numrnn.estimators._host import HostEngine
from numrnn.nn.bptt import run_minibatch
from numrnn.nn.linear import Linear
from numrnn.nn.losses import mse_loss
from numrnn.nn.optim import SGD
from numrnn.nn.readout import pool_backward, pool_forward, readout_backward, readout_forward
from numrnn.nn.step import apply_update
from numrnn.testing import reference as R
from numrnn.testing.gradcheck import numerical_gradient

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _padded(rng, B=4, T=6, F=3, lengths=(6, 4, 1, 5), garbage=True):
    x = rng.standard_normal((B, T, F))
    lengths = np.array(lengths)
    if garbage:  # what sits in padded steps must never matter
        for b in range(B):
            x[b, lengths[b] :] = 1e3
    return x, lengths


@pytest.mark.parametrize("mode", ["last", "mean", "max", "last+mean+max"])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mean", "mul"])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 2e-5)])
def test_readout_matches_reference(mode, merge_mode, dtype, tol):
    """Features and the gradients they send into the network (d_out, d_state), bidirectional
    and stacked, ragged; float32 against the float64 reference."""
    rng = np.random.default_rng(0)
    x, lengths = _padded(rng)
    net = nn.LSTM(3, 4, 2, bidirectional=True, merge_mode=merge_mode, dtype=dtype,
                  random_state=1)  # fmt: skip
    out, state = net.forward(x.astype(dtype), lengths=lengths)
    out = out.copy()
    for b in range(4):  # padding of the output never contributes either
        out[b, lengths[b] :] = 7.0
    feat, ctx = readout_forward(mode, out, state, lengths, 2, 2, merge_mode)
    opts = dict(num_layers=2, bidirectional=True, merge_mode=merge_mode)
    ref = R.readout(mode, out, state, lengths, **opts)
    np.testing.assert_allclose(feat, ref, rtol=tol, atol=tol)
    assert feat.dtype == np.dtype(dtype)
    dfeat = rng.standard_normal(feat.shape).astype(dtype)
    d_out, d_state = readout_backward(dfeat, ctx)
    ref_out, ref_state = R.readout_backward(mode, dfeat, out, state, lengths, **opts)
    if "last" in mode:  # 'last' and 'last+mean+max' send a gradient to the final state
        for a, b in zip(d_state, ref_state, strict=True):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    else:
        assert d_state is None
    if mode == "last":
        assert d_out is None
    else:
        np.testing.assert_allclose(d_out, ref_out, rtol=tol, atol=tol)
        for b in range(4):
            assert not d_out[b, lengths[b] :].any()


@pytest.mark.parametrize("mode", ["mean", "max"])
def test_pooled_readout_gradient_matches_finite_differences(mode):
    rng = np.random.default_rng(3)
    out = rng.standard_normal((3, 5, 4))
    lengths = np.array([5, 2, 3])
    c = rng.standard_normal((3, 4))
    feat, ctx = pool_forward(out, lengths, mode)
    analytic = pool_backward(c, ctx)
    numeric = numerical_gradient(lambda: float((pool_forward(out, lengths, mode)[0] * c).sum()),
                                 out)  # fmt: skip
    np.testing.assert_allclose(analytic, numeric, atol=1e-8)


@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
def test_combined_readout_gradient_matches_finite_differences(merge_mode):
    """'last+mean+max': d_out (both pools) and d_state (the final states), bidirectional."""
    rng = np.random.default_rng(4)
    B, T, H = 3, 5, 2
    D_out = 2 * H if merge_mode == "concat" else H
    out = rng.standard_normal((B, T, D_out))
    h = rng.standard_normal((2, B, H))  # one layer, two directions
    lengths = np.array([5, 2, 3])
    feat, ctx = readout_forward("last+mean+max", out, h, lengths, 1, 2, merge_mode)
    assert feat.shape == (B, 3 * D_out)
    c = rng.standard_normal(feat.shape)
    d_out, d_state = readout_backward(c, ctx)

    def loss():
        f, _ = readout_forward("last+mean+max", out, h, lengths, 1, 2, merge_mode)
        return float((f * c).sum())

    np.testing.assert_allclose(d_out, numerical_gradient(loss, out), atol=1e-8)
    np.testing.assert_allclose(d_state, numerical_gradient(loss, h), atol=1e-8)


def _engine(cell, x, Y, *, per_step, readout="last", bidirectional=False, merge_mode="concat",
            num_layers=1, lr=0.1):  # fmt: skip
    net = CELLS[cell](x.shape[2], 3, num_layers, bidirectional=bidirectional,
                      merge_mode=merge_mode, dtype="float64", random_state=2)  # fmt: skip
    head = Linear(net.layer_output_size, Y.shape[-1], dtype=np.float64, rng=3)
    params = dict(net.parameters())
    params["head.weight"], params["head.bias"] = head.weight, head.bias
    opt = SGD(params, lr=lr, momentum=0.0)

    def loss(z, target, mask, weight):
        return mse_loss(z, target, mask=mask, sample_weight=weight)

    eng = HostEngine(net, head, opt, params, loss, per_step=per_step, readout=readout)
    eng.set_batch(x, Y)
    return eng, net, head


CHUNK_CASES = [
    # cell, bptt_steps, per_step, readout, bidirectional, merge_mode, layers
    ("lstm", 2, False, "last", False, "concat", 2),
    ("gru", 3, True, "last", False, "concat", 1),
    ("rnn", None, False, "mean", True, "mul", 1),
    ("gru", None, False, "max", True, "concat", 2),
    ("lstm", None, False, "last", True, "sum", 1),
    ("rnn", 1, True, "last", False, "concat", 2),
]


@pytest.mark.parametrize("case", CHUNK_CASES, ids=lambda c: "-".join(map(str, c)))
def test_bptt_chunks_match_reference(case):
    """Each chunk's gradient (detached carry, per-chunk updates, ragged batch, sample
    weights) equals the float64 reference's truncated BPTT, chunk by chunk."""
    cell, k, per_step, readout, bi, mm, L = case
    rng = np.random.default_rng(4)
    x, lengths = _padded(rng, B=4, T=7, F=2, lengths=(7, 3, 5, 6))
    Y = rng.standard_normal((4, 7, 2) if per_step else (4, 2))
    w = np.array([1.0, 0.5, 2.0, 1.5])
    eng, net, head = _engine(cell, x, Y, per_step=per_step, readout=readout,
                             bidirectional=bi, merge_mode=mm, num_layers=L)  # fmt: skip
    start = (net.state_dict(), head.weight.copy(), head.bias.copy())
    seen = []

    def update(grads):
        seen.append({n: g.copy() for n, g in grads.items()})
        return apply_update(eng, grads, alpha=0.0, clip_value=None, clip_norm=None)

    loss_sum, w_sum = run_minibatch(eng, lengths, w, bptt_steps=k, per_step=per_step,
                                    update=update)  # fmt: skip
    chunks, p_ref, W_ref, b_ref = R.tbptt_minibatch(
        cell, start[0], start[1], start[2], x, lengths, Y, bptt_steps=k, per_step=per_step,
        sample_weight=w, readout_mode=readout, lr=0.1, num_layers=L, bidirectional=bi,
        merge_mode=mm,
    )  # fmt: skip
    assert len(seen) == len(chunks) >= (2 if k else 1)
    for got, ref in zip(seen, chunks, strict=True):
        for name, g in ref["grads"].items():
            np.testing.assert_allclose(got[name], g, rtol=1e-9, atol=1e-12, err_msg=name)
    assert loss_sum == pytest.approx(sum(c["loss"] for c in chunks), rel=1e-12)
    assert w_sum == pytest.approx(w.sum())
    for name, p in net.state_dict().items():
        np.testing.assert_allclose(p, p_ref[name], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(head.weight, W_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("readout", ["mean", "max", "last+mean+max"])
def test_estimator_loss_gradient_matches_finite_differences(readout):
    """The gradient a pooled-readout fit applies is the gradient of the estimator's loss."""
    rng = np.random.default_rng(5)
    X = [rng.standard_normal((t, 2)) for t in (5, 3, 4)]
    y = rng.standard_normal(3)
    m = RNNRegressor("gru", 3, readout=readout, bidirectional=True, merge_mode="sum",
                     dtype="float64", max_iter=1, random_state=0, alpha=0.0)  # fmt: skip
    m.partial_fit(X, y)
    Xp, lengths, _ = m._validate_X(X, reset=False)
    Y = y[:, None]
    eng = m._host_engine()
    eng.set_batch(Xp, Y)
    grads = {}

    def keep(g):
        grads.update({n: a.copy() for n, a in g.items()})
        return 0.0

    run_minibatch(eng, lengths, None, bptt_steps=None, per_step=False, update=keep)

    def loss():
        return m._eval_loss(Xp, lengths, Y, None)

    for name in ("weight_hh_l0", "bias_ih_l0_reverse", "head.weight"):
        p = m._all_params()[name]
        np.testing.assert_allclose(grads[name], numerical_gradient(loss, p), atol=1e-7,
                                   err_msg=name)  # fmt: skip


@pytest.mark.parametrize("readout", ["mean", "max", "last+mean+max"])
@pytest.mark.parametrize("est", [RNNRegressor, RNNClassifier])
def test_pooled_readout_is_padding_invariant(readout, est):
    """A sequence predicts the same alone and padded in a batch of longer ones, and a fit on
    ragged data equals the fit on the same data padded with extra NaN steps."""
    rng = np.random.default_rng(6)
    X = [rng.standard_normal((t, 2)) for t in (6, 2, 4, 5, 3, 6)]
    y = np.array([0.5, -1.0, 0.2, 1.0, -0.3, 0.7])
    if est is RNNClassifier:
        y = (y > 0).astype(int)
    kw = dict(cell="lstm", hidden_size=4, readout=readout, dtype="float64", max_iter=3,
              random_state=0, bidirectional=True)  # fmt: skip
    m = est(**kw).fit(X, y)
    Xpad = np.full((6, 9, 2), np.nan)
    for i, a in enumerate(X):
        Xpad[i, : len(a)] = a
    m2 = est(**kw).fit(Xpad, y)
    for a, b in zip(m.network_.state_dict().values(), m2.network_.state_dict().values(),
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    predict = m.predict_proba if est is RNNClassifier else m.predict
    together = predict(Xpad)
    for i, a in enumerate(X):
        np.testing.assert_allclose(predict([a])[0], together[i], rtol=1e-10, atol=1e-12)


def test_readout_parameter_is_validated():
    X = np.zeros((4, 3, 1))
    y = np.arange(4.0)
    with pytest.raises(
        ValueError,
        match=r"readout must be one of \('last', 'mean', 'max', 'last\+mean\+max', 'auto'\), "
        r"got 'avg'\. Pass one of",
    ):
        RNNRegressor(readout="avg").fit(X, y)
    with pytest.raises(ValueError, match="readout must be one of .* got 'Auto'"):
        RNNClassifier(readout="Auto").fit(X, [0, 1, 0, 1])
    with pytest.raises(ValueError, match="readout must be 'last' or 'auto' when output='sequence'"):
        RNNRegressor(readout="mean", output="sequence").fit(X, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="bptt_steps must be None when readout='max'"):
        RNNRegressor(readout="max", bptt_steps=2).fit(X, y)


def _auto_pair(est, X, y, **kw):
    """A fit with readout='auto' and the same fit with the readout it resolved to."""
    kw = dict(cell="gru", hidden_size=3, max_iter=2, random_state=0, dtype="float64", **kw)
    if est is RNNClassifier:
        kw["n_models"] = 1
    auto = est(readout="auto", **kw).fit(X, y)
    return auto, est(readout=auto.readout_, **kw).fit(X, y)


@pytest.mark.parametrize("est", [RNNRegressor, RNNClassifier])
def test_readout_auto_resolves_by_folding(est):
    """readout='auto': 'last+mean+max' when the sequences are not folded into segments,
    'last' when they are; the fit is the fit with that readout, bit for bit."""
    rng = np.random.default_rng(7)
    short = rng.standard_normal((6, 5, 2))  # 5 steps: segment_length='auto' does not fold
    long = rng.standard_normal((6, 30, 2))  # 30 steps: segments of 2
    y = np.array([0, 1, 1, 0, 1, 0])
    for X, seg, expected in [(short, "auto", "last+mean+max"), (long, "auto", "last"),
                             (long, None, "last+mean+max"), (long, 1, "last+mean+max"),
                             (short, 2, "last")]:  # fmt: skip
        auto, same = _auto_pair(est, X, y, segment_length=seg)
        assert auto.readout == "auto" and auto.readout_ == expected, (seg, X.shape)
        assert auto.head_.weight.shape[1] == (9 if expected == "last+mean+max" else 3)
        np.testing.assert_array_equal(auto.predict(X), same.predict(X))
        np.testing.assert_array_equal(auto.coef_, same.coef_)


def test_readout_auto_is_last_where_a_pool_is_undefined_and_fixed_by_the_first_fit():
    """'auto' never turns into a pooled readout that the other parameters reject (truncated
    BPTT, per-step output), and a warm start keeps the first fit's readout_ or refuses."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((4, 5, 1))
    y = np.arange(4.0)
    kw = dict(hidden_size=2, max_iter=1, readout="auto")
    assert RNNRegressor(bptt_steps=2, **kw).fit(X, y).readout_ == "last"
    seq = RNNRegressor(output="sequence", **kw).fit(X, np.zeros((4, 5)))
    assert seq.readout_ == "last"
    m = RNNRegressor(warm_start=True, **kw).fit(X, y)
    assert m.readout_ == "last+mean+max"
    m.fit(X, y)  # same resolution: continues
    assert m.readout_ == "last+mean+max" and m.n_iter_ == 2
    with pytest.raises(ValueError, match=r"needs the same readout .*readout_='last\+mean\+max'"):
        m.set_params(readout="last").fit(X, y)
    assert m.readout_ == "last+mean+max" and m.n_iter_ == 2  # the model as it was


def test_classifier_default_readout_is_auto():
    assert RNNClassifier().readout == "auto"
    assert RNNClassifier().get_params()["readout"] == "auto"
    assert RNNRegressor().readout == "last"

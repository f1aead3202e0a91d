"""Losses, the Linear head, gradient clipping and optimizers (numrnn.nn)."""

from __future__ import annotations

import numpy as np
import pytest

from numrnn.nn.clip import clip_grad_norm, clip_grad_value, global_grad_norm
from numrnn.nn.linear import Linear
from numrnn.nn.losses import mse_loss, softmax, softmax_cross_entropy
from numrnn.nn.optim import SGD, Adam


def _fd_grad(f, x, eps=1e-6):
    """Central finite differences of scalar f at x (float64, x modified and restored)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def _padding_mask(B=3, T=5):
    """Sequence 0 full, sequence 1 three steps, sequence 2 one step."""
    mask = np.ones((B, T), dtype=bool)
    mask[1, 3:] = False
    mask[2, 1:] = False
    return mask


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("shape", [(6, 3), (3, 5, 2)])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_mse_gradient_finite_differences(shape, masked, weighted):
    rng = np.random.default_rng(0)
    pred = rng.standard_normal(shape)
    target = rng.standard_normal(shape)
    mask = None
    if masked:
        mask = rng.random(shape[:-1]) < 0.7
        mask.flat[0] = True
    sw = rng.random(shape[0]) + 0.1 if weighted else None
    loss, grad = mse_loss(pred, target, mask, sw)
    fd = _fd_grad(lambda: mse_loss(pred, target, mask, sw)[0], pred)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
    assert isinstance(loss, float)


@pytest.mark.parametrize("shape", [(6, 4), (3, 5, 4)])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_gradient_finite_differences(shape, masked, weighted):
    rng = np.random.default_rng(1)
    logits = 3 * rng.standard_normal(shape)
    target = rng.integers(0, shape[-1], size=shape[:-1])
    mask = None
    if masked:
        mask = rng.random(shape[:-1]) < 0.7
        mask.flat[0] = True
    sw = rng.random(shape[0]) + 0.1 if weighted else None
    loss, grad = softmax_cross_entropy(logits, target, mask, sw)
    fd = _fd_grad(lambda: softmax_cross_entropy(logits, target, mask, sw)[0], logits)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
    assert loss > 0


def test_masked_steps_contribute_nothing():
    rng = np.random.default_rng(2)
    mask = _padding_mask()
    pred = rng.standard_normal((3, 5, 2))
    target = rng.standard_normal((3, 5, 2))
    logits = rng.standard_normal((3, 5, 4))
    labels = rng.integers(0, 4, size=(3, 5))
    # Garbage at padded steps: NaN targets, NaN logits, invalid labels.
    target_p, pred_p, logits_p, labels_p = target.copy(), pred.copy(), logits.copy(), labels.copy()
    target_p[~mask] = np.nan
    pred_p[~mask] = 1e30
    logits_p[~mask] = np.nan
    labels_p[~mask] = -1

    loss, grad = mse_loss(pred_p, target_p, mask)
    ref_loss, _ = mse_loss(pred[mask], target[mask])  # valid entries only, as (N, K)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    assert np.all(grad[~mask] == 0) and np.all(np.isfinite(grad))
    _, ref_grad = mse_loss(pred[mask], target[mask])
    np.testing.assert_allclose(grad[mask], ref_grad, rtol=1e-12)

    loss, grad = softmax_cross_entropy(logits_p, labels_p, mask)
    ref_loss, ref_grad = softmax_cross_entropy(logits[mask], labels[mask])
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    assert np.all(grad[~mask] == 0) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad[mask], ref_grad, rtol=1e-12)

    # With sample weights too.
    sw = np.array([1.0, 2.0, 0.5])
    loss_w, grad_w = softmax_cross_entropy(logits_p, labels_p, mask, sw)
    assert np.isfinite(loss_w) and np.all(grad_w[~mask] == 0)


def test_sample_weight_is_weighted_mean():
    rng = np.random.default_rng(3)
    pred = rng.standard_normal((4, 3))
    target = rng.standard_normal((4, 3))
    sw = np.array([1.0, 2.0, 0.0, 3.0])
    loss, _ = mse_loss(pred, target, sample_weight=sw)
    per_row = ((pred - target) ** 2).mean(axis=1)
    assert loss == pytest.approx(np.sum(sw * per_row) / sw.sum(), rel=1e-12)
    # Integer weights == repeating samples.
    rep = np.repeat(np.arange(4), sw.astype(int))
    assert loss == pytest.approx(mse_loss(pred[rep], target[rep])[0], rel=1e-12)
    logits = rng.standard_normal((4, 5))
    y = rng.integers(0, 5, 4)
    ce, _ = softmax_cross_entropy(logits, y, sample_weight=sw)
    assert ce == pytest.approx(softmax_cross_entropy(logits[rep], y[rep])[0], rel=1e-12)
    # Uniform weights change nothing.
    np.testing.assert_allclose(
        mse_loss(pred, target, sample_weight=np.full(4, 7.0))[1], mse_loss(pred, target)[1]
    )
    # Sequence weights: per sample, normalised by the weight of the valid steps.
    pred3 = rng.standard_normal((2, 3, 1))
    tgt3 = rng.standard_normal((2, 3, 1))
    mask = np.array([[True, True, True], [True, False, False]])
    sw2 = np.array([1.0, 4.0])
    loss3, _ = mse_loss(pred3, tgt3, mask, sw2)
    sq = (pred3 - tgt3)[..., 0] ** 2
    expected = (sq[0].sum() * 1.0 + sq[1, 0] * 4.0) / (3 * 1.0 + 1 * 4.0)
    assert loss3 == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_preserve_dtype(dtype):
    rng = np.random.default_rng(4)
    pred = rng.standard_normal((2, 3, 2)).astype(dtype)
    mask = np.array([[True, True, False], [True, False, False]])
    _, g = mse_loss(pred, np.zeros((2, 3, 2)), mask, np.array([1.0, 2.0]))
    assert g.dtype == dtype
    _, g = softmax_cross_entropy(pred, np.zeros((2, 3), dtype=int), mask, np.array([1.0, 2.0]))
    assert g.dtype == dtype
    assert softmax(pred).dtype == dtype


def test_softmax_stable_and_normalised():
    z = np.array([[1000.0, 1000.0, -1000.0], [0.0, 1.0, 2.0]])
    p = softmax(z)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    np.testing.assert_allclose(p[0], [0.5, 0.5, 0.0])
    loss, g = softmax_cross_entropy(np.array([[1000.0, -1000.0]]), np.array([1]))
    assert loss == pytest.approx(2000.0) and np.all(np.isfinite(g))


def test_loss_edge_cases():
    pred = np.ones((2, 3, 1))
    mask = np.zeros((2, 3), dtype=bool)
    assert mse_loss(pred, np.zeros((2, 3, 1)), mask) == (0.0, pytest.approx(np.zeros_like(pred)))
    # target with the output axis dropped when K == 1
    assert mse_loss(pred, np.zeros((2, 3)))[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="target"):
        mse_loss(pred, np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match="mask"):
        mse_loss(pred, pred, np.ones((3, 2), dtype=bool))
    with pytest.raises(ValueError, match="class indices"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="integer"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0.5, 1.0]))
    # float labels holding whole numbers are accepted
    assert softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 2.0]))[0] == pytest.approx(
        np.log(3)
    )


@pytest.mark.torch
@pytest.mark.parametrize("masked", [False, True])
def test_losses_match_torch(masked):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    B, T, K, C = 3, 4, 2, 5
    mask = rng.random((B, T)) < 0.6 if masked else np.ones((B, T), dtype=bool)
    mask[0, 0] = True
    pred = rng.standard_normal((B, T, K))
    target = rng.standard_normal((B, T, K))
    pt = torch.tensor(pred[mask], requires_grad=True)
    ref = torch.nn.MSELoss()(pt, torch.tensor(target[mask]))
    ref.backward()
    loss, grad = mse_loss(pred, target, mask)
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(grad[mask], pt.grad.numpy(), rtol=1e-12)

    logits = 2 * rng.standard_normal((B, T, C))
    labels = rng.integers(0, C, size=(B, T))
    lt = torch.tensor(logits[mask], requires_grad=True)
    ref = torch.nn.CrossEntropyLoss()(lt, torch.tensor(labels[mask]))
    ref.backward()
    loss, grad = softmax_cross_entropy(logits, labels, mask)
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(grad[mask], lt.grad.numpy(), rtol=1e-10, atol=1e-15)

    # float32 agrees with torch's float32 to rounding
    lt32 = torch.tensor(logits.reshape(-1, C).astype(np.float32), requires_grad=True)
    ref32 = torch.nn.CrossEntropyLoss()(lt32, torch.tensor(labels.ravel()))
    ref32.backward()
    loss32, grad32 = softmax_cross_entropy(logits.astype(np.float32), labels)
    assert loss32 == pytest.approx(ref32.item(), rel=1e-6)
    np.testing.assert_allclose(grad32.reshape(-1, C), lt32.grad.numpy(), rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------- Linear


@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 3)])
def test_linear_gradients_finite_differences(shape):
    rng = np.random.default_rng(6)
    lin = Linear(3, 2, dtype=np.float64, rng=rng)
    x = rng.standard_normal(shape)
    w_out = rng.standard_normal(shape[:-1] + (2,))

    def f():
        return float(np.sum(lin.forward(x) * w_out))

    y = lin.forward(x)
    assert y.shape == shape[:-1] + (2,)
    dx = lin.backward(w_out)
    np.testing.assert_allclose(dx, _fd_grad(f, x), rtol=1e-7, atol=1e-9)
    lin.forward(x)
    lin.backward(w_out)
    for name in ("weight", "bias"):
        np.testing.assert_allclose(
            lin.grads[name], _fd_grad(f, lin.params[name]), rtol=1e-7, atol=1e-9
        )


def test_linear_init_dtype_and_state_dict():
    lin = Linear(16, 3, rng=np.random.default_rng(7))
    assert lin.weight.shape == (3, 16) and lin.bias.shape == (3,)
    assert lin.weight.dtype == np.float32 and lin.grads["weight"].dtype == np.float32
    bound = 1 / np.sqrt(16)
    assert np.all(np.abs(lin.weight) <= bound) and np.all(np.abs(lin.bias) <= bound)
    assert lin.forward(np.ones((4, 16))).dtype == np.float32
    # same seed, same weights
    assert np.array_equal(Linear(16, 3, rng=7).weight, Linear(16, 3, rng=7).weight)

    sd = lin.state_dict()
    w_ref = lin.weight
    other = Linear(16, 3, rng=np.random.default_rng(8))
    other.load_state_dict(sd)
    assert np.array_equal(other.weight, lin.weight)
    lin.load_state_dict({"weight": np.zeros((3, 16)), "bias": np.zeros(3)})
    assert lin.weight is w_ref and np.all(lin.weight == 0)  # in place
    assert np.any(sd["weight"] != 0)  # state_dict returned copies
    with pytest.raises(ValueError, match="shape"):
        lin.load_state_dict({"weight": np.zeros((16, 3)), "bias": np.zeros(3)})
    with pytest.raises(KeyError):
        lin.load_state_dict({"weight": np.zeros((3, 16))})


@pytest.mark.torch
def test_linear_matches_torch_layout():
    torch = pytest.importorskip("torch")
    tl = torch.nn.Linear(4, 3).double()
    lin = Linear(4, 3, dtype=np.float64)
    lin.load_state_dict({k: v.detach().numpy() for k, v in tl.state_dict().items()})
    x = np.random.default_rng(9).standard_normal((2, 5, 4))
    np.testing.assert_allclose(lin.forward(x), tl(torch.tensor(x)).detach().numpy(), rtol=1e-12)


# ----------------------------------------------------------------------------- clipping


def _grads(rng, dtype=np.float64, scale=1.0):
    return {
        "w": (scale * rng.standard_normal((4, 3))).astype(dtype),
        "b": (scale * rng.standard_normal(4)).astype(dtype),
    }


def test_clip_grad_norm_formula():
    rng = np.random.default_rng(10)
    g = _grads(rng, scale=10.0)
    orig = {k: v.copy() for k, v in g.items()}
    norm = np.sqrt(sum(np.sum(v**2) for v in orig.values()))
    assert global_grad_norm(g) == pytest.approx(norm, rel=1e-12)
    ret = clip_grad_norm(g, 1.0)
    assert ret == pytest.approx(norm, rel=1e-12)
    for k in g:
        np.testing.assert_allclose(g[k], orig[k] * (1.0 / (norm + 1e-6)), rtol=1e-12)
    assert global_grad_norm(g) == pytest.approx(1.0, rel=1e-5)
    # below the threshold: untouched (and lists work too)
    lst = [v.copy() for v in orig.values()]
    clip_grad_norm(lst, 2 * norm)
    for a, b in zip(lst, orig.values(), strict=True):
        assert np.array_equal(a, b)
    with pytest.raises(FloatingPointError):
        clip_grad_norm([np.array([np.nan, 1.0])], 1.0, error_if_nonfinite=True)


def test_clip_grad_value_formula():
    g = {"a": np.array([-3.0, -0.5, 0.0, 0.5, 3.0]), "b": np.array([[10.0, -10.0]], np.float32)}
    clip_grad_value(g, 1.0)
    np.testing.assert_array_equal(g["a"], [-1.0, -0.5, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(g["b"], [[1.0, -1.0]])
    assert g["b"].dtype == np.float32


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clipping_matches_torch(dtype, max_norm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    g = _grads(rng, dtype, scale=3.0)
    tparams = [
        torch.nn.Parameter(torch.zeros(v.shape, dtype=torch.from_numpy(v).dtype))
        for v in g.values()
    ]
    for p, v in zip(tparams, g.values(), strict=True):
        p.grad = torch.tensor(v.copy())
    ref = torch.nn.utils.clip_grad_norm_(tparams, max_norm)
    norm = clip_grad_norm(g, max_norm)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    assert norm == pytest.approx(ref.item(), rel=rtol)
    for p, v in zip(tparams, g.values(), strict=True):
        np.testing.assert_allclose(v, p.grad.numpy(), rtol=rtol)

    g = _grads(rng, dtype, scale=3.0)
    for p, v in zip(tparams, g.values(), strict=True):
        p.grad = torch.tensor(v.copy())
    torch.nn.utils.clip_grad_value_(tparams, 1.5)
    clip_grad_value(g, 1.5)
    for p, v in zip(tparams, g.values(), strict=True):
        np.testing.assert_array_equal(v, p.grad.numpy())


# ----------------------------------------------------------------------------- optimizers

_SHAPES = {"weight": (3, 4), "bias": (3,)}


def _run_numrnn(opt_cls, kwargs, n_steps=20, seed=12, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in _SHAPES.items()}
    init = {k: v.copy() for k, v in params.items()}
    grads_seq = [
        {k: rng.standard_normal(s).astype(dtype) for k, s in _SHAPES.items()}
        for _ in range(n_steps)
    ]
    opt = opt_cls(params, **kwargs)
    for grads in grads_seq:
        opt.step(grads)
    return init, grads_seq, params, opt


_TORCH_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
]


@pytest.mark.torch
@pytest.mark.parametrize(("name", "kwargs"), _TORCH_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_optimizers_match_torch(name, kwargs, dtype):
    torch = pytest.importorskip("torch")
    opt_cls = {"SGD": SGD, "Adam": Adam}[name]
    init, grads_seq, params, opt = _run_numrnn(opt_cls, kwargs, dtype=dtype)
    tparams = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in init.items()}
    topt = getattr(torch.optim, name)(list(tparams.values()), **kwargs)
    for grads in grads_seq:
        for k, p in tparams.items():
            p.grad = torch.tensor(grads[k])
        topt.step()
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for k in params:
        assert params[k].dtype == dtype
        np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), **tol)
    assert opt.t == 20


@pytest.mark.torch
def test_lr_change_between_steps_matches_torch():
    torch = pytest.importorskip("torch")
    init, grads_seq, params, _ = _run_numrnn(SGD, dict(lr=0.1), n_steps=0)
    for opt_cls, tname, kw in [(SGD, "SGD", dict(momentum=0.9)), (Adam, "Adam", {})]:
        p_np = {k: v.copy() for k, v in init.items()}
        opt = opt_cls(p_np, lr=0.1, **kw)
        tparams = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in init.items()}
        topt = getattr(torch.optim, tname)(list(tparams.values()), lr=0.1, **kw)
        rng = np.random.default_rng(13)
        for i in range(10):
            lr = 0.1 / (1 + i)
            opt.lr = lr
            for group in topt.param_groups:
                group["lr"] = lr
            grads = {k: rng.standard_normal(v.shape) for k, v in init.items()}
            opt.step(grads)
            for k, p in tparams.items():
                p.grad = torch.tensor(grads[k])
            topt.step()
        for k in p_np:
            np.testing.assert_allclose(p_np[k], tparams[k].detach().numpy(), rtol=1e-10)


def _quadratic(dtype=np.float64):
    """f(p) = 0.5 * sum(a * (p - c)^2) over two parameters."""
    rng = np.random.default_rng(14)
    a = {"w": rng.uniform(0.5, 2.0, (3, 2)), "b": rng.uniform(0.5, 2.0, 2)}
    c = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    params = {k: np.zeros_like(v, dtype=dtype) for k, v in c.items()}

    def loss_and_grads():
        loss = sum(0.5 * np.sum(a[k] * (params[k] - c[k]) ** 2) for k in params)
        return loss, {k: (a[k] * (params[k] - c[k])).astype(dtype) for k in params}

    return params, loss_and_grads


@pytest.mark.parametrize(
    ("opt_cls", "kwargs"),
    [
        (SGD, dict(lr=0.1)),
        (SGD, dict(lr=0.05, momentum=0.9)),
        (SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
        (Adam, dict(lr=0.05)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizers_decrease_quadratic(opt_cls, kwargs, dtype):
    params, loss_and_grads = _quadratic(dtype)
    refs = {k: v for k, v in params.items()}
    opt = opt_cls(params, **kwargs)
    start, _ = loss_and_grads()
    for _ in range(300):
        _, grads = loss_and_grads()
        opt.step(grads)
    end, _ = loss_and_grads()
    assert end < 1e-3 * start
    for k in params:  # updated in place, same arrays, same dtype
        assert params[k] is refs[k] and params[k].dtype == dtype
        for buf in opt._state.values():
            assert buf[k].dtype == dtype


def test_plain_sgd_update_rule():
    p = {"x": np.array([1.0, -2.0])}
    SGD(p, lr=0.5, weight_decay=0.1).step({"x": np.array([0.2, 0.4])})
    np.testing.assert_allclose(p["x"], [1.0 - 0.5 * (0.2 + 0.1), -2.0 - 0.5 * (0.4 - 0.2)])
    # Adam's first step moves every coordinate by ~lr * sign(g)
    p = {"x": np.array([1.0, -2.0])}
    Adam(p, lr=0.01).step({"x": np.array([3.0, -1e-3])})
    np.testing.assert_allclose(p["x"], [0.99, -1.99], rtol=1e-4)


@pytest.mark.parametrize(
    ("opt_cls", "kwargs"),
    [
        (SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
        (Adam, dict(lr=0.01, weight_decay=0.01)),
    ],
)
def test_state_dict_round_trip_resumes_identically(opt_cls, kwargs):
    rng = np.random.default_rng(15)
    grads_seq = [{k: rng.standard_normal(s) for k, s in _SHAPES.items()} for _ in range(10)]
    init = {k: rng.standard_normal(s) for k, s in _SHAPES.items()}

    # uninterrupted run
    p_full = {k: v.copy() for k, v in init.items()}
    opt = opt_cls(p_full, **kwargs)
    for g in grads_seq:
        opt.step(g)

    # 5 steps, save, continue in a fresh optimizer
    p_a = {k: v.copy() for k, v in init.items()}
    opt_a = opt_cls(p_a, **kwargs)
    for g in grads_seq[:5]:
        opt_a.step(g)
    state = opt_a.state_dict()
    p_b = {k: v.copy() for k, v in p_a.items()}
    opt_b = opt_cls(p_b, lr=123.0)  # hyperparameters come from the state
    opt_b.load_state_dict(state)
    assert opt_b.t == 5 and opt_b.lr == kwargs["lr"]
    for g in grads_seq[5:]:
        opt_b.step(g)
    for k in p_full:
        np.testing.assert_array_equal(p_b[k], p_full[k])

    # roll back a step: restore params and optimizer state, retake the step
    snap_p = {k: v.copy() for k, v in p_a.items()}
    snap = opt_a.state_dict()
    opt_a.step({k: np.full(s, np.nan) for k, s in _SHAPES.items()})  # a failed step
    assert not np.all(np.isfinite(p_a["weight"]))
    for k in p_a:
        np.copyto(p_a[k], snap_p[k])
    opt_a.load_state_dict(snap)
    for g in grads_seq[5:]:
        opt_a.step(g)
    for k in p_full:
        np.testing.assert_array_equal(p_a[k], p_full[k])
    # state_dict holds copies, not views of live buffers
    assert snap["t"] == 5


def test_optimizer_validation():
    p = {"x": np.zeros(3)}
    with pytest.raises(ValueError, match="nesterov"):
        SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="lr"):
        Adam(p, lr=-1.0)
    with pytest.raises(ValueError, match="betas"):
        Adam(p, betas=(0.9, 1.0))
    with pytest.raises(TypeError):
        SGD({"x": np.zeros(3, dtype=int)})
    opt = Adam(p)
    with pytest.raises(KeyError, match="missing"):
        opt.step({"y": np.zeros(3)})
    with pytest.raises(ValueError, match="shape"):
        opt.step({"x": np.zeros(4)})


@pytest.mark.parametrize("contiguous", [True, False])
def test_step_allocates_no_new_state(contiguous):
    # Contiguous parameters take the compiled update (no scratch at all), strided ones the
    # NumPy update (its scratch buffers allocated once).
    w = np.ones((50, 50), np.float32) if contiguous else np.ones((50, 100), np.float32)[:, ::2]
    params = {"w": w}
    opt = Adam(params, weight_decay=0.1)
    g = {"w": np.full((50, 50), 0.5, np.float32)}
    opt.step(g)
    ids = {id(a) for bufs in opt._state.values() for a in bufs.values()}
    scratch2 = opt._scratch2
    scratch = id(opt._scratch["w"]), None if scratch2 is None else id(scratch2["w"])
    assert (scratch2 is None) == contiguous
    opt.step(g)
    assert ids == {id(a) for bufs in opt._state.values() for a in bufs.values()}
    assert opt._scratch2 is scratch2
    assert scratch == (id(opt._scratch["w"]), None if scratch2 is None else id(scratch2["w"]))
    assert g["w"][0, 0] == 0.5  # the caller's gradients are not modified
    assert np.all(w < 1.0)  # the update reached the parameter


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_kernel_matches_numpy_update_bitwise(dtype, weight_decay):
    """Contiguous parameters take the compiled Adam update, strided views the NumPy one:
    the same IEEE operations in the same order, so the same bits."""
    rng = np.random.default_rng(3)
    shapes = {"w": (7, 5), "b": (5,), "s": (1,)}
    base = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    flat = {k: v.copy() for k, v in base.items()}
    # Every other element of a twice-as-large buffer: same values, not contiguous.
    holders = {k: np.zeros(v.size * 2, dtype=dtype) for k, v in base.items()}
    strided = {}
    for k, v in base.items():
        holders[k][::2] = v.ravel()
        strided[k] = holders[k][::2].reshape(v.shape)
    assert not any(a.flags.c_contiguous for a in strided.values() if a.size > 1)
    a = Adam(flat, lr=0.05, weight_decay=weight_decay)
    b = Adam(strided, lr=0.05, weight_decay=weight_decay)
    for _ in range(5):
        grads = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
        a.step(grads)
        b.step(grads)
    for k in shapes:
        np.testing.assert_array_equal(flat[k], strided[k])
        np.testing.assert_array_equal(a._state["exp_avg_sq"][k], b._state["exp_avg_sq"][k])
        assert not np.array_equal(flat[k], base[k])  # the update did something


def test_adam_copies_update_their_own_parameters():
    """A pickled or deep-copied Adam updates the copy's parameters, not detached views."""
    import copy
    import pickle

    params = {"w": np.ones((3, 4), np.float32), "b": np.zeros(4, np.float32)}
    opt = Adam(params, lr=0.1)
    g = {"w": np.ones((3, 4), np.float32), "b": np.ones(4, np.float32)}
    opt.step(g)
    for clone in (pickle.loads(pickle.dumps(opt)), copy.deepcopy(opt)):
        before = {k: v.copy() for k, v in clone.params.items()}
        clone.step(g)
        for k in params:
            assert not np.array_equal(clone.params[k], before[k])
            assert clone.params[k] is not params[k]


@pytest.mark.parametrize("shape", [(6, 3), (3, 5, 3)])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_pinball_gradient_finite_differences(shape, masked, weighted):
    from numrnn.nn.losses import pinball_loss

    rng = np.random.default_rng(0)
    pred = rng.standard_normal(shape)
    target = rng.standard_normal(shape)  # no ties: the loss is differentiable here
    q = np.array([0.1, 0.5, 0.9])
    mask = None
    if masked:
        mask = rng.random(shape[:-1]) < 0.7
        mask.flat[0] = True
    sw = rng.random(shape[0]) + 0.1 if weighted else None
    loss, grad = pinball_loss(pred, target, q, mask, sw)
    fd = _fd_grad(lambda: pinball_loss(pred, target, q, mask, sw)[0], pred)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
    # The minimiser of the expected loss is the quantile: column k at level q_k.
    samples = rng.standard_normal(2001)
    levels = np.quantile(samples, q)
    grid = levels[None, :] + np.array([[-0.05], [0.0], [0.05]])
    losses = [pinball_loss(np.tile(g, (samples.size, 1)), np.tile(samples[:, None], 3), q)[0]
              for g in grid]  # fmt: skip
    assert losses[1] <= min(losses[0], losses[2])


def test_pinball_rejects_levels_outside_0_1():
    from numrnn.nn.losses import pinball_loss

    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        pinball_loss(np.zeros((2, 1)), np.zeros((2, 1)), [1.0])

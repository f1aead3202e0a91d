"""Tests of the float64 NumPy reference network (``numrnn.testing``).

* its backward pass equals central finite differences for every cell and option;
* its forward pass and gradients equal PyTorch's (where PyTorch has the option);
* padding never changes a result.
"""

import numpy as np
import pytest
from _cases import TOPOLOGIES, VARIANTS

from numrnn.testing import (
    check_network_gradients,
    init_params,
    network_backward,
    network_forward,
    numerical_gradient,
    relative_error,
)

# (cell, forward options): every cell variant of the shared matrix
CELLS = [pytest.param(cell, opts, id=name) for name, (_, cell, opts) in VARIANTS.items()]

B, T, I, H = 3, 4, 2, 3
RAGGED = [4, 1, 3]
TOL = 1e-6


def make_case(
    cell,
    options,
    num_layers,
    bidirectional,
    merge_mode,
    *,
    lengths=RAGGED,
    given_state=True,
    dropout=True,
    seed=0,
):
    """Parameters, input, state and dropout masks for one configuration."""
    rng = np.random.default_rng(seed)
    params = init_params(
        cell,
        I,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        merge_mode=merge_mode,
        peephole=options.get("peephole", False),
        seed=seed + 1,
    )
    x = rng.standard_normal((B, T, I))
    D = 2 if bidirectional else 1
    state = None
    if given_state:
        state = 0.5 * rng.standard_normal((num_layers * D, B, H))
        if cell == "lstm":
            state = (state, 0.5 * rng.standard_normal((num_layers * D, B, H)))
    masks = None
    if dropout and num_layers > 1:
        width = 2 * H if (bidirectional and merge_mode == "concat") else H
        p = 0.3
        masks = [(rng.random((B, T, width)) > p) / (1 - p) for _ in range(num_layers - 1)]
    kwargs = dict(
        num_layers=num_layers,
        bidirectional=bidirectional,
        merge_mode=merge_mode,
        dropout_masks=masks,
        **options,
    )
    return params, x, lengths, state, kwargs


def run_gradcheck(cell, params, x, lengths, state, kwargs):
    def forward(p, x_, s):
        return network_forward(cell, p, x_, lengths, s, **kwargs)

    def backward(cache, d_out, d_state):
        return network_backward(cell, params, cache, d_out, d_state)

    errors = check_network_gradients(forward, backward, params, x, state)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOL, f"{worst}: relative error {errors[worst]:.3g}"
    return errors


# ---------------------------------------------------------------------------
# finite differences
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("num_layers,bidirectional,merge_mode", TOPOLOGIES)
@pytest.mark.parametrize("cell,options", CELLS)
def test_gradients_match_finite_differences(cell, options, num_layers, bidirectional, merge_mode):
    """Ragged lengths, a given initial state, dropout masks between layers."""
    case = make_case(cell, options, num_layers, bidirectional, merge_mode)
    errors = run_gradcheck(cell, *case)
    expected = {"x", "h0"} | set(case[0]) | ({"c0"} if cell == "lstm" else set())
    assert set(errors) == expected


@pytest.mark.parametrize(
    "num_layers,bidirectional,merge_mode",
    [(1, False, "concat"), (2, True, "concat"), (2, True, "mul")],
)
@pytest.mark.parametrize("cell,options", CELLS)
def test_gradients_default_state_full_lengths(cell, options, num_layers, bidirectional, merge_mode):
    """state=None (zeros), lengths=None, no dropout."""
    case = make_case(
        cell,
        options,
        num_layers,
        bidirectional,
        merge_mode,
        lengths=None,
        given_state=False,
        dropout=False,
    )
    run_gradcheck(cell, *case)


@pytest.mark.parametrize("cell,options", CELLS)
def test_default_state_is_zeros(cell, options):
    params, x, lengths, _, kwargs = make_case(cell, options, 2, True, "concat", given_state=False)
    out0, fs0, _ = network_forward(cell, params, x, lengths, None, **kwargs)
    zeros = np.zeros((4, B, H))
    state = (zeros, zeros.copy()) if cell == "lstm" else zeros
    out1, fs1, _ = network_forward(cell, params, x, lengths, state, **kwargs)
    np.testing.assert_array_equal(out0, out1)
    if cell != "lstm":
        fs0, fs1 = (fs0,), (fs1,)
    for a, b in zip(fs0, fs1, strict=True):
        np.testing.assert_array_equal(a, b)


def test_gradcheck_detects_a_wrong_gradient():
    params, x, lengths, state, kwargs = make_case("gru", {}, 1, False, "concat")

    def forward(p, x_, s):
        return network_forward("gru", p, x_, lengths, s, **kwargs)

    def backward(cache, d_out, d_state):
        dx, grads, d0 = network_backward("gru", params, cache, d_out, d_state)
        grads["bias_hh_l0"] = grads["bias_hh_l0"] * 1.01
        return dx, grads, d0

    errors = check_network_gradients(forward, backward, params, x, state)
    assert errors["bias_hh_l0"] > 1e-3
    assert errors["weight_ih_l0"] <= TOL


def test_numerical_gradient_and_relative_error():
    a = np.array([[0.3, -1.2], [2.0, 0.7]])
    before = a.copy()
    g = numerical_gradient(lambda: np.sum(a**3), a)
    np.testing.assert_array_equal(a, before)  # restored exactly
    assert relative_error(g, 3 * a**2) < 1e-9
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error([1.0, 2.0], [1.0, 2.5]) == pytest.approx(0.2)


def test_relu_preactivations_stay_away_from_the_kink():
    """FD at relu's kink would be meaningless: check the cases above avoid it."""
    for num_layers, bidirectional, merge_mode in TOPOLOGIES:
        params, x, lengths, state, kwargs = make_case(
            "rnn", {"nonlinearity": "relu"}, num_layers, bidirectional, merge_mode
        )
        _, _, cache = network_forward("rnn", params, x, lengths, state, **kwargs)
        pre = [sc["a"] for lc in cache["layers"] for steps in lc["steps"].values() for sc in steps]
        assert np.min(np.abs(np.concatenate(pre))) > 1e-4


# ---------------------------------------------------------------------------
# padding invariance
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "num_layers,bidirectional,merge_mode",
    [(1, False, "concat"), (2, True, "concat"), (2, True, "mul"), (3, True, "mean")],
)
@pytest.mark.parametrize("cell,options", CELLS)
def test_padding_invariance(cell, options, num_layers, bidirectional, merge_mode):
    """Each sequence alone equals the same sequence padded in a batch (NaN padding)."""
    params, x, lengths, state, kwargs = make_case(
        cell, options, num_layers, bidirectional, merge_mode
    )
    rng = np.random.default_rng(7)
    for b, L in enumerate(lengths):
        x[b, L:] = np.nan  # padding must never be read
    out, fs, cache = network_forward(cell, params, x, lengths, state, **kwargs)
    d_out = rng.standard_normal(out.shape)
    for b, L in enumerate(lengths):
        d_out[b, L:] = np.nan  # gradient at padded steps must be ignored
    fs_t = fs if cell == "lstm" else (fs,)
    d_state = tuple(rng.standard_normal(s.shape) for s in fs_t)
    dx, grads, d0 = network_backward(
        cell, params, cache, d_out, d_state if cell == "lstm" else d_state[0]
    )
    d0_t = d0 if cell == "lstm" else (d0,)
    state_t = state if cell == "lstm" else (state,)

    grad_sum = {k: np.zeros_like(v) for k, v in params.items()}
    for b, L in enumerate(lengths):
        assert np.all(out[b, L:] == 0.0)
        assert np.all(dx[b, L:] == 0.0)
        kw = dict(kwargs)
        if kw["dropout_masks"] is not None:
            kw["dropout_masks"] = [m[b : b + 1, :L] for m in kw["dropout_masks"]]
        s_b = tuple(s[:, b : b + 1] for s in state_t)
        out_b, fs_b, cache_b = network_forward(
            cell, params, x[b : b + 1, :L], None, s_b if cell == "lstm" else s_b[0], **kw
        )
        np.testing.assert_allclose(out_b[0], out[b, :L], rtol=1e-13, atol=1e-14)
        fs_b_t = fs_b if cell == "lstm" else (fs_b,)
        for alone, batched in zip(fs_b_t, fs_t, strict=True):
            np.testing.assert_allclose(alone[:, 0], batched[:, b], rtol=1e-13, atol=1e-14)
        ds_b = tuple(d[:, b : b + 1] for d in d_state)
        dx_b, grads_b, d0_b = network_backward(
            cell, params, cache_b, d_out[b : b + 1, :L], ds_b if cell == "lstm" else ds_b[0]
        )
        np.testing.assert_allclose(dx_b[0], dx[b, :L], rtol=1e-12, atol=1e-14)
        d0_b_t = d0_b if cell == "lstm" else (d0_b,)
        for alone, batched in zip(d0_b_t, d0_t, strict=True):
            np.testing.assert_allclose(alone[:, 0], batched[:, b], rtol=1e-12, atol=1e-14)
        for k in grad_sum:
            grad_sum[k] += grads_b[k]
    for k in grad_sum:  # parameter gradients are sums over samples
        np.testing.assert_allclose(grad_sum[k], grads[k], rtol=1e-12, atol=1e-13)


# ---------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------

TORCH_CELLS = [
    pytest.param("rnn", {"nonlinearity": "tanh"}, id="rnn-tanh"),
    pytest.param("rnn", {"nonlinearity": "relu"}, id="rnn-relu"),
    pytest.param("lstm", {}, id="lstm"),
    pytest.param("gru", {}, id="gru"),
]


@pytest.mark.torch
@pytest.mark.parametrize("given_state", [True, False], ids=["state", "no-state"])
@pytest.mark.parametrize("lengths", [RAGGED, None], ids=["ragged", "full"])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, False), (1, True), (3, True)])
@pytest.mark.parametrize("cell,options", TORCH_CELLS)
def test_matches_torch(cell, options, num_layers, bidirectional, lengths, given_state):
    """Forward outputs, final state and all gradients equal torch.nn.RNN/LSTM/GRU."""
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    params, x, lengths, state, kwargs = make_case(
        cell,
        options,
        num_layers,
        bidirectional,
        "concat",
        lengths=lengths,
        given_state=given_state,
        dropout=False,
    )
    rng = np.random.default_rng(3)
    # --- reference
    out, fs, cache = network_forward(cell, params, x, lengths, state, **kwargs)
    R = rng.standard_normal(out.shape)
    fs_t = fs if cell == "lstm" else (fs,)
    Rs = tuple(rng.standard_normal(s.shape) for s in fs_t)
    dx, grads, d0 = network_backward(cell, params, cache, R, Rs if cell == "lstm" else Rs[0])
    d0_t = d0 if cell == "lstm" else (d0,)

    # --- torch, same weights
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    extra = {"nonlinearity": options["nonlinearity"]} if cell == "rnn" else {}
    net = cls(
        I,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=True,
        dtype=torch.float64,
        **extra,
    )
    net.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    st = None
    if state is not None:
        st_t = tuple(
            torch.from_numpy(s.copy()).requires_grad_(True)
            for s in (state if cell == "lstm" else (state,))
        )
        st = st_t if cell == "lstm" else st_t[0]
    if lengths is None:
        out_t, fs_torch = net(xt, st)
    else:
        packed = pack_padded_sequence(
            xt, torch.tensor(lengths), batch_first=True, enforce_sorted=False
        )
        out_p, fs_torch = net(packed, st)
        out_t, _ = pad_packed_sequence(out_p, batch_first=True, total_length=T)
    fs_torch_t = fs_torch if cell == "lstm" else (fs_torch,)

    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-12, atol=1e-13)
    for a, b in zip(fs_t, fs_torch_t, strict=True):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-12, atol=1e-13)

    loss = (out_t * torch.from_numpy(R)).sum()
    for s, r in zip(fs_torch_t, Rs, strict=True):
        loss = loss + (s * torch.from_numpy(r)).sum()
    loss.backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name, p in net.named_parameters():
        np.testing.assert_allclose(
            grads[name], p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name
        )
    if state is not None:
        for a, s in zip(d0_t, st_t, strict=True):
            np.testing.assert_allclose(a, s.grad.numpy(), rtol=1e-10, atol=1e-12)

"""numrnn.nn networks: agreement with PyTorch, precision, padding, state, bad input."""

import subprocess
import sys

import numpy as np
import pytest

from numrnn.nn import GRU, LSTM, RNN

CELLS = {
    "rnn_tanh": (RNN, {}),
    "rnn_relu": (RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, {}),
    "lstm_peephole": (LSTM, {"peephole": True}),
    "gru": (GRU, {}),
    "gru_reset_before": (GRU, {"reset_after": False}),
}
TORCH_CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


def make(name, I=3, H=4, **kw):
    cls, opts = CELLS[name]
    kw.setdefault("random_state", 0)
    return cls(I, H, **opts, **kw)


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


# -- PyTorch ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", TORCH_CELLS)
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matches_torch(name, num_layers, bidirectional, ragged, dtype, rng):
    torch = pytest.importorskip("torch")
    B, T, I, H = 4, 7, 3, 5
    net = make(name, I, H, num_layers=num_layers, bidirectional=bidirectional, dtype=dtype)
    tdt = torch.float64 if dtype == "float64" else torch.float32
    tcls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[net.cell]
    kw = {"nonlinearity": "relu"} if name == "rnn_relu" else {}
    tnet = tcls(I, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=True, **kw)
    tnet = tnet.to(tdt)
    tnet.load_state_dict({k: torch.tensor(v) for k, v in net.state_dict().items()})
    lengths = np.array([7, 3, 1, 6]) if ragged else np.full(B, T)
    x = rng.standard_normal((B, T, I)).astype(dtype)
    LD = num_layers * net.num_directions
    state = tuple(
        rng.standard_normal((LD, B, H)).astype(dtype) for _ in range(2 if net.cell == "lstm" else 1)
    )
    st_in = state if net.cell == "lstm" else state[0]
    out, st = net.forward(x, st_in, lengths=lengths)
    d_out = rng.standard_normal(out.shape).astype(dtype)
    d_st = tuple(rng.standard_normal(s.shape).astype(dtype) for s in as_tuple(st))
    dx = net.backward(d_out, d_st if net.cell == "lstm" else d_st[0])

    xt = torch.tensor(x, requires_grad=True)
    st_t = tuple(torch.tensor(s, requires_grad=True) for s in state)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        xt, torch.tensor(lengths), batch_first=True, enforce_sorted=False
    )
    ot, stt = tnet(packed, st_t if net.cell == "lstm" else st_t[0])
    ot, _ = torch.nn.utils.rnn.pad_packed_sequence(ot, batch_first=True, total_length=T)
    loss = (ot * torch.tensor(d_out)).sum() + sum(
        (s * torch.tensor(d)).sum() for s, d in zip(as_tuple(stt), d_st, strict=True)
    )
    loss.backward()

    tol = dict(rtol=1e-9, atol=1e-11) if dtype == "float64" else dict(rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(out, ot.detach().numpy(), **tol)
    for a, b in zip(as_tuple(st), as_tuple(stt), strict=True):
        np.testing.assert_allclose(a, b.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    for k, p in tnet.named_parameters():
        np.testing.assert_allclose(net.grads[k], p.grad.numpy(), err_msg=k, **tol)
    for a, b in zip(as_tuple(net.grad_state), st_t, strict=True):
        np.testing.assert_allclose(a, b.grad.numpy(), **tol)


# -- precision, padding, state ---------------------------------------------------------
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_float32_agrees_with_float64(name, bidirectional, rng):
    n64 = make(name, num_layers=2, bidirectional=bidirectional, dtype="float64")
    n32 = make(name, num_layers=2, bidirectional=bidirectional, dtype="float32")
    n32.load_state_dict(n64.state_dict())
    x = rng.standard_normal((3, 9, 3))
    lengths = np.array([9, 4, 6])
    o64, _ = n64.forward(x, lengths=lengths)
    o32, _ = n32.forward(x.astype(np.float32), lengths=lengths)
    assert o32.dtype == np.float32
    np.testing.assert_allclose(o32, o64, rtol=1e-4, atol=1e-5)
    d = rng.standard_normal(o64.shape)
    dx64 = n64.backward(d)
    dx32 = n32.backward(d.astype(np.float32))
    np.testing.assert_allclose(dx32, dx64, rtol=1e-3, atol=1e-4)
    for k in n64.grads:
        scale = np.abs(n64.grads[k]).max() + 1e-3
        assert np.abs(n32.grads[k] - n64.grads[k]).max() / scale < 1e-4, k


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("merge_mode", ["concat", "mul"])
def test_padding_never_changes_a_result(name, merge_mode, rng):
    net = make(name, num_layers=2, bidirectional=True, merge_mode=merge_mode, dtype="float64")
    seqs = [rng.standard_normal((T, 3)) for T in (6, 2, 4)]
    out, st = net.forward(seqs)
    d = rng.standard_normal(out.shape)
    dx = net.backward(d)
    grads = {k: v.copy() for k, v in net.grads.items()}
    total = {k: np.zeros_like(v) for k, v in grads.items()}
    for b, s in enumerate(seqs):
        T = len(s)
        o1, st1 = net.forward(s[None])
        np.testing.assert_allclose(o1[0], out[b, :T], rtol=1e-12, atol=1e-13)
        assert np.all(out[b, T:] == 0)
        for a, c in zip(as_tuple(st1), as_tuple(st), strict=True):
            np.testing.assert_allclose(a[:, 0], c[:, b], rtol=1e-12, atol=1e-13)
        dx1 = net.backward(d[b : b + 1, :T])
        np.testing.assert_allclose(dx1[0], dx[b, :T], rtol=1e-10, atol=1e-12)
        for k in total:
            total[k] += net.grads[k]
    for k in grads:
        np.testing.assert_allclose(total[k], grads[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(CELLS))
def test_chunked_forward_with_carried_state_equals_full(name, rng):
    net = make(name, num_layers=2, dtype="float64")
    x = rng.standard_normal((2, 12, 3))
    full, st_full = net.forward(x)
    state, parts = None, []
    for s in range(0, 12, 5):
        o, state = net.forward(x[:, s : s + 5], state)
        parts.append(o)
    np.testing.assert_allclose(np.concatenate(parts, axis=1), full, rtol=1e-12, atol=1e-14)
    for a, b in zip(as_tuple(state), as_tuple(st_full), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(CELLS))
def test_state_dict_round_trip(name, rng):
    a = make(name, num_layers=2, bidirectional=True, random_state=1)
    b = make(name, num_layers=2, bidirectional=True, random_state=2)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    assert not np.allclose(a.forward(x)[0], b.forward(x)[0])
    sd = a.state_dict()
    b.load_state_dict(sd)
    np.testing.assert_array_equal(a.forward(x)[0], b.forward(x)[0])
    sd[next(iter(sd))][...] = 0  # a copy: changing it leaves the network alone
    assert np.any(a.state_dict()[next(iter(sd))] != 0)


def test_state_dict_names_follow_pytorch():
    net = LSTM(3, 4, num_layers=2, bidirectional=True, peephole=True)
    names = list(net.state_dict())
    assert names[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert "weight_hh_l1_reverse" in names and "weight_co_l1_reverse" in names
    assert net.state_dict()["weight_ih_l1"].shape == (16, 8)
    assert net.state_dict()["weight_ci_l0"].shape == (4,)
    assert set(net.parameters()) == set(names)


def test_default_init_is_pytorch_uniform():
    net = GRU(5, 100, random_state=0)
    for v in net.state_dict().values():
        assert np.abs(v).max() <= 0.1 and np.abs(v).max() > 0.09


def test_init_options():
    net = LSTM(2, 8, forget_bias=1.0, orthogonal=True, random_state=0)
    sd = net.state_dict()
    np.testing.assert_array_equal(sd["bias_ih_l0"][8:16] + sd["bias_hh_l0"][8:16], 1.0)
    w = sd["weight_hh_l0"][:8].astype(np.float64)
    np.testing.assert_allclose(w @ w.T, np.eye(8), atol=1e-6)


def test_dropout_only_in_training(rng):
    net = GRU(3, 6, num_layers=2, dropout=0.5, random_state=0)
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    a = net.forward(x)[0]
    b = net.forward(x)[0]
    assert not np.allclose(a, b)
    net.eval()
    np.testing.assert_array_equal(net.forward(x)[0], net.forward(x)[0])


@pytest.mark.parametrize("name", list(CELLS))
def test_same_seed_same_bits(name, rng):
    x = rng.standard_normal((3, 6, 3)).astype(np.float32)
    res = []
    for _ in range(2):
        net = make(name, num_layers=2, bidirectional=True, dropout=0.3, random_state=7)
        out, _ = net.forward(x)
        net.backward(np.ones_like(out))
        res.append((out, net.grads))
    np.testing.assert_array_equal(res[0][0], res[1][0])
    for k in res[0][1]:
        np.testing.assert_array_equal(res[0][1][k], res[1][1][k])


# -- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "x, lengths, match",
    [
        (np.zeros((2, 3)), None, "must be 3-D"),
        (np.zeros((2, 3, 5)), None, "3 were expected"),
        (np.zeros((0, 3, 3)), None, "empty"),
        (np.zeros((2, 0, 3)), None, "0 time steps"),
        ([], None, "empty"),
        (np.full((2, 3, 3), np.nan), None, "NaN or inf"),
        (np.zeros((2, 3, 3)), [3, 4], "lengths must lie in"),
        (np.zeros((2, 3, 3)), [3, 0], "lengths must lie in"),
        (np.zeros((2, 3, 3)), [3], "one entry per sequence"),
        (np.array([["a", "b"]], dtype=object)[:, :, None], None, "must contain numbers"),
    ],
)
def test_bad_input_gets_one_clear_error(x, lengths, match):
    net = LSTM(3, 4)
    with pytest.raises(ValueError, match=match):
        net.forward(x, lengths=lengths)


def test_inf_inside_sequence_is_an_error():
    x = np.zeros((2, 3, 3))
    x[1, 1, 2] = np.inf
    with pytest.raises(ValueError, match="sample 1, step 1, feature 2"):
        GRU(3, 4).forward(x)


def test_nan_in_padding_is_ignored(rng):
    net = RNN(3, 4, dtype="float64")
    x = rng.standard_normal((2, 4, 3))
    ref, _ = net.forward(x, lengths=[4, 2])
    x[1, 2:] = np.nan
    out, _ = net.forward(x, lengths=[4, 2])
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"hidden_size": 0}, ValueError, "hidden_size"),
        ({"num_layers": 1.5}, TypeError, "num_layers"),
        ({"dropout": 1.5}, ValueError, "dropout"),
        ({"merge_mode": "avg"}, ValueError, "merge_mode"),
        ({"dtype": "float16"}, ValueError, "dtype"),
        ({"device": "tpu"}, ValueError, "device"),
    ],
)
def test_bad_options(kwargs, exc, match):
    args = {"input_size": 3, "hidden_size": 4, **kwargs}
    with pytest.raises(exc, match=match):
        LSTM(**args)
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(3, 4, nonlinearity="sigmoid")


def test_bad_state_and_second_backward(rng):
    net = LSTM(3, 4, num_layers=2)
    x = rng.standard_normal((2, 3, 3))
    with pytest.raises(ValueError, match=r"\(2, 2, 4\)"):
        net.forward(x, (np.zeros((1, 2, 4)), np.zeros((2, 2, 4))))
    with pytest.raises(ValueError, match="tuple"):
        net.forward(x, np.zeros((2, 2, 4)))
    out, _ = net.forward(x)
    net.backward(np.ones_like(out))
    with pytest.raises(RuntimeError, match="forward again"):
        net.backward(np.ones_like(out))
    with pytest.raises(KeyError, match="missing keys"):
        net.load_state_dict({"weight_ih_l0": np.zeros((16, 3))})


def test_import_compiles_nothing():
    code = (
        "import numrnn, numrnn.nn\n"
        "from numrnn.kernels import cpu\n"
        "assert all(not getattr(cpu, n).signatures for n in cpu.__all__), 'compiled at import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", list(CELLS))
def test_inference_in_time_chunks_equals_full_forward(name, rng, monkeypatch):
    net = make(name, num_layers=2, dtype="float64")
    x = rng.standard_normal((3, 23, 3))
    lengths = np.array([23, 5, 17])
    full, st_full = net.forward(x, lengths=lengths)
    monkeypatch.setattr(type(net), "inference_chunk", 4)
    out, st = net.forward(x, lengths=lengths, requires_grad=False)
    np.testing.assert_allclose(out, full, rtol=1e-12, atol=1e-14)
    for a, b in zip(as_tuple(st), as_tuple(st_full), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    with pytest.raises(RuntimeError, match="requires_grad=True"):
        net.backward(out)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_backward_buffer_reuse_matches_plain_backward(cell, bidirectional, monkeypatch):
    """d_out=None equals zeros, input_grad=False keeps the weight gradients, the caller's
    d_out is never modified, and the Elman RNN's chunked BPTT equals the one-chunk one."""
    from numrnn import nn as N
    from numrnn.backends.cpu import CPUBackend

    cls = {"rnn": N.RNN, "lstm": N.LSTM, "gru": N.GRU}[cell]
    net = cls(3, 5, 2, bidirectional=bidirectional, dtype="float64", random_state=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 9, 3))
    lengths = np.array([9, 5, 1, 7])

    def run(d_out, **kw):
        out, state = net.forward(x, lengths=lengths)
        h_n = state[0] if isinstance(state, tuple) else state
        if d_out == "zeros":
            d_out = np.zeros_like(out)
        elif d_out == "rand":
            d_out = np.random.default_rng(1).standard_normal(out.shape)
        keep = None if d_out is None else d_out.copy()
        rng.bit_generator.state = np.random.default_rng(5).bit_generator.state
        dh = rng.standard_normal(h_n.shape)
        d_state = (dh, np.zeros_like(h_n)) if isinstance(state, tuple) else dh
        dx = net.backward(d_out, d_state, **kw)
        if keep is not None:
            np.testing.assert_array_equal(d_out, keep)
        return dx, {k: v.copy() for k, v in net.grads.items()}

    dx0, g0 = run("zeros")
    dx1, g1 = run(None, input_grad=False)
    assert dx1 is None
    for k in g0:
        np.testing.assert_allclose(g1[k], g0[k], rtol=1e-12, atol=1e-12)
    dx2, g2 = run("rand")
    monkeypatch.setattr(CPUBackend, "rnn_chunk_min_bytes", 0)
    monkeypatch.setattr(CPUBackend, "rnn_chunk_rows", 1)
    monkeypatch.setattr(CPUBackend, "rnn_chunks", 4)
    dx3, g3 = run("rand")
    np.testing.assert_allclose(dx3, dx2, rtol=1e-12, atol=1e-12)
    _, g4 = run(None, input_grad=False)  # the top RNN layer's BPTT goes in chunks here
    for k in g2:
        np.testing.assert_allclose(g3[k], g2[k], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g4[k], g1[k], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_head_gradient_in_time_major_layout_gives_the_same_bits(cell):
    """Issue #18: a Linear head's gradient of the network's output comes back in the
    output's own (time-major) layout, which backward reads without a copy; the result is
    bit for bit the one of the C-contiguous array, and d_out is left untouched."""
    from numrnn.nn.linear import Linear
    from numrnn.nn.network import NETWORKS

    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 9, 3)).astype(np.float32)
    net = NETWORKS[cell](3, 5, num_layers=2, random_state=0)
    head = Linear(5, 1, rng=1)
    out, _ = net.forward(x)
    dy = rng.standard_normal((6, 9, 1)).astype(np.float32)
    head.forward(out)
    d_out = head.backward(dy)
    assert np.array_equal(d_out, dy @ head.weight)  # one product per entry: exact
    assert d_out.transpose(1, 0, 2).flags.c_contiguous  # time-major memory, like out
    kept = d_out.copy()
    dx_a = net.backward(d_out)
    grads_a = {k: v.copy() for k, v in net.grads.items()}
    assert np.array_equal(d_out, kept)
    net.forward(x)
    dx_b = net.backward(np.ascontiguousarray(d_out))
    assert np.array_equal(dx_a, dx_b)
    for k, g in net.grads.items():
        assert np.array_equal(grads_a[k], g), k


@pytest.mark.parametrize("name", ["lstm", "gru", "gru_reset_before", "rnn_tanh"])
def test_inference_packing_follows_weights_written_in_place(name, rng):
    # inference keeps its packed weights across calls (numrnn.backends.cpu): a write in
    # place (an optimizer, a user) must reach the next forward, bit for bit as a network
    # given those weights, and the old weights again must give the old bits back
    from numrnn.backends import cpu

    net = make(name, I=3, H=8, num_layers=2)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    before, _ = net.forward(x, requires_grad=False)
    w = net.parameters()["weight_hh_l1"]
    old = w.copy()
    w += np.float32(0.25)
    after, _ = net.forward(x, requires_grad=False)
    fresh = make(name, I=3, H=8, num_layers=2, random_state=1)
    fresh.load_state_dict(net.state_dict())
    cpu._packed_for_inference.clear()  # fresh's packing is made now, not found
    expected, _ = fresh.forward(x, requires_grad=False)
    assert not np.array_equal(after, before)
    np.testing.assert_array_equal(after, expected)
    w[:] = old
    again, _ = net.forward(x, requires_grad=False)
    np.testing.assert_array_equal(again, before)

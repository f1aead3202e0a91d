"""The fast CPU network against the float64 NumPy reference, and against finite differences.

Every cell x option: nonlinearity, peephole, reset_after, 1-3 layers, uni/bidirectional with
every merge mode, dropout, ragged lengths, given and default initial state.
"""

import numpy as np
import pytest
from _cases import SHAPES, VARIANTS, build, reference_options, shape_id

from numrnn.testing import check_network_gradients, network_backward, network_forward

B, T, I, H = 3, 5, 2, 3
LENGTHS = np.array([5, 2, 4])


def _build(variant, shape, dtype="float64"):
    cell, ref_opts = reference_options(variant, *shape[:3])
    return build(variant, shape, I, H, dtype=dtype), cell, ref_opts


def _state(net, rng, given):
    if not given:
        return None
    LD = net.num_layers * net.num_directions
    parts = [rng.standard_normal((LD, B, H)) for _ in range(2 if net.cell == "lstm" else 1)]
    return tuple(parts) if net.cell == "lstm" else parts[0]


def _tuple(s):
    return s if isinstance(s, tuple) else (s,)


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("given_state", [True, False])
def test_forward_and_backward_equal_reference(variant, shape, given_state, rng):
    net, cell, ref_opts = _build(variant, shape)
    x = rng.standard_normal((B, T, I))
    state = _state(net, rng, given_state)
    out, st = net.forward(x, state, lengths=LENGTHS)
    # The dropout masks the network drew, batch-first, for the reference.
    masks = [m.transpose(1, 0, 2) for m in net._cache["masks"][:-1]] if shape[3] else None
    params = {k: v.copy() for k, v in net.state_dict().items()}
    r_out, r_st, cache = network_forward(
        cell, params, x, LENGTHS, state, dropout_masks=masks, **ref_opts
    )
    np.testing.assert_allclose(out, r_out, rtol=1e-11, atol=1e-12)
    for a, b in zip(_tuple(st), _tuple(r_st), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)

    d_out = rng.standard_normal(out.shape)
    d_st = tuple(rng.standard_normal(s.shape) for s in _tuple(st))
    d_st = d_st if cell == "lstm" else d_st[0]
    dx = net.backward(d_out, d_st)
    r_dx, r_grads, r_dstate = network_backward(cell, params, cache, d_out, d_st)
    np.testing.assert_allclose(dx, r_dx, rtol=1e-10, atol=1e-12)
    assert set(net.grads) == set(r_grads)
    for k in r_grads:
        np.testing.assert_allclose(net.grads[k], r_grads[k], rtol=1e-10, atol=1e-12, err_msg=k)
    for a, b in zip(_tuple(net.grad_state), _tuple(r_dstate), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES[:5], ids=shape_id)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_float64_gradients_equal_finite_differences(variant, shape, rng):
    """The fast network's own gradients (params, input, initial state) against FD."""
    net, _, _ = _build(variant, shape)
    x = rng.standard_normal((B, T, I))
    state = _state(net, rng, True)

    def forward(params, xx, st):
        net.load_state_dict(params)
        net._rng = np.random.default_rng(11)  # the same dropout masks at every evaluation
        out, fin = net.forward(xx, st, lengths=LENGTHS)
        return out, fin, None

    def backward(cache, d_out, d_state):
        dx = net.backward(d_out, d_state)
        return dx, dict(net.grads), net.grad_state

    errors = check_network_gradients(forward, backward, net.state_dict(), x, state)
    worst = max(errors.values())
    assert worst <= 1e-6, {k: v for k, v in errors.items() if v > 1e-6}

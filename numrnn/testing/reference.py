"""Slow, plain float64 NumPy reference of the whole recurrent network.

This module is the ground truth the fast kernels are tested against. It is written
straight from the equations of the user guide (docs/user_guide.rst) and deliberately shares no
code with :mod:`numrnn.kernels` or :mod:`numrnn.nn`. Everything is looped per layer,
per direction, per sample and per step on 1-D row vectors: clarity over speed.

Conventions
-----------
* Row vectors, batch first: ``x`` is ``(B, T, I)``.
* Parameters use PyTorch's names and shapes, e.g. ``weight_ih_l0`` ``(G*H, I)``,
  ``weight_hh_l0_reverse`` ``(G*H, H)``; G = 1 (rnn), 4 (lstm: i, f, g, o),
  3 (gru: r, z, n). A peephole LSTM also has ``weight_ci_l{l}``, ``weight_cf_l{l}``,
  ``weight_co_l{l}`` of shape ``(H,)``.
* Sample ``b`` has ``lengths[b]`` valid steps. The forward direction processes
  steps ``0 .. len-1``, the reverse direction ``len-1 .. 0``. Outputs at padded
  steps are zero and the final state is the state after the last processed step.
* States are ``(num_layers * num_dirs, B, H)`` in PyTorch's order
  (layer 0 forward, layer 0 reverse, layer 1 forward, ...).

Padded steps in the backward pass
---------------------------------
The output at a padded step is the constant 0, so the incoming gradient there is
simply ignored, and the gradient w.r.t. padded input steps is 0. The same holds
for dropout masks: they multiply padded zeros and the next layer never reads them.
"""

import numpy as np

__all__ = ["network_forward", "network_backward", "init_params", "num_gates", "param_names"]

_NUM_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_MERGE_MODES = ("concat", "sum", "mean", "mul")


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def _sigmoid(a):
    """Logistic function, evaluated without overflow for large negative ``a``."""
    return 0.5 * (np.tanh(0.5 * a) + 1.0)


def num_gates(cell):
    """Number of gate blocks ``G`` of a cell ('rnn' 1, 'lstm' 4, 'gru' 3).

    Parameters
    ----------
    cell : {'rnn', 'lstm', 'gru'}

    Returns
    -------
    int
    """
    if cell not in _NUM_GATES:
        raise ValueError(f"cell must be one of 'rnn', 'lstm', 'gru'; got {cell!r}.")
    return _NUM_GATES[cell]


def _suffix(direction):
    return "" if direction == 0 else "_reverse"


def param_names(cell, *, num_layers=1, bidirectional=False, peephole=False):
    """Names of the parameters of a network, in PyTorch's order.

    Parameters
    ----------
    cell : {'rnn', 'lstm', 'gru'}
    num_layers : int
    bidirectional : bool
    peephole : bool
        Add ``weight_ci``, ``weight_cf``, ``weight_co`` per layer and direction (LSTM only).

    Returns
    -------
    list of str
    """
    names = []
    for layer in range(num_layers):
        for d in range(2 if bidirectional else 1):
            sfx = f"_l{layer}{_suffix(d)}"
            names += [f"weight_ih{sfx}", f"weight_hh{sfx}", f"bias_ih{sfx}", f"bias_hh{sfx}"]
            if cell == "lstm" and peephole:
                names += [f"weight_ci{sfx}", f"weight_cf{sfx}", f"weight_co{sfx}"]
    return names


def _layer_input_size(layer, input_size, hidden_size, bidirectional, merge_mode):
    if layer == 0:
        return input_size
    if bidirectional and merge_mode == "concat":
        return 2 * hidden_size
    return hidden_size


def init_params(
    cell,
    input_size,
    hidden_size,
    *,
    num_layers=1,
    bidirectional=False,
    merge_mode="concat",
    peephole=False,
    seed=0,
):
    """Random float64 parameters U(-1/sqrt(H), 1/sqrt(H)) with PyTorch's names.

    Parameters
    ----------
    cell : {'rnn', 'lstm', 'gru'}
    input_size : int
        Features of the network input ``I``.
    hidden_size : int
        Hidden units ``H``.
    num_layers : int, default 1
    bidirectional : bool, default False
    merge_mode : {'concat', 'sum', 'mean', 'mul'}, default 'concat'
        Decides the input size of layers above the first (2H for 'concat', else H).
    peephole : bool, default False
        Add diagonal peephole weights (LSTM only).
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    dict of str to ndarray
    """
    G = num_gates(cell)
    H = hidden_size
    if peephole and cell != "lstm":
        raise ValueError("peephole=True is only defined for cell='lstm'.")
    if merge_mode not in _MERGE_MODES:
        raise ValueError(f"merge_mode must be one of {_MERGE_MODES}; got {merge_mode!r}.")
    rng = np.random.default_rng(seed)
    k = 1.0 / np.sqrt(H)
    params = {}
    for layer in range(num_layers):
        I_l = _layer_input_size(layer, input_size, H, bidirectional, merge_mode)
        for d in range(2 if bidirectional else 1):
            sfx = f"_l{layer}{_suffix(d)}"
            params[f"weight_ih{sfx}"] = rng.uniform(-k, k, (G * H, I_l))
            params[f"weight_hh{sfx}"] = rng.uniform(-k, k, (G * H, H))
            params[f"bias_ih{sfx}"] = rng.uniform(-k, k, G * H)
            params[f"bias_hh{sfx}"] = rng.uniform(-k, k, G * H)
            if peephole:
                for name in ("weight_ci", "weight_cf", "weight_co"):
                    params[f"{name}{sfx}"] = rng.uniform(-k, k, H)
    return params


# ---------------------------------------------------------------------------
# one step of each cell, forward and backward, on 1-D row vectors
# ---------------------------------------------------------------------------
#
# ``p`` is the parameter dict of ONE layer and direction with short keys
# ('w_ih', 'w_hh', 'b_ih', 'b_hh' and optionally 'w_ci', 'w_cf', 'w_co');
# ``g`` is the matching gradient dict, accumulated in place.


def _rnn_step(p, x, h_prev, c_prev, opts):
    a = x @ p["w_ih"].T + p["b_ih"] + h_prev @ p["w_hh"].T + p["b_hh"]
    h = np.tanh(a) if opts["nonlinearity"] == "tanh" else np.maximum(a, 0.0)
    return h, None, {"x": x, "h_prev": h_prev, "a": a, "h": h}


def _rnn_step_backward(p, g, cache, dh, dc, opts):
    if opts["nonlinearity"] == "tanh":
        da = dh * (1.0 - cache["h"] ** 2)
    else:
        da = dh * (cache["a"] > 0.0)
    _accumulate_linear(p, g, cache["x"], cache["h_prev"], da, da)
    return da @ p["w_ih"], da @ p["w_hh"], None


def _lstm_step(p, x, h_prev, c_prev, opts):
    H = h_prev.shape[0]
    a = x @ p["w_ih"].T + p["b_ih"] + h_prev @ p["w_hh"].T + p["b_hh"]
    a_i, a_f, a_g, a_o = a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :]
    if opts["peephole"]:
        a_i = a_i + p["w_ci"] * c_prev
        a_f = a_f + p["w_cf"] * c_prev
    i = _sigmoid(a_i)
    f = _sigmoid(a_f)
    g = np.tanh(a_g)
    c = f * c_prev + i * g
    if opts["peephole"]:
        a_o = a_o + p["w_co"] * c  # the NEW cell state
    o = _sigmoid(a_o)
    tc = np.tanh(c)
    h = o * tc
    cache = {
        "x": x,
        "h_prev": h_prev,
        "c_prev": c_prev,
        "i": i,
        "f": f,
        "g": g,
        "o": o,
        "c": c,
        "tc": tc,
    }
    return h, c, cache


def _lstm_step_backward(p, grads, cache, dh, dc, opts):
    i, f, g, o = cache["i"], cache["f"], cache["g"], cache["o"]
    c, c_prev, tc = cache["c"], cache["c_prev"], cache["tc"]
    da_o = dh * tc * o * (1.0 - o)
    # total gradient w.r.t. the new cell state c_t
    dc = dc + dh * o * (1.0 - tc**2)
    if opts["peephole"]:
        dc = dc + da_o * p["w_co"]
    da_i = dc * g * i * (1.0 - i)
    da_f = dc * c_prev * f * (1.0 - f)
    da_g = dc * i * (1.0 - g**2)
    dc_prev = dc * f
    if opts["peephole"]:
        dc_prev = dc_prev + da_i * p["w_ci"] + da_f * p["w_cf"]
        grads["w_ci"] += da_i * c_prev
        grads["w_cf"] += da_f * c_prev
        grads["w_co"] += da_o * c
    da = np.concatenate([da_i, da_f, da_g, da_o])
    _accumulate_linear(p, grads, cache["x"], cache["h_prev"], da, da)
    return da @ p["w_ih"], da @ p["w_hh"], dc_prev


def _gru_step(p, x, h_prev, c_prev, opts):
    H = h_prev.shape[0]
    ax = x @ p["w_ih"].T + p["b_ih"]  # (3H,) input part, r z n
    w_hh, b_hh = p["w_hh"], p["b_hh"]
    ah_rz = h_prev @ w_hh[: 2 * H].T + b_hh[: 2 * H]  # (2H,) recurrent part of r, z
    r = _sigmoid(ax[:H] + ah_rz[:H])
    z = _sigmoid(ax[H : 2 * H] + ah_rz[H:])
    if opts["reset_after"]:
        ah_n = h_prev @ w_hh[2 * H :].T + b_hh[2 * H :]  # h W_hn^T + b_hn
        n = np.tanh(ax[2 * H :] + r * ah_n)
    else:
        ah_n = (r * h_prev) @ w_hh[2 * H :].T + b_hh[2 * H :]
        n = np.tanh(ax[2 * H :] + ah_n)
    h = (1.0 - z) * n + z * h_prev
    cache = {"x": x, "h_prev": h_prev, "r": r, "z": z, "n": n, "ah_n": ah_n}
    return h, None, cache


def _gru_step_backward(p, grads, cache, dh, dc, opts):
    H = dh.shape[0]
    x, h_prev = cache["x"], cache["h_prev"]
    r, z, n, ah_n = cache["r"], cache["z"], cache["n"], cache["ah_n"]
    w_hh = p["w_hh"]
    dh_prev = dh * z
    dz = dh * (h_prev - n)
    da_n = dh * (1.0 - z) * (1.0 - n**2)  # gradient w.r.t. the tanh argument
    da_z = dz * z * (1.0 - z)
    if opts["reset_after"]:
        dr = da_n * ah_n
        da_r = dr * r * (1.0 - r)
        dax = np.concatenate([da_r, da_z, da_n])
        dah = np.concatenate([da_r, da_z, da_n * r])  # w.r.t. h W_hh^T + b_hh
        _accumulate_linear(p, grads, x, h_prev, dax, dah)
        dh_prev = dh_prev + dah @ w_hh
    else:
        drh = da_n @ w_hh[2 * H :]  # w.r.t. r*h
        dr = drh * h_prev
        da_r = dr * r * (1.0 - r)
        dax = np.concatenate([da_r, da_z, da_n])
        da_rz = np.concatenate([da_r, da_z])
        grads["w_ih"] += np.outer(dax, x)
        grads["b_ih"] += dax
        grads["w_hh"][: 2 * H] += np.outer(da_rz, h_prev)
        grads["w_hh"][2 * H :] += np.outer(da_n, r * h_prev)
        grads["b_hh"][: 2 * H] += da_rz
        grads["b_hh"][2 * H :] += da_n
        dh_prev = dh_prev + da_rz @ w_hh[: 2 * H] + drh * r
    return dax @ p["w_ih"], dh_prev, None


def _accumulate_linear(p, grads, x, h_prev, dax, dah):
    """Gradients of ``x W_ih^T + b_ih`` (w.r.t. ``dax``) and ``h W_hh^T + b_hh`` (``dah``)."""
    grads["w_ih"] += np.outer(dax, x)
    grads["b_ih"] += dax
    grads["w_hh"] += np.outer(dah, h_prev)
    grads["b_hh"] += dah


_STEPS = {
    "rnn": (_rnn_step, _rnn_step_backward),
    "lstm": (_lstm_step, _lstm_step_backward),
    "gru": (_gru_step, _gru_step_backward),
}

_SHORT = {
    "weight_ih": "w_ih",
    "weight_hh": "w_hh",
    "bias_ih": "b_ih",
    "bias_hh": "b_hh",
    "weight_ci": "w_ci",
    "weight_cf": "w_cf",
    "weight_co": "w_co",
}
_LONG = {short: name for name, short in _SHORT.items()}


def _layer_params(params, layer, direction, peephole):
    sfx = f"_l{layer}{_suffix(direction)}"
    names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    if peephole:
        names += ["weight_ci", "weight_cf", "weight_co"]
    return {_SHORT[n]: np.asarray(params[n + sfx], dtype=np.float64) for n in names}, sfx


# ---------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------


def _merge(fwd, bwd, merge_mode):
    if merge_mode == "concat":
        return np.concatenate([fwd, bwd], axis=-1)
    if merge_mode == "sum":
        return fwd + bwd
    if merge_mode == "mean":
        return 0.5 * (fwd + bwd)
    return fwd * bwd  # 'mul'


def _split_merge_grad(d, fwd, bwd, merge_mode):
    """Gradient of the merged output -> gradients of the two direction outputs."""
    H = fwd.shape[-1]
    if merge_mode == "concat":
        return d[..., :H], d[..., H:]
    if merge_mode == "sum":
        return d, d
    if merge_mode == "mean":
        return 0.5 * d, 0.5 * d
    return d * bwd, d * fwd  # 'mul'


def network_forward(
    cell,
    params,
    x,
    lengths=None,
    state=None,
    *,
    num_layers=1,
    bidirectional=False,
    merge_mode="concat",
    nonlinearity="tanh",
    peephole=False,
    reset_after=True,
    dropout_masks=None,
):
    """Forward pass of a stacked, optionally bidirectional RNN / LSTM / GRU.

    Parameters
    ----------
    cell : {'rnn', 'lstm', 'gru'}
    params : dict of str to ndarray
        PyTorch-named parameters (see :func:`init_params`).
    x : ndarray, shape (B, T, I)
        Batch-first input; converted to float64.
    lengths : array_like of int, shape (B,), optional
        Valid steps per sample, each in ``1..T``. Default: all ``T``.
    state : ndarray or tuple of ndarray, optional
        Initial state: ``h0`` (rnn, gru) or ``(h0, c0)`` (lstm), each
        ``(num_layers * num_dirs, B, H)``. Default: zeros.
    num_layers : int, default 1
    bidirectional : bool, default False
    merge_mode : {'concat', 'sum', 'mean', 'mul'}, default 'concat'
        How the two directions' per-step outputs are combined.
    nonlinearity : {'tanh', 'relu'}, default 'tanh'
        RNN only.
    peephole : bool, default False
        LSTM only: diagonal peephole connections.
    reset_after : bool, default True
        GRU only: apply the reset gate after (PyTorch) or before (Cho et al.) the
        recurrent matrix product.
    dropout_masks : list of ndarray, optional
        ``num_layers - 1`` masks, mask ``l`` of shape ``(B, T, D_l)`` (already scaled
        by ``1/(1-p)``), multiplying layer ``l``'s merged output before layer ``l+1``.

    Returns
    -------
    out : ndarray, shape (B, T, D_out)
        Last layer's merged output, zero at padded steps.
    final_state : ndarray or tuple of ndarray
        ``h_n`` (rnn, gru) or ``(h_n, c_n)`` (lstm), ``(num_layers * num_dirs, B, H)``.
    cache : dict
        Everything :func:`network_backward` needs.
    """
    G = num_gates(cell)
    if merge_mode not in _MERGE_MODES:
        raise ValueError(f"merge_mode must be one of {_MERGE_MODES}; got {merge_mode!r}.")
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu'; got {nonlinearity!r}.")
    if peephole and cell != "lstm":
        raise ValueError("peephole=True is only defined for cell='lstm'.")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"x must be 3-D (B, T, I); got shape {x.shape}.")
    B, T, _ = x.shape
    H = np.asarray(params["weight_hh_l0"]).shape[1]
    assert np.asarray(params["weight_hh_l0"]).shape[0] == G * H
    D = 2 if bidirectional else 1
    if lengths is None:
        lengths = np.full(B, T, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.shape != (B,) or lengths.min() < 1 or lengths.max() > T:
        raise ValueError(f"lengths must be (B,) ints in 1..T={T}; got {lengths!r}.")
    if dropout_masks is not None and len(dropout_masks) != num_layers - 1:
        raise ValueError("dropout_masks must hold num_layers - 1 masks.")

    # initial state, (L*D, B, H)
    is_lstm = cell == "lstm"
    if state is None:
        h0 = np.zeros((num_layers * D, B, H))
        c0 = np.zeros((num_layers * D, B, H))
    elif is_lstm:
        h0 = np.asarray(state[0], dtype=np.float64)
        c0 = np.asarray(state[1], dtype=np.float64)
    else:
        h0 = np.asarray(state, dtype=np.float64)
        c0 = np.zeros_like(h0)
    assert h0.shape == (num_layers * D, B, H), h0.shape

    opts = {"nonlinearity": nonlinearity, "peephole": peephole, "reset_after": reset_after}
    step = _STEPS[cell][0]
    h_n = np.zeros((num_layers * D, B, H))
    c_n = np.zeros((num_layers * D, B, H))
    layers = []
    inp = x
    for layer in range(num_layers):
        dir_out = np.zeros((D, B, T, H))
        steps = {}  # (direction, b) -> list of step caches in processing order
        for d in range(D):
            p, _ = _layer_params(params, layer, d, peephole)
            k = layer * D + d
            for b in range(B):
                L = lengths[b]
                order = range(L) if d == 0 else range(L - 1, -1, -1)
                h, c = h0[k, b].copy(), c0[k, b].copy()
                caches = []
                for t in order:
                    h, c, sc = step(p, inp[b, t], h, c, opts)
                    dir_out[d, b, t] = h
                    caches.append(sc)
                steps[d, b] = caches
                h_n[k, b] = h
                if is_lstm:
                    c_n[k, b] = c
        merged = dir_out[0] if D == 1 else _merge(dir_out[0], dir_out[1], merge_mode)
        layers.append({"input": inp, "dir_out": dir_out, "steps": steps})
        if layer < num_layers - 1 and dropout_masks is not None:
            merged = merged * np.asarray(dropout_masks[layer], dtype=np.float64)
        inp = merged
    out = inp
    final_state = (h_n, c_n) if is_lstm else h_n
    cache = {
        "cell": cell,
        "num_layers": num_layers,
        "D": D,
        "B": B,
        "T": T,
        "H": H,
        "merge_mode": merge_mode,
        "opts": opts,
        "lengths": lengths,
        "dropout_masks": dropout_masks,
        "params": params,
        "layers": layers,
    }
    return out, final_state, cache


def network_backward(cell, params, cache, d_out, d_state=None):
    """Backpropagation through time of :func:`network_forward`.

    Parameters
    ----------
    cell : {'rnn', 'lstm', 'gru'}
    params : dict of str to ndarray
        The parameters used in the forward pass.
    cache : dict
        Third return value of :func:`network_forward`.
    d_out : ndarray, shape (B, T, D_out)
        Gradient of the loss w.r.t. ``out``. Values at padded steps are ignored
        (the output there is the constant 0).
    d_state : ndarray or tuple of ndarray, optional
        Gradient w.r.t. ``final_state``, shaped like it. Default: zeros.

    Returns
    -------
    dx : ndarray, shape (B, T, I)
        Gradient w.r.t. ``x`` (zero at padded steps).
    grads : dict of str to ndarray
        Gradient w.r.t. every entry of ``params`` (same keys and shapes).
    d_initial_state : ndarray or tuple of ndarray
        Gradient w.r.t. the initial state: ``dh0`` (rnn, gru) or ``(dh0, dc0)`` (lstm),
        each ``(num_layers * num_dirs, B, H)``. Returned also when the forward
        pass used the default zero state (it is then the gradient at zero).
    """
    assert cell == cache["cell"]
    num_layers, D, B, T, H = (cache[k] for k in ("num_layers", "D", "B", "T", "H"))
    merge_mode, opts, lengths = cache["merge_mode"], cache["opts"], cache["lengths"]
    masks = cache["dropout_masks"]
    is_lstm = cell == "lstm"
    step_backward = _STEPS[cell][1]

    if d_state is None:
        dh_n = np.zeros((num_layers * D, B, H))
        dc_n = np.zeros((num_layers * D, B, H))
    elif is_lstm:
        dh_n = np.asarray(d_state[0], dtype=np.float64)
        dc_n = np.asarray(d_state[1], dtype=np.float64)
    else:
        dh_n = np.asarray(d_state, dtype=np.float64)
        dc_n = np.zeros_like(dh_n)

    grads = {name: np.zeros_like(np.asarray(v, dtype=np.float64)) for name, v in params.items()}
    dh0 = np.zeros((num_layers * D, B, H))
    dc0 = np.zeros((num_layers * D, B, H))

    d_merged = np.asarray(d_out, dtype=np.float64)
    for layer in range(num_layers - 1, -1, -1):
        lc = cache["layers"][layer]
        inp, dir_out = lc["input"], lc["dir_out"]
        if D == 1:
            d_dirs = [d_merged]
        else:
            d_dirs = list(_split_merge_grad(d_merged, dir_out[0], dir_out[1], merge_mode))
        d_inp = np.zeros_like(inp)
        for d in range(D):
            p, sfx = _layer_params(params, layer, d, opts["peephole"])
            g = {short: np.zeros_like(v) for short, v in p.items()}
            k = layer * D + d
            for b in range(B):
                L = lengths[b]
                order = list(range(L)) if d == 0 else list(range(L - 1, -1, -1))
                caches = lc["steps"][d, b]
                dh_next, dc_next = dh_n[k, b].copy(), dc_n[k, b].copy()
                # walk the processed steps backwards; padded steps never appear
                for t, sc in zip(reversed(order), reversed(caches), strict=True):
                    dh = dh_next + d_dirs[d][b, t]
                    dx_t, dh_next, dc_next = step_backward(p, g, sc, dh, dc_next, opts)
                    d_inp[b, t] += dx_t
                dh0[k, b] = dh_next
                if is_lstm:
                    dc0[k, b] = dc_next
            for short, v in g.items():
                grads[_LONG[short] + sfx] += v
        if layer > 0:
            d_merged = d_inp
            if masks is not None:
                d_merged = d_merged * np.asarray(masks[layer - 1], dtype=np.float64)
        else:
            dx = d_inp
    d_initial_state = (dh0, dc0) if is_lstm else dh0
    return dx, grads, d_initial_state


# ---------------------------------------------------------------------------
# readout (sequence -> one) and truncated BPTT
# ---------------------------------------------------------------------------


def readout(mode, out, final_state, lengths, *, num_layers=1, bidirectional=False,
            merge_mode="concat"):  # fmt: skip
    """Sequence-to-one features of :func:`network_forward`'s result, one sample at a time.

    ``'last'``: the top layer's final state of each direction (forward: after the last valid
    step; reverse: after reading back to step 0), merged by ``merge_mode``. ``'mean'`` /
    ``'max'``: ``out`` pooled over the valid steps ``0 .. lengths[b]-1`` only.
    ``'last+mean+max'``: the three side by side. Returns ``(B, D_out)`` float64.
    """
    if mode == "last+mean+max":
        opts = dict(num_layers=num_layers, bidirectional=bidirectional, merge_mode=merge_mode)
        return np.concatenate(
            [readout(m, out, final_state, lengths, **opts) for m in ("last", "mean", "max")],
            axis=1,
        )
    out = np.asarray(out, dtype=np.float64)
    B = out.shape[0]
    lengths = np.asarray(lengths, dtype=np.int64)
    if mode == "last":
        h = final_state[0] if isinstance(final_state, tuple) else final_state
        h = np.asarray(h, dtype=np.float64)
        D = 2 if bidirectional else 1
        top = (num_layers - 1) * D
        if D == 1:
            return h[top].copy()
        return _merge(h[top], h[top + 1], merge_mode)
    feat = np.zeros((B, out.shape[2]))
    for b in range(B):
        steps = out[b, : lengths[b]]
        if mode == "mean":
            feat[b] = steps.sum(axis=0) / lengths[b]
        elif mode == "max":
            feat[b] = steps.max(axis=0)
        else:
            raise ValueError(f"mode must be 'last', 'mean' or 'max'; got {mode!r}.")
    return feat


def readout_backward(mode, dfeat, out, final_state, lengths, *, num_layers=1,
                     bidirectional=False, merge_mode="concat"):  # fmt: skip
    """Gradient of :func:`readout`: ``(d_out, d_state)`` for :func:`network_backward`.

    ``d_out`` (B, T, D_out) is zero at padded steps; for ``'max'`` each feature's gradient
    goes to the first valid step that attains the maximum. ``d_state`` is shaped like
    ``final_state`` (zeros except the top layer's ``h`` for ``'last'``). ``'last+mean+max'``:
    the sum of the three parts' gradients.
    """
    if mode == "last+mean+max":
        opts = dict(num_layers=num_layers, bidirectional=bidirectional, merge_mode=merge_mode)
        width = dfeat.shape[1] // 3
        parts = [
            readout_backward(
                m, dfeat[:, i * width : (i + 1) * width], out, final_state, lengths, **opts
            )
            for i, m in enumerate(("last", "mean", "max"))
        ]
        d_out = sum(p[0] for p in parts)
        if isinstance(parts[0][1], tuple):
            return d_out, tuple(sum(p[1][k] for p in parts) for k in range(2))
        return d_out, sum(p[1] for p in parts)
    dfeat = np.asarray(dfeat, dtype=np.float64)
    out = np.asarray(out, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.int64)
    is_tuple = isinstance(final_state, tuple)
    h = np.asarray(final_state[0] if is_tuple else final_state, dtype=np.float64)
    d_out = np.zeros_like(out)
    dh = np.zeros_like(h)
    if mode == "last":
        D = 2 if bidirectional else 1
        top = (num_layers - 1) * D
        if D == 1:
            dh[top] = dfeat
        else:
            dh[top], dh[top + 1] = _split_merge_grad(dfeat, h[top], h[top + 1], merge_mode)
    else:
        for b in range(out.shape[0]):
            L = lengths[b]
            if mode == "mean":
                d_out[b, :L] = dfeat[b] / L
            else:
                for j in range(out.shape[2]):
                    d_out[b, int(np.argmax(out[b, :L, j])), j] = dfeat[b, j]
    d_state = (dh, np.zeros_like(np.asarray(final_state[1], dtype=np.float64))) if is_tuple else dh
    return d_out, d_state


def tbptt_minibatch(cell, params, head_weight, head_bias, x, lengths, y, *, bptt_steps=None,
                    per_step=False, sample_weight=None, readout_mode="last", lr=0.1,
                    **network_options):  # fmt: skip
    """Truncated BPTT over one minibatch with a linear head, mean squared error and plain SGD.

    The sequences are cut into chunks of ``bptt_steps`` steps (None: one chunk). Chunk ``c``
    starts from the state the previous chunk ended in, as a constant (detached); samples
    that have ended are left out of it. Its objective is the chunk's share of the minibatch
    loss, ``sum_i w_i * l_i / W``: for one target per sequence, ``l_i`` (the squared error
    averaged over outputs) counts for the samples whose last valid step lies in the chunk and
    ``W`` is the total sample weight; for per-step targets every valid step in the chunk
    counts and ``W`` is the total weight over all valid steps. After each chunk with an
    objective the parameters are updated, ``p -= lr * grad``; chunks where no sample ends
    (one target per sequence) only advance the state.

    Returns
    -------
    chunks : list of dict
        Per update: ``{'start': s, 'loss': objective, 'grads': {name: array}}`` with the
        head's gradients under ``'head.weight'`` / ``'head.bias'``.
    params, head_weight, head_bias : the updated parameters (float64 copies).
    """
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    W = np.array(head_weight, dtype=np.float64)
    bias = np.array(head_bias, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.int64)
    B = x.shape[0]
    w = np.ones(B) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    T = int(lengths.max())
    k = T if bptt_steps is None else min(bptt_steps, T)
    total = float((w * lengths).sum()) if per_step else float(w.sum())
    is_lstm = cell == "lstm"
    opts = dict(network_options)
    L = opts.get("num_layers", 1)
    D = 2 if opts.get("bidirectional", False) else 1
    H = params["weight_hh_l0"].shape[1]
    h_carry = np.zeros((L * D, B, H))
    c_carry = np.zeros((L * D, B, H))
    chunks = []
    for s in range(0, T, k):
        rows = [b for b in range(B) if lengths[b] > s]
        lc = np.array([min(lengths[b] - s, k) for b in rows])
        Tc = int(lc.max())
        xc = x[rows, s : s + Tc]
        st = (h_carry[:, rows], c_carry[:, rows]) if is_lstm else h_carry[:, rows]
        out, fin, cache = network_forward(cell, params, xc, lc, st, **opts)
        hN = fin[0] if is_lstm else fin
        for i, b in enumerate(rows):
            h_carry[:, b] = hN[:, i]
            if is_lstm:
                c_carry[:, b] = fin[1][:, i]
        if per_step:
            z = out @ W.T + bias
            dz = np.zeros_like(z)
            loss = 0.0
            for i, b in enumerate(rows):
                for t in range(lc[i]):
                    r = z[i, t] - y[b, s + t]
                    loss += w[b] * np.mean(r**2) / total
                    dz[i, t] = w[b] * 2.0 * r / (r.size * total)
            d_out, d_state = out * 0.0, None
            d_out += dz @ W
            gW = np.einsum("btk,btd->kd", dz, out)
            gb = dz.sum(axis=(0, 1))
        else:
            ends = [i for i, b in enumerate(rows) if lengths[b] <= s + k]
            if not ends:
                continue
            feat = readout(readout_mode, out, fin, lc, num_layers=L, bidirectional=D == 2,
                           merge_mode=opts.get("merge_mode", "concat"))  # fmt: skip
            z = feat @ W.T + bias
            dz = np.zeros_like(z)
            loss = 0.0
            for i in ends:
                r = z[i] - y[rows[i]]
                loss += w[rows[i]] * np.mean(r**2) / total
                dz[i] = w[rows[i]] * 2.0 * r / (r.size * total)
            d_out, d_state = readout_backward(
                readout_mode, dz @ W, out, fin, lc, num_layers=L, bidirectional=D == 2,
                merge_mode=opts.get("merge_mode", "concat"),
            )  # fmt: skip
            gW = dz.T @ feat
            gb = dz.sum(axis=0)
        _, grads, _ = network_backward(cell, params, cache, d_out, d_state)
        grads = dict(grads)
        grads["head.weight"], grads["head.bias"] = gW, gb
        chunks.append({"start": s, "loss": loss, "grads": grads})
        for name in params:
            params[name] -= lr * grads[name]
        W -= lr * gW
        bias -= lr * gb
    return chunks, params, W, bias

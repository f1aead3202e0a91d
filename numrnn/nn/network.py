"""Recurrent networks without a head, shaped like ``torch.nn.RNN/LSTM/GRU(batch_first=True)``.

The network stacks layers and runs both directions; a backend (``numrnn.backends``) runs one
layer in one direction. Arrays cross the public API batch-first (B, T, F); inside they are
time-major (T, B, F) and C-contiguous.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from numrnn._validation import MERGE_MODES, all_finite, check_param, check_sequences
from numrnn.backends import get_backend
from numrnn.cells import CELLS, init_direction_params
from numrnn.cells.lstm import PEEPHOLE_NAMES

__all__ = ["GRU", "LSTM", "MERGE_MODES", "NETWORKS", "RNN", "RecurrentNetwork"]
_KERNEL_KEYS = ("w_ih", "w_hh", "b_ih", "b_hh")
_TORCH_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _stack(arrays: list) -> np.ndarray:
    """``np.stack`` of per-layer state arrays; one array (a single layer and direction,
    a new array of this call) becomes a view with a leading axis instead of a copy."""
    if len(arrays) == 1:
        return arrays[0][np.newaxis]
    return np.stack(arrays)


class RecurrentNetwork:
    """Base class of :class:`RNN`, :class:`LSTM` and :class:`GRU`.

    Parameters
    ----------
    input_size : int
        Features per step of the input.
    hidden_size : int
        Features of the hidden state ``h``.
    num_layers : int, default=1
        Stacked layers; layer ``l``'s input is layer ``l-1``'s (merged) output.
    bidirectional : bool, default=False
        Also run each layer backwards over every sequence's valid steps.
    merge_mode : {'concat', 'sum', 'mean', 'mul'}, default='concat'
        How the two directions' outputs are combined (concat is PyTorch's layout).
    dropout : float in [0, 1), default=0
        Dropout on each layer's output except the last, in training mode only.
    dtype : {'float32', 'float64'}, default='float32'
    random_state : int, numpy.random.Generator or None
        Seeds initialisation and dropout masks.
    orthogonal : bool, default=False
        Orthogonal recurrent weight blocks instead of PyTorch's uniform init.
    device : {'cpu', 'cuda', 'auto'}, default='cpu'
    """

    cell: str = ""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bidirectional: bool = False,
        merge_mode: str = "concat",
        dropout: float = 0.0,
        dtype="float32",
        random_state=None,
        orthogonal: bool = False,
        device: str = "cpu",
        _options: dict | None = None,
    ):
        self.input_size = check_param("input_size", input_size)
        self.hidden_size = check_param("hidden_size", hidden_size)
        self.num_layers = check_param("num_layers", num_layers)
        self.bidirectional = check_param("bidirectional", bidirectional)
        self.merge_mode = check_param("merge_mode", merge_mode)
        self.dropout = check_param("dropout", dropout)
        if self.dropout > 0 and self.num_layers == 1:
            warnings.warn(  # PyTorch's warning: dropout acts between layers only
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={self.dropout} "
                f"and num_layers={self.num_layers}",
                UserWarning,
                stacklevel=3,
            )
        self.dtype = check_param("dtype", dtype)
        orthogonal = check_param("orthogonal", orthogonal)
        self.options = dict(_options or {})
        self.spec = CELLS[self.cell]
        self.training = True
        self.backend = get_backend(device)
        self.device = self.backend.name
        self._rng = (
            random_state
            if isinstance(random_state, np.random.Generator)
            else np.random.default_rng(random_state)
        )
        self._params: list[list[dict[str, np.ndarray]]] = []
        for layer in range(self.num_layers):
            size = self.input_size if layer == 0 else self.layer_output_size
            self._params.append(
                [
                    init_direction_params(
                        self.spec,
                        size,
                        self.hidden_size,
                        self._rng,
                        self.dtype,
                        peephole=self.options.get("peephole", False),
                        orthogonal=orthogonal,
                        forget_bias=self.options.get("forget_bias"),
                    )
                    for _ in range(self.num_directions)
                ]
            )
        self.grads: OrderedDict[str, np.ndarray] = OrderedDict()
        self.grad_state = None
        self._cache = None

    # -- shapes and modes -------------------------------------------------------------
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def layer_output_size(self) -> int:
        """Features per step of each layer's output (the merged directions)."""
        if self.bidirectional and self.merge_mode == "concat":
            return 2 * self.hidden_size
        return self.hidden_size

    output_size = layer_output_size

    def train(self, mode: bool = True):
        """Training mode (dropout active), as ``torch.nn.Module.train``."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Inference mode (no dropout)."""
        return self.train(False)

    # -- parameters -------------------------------------------------------------------
    def _names(self, layer: int, direction: int) -> dict[str, str]:
        sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        return {k: t + sfx for k, t in zip(_KERNEL_KEYS, _TORCH_KEYS, strict=True)}

    def _named(self, per_direction) -> OrderedDict:
        """Flatten per-layer-direction kernel dicts to PyTorch names (views, not copies)."""
        named = OrderedDict()
        for layer in range(self.num_layers):
            for d in range(self.num_directions):
                p = per_direction[layer][d]
                names = self._names(layer, d)
                for k in _KERNEL_KEYS:
                    named[names[k]] = p[k]
                if self.options.get("peephole", False):
                    sfx = names["w_ih"][len("weight_ih") :]
                    for i, nm in enumerate(PEEPHOLE_NAMES):
                        named[nm + sfx] = p["w_peep"][i]
        return named

    def parameters(self) -> OrderedDict:
        """The parameter arrays by PyTorch name; updating them in place updates the network."""
        return self._named(self._params)

    def state_dict(self) -> OrderedDict:
        """Copies of the parameters with PyTorch's names and shapes."""
        return OrderedDict((k, v.copy()) for k, v in self.parameters().items())

    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        """Copy parameters in (a PyTorch ``state_dict`` converted to NumPy loads unchanged)."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"state_dict must be a mapping of parameter names to arrays (as state_dict() "
                f"returns), got {type(state_dict).__name__}. Pass dict(zip(names, arrays)) "
                "or the OrderedDict from state_dict()."
            )
        own = self.parameters()
        # Everything is checked before anything is copied: a bad entry leaves the network
        # exactly as it was.
        incoming = {
            k: _real_array(f"state_dict[{k!r}]", _to_numpy(v)) for k, v in state_dict.items()
        }
        missing = [k for k in own if k not in incoming]
        unexpected = [k for k in incoming if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"state_dict does not match this {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}. Build the network with the same cell, "
                "num_layers, bidirectional and peephole settings, or pass strict=False."
            )
        for k, v in incoming.items():
            if k not in own:
                continue
            if v.shape != own[k].shape:
                raise ValueError(
                    f"state_dict[{k!r}] has shape {v.shape}, expected {own[k].shape}. "
                    "Build the network with the same input_size and hidden_size."
                )
        for k, v in incoming.items():
            if k in own:
                np.copyto(own[k], v, casting="unsafe")

    # -- forward ----------------------------------------------------------------------
    def _check_state(self, state, B, what="state"):
        H, LD = self.hidden_size, self.num_layers * self.num_directions
        names = ("h0", "c0") if self.spec.has_cell_state else ("h0",)
        if what != "state":  # the gradient w.r.t. the final state (h_n, c_n)
            names = tuple(f"{what}[{i}] (d{n[0]}_n)" for i, n in enumerate(names))
            if not self.spec.has_cell_state:
                names = (f"{what} (dh_n)",)
        if state is None:
            return self._zero_state(B)
        parts = state if self.spec.has_cell_state else (state,)
        if (
            type(parts) in (tuple, list)
            and len(parts) == len(names)
            and all(_usable_state(a, (LD, B, H), self.dtype) for a in parts)
        ):
            return list(parts)  # the state a forward returned: carried on as it is
        if self.spec.has_cell_state and (not isinstance(state, (tuple, list)) or len(state) != 2):
            raise ValueError(
                "state must be a tuple (h0, c0) for an LSTM, got "
                f"{type(state).__name__}. Pass (h0, c0) or None for zeros."
            )
        out = []
        for nm, s in zip(names, parts, strict=True):
            a = _real_array(nm, s)
            if a.shape != (LD, B, H):
                raise ValueError(
                    f"{nm} must have shape (num_layers*num_directions, batch, hidden_size) = "
                    f"{(LD, B, H)}, got {a.shape}. Pass the state returned by forward."
                )
            if not np.isfinite(a).all():
                fix = "a finite initial state" if what == "state" else "finite gradients"
                raise ValueError(f"{nm} contains NaN or inf. Pass {fix}.")
            out.append(np.ascontiguousarray(a, dtype=self.dtype))
        return out

    def forward(self, x, state=None, *, lengths=None, requires_grad: bool = True, training=None):
        """Run the network.

        Parameters
        ----------
        x : array (B, T, input_size) or list of (T_i, input_size) arrays
            A ragged list is padded; the output is then padded to the longest sequence.
        state : array (L*D, B, H), or tuple (h0, c0) for the LSTM, optional
            Initial state (PyTorch's layout); zeros when None.
        lengths : array (B,) of int, optional
            Valid steps per sequence of a padded ``x``.
        requires_grad : bool, default=True
            Keep what :meth:`backward` needs. False saves memory for inference (and a later
            :meth:`backward` then raises: it would not match this forward).
        training : bool or None, default=None
            Dropout on (True) or off (False) for this call; None follows :attr:`training`
            (set by :meth:`train`/:meth:`eval`). Inference code passes ``training=False``
            rather than flipping the shared mode, which other threads may be reading.

        Returns
        -------
        out : (B, T, D_out) outputs of the last layer (0 on padded steps)
        state : h_n, or (h_n, c_n) for the LSTM, each (L*D, B, H)
        """
        result, self._cache = self._run(x, state, lengths, requires_grad, training)
        return result

    def _inference(self, x, state=None, *, lengths=None):
        """``forward(x, state, lengths=lengths, requires_grad=False, training=False)`` that
        writes nothing of the network (not even the backward cache): estimators' predict
        calls it, so several threads may predict with one model at once."""
        return self._run(x, state, lengths, False, False)[0]

    def _train_forward(self, xp, lens, state):
        """:meth:`forward` with ``requires_grad=True`` on a minibatch the caller checked.

        For the estimators' fits, whose minibatches are cut from data checked once per fit:
        ``xp`` (B, T, input_size) real and finite with zeros past ``lens`` (int, (B,)), and
        ``state`` None or a state this network returned (or rows of one). The per-call
        checks of :meth:`forward` cost about as much as a small minibatch's kernels.
        """
        init = self._trusted_state(state, xp.shape[0])
        result, self._cache = self._run_checked(xp, lens, init, True, None)
        return result

    def _inference_checked(self, xp, lens, state=None):
        """:meth:`_inference` on a batch the caller checked, as :meth:`_train_forward`'s:
        the estimators' predict checks ``X`` once, then runs it in batches and time chunks
        (on a forecaster's one-step forecast the checks were a tenth of its time)."""
        return self._run_checked(xp, lens, self._trusted_state(state, xp.shape[0]), False, False)[0]

    def _trusted_state(self, state, B):
        """The initial-state list of :meth:`_run_checked` from None (zeros) or a state this
        network returned (or rows of one), unchecked."""
        if state is None:
            return self._zero_state(B)
        return list(state) if isinstance(state, tuple) else [state]

    def _train_backward(self, d_out, d_state):
        """:meth:`backward` without the input gradient, for :meth:`_train_forward`:
        ``d_out`` None or a real array of the output's shape, ``d_state`` None or shaped
        like the returned state (a readout's gradients), not checked again."""
        d_fin = self._trusted_state(d_state, self._cache["B"])
        cache, self._cache = self._cache, None
        self.grads, self.grad_state = OrderedDict(), None
        return self._backward(cache, d_out, d_fin, False)

    def _zero_state(self, B):
        """The zero initial state (or final-state gradient) as :meth:`_check_state` makes it."""
        n = 2 if self.spec.has_cell_state else 1
        shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        return [np.zeros(shape, dtype=self.dtype) for _ in range(n)]

    def _run(self, x, state, lengths, requires_grad, training):
        """:meth:`forward`'s work; returns ``(result, cache)`` and writes nothing."""
        xp, lens = check_sequences(x, lengths=lengths, n_features=self.input_size, dtype=self.dtype)
        init = self._check_state(state, xp.shape[0])
        return self._run_checked(xp, lens, init, requires_grad, training)

    def _run_checked(self, xp, lens, init, requires_grad, training):
        """:meth:`_run` on a checked input: ``xp`` (B, T, input_size) of the network's dtype
        with ``lens``, ``init`` as :meth:`_check_state` returns it. A generating loop checks
        its seed and state once, then calls this per step (the checks cost more than a
        one-step kernel)."""
        T = xp.shape[1]
        training = self.training if training is None else bool(training)
        # No BLAS thread limit around the layers: the CPU kernels do not call BLAS.
        if not requires_grad and self.num_directions == 1 and T > self.inference_chunk:
            return self._forward_chunked(xp, lens, init, training), None
        be = self.backend
        out, h_n, c_n, cache = self._forward_time_major(
            be.asarray(xp.transpose(1, 0, 2), self.dtype),
            be.asarray(lens, np.int64),
            init,
            requires_grad,
            training=training,
        )
        return self._result(be.to_host(out).transpose(1, 0, 2), h_n, c_n), cache

    def _replayable_inference(self, x, states):
        """The kernel calls of inference forwards (no gradients, no dropout) of this
        unidirectional network on the CPU backend, built once to be run many times.

        ``x`` is the time-major input buffer (T, B, input_size). ``states`` lists
        ``(h0, c0, h_n, c_n)`` buffers, each (num_layers, B, hidden_size) and ``c`` None
        without a cell state: per entry, calls that read the state from ``h0`` (and ``c0``)
        and write the final one into ``h_n`` (and ``c_n``). Returns a list of ``(calls,
        out)``, one per entry: ``calls`` for :func:`~numrnn._threads.run_row_ranges`, in
        order, and ``out`` the last layer's (T, B, hidden_size) output buffer they fill.
        All entries run on one copy of the weights as they are now: a later write to the
        network's weights (a refit, an optimizer step) is not seen.
        """
        T, B, _ = x.shape
        lens = np.full(B, T, dtype=np.int64)
        weights = [{k: v.copy() for k, v in layer[0].items()} for layer in self._params]
        plans = []
        for h0, c0, h_n, c_n in states:
            calls, inp = [], x
            for layer in range(self.num_layers):
                out = np.empty((T, B, self.hidden_size), dtype=self.dtype)
                cells = (None, None) if c0 is None else (c0[layer], c_n[layer])
                layer_calls, _ = self.backend.layer_forward_calls(
                    self.cell, inp, weights[layer], h0[layer], cells[0], lens, self.options,
                    out, h_n[layer], cells[1],
                )  # fmt: skip
                calls += layer_calls
                inp = out
            plans.append((calls, inp))
        return plans

    #: Steps per chunk when a unidirectional network runs without gradients: memory for
    #: gates and workspace stays bounded however long the sequence.
    inference_chunk = 1024

    def _result(self, out, h_n, c_n):
        """``(out, h_n)`` or ``(out, (h_n, c_n))`` with the states stacked on the host."""
        hN = _stack([self.backend.to_host(h) for h in h_n])
        if self.spec.has_cell_state:
            return out, (hN, _stack([self.backend.to_host(c) for c in c_n]))
        return out, hN

    def _forward_chunked(self, xp, lens, init, training):
        """Inference over time chunks with the state carried (unidirectional only)."""
        B, T, _ = xp.shape
        be = self.backend
        out = np.zeros((B, T, self.layer_output_size), dtype=self.dtype)
        state = [s.copy() for s in init]
        for t0 in range(0, T, self.inference_chunk):
            t1 = min(T, t0 + self.inference_chunk)
            chunk_lens = np.clip(lens - t0, 0, t1 - t0)  # 0: finished, state carried
            o, h_n, c_n, _ = self._forward_time_major(
                be.asarray(xp[:, t0:t1].transpose(1, 0, 2), self.dtype),
                be.asarray(chunk_lens, np.int64),
                state,
                False,
                training=training,
            )
            out[:, t0:t1] = be.to_host(o).transpose(1, 0, 2)
            state = [h_n, c_n]  # per layer-direction lists index like the stacked arrays
        return self._result(out, h_n, c_n)

    def _forward_time_major(
        self, inp, lens_dev, init, requires_grad, params=None, *, training=None
    ):
        """All layers and directions on a time-major input; returns (out, h_n, c_n, cache).

        ``params`` (per layer and direction, like ``self._params``) defaults to the
        network's own; a device fit passes its device-resident copies. ``training``
        (dropout) defaults to :attr:`training`. Nothing of the network is written.
        """
        training = self.training if training is None else training
        be = self.backend
        params = self._params if params is None else params
        D = self.num_directions
        h_n = [None] * (self.num_layers * D)
        c_n = [None] * (self.num_layers * D)
        caches, masks, dir_outs, x_owned = [], [], [], []
        inp_owned = False  # layer 0's input: the caller's data, however converted
        for layer in range(self.num_layers):
            outs, layer_caches = [], []
            # Whether each direction's cached input is its own copy, so that BPTT may write
            # dx into it: the reverse direction's reversed input always is; the forward
            # direction's is when it is a merged or dropped-out output, not the layer below's.
            x_owned.append([inp_owned, True][:D])
            for d in range(D):
                k = layer * D + d
                xin = inp if d == 0 else be.reverse_padded(inp, lens_dev)
                h0 = be.asarray(init[0][k], self.dtype)
                c0 = be.asarray(init[1][k], self.dtype) if self.spec.has_cell_state else None
                out, hn, cn, cache = be.layer_forward(
                    self.cell,
                    xin,
                    params[layer][d],
                    h0,
                    c0,
                    lens_dev,
                    self.options,
                    requires_grad=requires_grad,
                )
                if d == 1:
                    out = be.reverse_padded(out, lens_dev)
                outs.append(out)
                layer_caches.append(cache if requires_grad else None)
                h_n[k], c_n[k] = hn, cn
            merged = be.merge(outs, self.merge_mode)
            mask = None
            if training and self.dropout > 0 and layer < self.num_layers - 1:
                # Masks come from the host generator: same seed, same masks on every device.
                keep = self._rng.random(merged.shape) >= self.dropout
                mask = be.asarray(keep / (1.0 - self.dropout), self.dtype)
                merged = be.multiply(merged, mask)
            caches.append(layer_caches)
            masks.append(mask)
            inp_owned = D == 2 or mask is not None  # merge() and the mask make new arrays
            dir_outs.append(outs if (requires_grad and self.merge_mode == "mul") else None)
            inp = merged
        cache = (
            {
                "caches": caches,
                "masks": masks,
                "dir_outs": dir_outs,
                "x_owned": x_owned,
                "lengths": lens_dev,
                "B": inp.shape[1],
                "params": params,
            }  # fmt: skip
            if requires_grad
            else None
        )
        return inp, h_n, c_n, cache

    __call__ = forward

    # -- backward ---------------------------------------------------------------------
    def backward(self, d_out, d_state=None, *, input_grad: bool = True):
        """Backpropagate through time from the last :meth:`forward`.

        Parameters
        ----------
        d_out : array (B, T, D_out) or None
            Gradient of the loss w.r.t. ``out`` (entries at padded steps are ignored).
            It is read, never modified. None means zero (the loss depends on the final
            state only), without a (B, T, D_out) array of zeros.
        d_state : like the returned state, optional
            Gradient w.r.t. the final state (h_n, or (h_n, c_n)); zeros when None.
        input_grad : bool, default=True
            Compute the gradient w.r.t. the input. False (the input is data, as a PyTorch
            tensor without ``requires_grad``) skips it and returns None: less work and one
            (B, T, input_size) buffer less.

        Returns
        -------
        dx : (B, T, input_size) gradient w.r.t. the input, or None.

        Fills :attr:`grads` (same keys as :meth:`state_dict`) and :attr:`grad_state`, the
        gradient w.r.t. the initial state (dh0, or (dh0, dc0)), so truncated BPTT can carry
        a detached state from chunk to chunk. The forward's cache is consumed.
        """
        if self._cache is None:
            raise RuntimeError(
                "backward() needs a forward(..., requires_grad=True) first, and each forward "
                "can be backpropagated once. Call forward again before backward."
            )
        # Checked before the cache is consumed: a wrong d_out can be corrected and retried.
        d_user, d_fin = self._check_backward_args(self._cache, d_out, d_state)
        cache, self._cache = self._cache, None
        # The previous gradients are replaced, not reused: let them go before the new ones
        # are allocated, or both sets are alive at the peak.
        self.grads, self.grad_state = OrderedDict(), None
        return self._backward(cache, d_user, d_fin, bool(input_grad))

    def _check_backward_args(self, cache, d_out, d_state):
        """``(d_out as an array or None, final-state gradients)``, or a clear error."""
        B = cache["B"]
        T = cache["caches"][0][0].x.shape[0]
        d_user = None
        if d_out is not None:
            d_user = _real_array("d_out", d_out)
            if d_user.shape != (B, T, self.layer_output_size):
                raise ValueError(
                    "d_out must have the shape of forward's output "
                    f"{(B, T, self.layer_output_size)}, got {d_user.shape}."
                )
        return d_user, self._check_state(d_state, B, "d_state")

    def _backward(self, cache, d_user, d_fin, input_grad=True):
        be = self.backend
        d_tm = None
        if d_user is not None:
            # no copy when d_out is already time-major in memory (a Linear head's gradient
            # of this network's output is): the LSTM and GRU only read it. The Elman RNN
            # writes its pre-activation gradients into a d_out it may overwrite, so it keeps
            # its own copy (the one-pass path, the same bits as before).
            d_tm = be.asarray(d_user.transpose(1, 0, 2), self.dtype)
            if self.spec.backward_writes_d_out and not _may_overwrite(d_tm, [d_user]):
                d_tm = d_tm.copy()
        grads_pd, dh0, dc0, d_tm = self._backward_time_major(
            cache, d_tm, d_fin, input_grad=input_grad, protected=d_user
        )
        self.grads = self._named(
            [
                [{k2: be.to_host(v) for k2, v in g.items()} for g in per_layer]
                for per_layer in grads_pd
            ]
        )
        dH = _stack([be.to_host(a) for a in dh0])
        self.grad_state = (
            (dH, _stack([be.to_host(a) for a in dc0])) if self.spec.has_cell_state else dH
        )
        return None if d_tm is None else be.to_host(d_tm).transpose(1, 0, 2)

    def _backward_time_major(self, cache, d_tm, d_fin, *, input_grad=True, protected=None):
        """BPTT on backend arrays: ``d_tm`` (T, B, D_out) time-major, or None for zero;
        ``d_fin[0][k]`` (and ``d_fin[1][k]``) the final-state gradients of layer-direction
        ``k``. ``d_tm`` may be overwritten unless it shares memory with ``protected`` (the
        caller's array); ``input_grad=False`` skips the layer-0 input gradient (dx None).

        Returns ``(grads, dh0, dc0, dx)``: per layer and direction gradient dicts, per
        layer-direction initial-state gradients and the time-major input gradient, all
        backend arrays (device arrays on the CUDA backend: nothing is copied to the host).

        Memory: each layer's forward cache is released once its BPTT is done, and gradient
        buffers this method allocated (never ``protected``) are handed to the backend to be
        reused for the layer's own gradients.
        """
        be = self.backend
        lens = cache["lengths"]
        params = cache["params"]
        D, L = self.num_directions, self.num_layers
        grads_pd = [[None] * D for _ in range(L)]
        dh0 = [None] * (L * D)
        dc0 = [None] * (L * D)
        for layer in range(L - 1, -1, -1):
            layer_caches = cache["caches"][layer]
            cache["caches"][layer] = None  # released when this layer is done
            mask = cache["masks"][layer]
            if d_tm is None:  # no gradient w.r.t. the top layer's output
                parts = [None] * D
            else:
                if mask is not None:
                    d_tm = be.multiply(d_tm, mask)
                parts = be.split(d_tm, self.merge_mode, cache["dir_outs"][layer], D)
            cache["dir_outs"][layer] = None
            d_tm = None
            need_dx = input_grad or layer > 0
            dx_total = None
            for d in range(D):
                k = layer * D + d
                if parts[d] is None:
                    dpart, owned = None, False
                elif d == 0:
                    dpart = parts[0]
                    owned = _may_overwrite(dpart, [protected] + parts[1:])
                else:
                    dpart, owned = be.reverse_padded(parts[d], lens), True
                parts[d] = None
                dhn = be.asarray(d_fin[0][k], self.dtype)
                dcn = be.asarray(d_fin[1][k], self.dtype) if self.spec.has_cell_state else None
                dx, g, dh, dc = be.layer_backward(
                    self.cell,
                    layer_caches[d],
                    params[layer][d],
                    dpart,
                    dhn,
                    dcn,
                    need_dx,
                    self.options,
                    d_out_owned=owned,
                    x_owned=cache["x_owned"][layer][d],
                )
                layer_caches[d] = dpart = None
                if d == 0 or dx is None:
                    dx_total = dx
                else:  # dx_total is ours (a fresh or reused buffer): add the reversed dx in
                    dx_total = be.add_reversed_into(dx_total, dx, lens)
                dx = None
                grads_pd[layer][d] = g
                dh0[k], dc0[k] = dh, dc
            d_tm = dx_total
        return grads_pd, dh0, dc0, d_tm

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.options.items() if k != "forget_bias")
        return (
            f"{type(self).__name__}({self.input_size}, {self.hidden_size}, "
            f"num_layers={self.num_layers}, bidirectional={self.bidirectional}"
            f"{extra}, dtype='{self.dtype.name}')"
        )


def _may_overwrite(a, protected) -> bool:
    """True when ``a`` shares no memory with the ``protected`` arrays (device arrays: is not one)."""
    for p in protected:
        if p is None:
            continue
        if a is p:
            return False
        if isinstance(a, np.ndarray) and isinstance(p, np.ndarray) and np.may_share_memory(a, p):
            return False
    return True


def _usable_state(a, shape: tuple, dtype) -> bool:
    """Whether ``a`` is a finite C-contiguous array of ``shape`` and ``dtype``: a state the
    general checks would return unchanged (they name what is wrong with any other)."""
    return (
        type(a) is np.ndarray
        and a.dtype == dtype
        and a.shape == shape
        and a.flags.c_contiguous
        and all_finite(a)
    )


def _real_array(name: str, value) -> np.ndarray:
    """``np.asarray(value)`` when it holds real numbers; complex, strings and objects are an
    error (NumPy would drop imaginary parts silently when casting to the float dtype)."""
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers, got an array of dtype {a.dtype}. "
            + (
                "Pass the real part (a.real) or split real and imaginary parts."
                if a.dtype.kind == "c"
                else "Convert it to a float array first."
            )
        )
    return a


def _to_numpy(value) -> np.ndarray:
    """A NumPy array from an array-like or a torch tensor (on any device)."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


class RNN(RecurrentNetwork):
    """Elman RNN, ``h_t = φ(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``.

    Mirrors ``torch.nn.RNN(batch_first=True)``; see :class:`RecurrentNetwork` for the
    shared parameters. ``nonlinearity`` is 'tanh' (default) or 'relu'.
    ``forward`` returns ``(out, h_n)``.
    """

    cell = "rnn"

    def __init__(self, input_size, hidden_size, num_layers=1, *, nonlinearity="tanh", **kwargs):
        self.nonlinearity = check_param("nonlinearity", nonlinearity)
        super().__init__(
            input_size, hidden_size, num_layers, _options={"nonlinearity": nonlinearity}, **kwargs
        )


class LSTM(RecurrentNetwork):
    """Long short-term memory, gate order i, f, g, o (PyTorch).

    Mirrors ``torch.nn.LSTM(batch_first=True)``; ``forward`` returns ``(out, (h_n, c_n))``.
    The other parameters (``input_size``, ``hidden_size``, ``num_layers``, ...) are those of
    :class:`RecurrentNetwork`.

    Parameters
    ----------
    peephole : bool, default=False
        Gers & Schmidhuber's diagonal peepholes (``weight_ci``, ``weight_cf``, ``weight_co``):
        the input and forget gates see ``c_{t-1}``, the output gate sees the new ``c_t``.
    forget_bias : float or None, default=None
        Set the forget gate's bias to this value at init (1.0 is a common choice).
    """

    cell = "lstm"

    def __init__(
        self, input_size, hidden_size, num_layers=1, *, peephole=False, forget_bias=None, **kwargs
    ):
        self.peephole = check_param("peephole", peephole)
        forget_bias = check_param("forget_bias", forget_bias)
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            _options={"peephole": self.peephole, "forget_bias": forget_bias},
            **kwargs,
        )


class GRU(RecurrentNetwork):
    """Gated recurrent unit, gate order r, z, n.

    Mirrors ``torch.nn.GRU(batch_first=True)``; ``forward`` returns ``(out, h_n)``.
    The other parameters (``input_size``, ``hidden_size``, ``num_layers``, ...) are those of
    :class:`RecurrentNetwork`.

    Parameters
    ----------
    reset_after : bool, default=True
        True: PyTorch/cuDNN, ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``.
        False: Cho et al., ``n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)``.
    """

    cell = "gru"

    def __init__(self, input_size, hidden_size, num_layers=1, *, reset_after=True, **kwargs):
        self.reset_after = check_param("reset_after", reset_after)
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            _options={"reset_after": self.reset_after},
            **kwargs,
        )


#: The network class of each cell of the registry ``numrnn.cells.CELLS``, by name.
NETWORKS = {cls.cell: cls for cls in (RNN, LSTM, GRU)}
assert set(NETWORKS) == set(CELLS), "every registered cell has a network class"

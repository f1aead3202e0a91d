"""Generation and streaming: a fitted model run one step at a time, its state carried."""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils.validation import check_is_fitted

from numrnn._threads import run_row_ranges
from numrnn._validation import all_finite, check_int
from numrnn.forecasting._forecaster import RNNForecaster


def _unpack_model(model, caller: str = "generate"):
    """(network, weight, bias, mean, scale) from a fitted model; ``caller`` names the
    function in the error."""
    if isinstance(model, RNNForecaster):
        check_is_fitted(model, "regressors_")
        if (
            model.strategy != "recursive"
            or model.n_exog_
            or model.transform_
            or model.scaler == "window"
            or model.quantiles_ is not None
        ):
            raise ValueError(
                f"{caller} needs a plain one-step model: an RNNForecaster with "
                "strategy='recursive', transform=None, scaler='standard' (or 'robust' or None), "
                "no quantiles, fitted without X."
            )
        reg = model.regressor_
        k = model.n_series_
        return reg.network_, reg.head_.weight, reg.head_.bias, model.mean_[:k], model.scale_[:k]
    if isinstance(model, tuple) and len(model) == 2:
        net, head = model
        return net, head.weight, head.bias, None, None
    if hasattr(model, "network_") and hasattr(model, "head_"):
        return model.network_, model.head_.weight, model.head_.bias, None, None
    raise TypeError(
        "model must be a fitted RNNRegressor, a fitted RNNForecaster or a (network, head) "
        f"tuple, got {type(model).__name__}."
    )


def _check_unidirectional(net, caller: str) -> None:
    if net.bidirectional:
        raise ValueError(
            f"{caller} needs a unidirectional model: a bidirectional network reads the future, "
            "which does not exist while generating. Fit with bidirectional=False."
        )


#: Generated values above which :func:`generate` prepares a stream's kernel calls: making
#: them costs about what four steps through the network's inference entry save (hidden-32
#: LSTM).
_PREPARE_AFTER = 4


def generate(model, seed, n_steps, *, state=None, return_state=False):
    """Generate ``n_steps`` values from a seed, feeding each output back as the next input.

    The seed is read once; then each step runs the network on a single input with the
    state carried from the previous step (as a :class:`Stream` steps), so the cost is one
    step per generated value, never a recomputation from the start.

    Parameters
    ----------
    model : RNNRegressor, RNNForecaster or (network, head)
        A fitted model whose output has as many features as its input (a next-step model:
        ``RNNRegressor`` trained with ``output='sequence'`` on ``y_t = x_{t+1}`` as in seed
        ``002``, or with ``output='last'``; or a recursive ``RNNForecaster`` without ``X``,
        whose scaling is applied). Unidirectional only.
    seed : float or array-like
        The first input(s): a number, a 1-D array of seed steps (one feature) or of the
        features of one step, or a 2-D (n_seed_steps, n_features) array.
    n_steps : int >= 1
        Values to generate. The first is the model's output after the last seed step.
    state : array or (h, c) tuple, optional
        Initial recurrent state (zeros by default, as in training).
    return_state : bool, default=False
        Also return the final state (to continue generating later).

    Returns
    -------
    values : ndarray of shape (n_steps,) for one feature, else (n_steps, n_features)
    state : the final state, if ``return_state``
    """
    net, W, b, mean, sd = _unpack_model(model)
    _check_unidirectional(net, "generate")
    F = net.input_size
    if W.shape[0] != F:
        raise ValueError(
            f"generate feeds the output back as input, so the model needs as many outputs as "
            f"input features; it has {W.shape[0]} output(s) and {F} input feature(s)."
        )
    check_int("n_steps", n_steps, 1)
    s = np.asarray(seed, dtype=np.float64)
    if s.ndim == 0:
        s = s.reshape(1, 1)
    elif s.ndim == 1:
        s = s[:, None] if F == 1 else s[None, :]
    if s.ndim != 2 or s.shape[1] != F or s.shape[0] < 1 or not all_finite(s):
        raise ValueError(
            f"seed must be finite with {F} feature(s) per step, got shape {np.shape(seed)}."
        )
    if mean is not None:
        s = (s - mean) / sd
    dt = net.dtype
    Wt = np.ascontiguousarray(W.T, dtype=dt)
    bias = np.asarray(b, dtype=dt)
    out_vals = np.empty((n_steps, F), dtype=np.float64)
    # The seed and the state are checked once; each step then runs on arrays the network
    # made itself (inference, no dropout, nothing written to the network: thread-safe).
    init = net._check_state(state, 1)
    x = s[None].astype(dt)
    (out, state), _ = net._run_checked(x, np.array([len(s)], dtype=np.int64), init, False, False)
    y = out[:, -1] @ Wt + bias  # (1, F)
    out_vals[0] = y[0]
    if n_steps > 1:
        # Each output back in as the next input, in the network's (scaled) units, through
        # a stream: the same operations as the seed's last step, and on a longer run
        # without the per-step Python of a forward (its prepared calls).
        stream = Stream._without_scaling(net, W, b, state, prepare=n_steps > _PREPARE_AFTER)
        for t in range(1, n_steps):
            stream._x[0, 0] = y[0]
            y = stream._advance()
            out_vals[t] = y[0]
        state = stream.state
    if mean is not None:
        out_vals = out_vals * sd + mean
    vals = out_vals[:, 0] if F == 1 else out_vals
    if return_state:
        return vals, state
    return vals


class Stream:
    """One observation in, the model's next output out, the recurrent state carried inside.

    The streaming form of :func:`~numrnn.forecasting.generate`: each :meth:`step` runs the
    network one step on the new input from the state the previous step left, then the
    head, and gives the same numbers, bit for bit, as
    ``generate(model, x_t, 1, state=stream.state)``. Nothing is fed back, so the model may
    have any number of outputs.

    What ``generate`` does at every call is done here once, when the stream is made: the
    model's weights are copied and packed, the buffers allocated and the kernel calls
    prepared; the state never leaves the stream, so it is not checked again. A step is then
    the new input's check, the prepared kernel calls and the head's product: about a seventh
    of ``generate``'s time for a small network (docs/performance.rst).

    Parameters
    ----------
    model : RNNRegressor, RNNForecaster or (network, head)
        A fitted unidirectional model, as :func:`~numrnn.forecasting.generate` takes: an
        ``RNNForecaster`` must be a recursive one-step model without ``X``; its scaling is
        applied to each input and undone on each output.
    state : array or (h, c) tuple, optional
        The initial recurrent state, (num_layers, 1, hidden_size) per part as ``forward``
        and ``generate`` return it; zeros by default, as in training.

    Notes
    -----
    The stream works on a copy of the model's weights made when it is created: after a
    refit, make a new stream (pass the old one's :attr:`state` to carry the state on). A
    stream holds mutable state: give each thread its own.

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import RNNRegressor
    >>> from numrnn.forecasting import Stream
    >>> t = np.arange(41)
    >>> wave = np.sin(0.3 * (t[None, :] + np.arange(16)[:, None]))
    >>> model = RNNRegressor(hidden_size=8, segment_length=None, tol=0.1, n_iter_no_change=2,
    ...                      random_state=0)
    >>> model = model.fit(wave[:, :-1, None], wave[:, -1])
    >>> stream = Stream(model)
    >>> y = [stream.step(v) for v in wave[0, :10]]  # each the next-step output
    >>> h, c = stream.state
    >>> h.shape
    (1, 1, 8)
    """

    def __init__(self, model, *, state=None):
        net, W, b, mean, sd = _unpack_model(model, "Stream")
        _check_unidirectional(net, "Stream")
        self._setup(net, W, b, mean, sd, state)

    @classmethod
    def _without_scaling(cls, net, W, b, state, prepare: bool) -> Stream:
        """A stream of ``net`` and the head ``(W, b)`` in the network's own units (for
        :func:`generate`, which scales once around its whole run); without ``prepare`` it
        steps through the network's inference entry (cheaper to make, dearer a step)."""
        stream = cls.__new__(cls)
        stream._setup(net, W, b, None, None, state, prepare)
        return stream

    def _setup(self, net, W, b, mean, sd, state, prepare: bool = True) -> None:
        dt = net.dtype
        self._net = net
        self._n_features = net.input_size
        self._n_outputs = W.shape[0]
        self._weight_t = np.ascontiguousarray(W.T, dtype=dt)
        self._bias = np.array(b, dtype=dt)
        self._mean = None if mean is None else np.array(mean, dtype=np.float64)
        self._scale = None if sd is None else np.array(sd, dtype=np.float64)
        if self._mean is not None and self._n_features == 1:
            # One feature: a number's scaling in Python floats, the same IEEE operations
            self._mean_1, self._scale_1 = float(self._mean[0]), float(self._scale[0])
        shape = (net.num_layers, 1, net.hidden_size)
        n_parts = 2 if net.spec.has_cell_state else 1
        # Two state buffers: a step reads one and writes the other, so nothing is copied
        self._states = [[np.zeros(shape, dtype=dt) for _ in range(n_parts)] for _ in range(2)]
        self._x = np.zeros((1, 1, self._n_features), dtype=dt)
        if prepare and hasattr(net.backend, "layer_forward_calls"):
            # per state buffer read: the calls, and the (1, hidden_size) output they write
            pairs = []
            for i in range(2):
                old, new = self._states[i], self._states[1 - i]
                cells = (old[1], new[1]) if n_parts == 2 else (None, None)
                pairs.append((old[0], cells[0], new[0], cells[1]))
            plans = net._replayable_inference(self._x, pairs)
            self._calls = [calls for calls, _ in plans]
            self._last = [out[0] for _, out in plans]
        else:  # a device network (or a short run): the inference entry, step by step
            self._calls, self._lengths = None, np.ones(1, dtype=np.int64)
        self._current = 0
        self.reset(state)

    def _advance(self) -> np.ndarray:
        """One step on the input buffer ``_x``: the head's (1, n_outputs) output, in the
        network's dtype and units (as :func:`generate` computes it: the same bits)."""
        i = self._current
        if self._calls is not None:
            for kernel, args, rows, threads in self._calls[i]:
                run_row_ranges(kernel, args, rows, threads)
            last = self._last[i]
        else:
            (out, state), _ = self._net._run_checked(
                self._x, self._lengths, list(self._states[i]), False, False
            )
            parts = state if isinstance(state, tuple) else (state,)
            for dst, src in zip(self._states[1 - i], parts, strict=True):
                np.copyto(dst, src)
            last = out[:, -1]
        self._current = 1 - i
        return last @ self._weight_t + self._bias

    @property
    def state(self):
        """The current recurrent state, a copy: ``h`` (num_layers, 1, hidden_size), or
        ``(h, c)`` for an LSTM, as ``forward`` and ``generate`` take and return it."""
        parts = tuple(a.copy() for a in self._states[self._current])
        return parts if len(parts) == 2 else parts[0]

    def reset(self, state=None) -> None:
        """Start again from ``state`` (zeros when None), checked as ``forward`` checks it."""
        checked = self._net._check_state(state, 1)
        for dst, src in zip(self._states[self._current], checked, strict=True):
            np.copyto(dst, src)

    def step(self, x):
        """Run one step on the newest input and return the model's output.

        Parameters
        ----------
        x : float or array-like of shape (n_features,)
            The newest observation (a number for a one-feature model).

        Returns
        -------
        float for a one-output model, else an ndarray of shape (n_outputs,).
        """
        F = self._n_features
        if F == 1 and isinstance(x, float) and math.isfinite(x):
            self._x[0, 0, 0] = x if self._mean is None else (x - self._mean_1) / self._scale_1
        else:
            try:
                s = np.asarray(x, dtype=np.float64)
            except (TypeError, ValueError):
                s = None
            if s is None or s.size != F or s.ndim > 1 or not all_finite(s):
                raise ValueError(
                    f"x must be one finite step of {F} feature(s), got {x!r}. Pass a number "
                    f"or a 1-D array of {F} finite value(s)."
                )
            if self._mean is not None:
                s = (s.reshape(F) - self._mean) / self._scale
            self._x[0, 0] = s
        y = self._advance()
        if self._mean is not None:
            y = y * self._scale + self._mean
        return float(y[0, 0]) if self._n_outputs == 1 else y[0].astype(np.float64)

"""A one-step stream: one observation in, the next output out, the state kept inside."""

from __future__ import annotations

import math

import numpy as np

from numrnn._threads import run_row_ranges
from numrnn._validation import all_finite
from numrnn.forecasting._forecaster import _check_unidirectional, _unpack_model


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
    the new input's check, the prepared kernel calls and the head's product: about a fifth
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
        if hasattr(net.backend, "layer_forward_calls"):
            # per state buffer read: the calls, and the (1, hidden_size) output they write
            self._calls, self._last = [], []
            for i in range(2):
                old, new = self._states[i], self._states[1 - i]
                c0, c_n = (old[1], new[1]) if n_parts == 2 else (None, None)
                calls, out = net._replayable_inference(self._x, old[0], c0, new[0], c_n)
                self._calls.append(calls)
                self._last.append(out[0])
        else:  # a device network: its general inference entry, one step at a time
            self._calls = None
        self._current = 0
        self.reset(state)

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
        i = self._current
        if self._calls is not None:
            for kernel, args, rows, threads in self._calls[i]:
                run_row_ranges(kernel, args, rows, threads)
            last = self._last[i]
        else:
            (out, state), _ = self._net._run_checked(
                self._x, np.ones(1, dtype=np.int64), list(self._states[i]), False, False
            )
            parts = state if isinstance(state, tuple) else (state,)
            for dst, src in zip(self._states[1 - i], parts, strict=True):
                np.copyto(dst, src)
            last = out[:, -1]
        self._current = 1 - i
        # as generate computes it: the same operations, the same bits
        y = last @ self._weight_t + self._bias
        if self._mean is not None:
            y = y * self._scale + self._mean
        return float(y[0, 0]) if self._n_outputs == 1 else y[0].astype(np.float64)

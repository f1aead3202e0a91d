"""The host engine: one minibatch of a CPU fit, chunk by chunk (``numrnn.nn.bptt``).

It runs the network, the readout (``numrnn.nn.readout``), the head and the estimator's loss
on NumPy arrays, and supplies the update primitives of ``numrnn.nn.step``. The GPU
counterpart is ``numrnn.estimators._device.DeviceFit``.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from numrnn.exceptions import NonFiniteLossError
from numrnn.nn.clip import clip_grad_value, scale_grads, squared_grad_norm
from numrnn.nn.readout import readout_backward, readout_forward
from numrnn.nn.step import is_weight


def carry_state(state, h_n, rows, B):
    """Update the carried (detached) state of the active ``rows``; the others keep theirs."""
    if state is None:
        if isinstance(h_n, tuple):
            state = tuple(np.zeros((a.shape[0], B, a.shape[2]), dtype=a.dtype) for a in h_n)
        else:
            state = np.zeros((h_n.shape[0], B, h_n.shape[2]), dtype=h_n.dtype)
    if isinstance(state, tuple):
        for dst, src in zip(state, h_n, strict=True):
            dst[:, rows] = src
    else:
        state[:, rows] = h_n
    return state


def state_rows(state, rows):
    """The carried state of ``rows`` (None before the first chunk)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(a[:, rows] for a in state)
    return state[:, rows]


class HostEngine:
    """Forward/backward/head/loss/update of an estimator's CPU fit.

    Parameters
    ----------
    network, head : the estimator's ``network_`` and ``head_``
    optimizer : numrnn.nn.optim optimizer over ``params``
    params : dict name -> array, the network's parameters and ``head.weight``/``head.bias``
    loss : callable ``(z, target, mask, weight) -> (loss, dz)``
    per_step : bool
        ``output='sequence'``.
    readout : {'last', 'mean', 'max'}
    """

    def __init__(self, network, head, optimizer, params, loss, *, per_step, readout="last"):
        self.net, self.head = network, head
        self.optimizer, self.params = optimizer, params
        self.loss_fn = loss
        self.per_step = per_step
        self.readout = readout
        self._loss = 0.0
        self._squared_norm = None  # (grads, their squared norm) from check

    def set_batch(self, xb: np.ndarray, yb: np.ndarray) -> None:
        """The padded inputs (B, T, F) and targets of the next minibatch."""
        self.xb, self.yb = xb, yb

    # -- the chunk loop's primitives (numrnn.nn.bptt) -------------------------------------
    def initial_state(self, B):
        self.B = B
        return None

    def _chunk(self, s, Tc, rows):
        """Steps ``[s, s + Tc)`` of the minibatch's ``rows``: the minibatch itself when that
        is all of it (full BPTT: no copy)."""
        xb = self.xb
        if s == 0 and Tc == xb.shape[1] and rows.shape[0] == xb.shape[0]:
            return xb
        return xb[rows, s : s + Tc]

    def advance(self, state, s, k, rows, lc):
        xc = self._chunk(s, int(lc.max()), rows)
        _, h_n = self.net._inference_checked(xc, lc, state_rows(state, rows))
        return carry_state(state, h_n, rows, self.B)

    def gradients(self, state, s, k, rows, lc, row_w, scale):
        net, head = self.net, self.head
        Tc = int(lc.max())
        # The minibatch was cut from data the fit checked once (finite, zero padding): the
        # network's unchecked entry points, whose checks cost as much as a small batch's
        # kernels (a global forecaster's fit on M1: a tenth of its minibatch time).
        out, h_n = net._train_forward(self._chunk(s, Tc, rows), lc, state_rows(state, rows))
        if self.per_step:
            z = head.forward(out)
            mask = np.arange(Tc)[None, :] < lc[:, None]
            loss, dz = self.loss_fn(z, self.yb[rows, s : s + Tc], mask, _weights(row_w))
            _check_loss(loss)
            dz = dz * dz.dtype.type(scale)
            net._train_backward(head.backward(dz), None)
        else:
            feat, ctx = readout_forward(
                self.readout, out, h_n, lc, net.num_layers, net.num_directions, net.merge_mode
            )
            z = head.forward(feat)
            if float(row_w.sum()) > 0:
                loss, dz = self.loss_fn(z, self.yb[rows], None, _weights(row_w))
            else:  # no sample ends in this chunk with a positive weight
                loss, dz = 0.0, np.zeros_like(z)
            _check_loss(loss)
            dz = dz * dz.dtype.type(scale)
            d_out, d_state = readout_backward(head.backward(dz), ctx)
            # 'last' reads the final state: no (B, T, H) zeros for d_out; no dX either way
            net._train_backward(d_out, d_state)
        self._loss = loss
        grads = OrderedDict(net.grads)
        grads["head.weight"] = head.grads["weight"]
        grads["head.bias"] = head.grads["bias"]
        if s + Tc >= self.xb.shape[1]:
            return grads, None  # the last chunk: no later chunk reads the carried state
        return grads, carry_state(state, h_n, rows, self.B)

    # -- the update's primitives (numrnn.nn.step) -----------------------------------------
    def add_weight_decay(self, grads, alpha):
        for name, g in grads.items():
            if is_weight(name):
                g += g.dtype.type(alpha) * self.params[name]

    def check(self, grads):
        # The squared norm is finite exactly when every entry is (or overflows, and then the
        # entries are looked at): one product per gradient instead of a finiteness mask, and
        # clip_norm reuses the sum when no clip_value changed the gradients in between.
        total = squared_grad_norm(grads)
        self._squared_norm = (grads, total)
        if not math.isfinite(total):
            for name, g in grads.items():
                if not np.isfinite(g).all():
                    return self._loss, name
        return self._loss, None

    def clip_value(self, grads, value):
        self._squared_norm = None
        clip_grad_value(grads, value)

    def squared_norm(self, grads):
        known, self._squared_norm = self._squared_norm, None
        if known is not None and known[0] is grads:
            return known[1]
        return squared_grad_norm(grads)

    def scale(self, grads, coef):
        scale_grads(grads, coef)

    def optimizer_step(self, grads):
        self.optimizer.step(grads)

    def weight_squared_norm(self):
        return sum(float(np.vdot(p, p)) for n, p in self.params.items() if is_weight(n))


def _weights(row_w):
    """``row_w``, or None when every weight is 1: the loss's unweighted path, the same
    gradient (each entry times 1, the same normaliser; the cross-entropy's float64 loss may
    differ in its last bit, summed in another order) without building per-entry weights,
    which cost more than the loss itself on a small minibatch."""
    return None if (row_w == 1).all() else row_w


def _check_loss(loss) -> None:
    """A non-finite loss stops the fit before backward: its NaN gradients would otherwise
    reach the network's state check and read as a bad initial state (issue #19)."""
    if not np.isfinite(loss):
        raise NonFiniteLossError("loss")

"""Stochastic optimizers with PyTorch's update rules, updating parameters in place.

An optimizer holds references to the network's parameter arrays (a dict name -> ndarray) and
``step(grads)`` updates those arrays in place, so the network sees the new values without
copying. State buffers (moments) are preallocated in the parameters' dtype and every step
uses in-place NumPy ufuncs with ``out=``: no allocation per step.

Hyperparameters (``lr``, ``momentum``, ``betas``, ...) are plain attributes and may be
changed between steps (learning-rate schedules). ``state_dict()`` returns a deep copy of the
optimizer state and ``load_state_dict()`` copies it back in place, to resume a fit
(``warm_start`` / ``partial_fit``) or to roll back a failed step.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .._validation import check_float

__all__ = ["SGD", "Adam"]


def _flat_same_dtype(*arrays: np.ndarray) -> bool:
    """All C-contiguous NumPy arrays of one dtype: ``reshape(-1)`` views, one kernel."""
    dtype = arrays[0].dtype
    return dtype in (np.float32, np.float64) and all(
        type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous for a in arrays
    )


class _Optimizer:
    """Shared bookkeeping: the parameter dict, the step count and scratch buffers."""

    _hyperparameters: tuple[str, ...] = ()
    _buffers: tuple[str, ...] = ()

    def __init__(self, params: Mapping[str, np.ndarray]) -> None:
        if not isinstance(params, Mapping) or not params:
            raise TypeError(
                "params must be a non-empty dict mapping names to NumPy arrays, e.g. "
                f"net.params; got {type(params).__name__}."
            )
        for name, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise TypeError(
                    f"params[{name!r}] must be a floating NumPy array (updated in place), "
                    f"got {type(p).__name__}{'' if not isinstance(p, np.ndarray) else ' ' + str(p.dtype)}."
                )
            if not p.flags.writeable:
                raise ValueError(f"params[{name!r}] is read-only; it must be writeable.")
        self.params: dict[str, np.ndarray] = dict(params)
        self.t = 0
        # One scratch array per parameter (plus a second one where the rule needs it).
        self._scratch = {n: np.empty_like(p) for n, p in self.params.items()}
        self._scratch2: dict[str, np.ndarray] | None = None
        self._state: dict[str, dict[str, np.ndarray]] = {
            b: {n: np.zeros_like(p) for n, p in self.params.items()} for b in self._buffers
        }

    def __getstate__(self) -> dict:
        # Flat views made for the compiled update (Adam's _groups) would unpickle or deep-copy
        # as copies, detached from the parameters: rebuilt on the next step instead.
        state = self.__dict__.copy()
        state.pop("_groups", None)
        return state

    def _second_scratch(self) -> dict[str, np.ndarray]:
        if self._scratch2 is None:  # allocated once, on first use
            self._scratch2 = {n: np.empty_like(p) for n, p in self.params.items()}
        return self._scratch2

    def _check_grads(self, grads: Mapping[str, np.ndarray]) -> None:
        if grads.keys() != self.params.keys():
            missing = sorted(set(self.params) - set(grads))
            extra = sorted(set(grads) - set(self.params))
            raise KeyError(
                f"grads must have the same keys as the parameters; missing {missing}, "
                f"unexpected {extra}."
            )
        for name, g in grads.items():
            if np.shape(g) != self.params[name].shape:
                raise ValueError(
                    f"grads[{name!r}] has shape {np.shape(g)}, expected "
                    f"{self.params[name].shape} (the parameter's shape)."
                )

    def step(self, grads: Mapping[str, np.ndarray]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def state_dict(self) -> dict:
        """A deep copy of the state: step count ``t``, moment buffers, hyperparameters.

        Returns
        -------
        state : dict
            ``{'t': int, <buffer name>: {param name: ndarray}, ..., 'hyperparameters': dict}``.
        """
        state: dict = {"t": self.t}
        for b, bufs in self._state.items():
            state[b] = {n: a.copy() for n, a in bufs.items()}
        state["hyperparameters"] = {h: getattr(self, h) for h in self._hyperparameters}
        return state

    def load_state_dict(self, state: Mapping) -> None:
        """Restore a state from :meth:`state_dict`, copying buffers in place.

        Hyperparameters stored in ``state`` are restored too (like PyTorch); set attributes
        afterwards to override them.
        """
        for b in self._buffers:
            if b not in state:
                raise KeyError(f"state has no {b!r} entry; pass the output of state_dict().")
            if state[b].keys() != self.params.keys():
                raise KeyError(
                    f"state[{b!r}] must have the parameters' names {sorted(self.params)}, "
                    f"got {sorted(state[b])}."
                )
            for n, a in state[b].items():
                dst = self._state[b][n]
                if np.shape(a) != dst.shape:
                    raise ValueError(
                        f"state[{b!r}][{n!r}] has shape {np.shape(a)}, expected {dst.shape}."
                    )
        for b in self._buffers:
            for n, a in state[b].items():
                np.copyto(self._state[b][n], a, casting="same_kind")
        self.t = int(state["t"])
        for h, v in state.get("hyperparameters", {}).items():
            if h in self._hyperparameters:
                setattr(self, h, v)


class SGD(_Optimizer):
    """Stochastic gradient descent with momentum, the update rule of ``torch.optim.SGD``.

    With ``d = g + weight_decay * p``::

        buf = momentum * buf + d            (buf = d at the first step)
        d   = d + momentum * buf  if nesterov else buf
        p  -= lr * d

    (``dampening`` is 0.) Note this is PyTorch's form, not scikit-learn's
    ``v = momentum * v - lr * g``: they agree while ``lr`` is constant.

    Parameters
    ----------
    params : dict of str to ndarray
        The parameters, updated in place by :meth:`step`.
    lr : float, default=1e-3
        Learning rate (>= 0).
    momentum : float, default=0.0
        Momentum factor (>= 0).
    nesterov : bool, default=False
        Nesterov momentum (needs ``momentum > 0``).
    weight_decay : float, default=0.0
        L2 penalty: ``weight_decay * p`` is added to the gradient.

    Attributes
    ----------
    t : int
        Number of steps taken.
    """

    _hyperparameters = ("lr", "momentum", "nesterov", "weight_decay")
    _buffers = ("momentum_buffer",)

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 1e-3,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        self.lr = check_float("lr", lr, 0.0, np.inf, high_open=True)
        self.momentum = check_float("momentum", momentum, 0.0, np.inf, high_open=True)
        self.nesterov = bool(nesterov)
        self.weight_decay = check_float("weight_decay", weight_decay, 0.0, np.inf, high_open=True)
        if self.nesterov and self.momentum <= 0:
            raise ValueError("nesterov=True needs momentum > 0; set momentum, e.g. 0.9.")
        super().__init__(params)

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Update every parameter in place from its gradient ``grads[name]``."""
        self._check_grads(grads)
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        bufs = self._state["momentum_buffer"]
        for name, p in self.params.items():
            g = grads[name]
            s = self._scratch[name]
            dt = p.dtype.type
            if wd != 0.0:  # d = g + wd * p
                np.multiply(p, dt(wd), out=s)
                s += g
                d = s
            else:
                d = g
            if mu != 0.0:
                buf = bufs[name]
                buf *= dt(mu)  # buf starts at 0, so the first step gives buf = d
                buf += d
                if self.nesterov:  # d = d + mu * buf
                    tmp = self._second_scratch()[name]
                    np.multiply(buf, dt(mu), out=tmp)
                    np.add(d, tmp, out=s)
                    s *= dt(lr)
                else:
                    np.multiply(buf, dt(lr), out=s)
            else:
                np.multiply(d, dt(lr), out=s)
            p -= s
        self.t += 1


class Adam(_Optimizer):
    """Adam, the update rule of ``torch.optim.Adam`` (``amsgrad=False``).

    With ``d = g + weight_decay * p`` (L2 penalty, not AdamW's decoupled decay) and
    ``t`` the step number (1, 2, ...)::

        m  = m + (1 - beta1) * (d - m)
        v  = beta2 * v + (1 - beta2) * d * d
        p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Parameters
    ----------
    params : dict of str to ndarray
        The parameters, updated in place by :meth:`step`.
    lr : float, default=1e-3
        Learning rate (>= 0).
    betas : tuple of float, default=(0.9, 0.999)
        Decay rates of the first and second moment estimates, each in [0, 1).
    eps : float, default=1e-8
        Added to the denominator for numerical stability (>= 0).
    weight_decay : float, default=0.0
        L2 penalty: ``weight_decay * p`` is added to the gradient.

    Attributes
    ----------
    t : int
        Number of steps taken (used for the bias correction).
    """

    _hyperparameters = ("lr", "betas", "eps", "weight_decay")
    _buffers = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.lr = check_float("lr", lr, 0.0, np.inf, high_open=True)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}.")
        self.betas = (
            check_float("betas[0]", betas[0], 0.0, 1.0, high_open=True),
            check_float("betas[1]", betas[1], 0.0, 1.0, high_open=True),
        )
        self.eps = check_float("eps", eps, 0.0, np.inf, high_open=True)
        self.weight_decay = check_float("weight_decay", weight_decay, 0.0, np.inf, high_open=True)
        super().__init__(params)

    def _flat_groups(self) -> list:
        """``(names, params, exp_avgs, exp_avg_sqs)`` per dtype, the last three as lists of
        fixed-size tuples of flat views (:func:`numrnn.kernels.cpu.optim.fixed_groups`), for
        the parameters that are C-contiguous float32/float64 (made once: the arrays are
        updated in place, never replaced)."""
        if getattr(self, "_groups", None) is None:
            from numrnn.kernels.cpu.optim import fixed_groups  # numba on first use only

            by_dtype: dict = {}
            for name, p in self.params.items():
                m, v = self._state["exp_avg"][name], self._state["exp_avg_sq"][name]
                if _flat_same_dtype(p, m, v):
                    by_dtype.setdefault(p.dtype, []).append(name)
            self._groups = [
                (
                    tuple(names),
                    fixed_groups(tuple(self.params[n].reshape(-1) for n in names), dt),
                    fixed_groups(tuple(self._state["exp_avg"][n].reshape(-1) for n in names), dt),
                    fixed_groups(
                        tuple(self._state["exp_avg_sq"][n].reshape(-1) for n in names), dt
                    ),
                )
                for dt, names in by_dtype.items()
            ]
        return self._groups

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Update every parameter in place from its gradient ``grads[name]``."""
        self._check_grads(grads)
        self.t += 1
        lr, (beta1, beta2), eps, wd = self.lr, self.betas, self.eps, self.weight_decay
        # Python floats (double), as PyTorch computes them.
        step_size = lr / (1.0 - beta1**self.t)
        bias_correction2_sqrt = (1.0 - beta2**self.t) ** 0.5
        exp_avg, exp_avg_sq = self._state["exp_avg"], self._state["exp_avg_sq"]
        compiled = set()
        for names, ps, ms, vs in self._flat_groups():
            gs = tuple(grads[n] for n in names)
            dtype = ps[0][0].dtype
            if not _flat_same_dtype(*gs) or gs[0].dtype != dtype:
                continue  # these take the NumPy update below
            from numrnn.kernels.cpu.optim import adam_update, fixed_groups  # numba on first use

            dt = dtype.type  # the scalars cast as the NumPy path casts them
            scalars = (dt(wd), dt(1.0 - beta1), dt(beta2), dt(1.0 - beta2),
                       dt(bias_correction2_sqrt), dt(eps), dt(step_size))  # fmt: skip
            # one compiled version for any parameter count: calls on fixed-size groups
            flat_gs = fixed_groups(tuple(g.reshape(-1) for g in gs), dtype)
            for p8, g8, m8, v8 in zip(ps, flat_gs, ms, vs, strict=True):
                adam_update(p8, g8, m8, v8, *scalars)
            compiled.update(names)
        for name, p in self.params.items():
            if name in compiled:
                continue
            g = grads[name]
            s = self._scratch[name]
            dt = p.dtype.type
            if wd != 0.0:  # d = g + wd * p, kept in a second scratch
                d = self._second_scratch()[name]
                np.multiply(p, dt(wd), out=d)
                d += g
            else:
                d = g
            m, v = exp_avg[name], exp_avg_sq[name]
            # m.lerp_(d, 1 - beta1)
            np.subtract(d, m, out=s)
            s *= dt(1.0 - beta1)
            m += s
            # v = beta2 * v + (1 - beta2) * d * d
            v *= dt(beta2)
            np.multiply(d, d, out=s)
            s *= dt(1.0 - beta2)
            v += s
            # p -= step_size * m / (sqrt(v) / bc2_sqrt + eps)
            np.sqrt(v, out=s)
            s /= dt(bias_correction2_sqrt)
            s += dt(eps)
            np.divide(m, s, out=s)
            s *= dt(step_size)
            p -= s

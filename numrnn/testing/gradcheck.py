"""Finite-difference gradient checks.

:func:`numerical_gradient` and :func:`relative_error` are generic;
:func:`check_network_gradients` checks any network ``forward`` / ``backward`` pair
(the reference, or a fast backend) against central differences of the scalar loss
``sum(out * R) + sum(state * R_s)`` with random ``R`` and ``R_s``.
"""

import numpy as np

__all__ = ["numerical_gradient", "relative_error", "check_network_gradients"]


def numerical_gradient(fun, array, eps=1e-6):
    """Central finite differences of a scalar function w.r.t. every element of an array.

    Parameters
    ----------
    fun : callable
        ``fun()`` returns a scalar and reads ``array`` (by reference).
    array : ndarray of float64
        Perturbed in place, one element at a time, and restored exactly afterwards.
    eps : float, default 1e-6
        Step: ``(fun(a + eps) - fun(a - eps)) / (2 eps)``.

    Returns
    -------
    ndarray
        Same shape as ``array``.
    """
    grad = np.zeros(array.shape, dtype=np.float64)
    flat = array.reshape(-1)  # a view: writes reach `array`
    if not np.shares_memory(flat, array):
        raise ValueError("array must be contiguous so that it can be perturbed in place.")
    gflat = grad.reshape(-1)
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + eps
        f_plus = float(fun())
        flat[j] = old - eps
        f_minus = float(fun())
        flat[j] = old
        gflat[j] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def relative_error(a, b):
    """Scale-aware maximum error between two arrays.

    ``max|a - b| / max(max|a|, max|b|, tiny)`` where ``tiny`` is the smallest
    positive normal float64, so two all-zero arrays give 0 and a zero reference
    never divides by zero. A single scalar: the largest absolute difference,
    measured relative to the largest magnitude in either array (not element-wise,
    so tiny entries next to large ones do not blow it up).

    Parameters
    ----------
    a, b : array_like
        Same shape.

    Returns
    -------
    float
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    scale = max(np.max(np.abs(a)), np.max(np.abs(b)), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(a - b)) / scale)


def _as_tuple(state):
    return tuple(state) if isinstance(state, (tuple, list)) else (state,)


def _state_names(n):
    return ("h0", "c0")[:n] if n <= 2 else tuple(f"state{i}" for i in range(n))


def check_network_gradients(forward, backward, params, x, state=None, *, eps=1e-6, seed=0):
    """Compare a network's analytic gradients with central finite differences.

    The scalar loss is ``sum(out * R) + sum(final_state * R_s)`` (summed over every
    state array) with ``R`` and ``R_s`` drawn from a standard normal.

    Parameters
    ----------
    forward : callable
        ``forward(params, x, state) -> (out, final_state, cache)``; ``final_state``
        is an array or a tuple of arrays. Bind cell and options with a lambda or
        :func:`functools.partial`.
    backward : callable
        ``backward(cache, d_out, d_state) -> (dx, grads, d_initial_state)`` with
        ``d_state`` shaped like ``final_state``.
    params : dict of str to ndarray
        float64, contiguous; perturbed in place and restored.
    x : ndarray
        float64 contiguous input; perturbed in place and restored.
    state : ndarray or tuple of ndarray, optional
        Initial state. When None, the forward pass with ``state=None`` is checked for
        ``params`` and ``x``, and the returned ``d_initial_state`` is checked against
        finite differences through an explicit all-zero state of the same shape.
    eps : float, default 1e-6
    seed : int, default 0
        Seed of the random ``R``, ``R_s``.

    Returns
    -------
    dict of str to float
        :func:`relative_error` per checked array: ``'x'``, every parameter name, and
        ``'h0'`` (and ``'c0'`` for a tuple state).
    """
    rng = np.random.default_rng(seed)
    out, final_state, cache = forward(params, x, state)
    R = rng.standard_normal(out.shape)
    final = _as_tuple(final_state)
    Rs = tuple(rng.standard_normal(s.shape) for s in final)

    def loss_with(st):
        def loss():
            o, fs, _ = forward(params, x, st)
            total = np.sum(o * R)
            for s, r in zip(_as_tuple(fs), Rs, strict=True):
                total += np.sum(s * r)
            return total

        return loss

    d_state = Rs if isinstance(final_state, (tuple, list)) else Rs[0]
    dx, grads, d_init = backward(cache, R, d_state)

    errors = {"x": relative_error(dx, numerical_gradient(loss_with(state), x, eps))}
    for name, value in params.items():
        errors[name] = relative_error(grads[name], numerical_gradient(loss_with(state), value, eps))
    d_init = _as_tuple(d_init)
    if state is None:
        explicit = tuple(np.zeros_like(d) for d in d_init)
    else:
        explicit = _as_tuple(state)
    st = explicit if isinstance(final_state, (tuple, list)) else explicit[0]
    for name, s, d in zip(_state_names(len(d_init)), explicit, d_init, strict=True):
        errors[name] = relative_error(d, numerical_gradient(loss_with(st), s, eps))
    return errors

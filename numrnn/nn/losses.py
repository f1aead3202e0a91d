"""Loss functions and their gradients with respect to the network output.

Both losses are means over the *valid* entries of a batch: a row of ``pred`` (2-D input) or
a step of a sequence (3-D input) whose ``mask`` entry is True. Padded steps contribute
nothing to the loss or to the gradient, even when their targets are NaN (the padding
convention of :mod:`numrnn`). Optional ``sample_weight`` (one weight per sample, i.e. per
row of the first axis) turns the mean into a weighted mean normalised by the sum of the
weights of the valid entries.

All functions preserve the floating dtype of ``pred`` / ``logits``: float32 in gives a
float32 gradient out. The loss itself is returned as a Python float.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mse_loss", "pinball_loss", "softmax", "softmax_cross_entropy"]


def _float_array(name: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_outputs) or 3-D (batch, n_timesteps, n_outputs), "
            f"got an array of shape {arr.shape}. Reshape it, e.g. {name}[:, None] for one output."
        )
    return arr


def _entry_weights(
    lead_shape: tuple[int, ...], mask, sample_weight, dtype: np.dtype
) -> tuple[np.ndarray | None, np.ndarray | None, float]:
    """Per-entry weights over the leading axes of a prediction.

    Returns ``(valid, weights, total)``: ``valid`` is the boolean mask broadcast to
    ``lead_shape`` (or None when there is no mask), ``weights`` the per-entry weight array
    (zero at invalid entries) or None when every entry has weight 1, and ``total`` the sum of
    the weights of valid entries (the normaliser of the mean).
    """
    valid = None
    if mask is not None:
        valid = np.asarray(mask, dtype=bool)
        if valid.shape != lead_shape:
            raise ValueError(
                f"mask must have shape {lead_shape} (the prediction's shape without its last "
                f"axis), got {valid.shape}. Pass one boolean per sample and time step."
            )
    if sample_weight is None:
        total = float(np.count_nonzero(valid)) if valid is not None else float(np.prod(lead_shape))
        return valid, None, total
    sw = np.asarray(sample_weight, dtype=dtype)
    if sw.shape != (lead_shape[0],):
        raise ValueError(
            f"sample_weight must have shape ({lead_shape[0]},) (one weight per sample), "
            f"got {sw.shape}."
        )
    if not np.all(np.isfinite(sw)) or np.any(sw < 0):
        raise ValueError("sample_weight must be finite and non-negative.")
    w = np.broadcast_to(sw.reshape((-1,) + (1,) * (len(lead_shape) - 1)), lead_shape)
    w = np.where(valid, w, 0) if valid is not None else np.array(w)
    total = float(np.sum(w, dtype=np.float64))
    return valid, w.astype(dtype, copy=False), total


def mse_loss(
    pred: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Mean squared error and its gradient with respect to ``pred``.

    Parameters
    ----------
    pred : ndarray of shape (N, K) or (B, T, K)
        Predictions.
    target : ndarray of the same shape as ``pred``
        Targets. A target with one axis less (``(N,)`` or ``(B, T)``) is accepted when
        ``K == 1``. Entries at masked-out steps are ignored (they may be NaN).
    mask : ndarray of bool, shape (N,) or (B, T), default=None
        True at valid entries. Invalid (padded) entries contribute nothing.
    sample_weight : ndarray of shape (N,) or (B,), default=None
        Non-negative weight per sample.

    Returns
    -------
    loss : float
        ``sum_r w_r * sum_k (pred - target)^2 / (K * sum_r w_r)`` over valid entries ``r``,
        i.e. ``torch.nn.MSELoss(reduction='mean')`` on the valid entries when unweighted.
        0.0 when there is no valid entry (or all weights are zero).
    grad : ndarray, same shape and dtype as ``pred``
        ``d loss / d pred`` (zero at invalid entries).
    """
    pred = _float_array("pred", pred)
    dtype = pred.dtype
    target = np.asarray(target)
    if target.shape != pred.shape:
        if pred.shape[-1] == 1 and target.shape == pred.shape[:-1]:
            target = target[..., None]
        else:
            raise ValueError(
                f"target must have the shape of pred {pred.shape}, got {target.shape}."
            )
    valid, w, total = _entry_weights(pred.shape[:-1], mask, sample_weight, dtype)
    K = pred.shape[-1]

    diff = np.subtract(pred, target, dtype=dtype)
    if valid is not None:
        # np.where, not multiplication: padded targets may be NaN.
        diff = np.where(valid[..., None], diff, dtype.type(0))
    if total <= 0.0:
        return 0.0, np.zeros_like(pred)
    scale = 1.0 / (K * total)
    if w is None:
        loss = float(np.vdot(diff, diff)) * scale
        grad = diff
        grad *= dtype.type(2.0 * scale)
    else:
        wd = diff * w[..., None]
        loss = float(np.vdot(wd, diff)) * scale
        grad = wd
        grad *= dtype.type(2.0 * scale)
    return loss, grad


def pinball_loss(
    pred: np.ndarray,
    target: np.ndarray,
    quantiles,
    mask: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Pinball (quantile) loss and its gradient with respect to ``pred``.

    Output column ``k`` estimates the ``quantiles[k]`` quantile of its target: with
    ``u = target - pred``, the loss of an entry is ``max(q u, (q - 1) u)``, minimised in
    expectation by the ``q``-quantile of the target's distribution.

    Parameters
    ----------
    pred : ndarray of shape (N, K) or (B, T, K)
    target : ndarray of the same shape as ``pred`` (or without the last axis when K == 1)
    quantiles : float or array-like of shape (K,)
        The level of each output column, each strictly between 0 and 1.
    mask, sample_weight
        As in :func:`mse_loss`.

    Returns
    -------
    loss : float
        ``sum_r w_r * sum_k rho_{q_k}(target - pred) / (K * sum_r w_r)`` over valid entries.
    grad : ndarray, same shape and dtype as ``pred``
        ``d loss / d pred``: ``(1 - q_k) / n`` where ``pred > target``, ``-q_k / n`` where
        ``pred < target`` (the subgradient ``(1 - 2 q_k) / (2 n)`` at a tie), times the weight.
    """
    pred = _float_array("pred", pred)
    dtype = pred.dtype
    target = np.asarray(target)
    if target.shape != pred.shape:
        if pred.shape[-1] == 1 and target.shape == pred.shape[:-1]:
            target = target[..., None]
        else:
            raise ValueError(
                f"target must have the shape of pred {pred.shape}, got {target.shape}."
            )
    K = pred.shape[-1]
    q = np.broadcast_to(np.asarray(quantiles, dtype=np.float64), (K,))
    if not np.all((q > 0) & (q < 1)):
        raise ValueError(
            f"quantiles must lie strictly between 0 and 1, got {q.tolist()}. Pass levels such "
            "as (0.1, 0.5, 0.9)."
        )
    valid, w, total = _entry_weights(pred.shape[:-1], mask, sample_weight, dtype)
    if total <= 0.0:
        return 0.0, np.zeros_like(pred)
    u = np.subtract(target, pred, dtype=np.float64)
    if valid is not None:
        u = np.where(valid[..., None], u, 0.0)  # padded targets may be NaN
    rho = np.maximum(q * u, (q - 1.0) * u)
    # d rho / d pred = -q (u > 0), 1 - q (u < 0), the mean of both at u == 0.
    g = np.where(u > 0, -q, np.where(u < 0, 1.0 - q, 0.5 - q))
    if valid is not None:
        g = np.where(valid[..., None], g, 0.0)
    scale = 1.0 / (K * total)
    if w is not None:
        rho = rho * w[..., None]
        g = g * w[..., None]
    return float(rho.sum()) * scale, (g * scale).astype(dtype)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, numerically stable (the maximum is subtracted first).

    Parameters
    ----------
    logits : ndarray of shape (..., C)

    Returns
    -------
    probabilities : ndarray of the same shape and floating dtype as ``logits``
    """
    z = np.asarray(logits)
    if z.dtype.kind != "f":
        z = z.astype(np.float64)
    out = z - np.max(z, axis=-1, keepdims=True)
    np.exp(out, out=out)
    out /= np.sum(out, axis=-1, keepdims=True)
    return out


def softmax_cross_entropy(
    logits: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy and its gradient with respect to ``logits``.

    Parameters
    ----------
    logits : ndarray of shape (N, C) or (B, T, C)
        Unnormalised class scores.
    target : ndarray of int, shape (N,) or (B, T)
        Class indices in ``[0, C)``. Entries at masked-out steps are ignored (any value).
        A float array holding whole numbers is accepted.
    mask : ndarray of bool, shape (N,) or (B, T), default=None
        True at valid entries. Invalid (padded) entries contribute nothing.
    sample_weight : ndarray of shape (N,) or (B,), default=None
        Non-negative weight per sample.

    Returns
    -------
    loss : float
        Weighted mean over valid entries of ``logsumexp(z) - z[target]`` (computed with the
        log-sum-exp trick), i.e. ``torch.nn.CrossEntropyLoss()`` when unweighted.
        0.0 when there is no valid entry (or all weights are zero).
    grad : ndarray, same shape and dtype as ``logits``
        ``w_r * (softmax(z_r) - onehot(target_r)) / sum_r w_r`` (zero at invalid entries).
    """
    z = _float_array("logits", logits)
    dtype = z.dtype
    lead, C = z.shape[:-1], z.shape[-1]
    valid, w, total = _entry_weights(lead, mask, sample_weight, dtype)

    t = np.asarray(target)
    if t.shape != lead:
        raise ValueError(
            f"target must have shape {lead} (class indices, the logits' shape without its "
            f"last axis), got {t.shape}."
        )
    if t.dtype.kind != "i" and t.dtype.kind != "u":
        tv = t if valid is None else t[valid]
        if t.dtype.kind not in "fb" or not np.all(np.isfinite(tv)) or np.any(tv != np.round(tv)):
            raise ValueError(
                f"target must hold integer class indices, got dtype {t.dtype}. "
                "Encode the classes as 0 .. n_classes-1 (e.g. with sklearn's LabelEncoder)."
            )
        t = np.where(valid, t, 0) if valid is not None else t
        t = t.astype(np.intp)
    elif valid is not None:
        t = np.where(valid, t, 0)
    if t.size and (t.min() < 0 or t.max() >= C):
        raise ValueError(
            f"target must hold class indices in [0, {C - 1}], got values from {t.min()} to "
            f"{t.max()}."
        )

    if total <= 0.0:
        return 0.0, np.zeros_like(z)

    shifted = z - np.max(z, axis=-1, keepdims=True)
    if valid is not None:
        # Padded logits may be anything, NaN included; they must not reach the sums.
        shifted = np.where(valid[..., None], shifted, dtype.type(0))
    grad = np.exp(shifted)
    sumexp = np.sum(grad, axis=-1, keepdims=True)
    grad /= sumexp  # softmax
    t_idx = t[..., None]
    # -log p[target] = log(sumexp) - shifted[target]
    nll = (np.log(sumexp) - np.take_along_axis(shifted, t_idx, axis=-1))[..., 0]
    # one-hot subtraction in place
    p_t = np.take_along_axis(grad, t_idx, axis=-1)
    np.put_along_axis(grad, t_idx, p_t - dtype.type(1), axis=-1)

    if w is None:
        if valid is not None:
            nll = np.where(valid, nll, dtype.type(0))
            grad *= valid[..., None]
        loss = float(np.sum(nll, dtype=np.float64)) / total
        grad *= dtype.type(1.0 / total)
    else:
        loss = float(np.vdot(w.astype(np.float64), nll.astype(np.float64))) / total
        grad *= (w / dtype.type(total))[..., None]
    return loss, grad

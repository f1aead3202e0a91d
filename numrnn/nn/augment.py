"""Training-set augmentation of sequences: a time shift, an amplitude scale and jitter.

Small training sets (tens of samples, as many UCR/UEA sets) let a recurrent network learn
the exact positions and levels of their few samples. Drawing, for every minibatch of every
epoch, a fresh random variant of each sample -- shifted in time by a few percent of its
length, its amplitude scaled, a little noise added -- trains on a different copy of the data
each epoch (no enlarged copy of the training set is made). The estimators call
:func:`augment_sequences` on each training minibatch (``augment``); ``predict`` never does.
``variants`` passes over the training set per epoch, each with fresh draws: on a small set
one variant per epoch was not enough (measured: the noisier loss ended fits on a plateau),
several were. The passes of an epoch form one stream cut into full minibatches (no short
minibatch at the end of each pass), and 'auto' makes ``ceil(128 / n)`` passes over a set of
``n < 128`` samples: an epoch of 128 to 255 samples, so an augmented fit costs about what an
unaugmented fit on that many samples costs, plus the transform (one gather, the folding into
segments a reshape): bounded whatever the set's size.

For each sequence ``i`` of ``L_i`` valid steps and each feature ``f`` (``c_f``, ``s_f``: the
feature's mean and standard deviation over the training data's valid steps)::

    shift      d_i ~ uniform integer in [-m_i, m_i],  m_i = floor(shift * L_i)
    scale      a_if ~ N(1, scale^2)
    jitter     e_itf ~ uniform on [-sqrt(3), sqrt(3)] * jitter * s_f  (standard deviation
               jitter * s_f; uniform: a third of the cost of normal draws, which were half
               the augmentation's time)
    x'_itf = c_f + a_if * (x_{i, clip(t - d_i, 0, L_i - 1), f} - c_f) + e_itf,  t < L_i

The shift moves the sequence by ``d_i`` steps and repeats its first (or last) valid value
into the steps it uncovers: every step read is a valid step of the same sequence, and the
length is unchanged, so padding is never shifted into valid steps. The scale acts around the
feature's mean (an offset in the data is not scaled), the jitter is relative to the
feature's spread (the same strength means the same on raw or standardised data). Steps past
``L_i`` come out as zeros whatever the padding held.
"""

from __future__ import annotations

import numpy as np

from numrnn._validation import AUGMENT_KEYS, check_param

__all__ = [
    "AUTO_AUGMENT",
    "AUTO_EPOCH_SAMPLES",
    "AUGMENT_KEYS",
    "augment_sequences",
    "feature_moments",
    "resolve_augment",
]

#: ``augment='auto'``'s strengths: shift by up to 5 % of the length, scale by N(1, 0.1^2),
#: jitter of 0.05 times each feature's standard deviation (the strengths measured in
#: ``benchmarks/classification_accuracy.py``).
AUTO_AUGMENT = {"shift": 0.05, "scale": 0.1, "jitter": 0.05}
#: ``augment='auto'`` augments a training set of fewer samples than this, when its sequences
#: are folded into segments, with ``ceil(AUTO_EPOCH_SAMPLES / n_samples)`` variants of each
#: sample per epoch; other sets are not augmented (see the benchmark).
AUTO_EPOCH_SAMPLES = 128


def resolve_augment(augment, n_samples: int, *, folded: bool = True) -> dict | None:
    """``augment`` (None, 'auto' or a dict) for a fit on ``n_samples`` sequences: a dict of
    the three strengths and ``variants`` (passes over the training set per epoch), or None
    (off).

    Keys missing from a dict are 0 (``variants``: 1). 'auto' has ``ceil(AUTO_EPOCH_SAMPLES
    / n_samples)`` variants (epochs of exactly 128 samples instead, a fraction of a pass:
    ACSF1 0.717 against 0.777, mean accuracy 0.824 against 0.829 on the benchmark). It is
    off for ``n_samples >=``
    :data:`AUTO_EPOCH_SAMPLES` and for sequences not ``folded`` into segments (at most
    ``numrnn.nn.segments.AUTO_STEPS`` steps: a 5 % shift moves them by one step at most,
    and the benchmark's two such small sets lost accuracy in every measurement; per-step
    targets, ``output='sequence'``, are never folded, so 'auto' never shifts them).
    """
    augment = check_param("augment", augment)
    if augment is None:
        return None
    if augment == "auto":
        if n_samples >= AUTO_EPOCH_SAMPLES or not folded:
            return None
        return dict(AUTO_AUGMENT, variants=-(-AUTO_EPOCH_SAMPLES // int(n_samples)))
    out = {"shift": 0.0, "scale": 0.0, "jitter": 0.0, "variants": 1}
    out.update(augment)
    if not (out["shift"] or out["scale"] or out["jitter"]):
        return None
    return out


def feature_moments(X, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation (1 where it is 0) over all valid steps.

    ``X`` is a padded (n, T, F) array or a list of (T_i, F) arrays; float64 results.
    """
    lengths = np.asarray(lengths)
    if isinstance(X, list):
        steps = np.concatenate([np.asarray(x)[:n] for x, n in zip(X, lengths, strict=True)])
    else:
        steps = np.asarray(X)[np.arange(X.shape[1])[None, :] < lengths[:, None]]
    steps = steps.astype(np.float64, copy=False)
    sd = steps.std(axis=0)
    return steps.mean(axis=0), np.where(sd > 0, sd, 1.0)


def augment_sequences(
    x: np.ndarray,
    lengths: np.ndarray,
    rng: np.random.Generator,
    *,
    shift: float = 0.0,
    scale: float = 0.0,
    jitter: float = 0.0,
    center: np.ndarray | float = 0.0,
    spread: np.ndarray | float = 1.0,
    n_steps: int | None = None,
) -> np.ndarray:
    """A random variant of each padded sequence (see the module docstring for the formula).

    Parameters
    ----------
    x : ndarray of shape (B, T, F)
        Padded sequences; entries past ``lengths`` are never read.
    lengths : int array of shape (B,)
        Valid steps per sequence (each >= 1, at most ``T``).
    rng : numpy.random.Generator
        The draws, in a fixed order (shifts, scales, jitter; a strength of 0 draws nothing):
        the same state gives the same variant.
    shift : float in [0, 1)
        Largest shift as a fraction of each sequence's length.
    scale : float >= 0
        Standard deviation of the amplitude factor (around 1).
    jitter : float >= 0
        Standard deviation of the added (uniform) noise, as a fraction of ``spread``.
    center, spread : float or ndarray of shape (F,)
        Each feature's mean and standard deviation (:func:`feature_moments`).
    n_steps : int >= T, optional
        Steps of the result (default ``T``): more pads with zeros, so that a caller folding
        the result into segments of ``k`` steps (``numrnn.nn.segments``) passes a multiple
        of ``k`` and folds it with a reshape, without a copy.

    Returns
    -------
    ndarray of shape (B, n_steps, F), ``x``'s dtype (computed in it)
        The variants, zeros past each sequence's length.
    """
    B, T, F = x.shape
    dt = x.dtype
    n_out = T if n_steps is None else int(n_steps)
    lengths = np.asarray(lengths, dtype=np.int64)
    # the source step of every output step: t - d_i, clipped into [0, L_i - 1] (a step past
    # L_i reads a valid one and is zeroed below), offset to row i of the flat (B * T, F) x
    src = np.broadcast_to(np.arange(n_out), (B, n_out)).copy()
    if shift > 0:
        reach = np.floor(shift * lengths).astype(np.int64)
        src -= rng.integers(-reach, reach + 1)[:, None]
        np.maximum(src, 0, out=src)
    np.minimum(src, lengths[:, None] - 1, out=src)
    src += np.arange(0, B * T, T)[:, None]
    flat = np.ascontiguousarray(x).reshape(B * T, F)
    # one flat gather: a third of the time of x[rows, src] (with np.clip: half the transform)
    out = flat[src, 0][..., None] if F == 1 else flat[src.ravel()].reshape(B, n_out, F)
    # x' = a * x + (1 - a) * c + w * (u - 1/2): the constant terms added once, per (i, f)
    offset = np.zeros((B, 1, F))
    if scale > 0:
        a = 1.0 + scale * rng.standard_normal((B, 1, F))
        out *= a.astype(dt)
        offset += (1.0 - a) * np.asarray(center, dtype=np.float64)
    if jitter > 0:
        width = np.sqrt(12.0) * jitter * np.asarray(spread, dtype=np.float64)
        noise = rng.random((B, n_out, F), dtype=dt)
        noise *= np.asarray(width, dtype=dt)
        out += noise
        offset -= 0.5 * width
    if scale > 0 or jitter > 0:
        out += offset.astype(dt)
    for i in np.flatnonzero(lengths < n_out):  # only the padded tails are written
        out[i, lengths[i] :] = 0
    return out

"""Segments: ``k`` consecutive time steps folded into one input step of ``k * F`` features.

SegRNN (Lin et al., 2023) and PatchTST's patching (Nie et al., 2023) shorten long
sequences this way so that a recurrent network runs a few dozen steps instead of hundreds:
each recurrent step sees a whole segment, gradients cross far fewer steps, and training is
``k`` times cheaper per sample. Measured on 10 UCR/UEA sets (DESIGN §8), segments of about
:data:`AUTO_STEPS` recurrent steps were the largest single gain in accuracy.

Lengths are exact: a sequence of ``L`` valid steps becomes ``ceil(L / k)`` segments. Its
final segment, when ``L`` is not a multiple of ``k``, is filled with zeros past step ``L``
whatever the padding held, so a sequence gives the same folded input alone or padded in a
batch (no padding leaks into the prediction).
"""

from __future__ import annotations

import numpy as np

from numrnn._validation import check_param

__all__ = ["AUTO_STEPS", "auto_segment_length", "fold_segments", "resolve_segment_length"]

#: ``segment_length='auto'`` aims at this many recurrent steps: DESIGN §8 measured ~25 as
#: the best fixed target on 10 UCR/UEA sets of lengths 24 to 1460.
AUTO_STEPS = 25


def auto_segment_length(n_timesteps: int, target_steps: int = AUTO_STEPS) -> int:
    """The segment length ``ceil(n_timesteps / target_steps)`` (1: no folding)."""
    return max(1, -(-int(n_timesteps) // int(target_steps)))


def resolve_segment_length(segment_length, n_timesteps: int) -> int:
    """``segment_length`` (None, an int >= 1 or 'auto') as an int for this data."""
    segment_length = check_param("segment_length", segment_length)
    if segment_length is None:
        return 1
    if segment_length == "auto":
        return auto_segment_length(n_timesteps)
    return segment_length


def fold_segments(X: np.ndarray, lengths: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``(n, T, F)`` padded sequences into ``(n, ceil(T / k), k * F)`` segments.

    Parameters
    ----------
    X : ndarray of shape (n, T, F), or a list of (T_i, F) arrays
        Padded sequences (entries past ``lengths`` are ignored), or unpadded ones (a list of
        folded arrays is returned).
    lengths : ndarray of int, shape (n,)
        Valid steps per sequence.
    k : int
        Steps per segment.

    Returns
    -------
    segments : ndarray of shape (n, ceil(T / k), k * F), X's dtype
        Segment ``j`` of a sequence holds its steps ``j*k .. j*k+k-1`` in order (step-major:
        the features of the first step, then the second, ...), zeros past its length.
    segment_lengths : ndarray of int, shape (n,)
        ``ceil(lengths / k)``.
    """
    lengths = np.asarray(lengths)
    if k == 1:
        return X, lengths
    if isinstance(X, list):  # unpadded ragged sequences, each (T_i, F): fold one by one
        return [fold_segments(x[None], lengths[i : i + 1], k)[0][0] for i, x in enumerate(X)], (
            -(-lengths // k)
        )
    n, T, F = X.shape
    Ts = -(-T // k)
    out = np.zeros((n, Ts * k, F), dtype=X.dtype)
    valid = np.arange(T)[None, :] < lengths[:, None]
    out[:, :T][valid] = X[valid]
    return out.reshape(n, Ts, k * F), -(-lengths // k)

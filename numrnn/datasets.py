"""Built-in data sets: everything here works offline.

* :func:`sine_wave`, :func:`sine_sequences` — a sine wave (a series, and next-step
  training pairs, e.g. for generation from a seed value);
* :func:`seasonal_series` — a synthetic monthly series with trend, yearly season and noise;
* :func:`load_digits_sequences` — scikit-learn's 8x8 digits read row by row (8 steps x 8
  features), the small cousin of "MNIST read row by row";
* :func:`load_text`, :func:`char_sequences` — a short text and its one-hot character windows
  for a character language model;
* :func:`load_stock_prices` — a real series: monthly closing prices 1990-2022 (IBM, AAPL,
  MSFT, ..., S&P 500) from the sample data that *matplotlib* ships (needs the ``plot``
  extra). Neither scikit-learn nor SciPy ships a real time series offline
  (``scipy.datasets`` downloads on first use), so :func:`seasonal_series` is the fallback.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch, check_random_state

__all__ = [
    "char_sequences",
    "load_digits_sequences",
    "load_stock_prices",
    "load_text",
    "seasonal_series",
    "sine_sequences",
    "sine_wave",
]


def sine_wave(
    n_samples=101,
    start=0.0,
    stop=10.0,
    *,
    amplitude=1.0,
    noise=0.0,
    random_state=None,
    return_t=False,
):
    """``amplitude * sin(t)`` on ``n_samples`` evenly spaced points of [start, stop].

    The defaults give ``sin(linspace(0, 10, 101))`` (step 0.1).

    Parameters
    ----------
    n_samples : int, default=101
    start, stop : float, default=0, 10
    amplitude : float, default=1
    noise : float, default=0
        Standard deviation of added Gaussian noise.
    random_state : int, RandomState or None
        For the noise.
    return_t : bool, default=False
        Also return the time points.

    Returns
    -------
    y : ndarray of shape (n_samples,)
    t : ndarray of shape (n_samples,), if ``return_t``
    """
    t = np.linspace(start, stop, int(n_samples))
    y = amplitude * np.sin(t)
    if noise:
        y = y + check_random_state(random_state).normal(0.0, noise, size=y.shape)
    return (t, y) if return_t else y


def sine_sequences(n_sequences=1, seq_len=100, dt=0.1, *, random_phase=False, random_state=None):
    """Next-step training pairs on a sine wave (a sequence-to-sequence task).

    Returns ``X`` of shape (n_sequences, seq_len, 1) with ``X[i, t] = sin(phi_i + t*dt)`` and
    ``Y`` of shape (n_sequences, seq_len) with ``Y[i, t] = X[i, t + 1]``. ``phi_i = 0`` unless
    ``random_phase``.
    """
    rs = check_random_state(random_state)
    phi = rs.uniform(0, 2 * np.pi, size=n_sequences) if random_phase else np.zeros(n_sequences)
    t = np.arange(seq_len + 1) * dt
    S = np.sin(phi[:, None] + t[None, :])
    return S[:, :-1, None], S[:, 1:]


def seasonal_series(
    n_samples=240,
    *,
    period=12,
    trend=0.02,
    amplitude=1.0,
    noise=0.1,
    random_state=0,
    as_frame=False,
):
    """A synthetic monthly series: linear trend + yearly sine season + Gaussian noise.

    ``y_t = trend * t + amplitude * sin(2 pi t / period) + 0.5 * amplitude *
    sin(4 pi t / period + 1) + noise * e_t``.

    With ``as_frame=True`` (needs pandas) a ``pandas.Series`` with a monthly
    ``DatetimeIndex`` starting 2000-01 is returned.
    """
    rs = check_random_state(random_state)
    t = np.arange(int(n_samples), dtype=np.float64)
    w = 2 * np.pi * t / period
    y = trend * t + amplitude * np.sin(w) + 0.5 * amplitude * np.sin(2 * w + 1.0)
    y = y + noise * rs.standard_normal(t.shape)
    if as_frame:
        import pandas as pd

        idx = pd.date_range("2000-01-01", periods=int(n_samples), freq="MS")
        return pd.Series(y, index=idx, name="value")
    return y


def load_digits_sequences(*, return_X_y=False):
    """scikit-learn's digits as sequences: 8 time steps (image rows) x 8 features (pixels).

    Pixel values are scaled from 0..16 to [0, 1].

    Returns
    -------
    Bunch with ``data`` (1797, 8, 8) float64, ``target`` (1797,) int, ``target_names``,
    ``images`` (the same as ``data``) and ``DESCR``; or ``(X, y)`` if ``return_X_y``.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    X = d.images.astype(np.float64) / 16.0
    y = d.target.astype(np.int64)
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        target_names=d.target_names,
        images=X,
        DESCR="sklearn.datasets.load_digits read row by row: 8 steps of 8 pixels in [0, 1].",
    )


_TEXT = """\
The sine wave rises and falls, and the network learns to follow it one step at a time.
A recurrent network reads a sequence from left to right. At every step it mixes the new
input with what it remembers, and what it remembers is a vector called the hidden state.
The long short-term memory cell keeps a second vector, the cell state, and three gates
decide what to forget, what to write and what to show. The gated recurrent unit does the
same work with two gates and one state. Training runs the sequence forward, then runs the
error backward through time, step by step, to the beginning. When the sequence is long the
gradient may fade away or grow without bound; clipping its norm keeps the steps sane, and
truncating the backward pass keeps the memory small. A character model reads text like
this one, one letter at a time, and learns which letter tends to come next. Then it can
write: give it a first letter, let it guess the second, feed the guess back, and go on.
"""


def load_text():
    """A short English text (about 1,000 characters) for a character language model."""
    return _TEXT


def char_sequences(text=None, seq_len=40, stride=1):
    """One-hot character windows and next-character targets for a character model.

    Parameters
    ----------
    text : str, optional
        Defaults to :func:`load_text`.
    seq_len : int, default=40
    stride : int, default=1

    Returns
    -------
    X : ndarray of shape (n_windows, seq_len, n_chars), one-hot (float32)
    Y : ndarray of shape (n_windows, seq_len) of str
        The next character at every step (for ``RNNClassifier(output='sequence')``).
    vocab : list of str
        The characters, sorted; ``X[..., j]`` is ``vocab[j]``.
    """
    text = load_text() if text is None else str(text)
    if len(text) < seq_len + 1:
        raise ValueError(
            f"text is too short: {len(text)} characters, seq_len + 1 = {seq_len + 1} needed."
        )
    vocab = sorted(set(text))
    codes = np.searchsorted(np.array(vocab), np.array(list(text)))
    starts = np.arange(0, len(text) - seq_len, stride)
    idx = starts[:, None] + np.arange(seq_len)[None, :]
    X = np.eye(len(vocab), dtype=np.float32)[codes[idx]]
    Y = np.array(vocab, dtype=object)[codes[idx + 1]].astype(str)
    return X, Y, vocab


def load_stock_prices(column="^GSPC", *, as_frame=True):
    """A real series: monthly closing prices 1990-2022 shipped with matplotlib.

    matplotlib's ``sample_data/Stocks.csv`` (source: Yahoo Finance) holds IBM, AAPL, MSFT,
    XRX, AMZN, DELL, GOOGL, ADBE, the S&P 500 (``'^GSPC'``) and the NASDAQ composite
    (``'^IXIC'``); rows without a value for ``column`` are dropped.

    Parameters
    ----------
    column : str, default='^GSPC'
    as_frame : bool, default=True
        Return a pandas Series with a DatetimeIndex (needs pandas); otherwise
        ``(dates, values)`` as NumPy arrays.

    Raises
    ------
    ImportError
        If matplotlib (the ``plot`` extra) is not installed.
    """
    try:
        from matplotlib import cbook
    except ImportError:
        raise ImportError(
            "load_stock_prices reads sample data shipped with matplotlib, which is not "
            "installed. Install it with `pip install numrnn[plot]`, or use "
            "numrnn.datasets.seasonal_series() instead."
        ) from None
    import csv

    path = cbook.get_sample_data("Stocks.csv", asfileobj=False)
    with open(path, encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r and not r[0].startswith("#")]
    header, body = rows[0], rows[1:]
    if column not in header[1:]:
        raise ValueError(f"column must be one of {header[1:]}, got {column!r}.")
    j = header.index(column)
    dates, vals = [], []
    for r in body:
        if len(r) > j and r[j].strip():
            dates.append(r[0])
            vals.append(float(r[j]))
    dates = np.array(dates, dtype="datetime64[D]")
    vals = np.array(vals)
    if as_frame:
        import pandas as pd

        return pd.Series(vals, index=pd.DatetimeIndex(dates, name="Date"), name=column)
    return dates, vals

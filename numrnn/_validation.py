"""Parameter and input checks shared by ``numrnn.nn``, the estimators and forecasting.

Every message has one format: the argument, what was expected, what was given and how to
fix it -- ``"{name} must be {expected}, got {value!r}. {fix}"``. A bad parameter raises
:class:`numrnn.exceptions.InvalidParameterError`, which is both a ``ValueError`` and a
``TypeError`` (as scikit-learn's), whatever was wrong with it.

:data:`PARAMETERS` is the one declarative table of the parameters numrnn's public classes
share: what each accepts. ``check_param(name, value)`` checks a value against its entry; the
primitives (:func:`check_int`, :func:`check_float`, :func:`check_option`,
:func:`check_bool`, :func:`check_dtype`) serve parameters of one function only (an
optimizer's ``lr``, a forecast's ``horizon``) with the same messages.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from numrnn.exceptions import InvalidParameterError

VALID_DTYPES = ("float32", "float64")
#: Cell names (the keys of the registry ``numrnn.cells.CELLS``; a test keeps them equal).
CELL_NAMES = ("rnn", "lstm", "gru")
MERGE_MODES = ("concat", "sum", "mean", "mul")
NONLINEARITIES = ("tanh", "relu")
#: ``numrnn.nn.readout``'s readouts ('last+mean+max': the three side by side).
READOUTS = ("last", "mean", "max", "last+mean+max")
#: Learning-rate schedules (``numrnn.nn.schedules``), scikit-learn MLP's names.
SCHEDULES = ("constant", "adaptive", "cosine")
DEVICES = ("auto", "cpu", "cuda")
#: The strengths of ``augment`` (``numrnn.nn.augment``) and the ranges they accept.
AUGMENT_KEYS = ("shift", "scale", "jitter", "variants")


def fail(name: str, expected: str, value, fix: str):
    """Raise the one parameter error: argument, expectation, value, fix."""
    raise InvalidParameterError(f"{name} must be {expected}, got {value!r}. {fix}")


def _is_int(value) -> bool:
    if type(value) is int:  # the common case, without the slower abstract-class check
        return True
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Integral)


def _is_real(value) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real)


def check_int(
    name: str,
    value,
    minimum: int,
    maximum: int | None = None,
    *,
    allow_none: bool = False,
    fix: str | None = None,
):
    """An integer in ``[minimum, maximum]`` (or None with ``allow_none``), as ``int``."""
    if value is None and allow_none:
        return None
    if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        fail(
            name,
            f"an integer >= {minimum}{upper}" + (" or None" if allow_none else ""),
            value,
            fix or f"Pass a whole number such as {max(minimum, 1)}.",
        )
    return int(value)


def check_float(
    name: str,
    value,
    low: float,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
):
    """A real number in the interval from ``low`` to ``high`` (or None), as ``float``."""
    if value is None and allow_none:
        return None
    # infinity itself is never a usable value (learning_rate_init=inf would pass here and
    # fail later as "lr"): an infinite bound is open
    low_open = low_open or low == -math.inf
    high_open = high_open or high == math.inf
    ok = _is_real(value) and not math.isnan(value)
    if ok:
        ok = not (value <= low if low_open else value < low)
        ok = ok and not (value >= high if high_open else value > high)
    if not ok:
        lb, hb = ("(" if low_open else "["), (")" if high_open else "]")
        fail(
            name,
            f"a real number in {lb}{float(low)}, {float(high)}{hb}"
            + (" or None" if allow_none else ""),
            value,
            "Pass a number in that range.",
        )
    return float(value)


def check_option(name: str, value, allowed: Sequence):
    """One of the strings ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        fail(
            name,
            f"one of {tuple(allowed)}",
            value,
            f"Pass one of {', '.join(repr(a) for a in allowed)}.",
        )
    return value


def check_bool(name: str, value) -> bool:
    """True or False (NumPy's bool too); never a truthy stand-in such as ``"no"``."""
    if not isinstance(value, (bool, np.bool_)):
        fail(name, "True or False", value, f"Pass {name}=True or {name}=False.")
    return bool(value)


def check_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Return ``np.float32`` or ``np.float64`` for a dtype spelled either way."""
    try:
        dt = None if dtype is None else np.dtype(dtype)  # np.dtype(None) is float64
    except TypeError:
        dt = None
    if dt is None or dt.name not in VALID_DTYPES:
        fail(
            name,
            "'float32' or 'float64'",
            dtype,
            "Use 'float32' for speed or 'float64' for precision.",
        )
    return dt


# -- the table ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Integer:
    minimum: int = 1
    maximum: int | None = None
    allow_none: bool = False
    #: Strings also accepted (``batch_size='auto'``).
    words: tuple = ()
    fix: str | None = None

    def check(self, name, value):
        if isinstance(value, str) and value in self.words:
            return value
        if value is None and self.allow_none:
            return None
        if self.words and not (_is_int(value) and value >= self.minimum):
            words = " or ".join(repr(w) for w in self.words)
            none = ", None" if self.allow_none else ""
            fail(name, f"{words}{none} or an integer >= {self.minimum}", value, self.fix)
        return check_int(
            name, value, self.minimum, self.maximum, allow_none=self.allow_none, fix=self.fix
        )


@dataclass(frozen=True)
class Real:
    low: float = 0.0
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    allow_none: bool = False

    def check(self, name, value):
        return check_float(
            name,
            value,
            self.low,
            self.high,
            low_open=self.low_open,
            high_open=self.high_open,
            allow_none=self.allow_none,
        )


@dataclass(frozen=True)
class Options:
    values: tuple
    allow_none: bool = False

    def check(self, name, value):
        if value is None and self.allow_none:
            return None
        if self.allow_none and not (isinstance(value, str) and value in self.values):
            fail(
                name,
                f"one of {self.values} or None",
                value,
                f"Pass one of {', '.join(repr(a) for a in self.values)}, or None.",
            )
        return check_option(name, value, self.values)


@dataclass(frozen=True)
class Boolean:
    def check(self, name, value):
        return check_bool(name, value)


@dataclass(frozen=True)
class DType:
    def check(self, name, value):
        return check_dtype(value, name)


@dataclass(frozen=True)
class Verbosity:
    def check(self, name, value):
        if not isinstance(value, (bool, np.bool_, numbers.Integral)):
            fail(name, "a bool or an int", value, f"Pass {name}=True to print losses.")
        return value


@dataclass(frozen=True)
class Augmentation:
    """None, 'auto' or a dict of strengths (:data:`AUGMENT_KEYS`): ``shift`` a fraction of
    the length in [0, 1), ``scale`` and ``jitter`` standard deviations >= 0, ``variants``
    an integer >= 1 (variants of each sample per epoch)."""

    def check(self, name, value):
        if value is None or (isinstance(value, str) and value == "auto"):
            return value
        fix = (
            f"Pass {name}=None (off), 'auto', or a dict such as "
            "{'shift': 0.05, 'scale': 0.1, 'jitter': 0.05}."
        )
        if not isinstance(value, dict):
            fail(name, "None, 'auto' or a dict of strengths", value, fix)
        unknown = [k for k in value if k not in AUGMENT_KEYS]
        if unknown:
            fail(name, f"a dict with keys from {AUGMENT_KEYS}", value, f"Remove {unknown}. {fix}")
        ranges = {"shift": (0.0, 1.0), "scale": (0.0, math.inf), "jitter": (0.0, math.inf)}
        return {
            k: check_int(f"{name}[{k!r}]", v, 1)
            if k == "variants"
            else check_float(f"{name}[{k!r}]", v, ranges[k][0], ranges[k][1], high_open=True)
            for k, v in value.items()
        }


_POSITIVE = Real(0.0, low_open=True)
_UNIT = Real(0.0, 1.0, high_open=True)

#: What every shared parameter accepts, by name (estimators, ``numrnn.nn``, forecasting).
PARAMETERS = {
    # the network
    "cell": Options(CELL_NAMES),
    "input_size": Integer(1),
    "hidden_size": Integer(1),
    "num_layers": Integer(1),
    "bidirectional": Boolean(),
    "merge_mode": Options(MERGE_MODES),
    "nonlinearity": Options(NONLINEARITIES),
    "peephole": Boolean(),
    "reset_after": Boolean(),
    "orthogonal": Boolean(),
    "forget_bias": Real(-math.inf, math.inf, low_open=True, high_open=True, allow_none=True),
    "dropout": _UNIT,
    "dtype": DType(),
    "device": Options(DEVICES),
    # what the head reads, and how gradients flow
    "output": Options(("last", "sequence")),
    # 'auto': chosen at fit time by folding (numrnn.nn.readout.resolve_readout)
    "readout": Options(READOUTS + ("auto",)),
    "bptt_steps": Integer(1, allow_none=True),
    "clip_norm": Real(0.0, low_open=True, allow_none=True),
    "clip_value": Real(0.0, low_open=True, allow_none=True),
    # training (scikit-learn's MLP names)
    "solver": Options(("adam", "sgd")),
    "alpha": Real(0.0),
    "batch_size": Integer(
        1, words=("auto",), fix="Pass e.g. batch_size=32, or 'auto' for min(32, n_samples)."
    ),
    "learning_rate": Options(SCHEDULES),
    "augment": Augmentation(),
    "segment_length": Integer(
        1,
        allow_none=True,
        words=("auto",),
        fix="Pass e.g. segment_length=4, 'auto', or None for one input step per time step.",
    ),
    "learning_rate_init": _POSITIVE,
    "max_iter": Integer(1),
    "shuffle": Boolean(),
    "tol": Real(0.0),
    "verbose": Verbosity(),
    "warm_start": Boolean(),
    "momentum": Real(0.0, 1.0),
    "nesterovs_momentum": Boolean(),
    "early_stopping": Boolean(),
    "validation_fraction": Real(0.0, 1.0, low_open=True, high_open=True),
    "validation_split": Options(("random", "last")),
    "beta_1": _UNIT,
    "beta_2": _UNIT,
    "epsilon": _POSITIVE,
    "n_iter_no_change": Integer(1),
    # forecasting
    "window": Integer(
        1, allow_none=True, fix="Pass e.g. window=24, or None to choose from the series."
    ),
    "horizon": Integer(1, fix="Pass the number of steps to forecast, e.g. horizon=12."),
    "strategy": Options(("recursive", "direct")),
    "season_length": Integer(1, allow_none=True),
    "scaler": Options(("window", "standard", "robust"), allow_none=True),
    "n_models": Integer(1),
    "n_jobs": Integer(-1, allow_none=True, fix="Pass None, -1 (all cores) or a count."),
    "conformal": Boolean(),
    "choose_epochs": Boolean(),
}


def check_param(name: str, value, rule=None):
    """Check ``value`` against ``rule`` (default: ``PARAMETERS[name]``); return it normalised
    (``int``, ``float``, ``bool``, ``np.dtype``; strings and None unchanged)."""
    return (rule or PARAMETERS[name]).check(name, value)


def check_real_input(name: str, value) -> None:
    """Refuse what a cast to float would change silently: complex numbers (imaginary parts
    dropped), masked arrays with masked entries (mask ignored) and datetime64/timedelta64
    (turned into raw integer counts). ``value`` is an array, a DataFrame/Series or a list
    of arrays; other values pass (the caller's own checks explain them)."""
    if isinstance(value, (list, tuple)):
        for k, v in enumerate(value):
            if hasattr(v, "dtype") or hasattr(v, "dtypes"):
                check_real_input(f"{name}[{k}]", v)
        return
    if isinstance(value, np.ma.MaskedArray) and np.ma.getmaskarray(value).any():
        raise ValueError(
            f"{name} is a masked array with masked entries; numrnn does not read masks (the "
            "values underneath would be used). Fill them first, e.g. X.filled(np.nan) to mark "
            "trailing padding, or drop the masked samples."
        )
    if hasattr(value, "tocsr"):  # sparse: the caller's scikit-learn check explains it
        return
    if isinstance(value, (dict, str, bytes)) or (
        not hasattr(value, "__len__") and not hasattr(value, "__array__")
    ):
        raise TypeError(
            f"{name} must be an array, a DataFrame or a list of sequences, got a "
            f"{type(value).__name__}. Pass e.g. np.asarray(data); a file must be read first."
        )
    _reject_pandas_na(name, value)
    dtypes = getattr(value, "dtypes", None)  # DataFrame: one per column
    if dtypes is not None and not hasattr(dtypes, "kind"):
        kinds = {getattr(d, "kind", "O") for d in dtypes}
        dts = list(dtypes)
    else:
        dt = getattr(value, "dtype", None)
        kinds = {getattr(dt, "kind", "O")}
        dts = [dt]
    if "c" in kinds:  # ValueError with scikit-learn's wording (its estimator checks)
        raise ValueError(
            f"Complex data not supported: {name} must hold real numbers, got complex values (dtype "
            f"{next(d for d in dts if getattr(d, 'kind', '') == 'c')}). Pass the real and "
            "imaginary parts as separate features."
        )
    if kinds & {"m", "M"}:
        raise TypeError(
            f"{name} holds dates or durations ({next(d for d in dts if d.kind in 'mM')}); "
            "numrnn does not turn them into numbers silently. Convert them to numeric "
            "features first (e.g. elapsed days as floats)."
        )


def _reject_pandas_na(name: str, value) -> None:
    """pandas' nullable columns (``Float64``, ``Int64``, ...) mark *missing* values with
    ``pd.NA``; converted to float they would become NaN and, at the end of a row, silently
    read as padding. Missing is not padding: refuse it."""
    if not hasattr(value, "isna"):
        return
    dtypes = value.dtypes
    if hasattr(dtypes, "kind") or not hasattr(value, "columns"):
        nullable = not isinstance(value.dtype, np.dtype) and value.dtype.kind in "biuf"
        has_na = nullable and bool(value.isna().to_numpy().any())
    else:
        cols = [
            c for c, d in zip(value.columns, dtypes, strict=True) if not isinstance(d, np.dtype)
        ]
        has_na = bool(cols) and bool(value[cols].isna().to_numpy().any())
    if has_na:
        raise ValueError(
            f"{name} holds pd.NA (missing values) in a nullable pandas column. numrnn reads "
            "only trailing NaN as padding and does not guess what a missing value means: "
            f"impute them, or pass {name}.astype('float64') so that NaN marks padding."
        )


def _as_float_array(name: str, value) -> np.ndarray:
    check_real_input(name, value)
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged nested lists and the like
        raise ValueError(
            f"{name} must be numeric array-like, got {type(value).__name__} that NumPy "
            f"cannot turn into an array ({exc}). Pass a NumPy array or a list of 2-D arrays."
        ) from None
    check_real_input(name, arr)  # nested lists of complex numbers
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} must contain numbers, got an array of dtype {arr.dtype} "
                "that cannot be converted to float. Convert strings or objects to numbers first."
            ) from None
    return arr


def all_finite(a: np.ndarray) -> bool:
    """Whether every entry of the float array ``a`` is finite.

    A finite sum proves it without the (size,) boolean temporary of ``np.isfinite(a).all()``,
    which costs more than a one-step kernel on the small arrays of a streaming forecast; a
    sum that overflows falls back to the elementwise test.
    """
    return math.isfinite(np.add.reduce(a, axis=None)) or bool(np.isfinite(a).all())


def check_sequences(
    X,
    *,
    name: str = "X",
    lengths=None,
    n_features: int | None = None,
    dtype=np.float64,
    allow_2d: bool = False,
    nan_padding: bool = False,
    pad: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a batch of sequences and return ``(padded, lengths)``.

    With ``pad=False`` a ragged list is returned as a list of (T_i, F) arrays of ``dtype``
    instead of one array padded to the longest sequence (memory in proportion to the data).

    Parameters
    ----------
    X : array-like (n_samples, n_timesteps, n_features), or a list of (T_i, n_features) arrays
        With ``allow_2d``, a 2-D array (n_samples, n_timesteps) means one feature per step, and
        a list may hold 1-D sequences.
    lengths : array-like of int, optional
        Valid steps per sequence of a padded ``X``; steps past a length are ignored.
    n_features : int, optional
        Expected feature count (from the network or from ``fit``).
    nan_padding : bool
        Trailing all-NaN steps of a padded array are padding (estimators' convention).

    Returns
    -------
    padded : ndarray (n_samples, max_len, n_features) of ``dtype``; padding is 0.
    lengths : ndarray (n_samples,) of int64.
    """
    if (
        type(X) is np.ndarray
        and X.ndim == 3
        and X.dtype.kind == "f"
        and X.size > 0
        and lengths is None
        and not nan_padding
        and (n_features is None or X.shape[2] == n_features)
    ):
        # The common case of a network's forward (a float array, every step valid) without
        # the general path's per-call checks, which cost more than a one-step LSTM's kernel
        # (issue #18's streaming latency): the same copy (cast as below) and lengths. The
        # forecaster's float64 windows into a float32 network take this path too.
        if X.dtype == dtype:
            padded = np.array(X, dtype=dtype, copy=True)
        else:
            with np.errstate(over="ignore"):  # an overflow is reported below, by name
                padded = np.array(X, dtype=dtype, copy=True)
        if all_finite(padded):
            return padded, np.full(padded.shape[0], padded.shape[1], dtype=np.int64)
        # not finite: the general path below names the first bad value
    is_list = isinstance(X, (list, tuple))
    if is_list:
        if len(X) == 0:
            raise ValueError(
                f"{name} is empty: got a list of 0 sequences. Pass at least one sequence."
            )
        seqs = []
        for k, s in enumerate(X):
            a = _as_float_array(f"{name}[{k}]", s)
            if a.ndim == 1 and allow_2d:
                a = a[:, None]
            if a.ndim != 2:
                raise ValueError(
                    f"{name}[{k}] must be a 2-D array (n_timesteps, n_features), got shape "
                    f"{a.shape}. Each sequence of a ragged list is one (T_i, F) array."
                )
            seqs.append(a)
        if seqs[0].shape[1] == 0:
            raise ValueError(
                f"{name}[0] has 0 features per step (shape {seqs[0].shape}). Pass at least one "
                "feature per step."
            )
        feats = {a.shape[1] for a in seqs}
        if len(feats) != 1:
            raise ValueError(
                f"{name}: every sequence must have the same number of features, got "
                f"{sorted(feats)}. Make each (T_i, F) array have the same F."
            )
        if lengths is not None:
            raise ValueError(
                "lengths must be None when X is a ragged list (each array's length is used); "
                f"got lengths={lengths!r}. Drop the lengths argument."
            )
        lens = np.array([a.shape[0] for a in seqs], dtype=np.int64)
        F = seqs[0].shape[1]
        if not pad:
            return _checked_ragged(name, seqs, lens, n_features, dtype), lens
        T = int(lens.max())
        padded = np.zeros((len(seqs), T, F), dtype=dtype)
        with np.errstate(over="ignore"):  # an overflow is reported below, by name
            for k, a in enumerate(seqs):
                padded[k, : a.shape[0]] = a
        arr_lengths = lens
    else:
        arr = _as_float_array(name, X)
        if arr.ndim == 2 and allow_2d:
            arr = arr[:, :, None]
        if arr.ndim != 3:
            expect = "3-D (n_samples, n_timesteps, n_features)"
            if allow_2d:
                expect += " or 2-D (n_samples, n_timesteps)"
            raise ValueError(
                f"{name} must be {expect}, got an array of shape {arr.shape}. "
                "Reshape it, e.g. X[:, :, None] for one feature per step, or pass a list "
                "of (T_i, n_features) arrays."
            )
        if arr.shape[0] == 0:
            raise ValueError(
                f"{name} is empty: got shape {arr.shape} with 0 samples. Pass at least one sequence."
            )
        if arr.shape[1] == 0:
            raise ValueError(
                f"{name} has 0 time steps (shape {arr.shape}). Pass sequences of at least one step."
            )
        if arr.shape[2] == 0:
            raise ValueError(
                f"{name} has 0 features per step (shape {arr.shape}). Pass at least one "
                "feature per step."
            )
        with np.errstate(over="ignore"):  # an overflow is reported below, by name
            padded = np.array(arr, dtype=dtype, copy=True)
        T = padded.shape[1]
        if lengths is not None:
            arr_lengths = np.asarray(lengths)
            if arr_lengths.ndim != 1 or arr_lengths.shape[0] != padded.shape[0]:
                raise ValueError(
                    f"lengths must be 1-D with one entry per sequence ({padded.shape[0]}), got "
                    f"shape {arr_lengths.shape}. Pass one valid-step count per sample."
                )
            if arr_lengths.dtype.kind not in "iu" and not (
                arr_lengths.dtype.kind == "f" and np.all(arr_lengths == np.round(arr_lengths))
            ):
                raise ValueError(f"lengths must be integers, got {arr_lengths!r}.")
            arr_lengths = arr_lengths.astype(np.int64)
        elif nan_padding:
            # A trailing run of all-NaN steps is padding; NaN elsewhere is an error below.
            step_all_nan = np.isnan(padded).all(axis=2)
            valid = ~step_all_nan
            last_valid = np.where(valid.any(axis=1), T - np.argmax(valid[:, ::-1], axis=1), 0)
            arr_lengths = last_valid.astype(np.int64)
        else:
            arr_lengths = np.full(padded.shape[0], T, dtype=np.int64)
        bad = (arr_lengths < 1) | (arr_lengths > T)
        if bad.any():
            k = int(np.argmax(bad))
            what = "lengths" if lengths is not None else f"{name} sequence lengths"
            raise ValueError(
                f"{what} must lie in [1, {T}] (at least one valid step, at most n_timesteps), "
                f"got {int(arr_lengths[k])} for sample {k}. "
                + (
                    "Remove empty (all-NaN) sequences."
                    if lengths is None
                    else "Fix the lengths or the padding."
                )
            )
        # Padded steps are ignored: zero them so they cannot leak NaN into any GEMM.
        steps = np.arange(T)[None, :]
        pad_mask = steps >= arr_lengths[:, None]
        padded[pad_mask] = 0.0
    if padded.shape[1] == 0 or (is_list and (arr_lengths < 1).any()):
        k = int(np.argmax(arr_lengths < 1))
        raise ValueError(f"{name}[{k}] has 0 time steps. Every sequence needs at least one step.")
    F = padded.shape[2]
    if n_features is not None and F != n_features:
        raise ValueError(
            f"{name} has {F} features per step, but {n_features} were expected "
            "(the network's input_size, or the n_features_in_ seen in fit). "
            "Pass sequences with the same number of features."
        )
    if not np.isfinite(padded).all():
        i, t, f = (int(v) for v in np.argwhere(~np.isfinite(padded))[0])
        _non_finite(name, i, t, f, seqs[i][t, f] if is_list else arr[i, t, f], padded.dtype)
    return padded, arr_lengths


def _non_finite(name, i, t, f, source, dtype):
    """Raise for the first non-finite value, at sample ``i``, step ``t``, feature ``f``."""
    if np.isfinite(source):  # finite before the cast: too large for the dtype
        info = np.finfo(dtype)
        raise ValueError(
            f"{name} has values too large for {np.dtype(dtype).name} (max {info.max:.3g}; first "
            f"at sample {i}, step {t}, feature {f}: {float(source):.3g}). Scale {name}, "
            "or use dtype='float64'."
        )
    raise ValueError(
        f"{name} contains NaN or inf inside a sequence (first at sample {i}, "
        f"step {t}, feature {f}). Only trailing all-NaN steps count as "
        "padding; impute or drop missing values inside sequences."
    )


def _checked_ragged(name, seqs, lens, n_features, dtype) -> list:
    """:func:`check_sequences`'s checks on a ragged list, each sequence cast to ``dtype``
    on its own (the values a padded array would hold, without the padding)."""
    if (lens < 1).any():
        k = int(np.argmax(lens < 1))
        raise ValueError(f"{name}[{k}] has 0 time steps. Every sequence needs at least one step.")
    F = seqs[0].shape[1]
    if n_features is not None and F != n_features:
        raise ValueError(
            f"{name} has {F} features per step, but {n_features} were expected "
            "(the network's input_size, or the n_features_in_ seen in fit). "
            "Pass sequences with the same number of features."
        )
    out = []
    with np.errstate(over="ignore"):  # an overflow is reported by name
        for i, a in enumerate(seqs):
            c = np.ascontiguousarray(a, dtype=dtype)
            if not np.isfinite(c).all():
                t, f = (int(v) for v in np.argwhere(~np.isfinite(c))[0])
                _non_finite(name, i, t, f, a[t, f], dtype)
            out.append(c)
    return out

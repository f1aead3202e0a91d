"""Save and load fitted estimators and bare networks without pickle.

The file is a NumPy ``.npz`` archive: every array under its own name, plus one
entry ``__numrnn__`` holding a JSON header (a unicode string) with

* ``format`` (``"numrnn"``), ``format_version`` and the writing ``numrnn_version``;
* ``kind`` (``"estimator"``, ``"network"`` or ``"forecaster"``) and ``class``
  (``RNNRegressor``, ``LSTM``, ``RNNForecaster``, ...); a forecaster holds its parameters,
  its fitted transforms and scaling, the end of its pandas index, and one estimator entry per
  network (arrays under ``models/<i>/``);
* the estimator's ``get_params()``, its fitted attributes (``classes_``, ``n_features_in_``,
  ``loss_curve_``, ...), the network's configuration, the optimizer's step count and the
  random generators' states, so that ``partial_fit`` after ``load`` continues exactly;
* the name, shape and dtype of every array, checked on load.

Loading never runs code from the file: arrays are read with ``allow_pickle=False``, labels
of object dtype are stored as a JSON list, and the class is looked up in a fixed table.
A file that is not ours, is corrupt or truncated, or was written by a newer format raises
:class:`FileFormatError` (a ``ValueError``) with the reason and what to do.

Example
-------
>>> from numrnn.io import save, load                    # doctest: +SKIP
>>> save(model, "model.npz"); model2 = load("model.npz")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import numbers
import os
import secrets
import stat
import warnings
import zipfile
from collections import OrderedDict

import numpy as np

from numrnn.cells import CELLS
from numrnn.exceptions import FileFormatError

__all__ = ["FileFormatError", "save", "load", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_HEADER = "__numrnn__"
_NET_CLASSES = ("RNN", "LSTM", "GRU")
_EST_CLASSES = ("RNNRegressor", "RNNClassifier")
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
# Fitted attributes rebuilt from their own entries, not stored as plain values.
_SPECIAL = ("network_", "head_", "_optimizer", "_rng", "extra_models_")


def _version():
    from numrnn import __version__

    return __version__


# -- encoding of plain values -------------------------------------------------------------
def _to_json(name, value, arrays):
    """A JSON-able description of ``value``; arrays go to ``arrays``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)  # NaN and inf survive (JSON's NaN/Infinity extension)
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(f"{name}[{i}]", v, arrays) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_to_json(f"{name}[{i}]", v, arrays) for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):  # e.g. augment
        return {"__dict__": {k: _to_json(f"{name}[{k!r}]", v, arrays) for k, v in value.items()}}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biufU":
            key = f"attr/{name}"
            arrays[key] = value
            return {"__array__": key}
        if value.dtype.kind == "O":
            items = value.ravel().tolist()
            if all(isinstance(v, (str, bool, int, float)) or v is None for v in items):
                return {"__objects__": items, "shape": list(value.shape)}
    raise TypeError(
        f"{name} ({type(value).__name__}) cannot be saved without pickle: numrnn.io stores "
        "numbers, strings, lists, dicts with string keys and numeric or string arrays. "
        "Convert it to one of those, or use pickle/joblib for this model."
    )


def _from_json(value, arrays):
    if isinstance(value, list):
        return [_from_json(v, arrays) for v in value]
    if isinstance(value, dict):
        if "__dict__" in value:
            return {k: _from_json(v, arrays) for k, v in value["__dict__"].items()}
        if "__tuple__" in value:
            return tuple(_from_json(v, arrays) for v in value["__tuple__"])
        if "__array__" in value:
            return arrays[value["__array__"]]
        if "__objects__" in value:
            out = np.empty(len(value["__objects__"]), dtype=object)
            out[:] = value["__objects__"]
            return out.reshape(value["shape"])
        raise FileFormatError(f"unknown value encoding {sorted(value)} in the header.")
    return value


def _generator_state(gen):
    st = gen.bit_generator.state
    return json.loads(json.dumps(st, default=lambda o: o.tolist()))  # ints stay exact


def _make_generator(state):
    name = state.get("bit_generator")
    if name not in _BIT_GENERATORS:
        raise FileFormatError(f"unknown random bit generator {name!r} in the header.")
    bitgen = getattr(np.random, name)()
    try:
        bitgen.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise FileFormatError(f"bad random generator state ({exc}).") from None
    return np.random.Generator(bitgen)


# -- networks -----------------------------------------------------------------------------
def _network_header(net, arrays, prefix):
    for k, v in net.state_dict().items():
        arrays[f"{prefix}/{k}"] = v
    # the cell's own options, as the registry (numrnn.cells) lists them
    opts = {name: net.options.get(name, default) for name, default in CELLS[net.cell].options}
    return {
        "class": type(net).__name__,
        "input_size": net.input_size,
        "hidden_size": net.hidden_size,
        "num_layers": net.num_layers,
        "bidirectional": net.bidirectional,
        "merge_mode": net.merge_mode,
        "dropout": net.dropout,
        "dtype": net.dtype.name,
        "device": net.device,
        "options": opts,
        "training": bool(net.training),
        "rng": _generator_state(net._rng),
    }


def _expected_shapes(cfg) -> dict[str, tuple]:
    """The parameter shapes a network header implies, computed without allocating them."""
    from numrnn.cells.lstm import PEEPHOLE_NAMES

    sizes = {}
    for key in ("input_size", "hidden_size", "num_layers"):
        v = cfg.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise FileFormatError(f"network {key} must be an integer >= 1, got {v!r}.")
        sizes[key] = v
    if not isinstance(cfg.get("bidirectional"), bool):
        raise FileFormatError(
            f"network bidirectional must be a bool, got {cfg.get('bidirectional')!r}."
        )
    I, H, L = sizes["input_size"], sizes["hidden_size"], sizes["num_layers"]
    G = CELLS[cfg["class"].lower()].num_gates
    D = 2 if cfg["bidirectional"] else 1
    out = (2 * H) if (D == 2 and cfg.get("merge_mode") == "concat") else H
    peephole = cfg["class"] == "LSTM" and bool(cfg.get("options", {}).get("peephole", False))
    shapes = {}
    for layer in range(L):
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
            shapes["weight_ih" + sfx] = (G * H, I if layer == 0 else out)
            shapes["weight_hh" + sfx] = (G * H, H)
            shapes["bias_ih" + sfx] = (G * H,)
            shapes["bias_hh" + sfx] = (G * H,)
            if peephole:
                for nm in PEEPHOLE_NAMES:
                    shapes[nm + sfx] = (H,)
    return shapes


def _check_network_arrays(cfg, listed, prefix):
    """The header's sizes must match its arrays: checked before anything is allocated, so
    a header claiming ``hidden_size=12000`` next to small arrays costs nothing."""
    expected = _expected_shapes(cfg)
    have = {
        k[len(prefix) + 1 :]: tuple(v[0]) for k, v in listed.items() if k.startswith(prefix + "/")
    }
    if set(have) != set(expected):
        raise FileFormatError(
            f"the {prefix} arrays {sorted(set(have) ^ set(expected))[:5]} do not match its "
            f"configuration (input_size={cfg['input_size']}, hidden_size={cfg['hidden_size']}, "
            f"num_layers={cfg['num_layers']}, bidirectional={cfg['bidirectional']})."
        )
    for k, shape in expected.items():
        if have[k] != shape:
            raise FileFormatError(
                f"{prefix}/{k} has shape {have[k]}, but the header's input_size="
                f"{cfg['input_size']}, hidden_size={cfg['hidden_size']} imply {shape}."
            )


def _build_network(cfg, arrays, prefix, device=None):
    from numrnn.nn import network

    cls_name = cfg.get("class")
    if cls_name not in _NET_CLASSES:
        raise FileFormatError(
            f"unknown network class {cls_name!r}; expected one of {_NET_CLASSES}."
        )
    _check_network_arrays(cfg, {k: [a.shape] for k, a in arrays.items()}, prefix)
    cls = getattr(network, cls_name)
    kwargs = dict(
        num_layers=cfg["num_layers"], bidirectional=cfg["bidirectional"],
        merge_mode=cfg["merge_mode"], dropout=cfg["dropout"], dtype=cfg["dtype"],
        device=_load_device(device, cfg["device"]),
    )  # fmt: skip
    kwargs.update(cfg["options"])
    net = cls(cfg["input_size"], cfg["hidden_size"], **kwargs)
    state = OrderedDict(
        (k[len(prefix) + 1 :], a) for k, a in arrays.items() if k.startswith(prefix + "/")
    )
    net.load_state_dict(state)  # KeyError / ValueError name the mismatching entry
    for k, a in state.items():
        if a.dtype != net.dtype:
            raise FileFormatError(f"{prefix}/{k} has dtype {a.dtype}, expected {net.dtype}.")
    net.train(cfg["training"])
    net._rng = _make_generator(cfg["rng"])
    return net


def _load_device(requested, saved) -> str:
    """The device a loaded network runs on: the caller's choice, else the saved one when it
    is available here, else the CPU (a model trained on a GPU loads on a CPU-only machine)."""
    from numrnn._config import cuda_available

    if requested is not None:
        return requested
    if saved == "cuda" and not cuda_available():
        return "cpu"
    return saved if saved in ("cpu", "cuda", "auto") else "cpu"


# -- save ---------------------------------------------------------------------------------
def _params_header(model, arrays, prefix):
    params = model.get_params(deep=False)
    rs = params.get("random_state")
    if rs is not None and not isinstance(rs, numbers.Integral):
        warnings.warn(
            f"random_state={rs!r} is not an int and is saved as None; the fitted weights "
            "and the generators' states are saved exactly.",
            UserWarning,
            stacklevel=3,
        )
        params["random_state"] = None
    return params, {k: _to_json(prefix + k, v, arrays) for k, v in params.items()}


def _estimator_header(model, arrays, prefix):
    """An estimator's header entries; its arrays go to ``arrays`` under ``prefix``."""
    params, header = {}, {}
    params, header["params"] = _params_header(model, arrays, prefix)
    attrs = {}
    for k, v in model.__dict__.items():
        if k in params or k in _SPECIAL:
            continue
        attrs[k] = _to_json(prefix + k, v, arrays)
    header["attrs"] = attrs
    if hasattr(model, "network_"):
        header["network"] = _network_header(model.network_, arrays, prefix + "network")
        arrays[prefix + "head/weight"] = model.head_.weight
        arrays[prefix + "head/bias"] = model.head_.bias
    if hasattr(model, "_rng"):
        alg, keys, pos, has_gauss, cached = model._rng.get_state()
        arrays[prefix + "rng/keys"] = keys
        header["rng"] = {"algorithm": alg, "pos": int(pos), "has_gauss": int(has_gauss),
                         "cached_gaussian": float(cached)}  # fmt: skip
    if hasattr(model, "_optimizer"):
        st = model._optimizer.state_dict()
        header["optimizer"] = {
            "class": type(model._optimizer).__name__,
            "t": int(st["t"]),
            "buffers": [b for b in st if b not in ("t", "hyperparameters")],
        }
        for b in header["optimizer"]["buffers"]:
            for n, a in st[b].items():
                arrays[f"{prefix}optimizer/{b}/{n}"] = a
    if getattr(model, "extra_models_", None):  # the other networks of an ensemble (n_models)
        header["extra_models"] = [
            _estimator_header(m, arrays, f"{prefix}extra_models/{i}/")
            for i, m in enumerate(model.extra_models_)
        ]
    return header


# Fitted attributes of a forecaster saved as plain values (its networks are saved as
# estimators; its pandas index by _index_header).
_FORECASTER_ATTRS = ("transform_", "season_length_", "window_", "quantiles_", "mean_", "scale_",
                     "n_series_", "n_exog_", "_was_1d", "_columns", "_name", "_tail", "_tails",
                     "residuals_", "backtest_scores_", "_raw_tail", "_raw_exog", "n_epochs_")  # fmt: skip
_FORECASTER_MODELS = ("RNNRegressor", "_QuantileRegressor")


def _index_header(index):
    """The end of a pandas index, enough to continue it (three entries, freq, name)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        return None
    name = index.name if isinstance(index.name, (str, int, float)) or index.name is None else None
    if isinstance(index, pd.RangeIndex):
        return {"type": "range", "start": int(index.start), "stop": int(index.stop),
                "step": int(index.step), "name": name}  # fmt: skip
    tail = index[-3:]
    if isinstance(index, pd.PeriodIndex):
        return {"type": "period", "ordinals": [int(v.ordinal) for v in tail],
                "freq": index.freqstr, "name": name}  # fmt: skip
    if isinstance(index, pd.DatetimeIndex):
        if index.tz is not None:
            return None
        return {"type": "datetime", "iso": [v.isoformat() for v in tail],
                "freq": index.freqstr, "name": name}  # fmt: skip
    if pd.api.types.is_integer_dtype(index.dtype):
        return {"type": "int", "values": [int(v) for v in tail], "name": name}
    return {"type": "other", "name": name}


def _index_from_header(h):
    if h is None:
        return None
    import pandas as pd

    kind = h.get("type")
    if kind == "range":
        return pd.RangeIndex(h["start"], h["stop"], h["step"], name=h["name"])
    if kind == "period":
        return pd.PeriodIndex.from_ordinals(h["ordinals"], freq=h["freq"], name=h["name"])
    if kind == "datetime":
        idx = pd.DatetimeIndex(pd.to_datetime(h["iso"]), name=h["name"])
        if h["freq"]:
            idx.freq = h["freq"]
        return idx
    if kind == "int":
        return pd.Index(np.asarray(h["values"], dtype=np.int64), name=h["name"])
    if kind == "other":
        return pd.Index([0.5], name=h["name"])  # irregular: forecasts are numbered steps
    raise FileFormatError(f"unknown index type {kind!r} in the header.")


def _forecaster_header(model, arrays):
    header = {}
    _, header["params"] = _params_header(model, arrays, "forecaster/")
    if not hasattr(model, "regressors_"):
        return header
    attrs = {k: getattr(model, k, None) for k in _FORECASTER_ATTRS}
    if attrs["backtest_scores_"] is not None:  # a dict: stored as (name, score) pairs
        attrs["backtest_scores_"] = [tuple(kv) for kv in attrs["backtest_scores_"].items()]
    header["attrs"] = {k: _to_json("forecaster/" + k, v, arrays) for k, v in attrs.items()}
    index = getattr(model, "_index", None)  # a panel forecaster has one index per series
    header["index"] = None if index is None else _index_header(index)
    if getattr(model, "panel_", None) is not None:
        header["panel"] = _panel_header(model, arrays)
    header["models"] = []
    for i, reg in enumerate(model.regressors_):
        sub = _estimator_header(reg, arrays, f"models/{i}/")
        sub["class"] = type(reg).__name__
        header["models"].append(sub)
    return header


# Per-series forecast state of a panel forecaster (numrnn.forecasting._panel._state), saved
# as a list in this order; "cov" (covariate rows) is not saved: such panels are refused.
_PANEL_STATE = ("tail", "tails", "steps", "mean", "sd", "raw")


def _panel_header(model, arrays):
    """A panel forecaster's per-series state: ids, output form, index ends, transforms."""
    panel = model.panel_
    if model.n_exog_ or panel.covariates is not None:
        raise ValueError(
            "save does not write a panel forecaster with covariates yet (their encodings and "
            "rows are not in the file format). Keep it with pickle or joblib.dump."
        )
    bad = [i for i in model.ids_ if isinstance(i, bool) or not isinstance(i, (str, int))]
    if bad or any(type(i) not in (str, int) for i in model.ids_):
        raise ValueError(
            f"save writes panels whose series ids are str or int; got {bad[:3] or model.ids_[:3]}"
            " (e.g. numpy integers). Rename the series, or keep the model with pickle."
        )
    states = [[st[k] for k in _PANEL_STATE] for st in model._states]
    return {
        "form": panel.form,
        "ids": list(model.ids_),
        "indexes": [None if ix is None else _index_header(ix) for ix in panel.indexes],
        "pandas_series": [bool(v) for v in panel.pandas_series],
        "frame_index": None if panel.frame_index is None else _index_header(panel.frame_index),
        "states": _to_json("forecaster/panel/states", states, arrays),
        "series_transform": _to_json(
            "forecaster/panel/series_transform", list(model.series_transform_), arrays
        ),
        "series_mean": _to_json("forecaster/panel/series_mean", model.series_mean_, arrays),
        "series_scale": _to_json("forecaster/panel/series_scale", model.series_scale_, arrays),
    }


def _steps_from_json(steps):
    return tuple(tuple(s) if isinstance(s, list) else s for s in steps)


def _load_panel(f, h, arrays):
    from numrnn.forecasting._panel import Panel

    f.panel_ = Panel(
        form=h["form"],
        ids=list(h["ids"]),
        values=None,  # the training series: not kept (the states hold what forecasts need)
        indexes=[_index_from_header(ix) for ix in h["indexes"]],
        pandas_series=list(h["pandas_series"]),
        frame_index=_index_from_header(h["frame_index"]),
    )
    f.ids_ = list(h["ids"])
    f._states = []
    for st in _from_json(h["states"], arrays):
        d = dict(zip(_PANEL_STATE, st, strict=True))
        d["steps"] = _steps_from_json(d["steps"])
        d["cov"] = None
        f._states.append(d)
    f.series_transform_ = [_steps_from_json(s) for s in _from_json(h["series_transform"], arrays)]
    f.series_mean_ = _from_json(h["series_mean"], arrays)
    f.series_scale_ = _from_json(h["series_scale"], arrays)
    f.covariate_categories_, f.covariate_stats_ = None, None


def _load_forecaster(header, arrays, device=None):
    from numrnn.forecasting import RNNForecaster, _forecaster

    params = {k: _from_json(v, arrays) for k, v in header["params"].items()}
    unknown = sorted(set(params) - set(RNNForecaster._get_param_names()))
    if unknown:
        raise FileFormatError(f"parameters {unknown} are unknown to RNNForecaster here.")
    if device is not None:
        params["device"] = device
    f = RNNForecaster(**params)
    if "models" not in header:
        return f
    for k, v in header["attrs"].items():
        if k not in _FORECASTER_ATTRS:
            raise FileFormatError(f"the header sets {k!r}, not a fitted forecaster attribute.")
        setattr(f, k, _from_json(v, arrays))
    f.transform_ = tuple(tuple(s) if isinstance(s, list) else s for s in f.transform_)
    f.panel_ = None
    if header.get("panel") is not None:
        _load_panel(f, header["panel"], arrays)
    # files written before they existed (update() then asks for a refit)
    for k in ("residuals_", "backtest_scores_", "_raw_tail", "_raw_exog"):
        if not hasattr(f, k):
            setattr(f, k, None)
    if f.backtest_scores_ is not None:
        f.backtest_scores_ = dict(f.backtest_scores_)
    f._index = _index_from_header(header["index"])
    models = []
    for i, sub in enumerate(header["models"]):
        cls_name = sub.get("class")
        if cls_name not in _FORECASTER_MODELS:
            raise FileFormatError(f"unknown forecaster model class {cls_name!r}.")
        cls = getattr(_forecaster, cls_name)
        models.append(_load_estimator(sub, arrays, device, prefix=f"models/{i}/", cls=cls))
    f.regressors_ = models
    return f


def save(model, path):
    """Write a fitted estimator or a ``numrnn.nn`` network to ``path`` (an ``.npz`` file).

    Parameters
    ----------
    model : RNNRegressor, RNNClassifier, RNNForecaster (fitted or not), or numrnn.nn.RNN / LSTM / GRU
    path : str, os.PathLike or a binary file object
        Written as given (no extension is added); replaced atomically, keeping an existing
        file's mode (a new file gets the umask's) and writing through a symlink.
    """
    from numrnn.estimators._base import BaseRNN
    from numrnn.forecasting import RNNForecaster
    from numrnn.nn.network import RecurrentNetwork

    arrays: dict[str, np.ndarray] = {}
    header = {
        "format": "numrnn",
        "format_version": FORMAT_VERSION,
        "numrnn_version": _version(),
        "class": type(model).__name__,
    }
    if isinstance(model, RecurrentNetwork):
        header["kind"] = "network"
        header["network"] = _network_header(model, arrays, "network")
    elif isinstance(model, BaseRNN):
        if header["class"] not in _EST_CLASSES:
            raise TypeError(
                f"model must be an RNNRegressor or RNNClassifier, got a subclass "
                f"{header['class']}. Save the parent class's instance, or use pickle."
            )
        header["kind"] = "estimator"
        header.update(_estimator_header(model, arrays, ""))
    elif isinstance(model, RNNForecaster):
        header["kind"] = "forecaster"
        header.update(_forecaster_header(model, arrays))
    else:
        raise TypeError(
            f"model must be an RNNRegressor, RNNClassifier or a numrnn.nn network (or an "
            "RNNForecaster), got "
            f"{type(model).__name__}. Use pickle or joblib for other objects."
        )
    header["arrays"] = {k: [list(a.shape), a.dtype.str] for k, a in arrays.items()}
    blob = json.dumps(header, allow_nan=True)
    entries = {_HEADER: np.array(blob), **arrays}
    if hasattr(path, "write") and not isinstance(path, (str, os.PathLike)):
        np.savez(path, **entries)  # a binary file object, as load accepts
        return
    _write_atomic(os.fspath(path), lambda f: np.savez(f, **entries))


def _write_atomic(path: str, write) -> None:
    """Write through ``write(file)`` to a temporary file, then rename it over ``path``.

    Permissions are those a user expects of a saved file: an existing file keeps its mode
    (a model served by another user stays readable), a new one gets ``0o666`` less the
    umask, as ``np.save`` and ``open`` give it. A symlink is written through: its target is
    replaced and the link stays (as ``open(path, 'wb')`` would do).
    """
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"{path} is a directory. Pass a file name inside it, e.g. "
            f"{os.path.join(path, 'model.npz')}."
        )
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    for _ in range(100):
        tmp = os.path.join(folder, f".numrnn-{secrets.token_hex(8)}.npz")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 random names taken
        raise FileExistsError(f"cannot create a temporary file in {folder}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# -- load ---------------------------------------------------------------------------------
#: Largest JSON header read (a real one is a few kB; an estimator with long loss curves and
#: many labels stays far below).
_MAX_HEADER_BYTES = 64 << 20


def _damaged(where, exc):
    return FileFormatError(
        f"{where} is a damaged numrnn model file ({type(exc).__name__}: {exc}). It is "
        "truncated or corrupt: save the model again."
    )


def _open(path):
    """``(file object, size, where, owned)`` for a path or a binary file object."""
    if isinstance(path, (str, os.PathLike)):
        where = os.fspath(path)
        if os.path.isdir(where):
            raise IsADirectoryError(
                f"{where} is a directory, not a model file. Pass the path of a file written "
                "by numrnn.io.save."
            )
        f = open(where, "rb")  # FileNotFoundError / PermissionError propagate as they are
        return f, os.fstat(f.fileno()).st_size, where, True
    if not (hasattr(path, "read") and hasattr(path, "seek")):
        raise TypeError(
            f"path must be a str, os.PathLike or a binary file object, got "
            f"{type(path).__name__}. Pass a file name or open(name, 'rb')."
        )
    start = path.tell()
    size = path.seek(0, os.SEEK_END) - start
    path.seek(start)
    return path, size, repr(path), False


def _member_header(zf, info, size):
    """Shape and dtype from one member's .npy header, checked against the member's bytes
    before any array is allocated."""
    if info.file_size > size:
        raise FileFormatError(
            f"member {info.filename!r} claims {info.file_size} bytes in a {size}-byte file."
        )
    with zf.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise FileFormatError(f"member {info.filename!r} has .npy version {version}.")
        offset = fp.tell()
    if dtype.hasobject:
        raise FileFormatError(
            f"member {info.filename!r} holds Python objects (pickled data); numrnn.io never "
            "unpickles. The file was not written by numrnn.io.save."
        )
    nbytes = math.prod(shape) * dtype.itemsize
    if offset + nbytes > info.file_size:
        raise FileFormatError(
            f"member {info.filename!r} claims shape {tuple(shape)} of {dtype} ({nbytes} bytes) "
            f"but holds {info.file_size - offset} bytes."
        )
    return tuple(shape), dtype


def _read_member(zf, info):
    with zf.open(info) as fp:
        return np.lib.format.read_array(fp, allow_pickle=False)


def _read(path):
    f, size, where, owned = _open(path)
    try:
        return _read_archive(f, size, where)
    finally:
        if owned:
            f.close()


def _read_archive(f, size, where):
    start = f.tell()
    magic = f.read(6)
    f.seek(start)
    if magic == b"\x93NUMPY":
        raise FileFormatError(
            f"{where} is a single .npy array, not a numrnn model file. Pass a file written by "
            "numrnn.io.save."
        )
    try:
        zf = zipfile.ZipFile(f)
    except Exception as exc:  # not a zip: text, pickle, random bytes, a cut-off archive
        raise FileFormatError(
            f"{where} is not a numrnn model file: it is not an .npz archive "
            f"({type(exc).__name__}: {exc}). Pass a file written by numrnn.io.save; if it was, "
            "it is truncated or corrupt: save the model again."
        ) from None
    try:
        with zf:
            return _read_entries(zf, size, where)
    except FileFormatError as exc:
        msg = str(exc)
        raise FileFormatError(msg if msg.startswith(where) else f"{where}: {msg}") from None
    except Exception as exc:  # any failure of a damaged file (bit flips reach odd places)
        raise _damaged(where, exc) from None


def _read_entries(zf, size, where):
    infos = {}
    for info in zf.infolist():
        if not info.filename.endswith(".npy") or info.filename[:-4] in infos:
            raise FileFormatError(f"unexpected member {info.filename!r}.")
        if info.compress_type != zipfile.ZIP_STORED:  # a zip bomb cannot inflate
            raise FileFormatError(
                f"member {info.filename!r} is compressed; numrnn.io.save writes stored "
                "(uncompressed) members only, so the file was not written by it or was edited."
            )
        infos[info.filename[:-4]] = info
    if sum(i.file_size for i in infos.values()) > size:
        raise FileFormatError(f"its members claim more bytes than the file's {size}.")
    if _HEADER not in infos:
        raise FileFormatError(
            f"{where} is an .npz archive but not a numrnn model file (it has no "
            f"{_HEADER!r} header; entries: {sorted(infos)[:5]}). Pass a file written "
            "by numrnn.io.save."
        )
    meta = {k: _member_header(zf, info, size) for k, info in infos.items()}
    shape, dtype = meta[_HEADER]
    if shape != () or dtype.kind != "U" or dtype.itemsize > _MAX_HEADER_BYTES:
        raise FileFormatError(f"the {_HEADER!r} entry is not a JSON string.")
    header = json.loads(str(_read_member(zf, infos[_HEADER])[()]))
    if not isinstance(header, dict) or header.get("format") != "numrnn":
        raise FileFormatError(
            f"{where} has a {_HEADER!r} entry that is not a numrnn header. Pass a file written "
            "by numrnn.io.save."
        )
    fv = header.get("format_version")
    if not isinstance(fv, int) or fv > FORMAT_VERSION or fv < 1:
        raise FileFormatError(
            f"{where} has format version {fv!r} (written by numrnn "
            f"{header.get('numrnn_version')!r}); this numrnn ({_version()}) reads format "
            f"versions 1 to {FORMAT_VERSION}. Upgrade numrnn to load it."
        )
    listed = header.get("arrays", {})
    if not isinstance(listed, dict):
        raise FileFormatError("the header's array list is not a mapping.")
    names = set(infos) - {_HEADER}
    missing = sorted(set(listed) - names)
    extra = sorted(names - set(listed))
    if missing or extra:
        raise FileFormatError(
            f"{where} does not hold the arrays its header lists (missing {missing[:5]}, "
            f"unexpected {extra[:5]}); it is corrupt or was edited. Save the model again."
        )
    for k, (shape, dt) in listed.items():
        a_shape, a_dtype = meta[k]
        if list(a_shape) != list(shape) or a_dtype.str != dt:
            raise FileFormatError(
                f"{where}: array {k!r} has shape {a_shape} and dtype {a_dtype}, but the header "
                f"says {tuple(shape)} and {np.dtype(dt)}; the file is corrupt or was edited."
            )
    nets = [("network", header.get("network"))]
    models = header.get("models") if header.get("kind") == "forecaster" else None
    if isinstance(models, list):
        nets += [(f"models/{i}/network", m.get("network")) for i, m in enumerate(models)
                 if isinstance(m, dict)]  # fmt: skip
    extra = header.get("extra_models") if header.get("kind") == "estimator" else None
    if isinstance(extra, list):  # an ensemble's other networks (RNNClassifier n_models)
        nets += [(f"extra_models/{i}/network", m.get("network")) for i, m in enumerate(extra)
                 if isinstance(m, dict)]  # fmt: skip
    for prefix, net in nets:
        if not (isinstance(net, dict) and net.get("class") in _NET_CLASSES):
            continue
        try:
            _check_network_arrays(net, listed, prefix)
        except FileFormatError as exc:
            raise FileFormatError(
                f"{where} does not fit this numrnn ({_version()}; the file was written by "
                f"{header.get('numrnn_version')!r}): {exc}"
            ) from None
    arrays = {k: _read_member(zf, infos[k]) for k in listed}
    return header, arrays, where


def load(path, *, device=None):
    """Read a model written by :func:`save`.

    Parameters
    ----------
    path : str, os.PathLike or a binary file object
    device : {'cpu', 'cuda', 'auto'}, optional
        Where the loaded network runs (an estimator's ``device`` parameter is set to it).
        None: the device it was saved from when that is available here, else the CPU, so
        a model trained with ``device='cuda'`` loads on a CPU-only machine.

    Returns
    -------
    The estimator (fitted as it was saved) or the network; predictions are bit-identical.

    Raises
    ------
    FileFormatError
        Not a numrnn file, damaged, written by a newer format, or not matching this numrnn.
    """
    header, arrays, where = _read(path)
    try:
        if header.get("kind") == "network":
            return _build_network(header["network"], arrays, "network", device)
        if header.get("kind") == "estimator":
            return _load_estimator(header, arrays, device)
        if header.get("kind") == "forecaster":
            return _load_forecaster(header, arrays, device)
        raise FileFormatError(f"unknown kind {header.get('kind')!r}.")
    except FileFormatError as exc:
        raise FileFormatError(
            f"{where} does not fit this numrnn ({_version()}; the file was written by "
            f"{header.get('numrnn_version')!r}): {exc}"
        ) from None
    except Exception as exc:  # a crafted header reaches odd places: all of it is the file's fault
        raise FileFormatError(
            f"{where} does not fit this numrnn ({_version()}; the file was written by "
            f"{header.get('numrnn_version')!r}): {type(exc).__name__}: {exc}. Load it with "
            "the numrnn version that wrote it, or save the model again."
        ) from None


def _check_attribute_name(cls, name) -> None:
    """A header may restore fitted attributes only: ``name_`` or ``_name`` that the class
    does not define (no method, property or class attribute can be replaced)."""
    ok = (
        isinstance(name, str)
        and name.isidentifier()
        and not name.startswith("__")
        and (name.endswith("_") or name.startswith("_"))
        and not hasattr(cls, name)
        and name not in _SPECIAL
    )
    if not ok:
        raise FileFormatError(
            f"the header sets attribute {name!r}, which is not a fitted attribute of "
            f"{cls.__name__}; the file was edited or crafted."
        )


def _load_estimator(header, arrays, device=None, prefix="", cls=None):
    from numrnn import estimators
    from numrnn.nn.linear import Linear

    cls_name = header.get("class")
    if cls is None:
        if cls_name not in _EST_CLASSES:
            raise FileFormatError(
                f"unknown estimator class {cls_name!r}; expected one of {_EST_CLASSES}."
            )
        cls = getattr(estimators, cls_name)
    params = {k: _from_json(v, arrays) for k, v in header["params"].items()}
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise FileFormatError(f"parameters {unknown} are unknown to {cls_name} here.")
    est = cls(**params)
    for k, v in header["attrs"].items():
        _check_attribute_name(cls, k)
        setattr(est, k, _from_json(v, arrays))
    if "network" in header and not hasattr(est, "readout_"):
        # written before readout='auto' (and readout_) existed: the readout was the parameter
        est.readout_ = est.readout
    dev = _load_device(device, est.device)
    if dev != est.device:
        est.device = dev  # a refit runs where the model was loaded
    if "network" in header:
        est.network_ = _build_network(header["network"], arrays, prefix + "network", est.device)
        w, b = arrays[prefix + "head/weight"], arrays[prefix + "head/bias"]
        head = Linear(w.shape[1], w.shape[0], dtype=est.network_.dtype,
                      rng=np.random.default_rng(0))  # fmt: skip
        head.load_state_dict({"weight": w, "bias": b})
        est.head_ = head
        if hasattr(est, "_fitted_arch") and tuple(est._fitted_arch) != est._arch():
            raise FileFormatError(
                f"the saved architecture {est._fitted_arch} does not match the parameters "
                f"{est._arch()}."
            )
    if "rng" in header:
        r = header["rng"]
        rs = np.random.RandomState()
        rs.set_state((r["algorithm"], arrays[prefix + "rng/keys"], r["pos"], r["has_gauss"],
                      r["cached_gaussian"]))  # fmt: skip
        est._rng = rs
    if "optimizer" in header and hasattr(est, "network_"):
        o = header["optimizer"]
        opt = est._make_optimizer()
        if type(opt).__name__ != o["class"]:
            raise FileFormatError(f"optimizer {o['class']} does not match solver={est.solver!r}.")
        state = {"t": o["t"]}
        for buf in o["buffers"]:
            pre = f"{prefix}optimizer/{buf}/"
            state[buf] = {k[len(pre) :]: a for k, a in arrays.items() if k.startswith(pre)}
        opt.load_state_dict(state)
        est._optimizer = opt
    if "extra_models" in header:
        est.extra_models_ = [
            _load_estimator(sub, arrays, device, prefix=f"{prefix}extra_models/{i}/", cls=cls)
            for i, sub in enumerate(header["extra_models"])
        ]
    return est

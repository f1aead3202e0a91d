"""Save and load fitted estimators and bare networks without pickle.

The file is a NumPy ``.npz`` archive: every array under its own name, plus one
entry ``__numrnn__`` holding a JSON header (a unicode string) with

* ``format`` (``"numrnn"``), ``format_version`` and the writing ``numrnn_version``;
* ``kind`` (``"estimator"`` or ``"network"``) and ``class`` (``RNNRegressor``, ``LSTM``, ...);
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
import numbers
import os
import tempfile
import warnings
import zipfile
from collections import OrderedDict

import numpy as np

__all__ = ["FileFormatError", "save", "load", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_HEADER = "__numrnn__"
_NET_CLASSES = ("RNN", "LSTM", "GRU")
_EST_CLASSES = ("RNNRegressor", "RNNClassifier")
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
# Fitted attributes rebuilt from their own entries, not stored as plain values.
_SPECIAL = ("network_", "head_", "_optimizer", "_rng")


class FileFormatError(ValueError):
    """A file that is not a numrnn model, is damaged, or does not fit this numrnn."""


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
        "numbers, strings, lists and numeric or string arrays. Convert it to one of those, "
        "or use pickle/joblib for this model."
    )


def _from_json(value, arrays):
    if isinstance(value, list):
        return [_from_json(v, arrays) for v in value]
    if isinstance(value, dict):
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
    opts = {}
    if net.cell == "rnn":
        opts["nonlinearity"] = net.options["nonlinearity"]
    elif net.cell == "lstm":
        opts["peephole"] = bool(net.options.get("peephole", False))
        fb = net.options.get("forget_bias")
        opts["forget_bias"] = None if fb is None else float(fb)
    else:
        opts["reset_after"] = bool(net.options["reset_after"])
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


def _build_network(cfg, arrays, prefix, device=None):
    from numrnn.nn import network

    cls_name = cfg.get("class")
    if cls_name not in _NET_CLASSES:
        raise FileFormatError(
            f"unknown network class {cls_name!r}; expected one of {_NET_CLASSES}."
        )
    cls = getattr(network, cls_name)
    kwargs = dict(
        num_layers=cfg["num_layers"], bidirectional=cfg["bidirectional"],
        merge_mode=cfg["merge_mode"], dropout=cfg["dropout"], dtype=cfg["dtype"],
        device=device if device is not None else cfg["device"],
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


# -- save ---------------------------------------------------------------------------------
def save(model, path):
    """Write a fitted estimator or a ``numrnn.nn`` network to ``path`` (an ``.npz`` file).

    Parameters
    ----------
    model : RNNRegressor, RNNClassifier (fitted or not), or numrnn.nn.RNN / LSTM / GRU
    path : str or os.PathLike
        Written as given (no extension is added); replaced atomically.
    """
    from numrnn.estimators._base import BaseRNN
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
        params = model.get_params(deep=False)
        rs = params.get("random_state")
        if rs is not None and not isinstance(rs, numbers.Integral):
            warnings.warn(
                f"random_state={rs!r} is not an int and is saved as None; the fitted weights "
                "and the generators' states are saved exactly.",
                UserWarning,
                stacklevel=2,
            )
            params["random_state"] = None
        header["params"] = {k: _to_json(k, v, arrays) for k, v in params.items()}
        attrs = {}
        for k, v in model.__dict__.items():
            if k in params or k in _SPECIAL:
                continue
            attrs[k] = _to_json(k, v, arrays)
        header["attrs"] = attrs
        if hasattr(model, "network_"):
            header["network"] = _network_header(model.network_, arrays, "network")
            arrays["head/weight"] = model.head_.weight
            arrays["head/bias"] = model.head_.bias
        if hasattr(model, "_rng"):
            alg, keys, pos, has_gauss, cached = model._rng.get_state()
            arrays["rng/keys"] = keys
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
                    arrays[f"optimizer/{b}/{n}"] = a
    else:
        raise TypeError(
            f"model must be an RNNRegressor, RNNClassifier or a numrnn.nn network, got "
            f"{type(model).__name__}. Use pickle or joblib for other objects."
        )
    header["arrays"] = {k: [list(a.shape), a.dtype.str] for k, a in arrays.items()}
    blob = json.dumps(header, allow_nan=True)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".numrnn-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{_HEADER: np.array(blob)}, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# -- load ---------------------------------------------------------------------------------
def _read(path):
    where = os.fspath(path) if isinstance(path, (str, os.PathLike)) else repr(path)
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise FileFormatError(
            f"{where} is not a numrnn model file: NumPy cannot read it as an .npz archive "
            f"({type(exc).__name__}: {exc}). Pass a file written by numrnn.io.save; if it was, "
            "it is truncated or corrupt: save the model again."
        ) from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise FileFormatError(
            f"{where} is a single .npy array, not a numrnn model file. Pass a file written by "
            "numrnn.io.save."
        )
    try:
        with z:
            if _HEADER not in z.files:
                raise FileFormatError(
                    f"{where} is an .npz archive but not a numrnn model file (it has no "
                    f"{_HEADER!r} header; entries: {sorted(z.files)[:5]}). Pass a file written "
                    "by numrnn.io.save."
                )
            header = json.loads(str(z[_HEADER][()]))
            arrays = {k: z[k] for k in z.files if k != _HEADER}
    except FileFormatError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, UnicodeError) as exc:
        raise FileFormatError(
            f"{where} is a damaged numrnn model file ({type(exc).__name__}: {exc}). It is "
            "truncated or corrupt: save the model again."
        ) from None
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
    missing = sorted(set(listed) - set(arrays))
    extra = sorted(set(arrays) - set(listed))
    if missing or extra:
        raise FileFormatError(
            f"{where} does not hold the arrays its header lists (missing {missing[:5]}, "
            f"unexpected {extra[:5]}); it is corrupt or was edited. Save the model again."
        )
    for k, (shape, dt) in listed.items():
        a = arrays[k]
        if list(a.shape) != list(shape) or a.dtype.str != dt:
            raise FileFormatError(
                f"{where}: array {k!r} has shape {a.shape} and dtype {a.dtype}, but the header "
                f"says {tuple(shape)} and {np.dtype(dt)}; the file is corrupt or was edited."
            )
    return header, arrays, where


def load(path, *, device=None):
    """Read a model written by :func:`save`.

    Parameters
    ----------
    path : str, os.PathLike or a binary file object
    device : {'cpu', 'cuda', 'auto'}, optional
        For a bare network: build it here instead of on the device it was saved from.
        Estimators use their own ``device`` parameter.

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
            return _load_estimator(header, arrays)
        raise FileFormatError(f"unknown kind {header.get('kind')!r}.")
    except FileFormatError as exc:
        raise FileFormatError(
            f"{where} does not fit this numrnn ({_version()}; the file was written by "
            f"{header.get('numrnn_version')!r}): {exc}"
        ) from None
    except (KeyError, ValueError, TypeError) as exc:
        raise FileFormatError(
            f"{where} does not fit this numrnn ({_version()}; the file was written by "
            f"{header.get('numrnn_version')!r}): {type(exc).__name__}: {exc}. Load it with "
            "the numrnn version that wrote it, or save the model again."
        ) from None


def _load_estimator(header, arrays):
    from numrnn import estimators
    from numrnn.nn.linear import Linear

    cls_name = header.get("class")
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
        setattr(est, k, _from_json(v, arrays))
    if "network" in header:
        est.network_ = _build_network(header["network"], arrays, "network", est.device)
        w, b = arrays["head/weight"], arrays["head/bias"]
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
        rs.set_state((r["algorithm"], arrays["rng/keys"], r["pos"], r["has_gauss"],
                      r["cached_gaussian"]))  # fmt: skip
        est._rng = rs
    if "optimizer" in header and hasattr(est, "network_"):
        o = header["optimizer"]
        opt = est._make_optimizer()
        if type(opt).__name__ != o["class"]:
            raise FileFormatError(f"optimizer {o['class']} does not match solver={est.solver!r}.")
        state = {"t": o["t"]}
        for buf in o["buffers"]:
            pre = f"optimizer/{buf}/"
            state[buf] = {k[len(pre) :]: a for k, a in arrays.items() if k.startswith(pre)}
        opt.load_state_dict(state)
        est._optimizer = opt
    return est

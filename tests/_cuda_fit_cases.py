"""Run by ``tests/test_cuda.py`` in a subprocess with ``NUMBA_ENABLE_CUDASIM=1``: estimator
fits with ``device='cuda'`` (the fit that keeps data, parameters and optimizer state on the
device, ``numrnn.estimators._device``) against ``device='cpu'``, the training-step kernels
against their NumPy versions, and the count of host-to-device transfers per fit.

Prints one ``CASE <name> <error> <tolerance>`` line per check (pass: error <= tolerance).
Shapes are tiny and launches small (tile=4, threads=4): the simulator runs every GPU thread
as a Python thread.

Usage: ``python tests/_cuda_fit_cases.py NAME [NAME ...]`` (names from :data:`CASES`).
"""

from __future__ import annotations

import os
import sys
import warnings

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run with NUMBA_ENABLE_CUDASIM=1"

import numpy as np  # noqa: E402
from numba import cuda  # noqa: E402

from numrnn import RNNClassifier, RNNRegressor  # noqa: E402
from numrnn.backends import backend_options  # noqa: E402
from numrnn.kernels.cuda import train as KT  # noqa: E402
from numrnn.nn.clip import clip_grad_norm, clip_grad_value, global_grad_norm  # noqa: E402
from numrnn.nn.optim import SGD, Adam  # noqa: E402

warnings.simplefilter("ignore")  # ConvergenceWarning: two epochs are not meant to converge
# tile=4, threads=4, rows=2: several blocks and partial tiles even at these sizes; the time
# loop as the backend picks it by default (persistent when W_hh fits, one block here). Every
# case runs inside ``backend_options(cuda=LAUNCH)``, the public way to set them.
LAUNCH = {"tile": 4, "threads": 4, "rows": 2}


def report(name, err, tol):
    print(f"CASE {name} {err:.3e} {tol:.1e}", flush=True)


def _max_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _fitted(m, X, proba):
    """Everything a fit produces: weights, head, optimizer state, loss curve, predictions."""
    out = [m.coef_, m.intercept_, *m.network_.state_dict().values(), m.loss_curve_]
    st = m._optimizer.state_dict()
    for key, val in st.items():
        if isinstance(val, dict) and key != "hyperparameters":
            out.extend(val.values())
    out.append([st["t"]])
    out.append(m.predict_proba(X) if proba else m.predict(X))
    return out


def compare_fit(name, make, X, y, tol, proba=False, **fit_kw):
    res = []
    for device in ("cpu", "cuda"):
        m = make(device).fit(X, y, **fit_kw)
        res.append(_fitted(m, X, proba))
    report(name, max(_max_diff(a, b) for a, b in zip(*res, strict=True)), tol)


def _data(seed, n=5, T=4, F=2):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, T, F))
    X[1, 3:] = np.nan  # ragged: trailing NaN steps are padding
    X[2, 2:] = np.nan
    return X, rng


# ----------------------------------------------------------------------------- fits
def fit_reg_adam_f64():
    """LSTM regressor ('last'), Adam, value + norm clipping, sample weights, truncated BPTT
    in chunks of 3 (sequences end in both chunks), one epoch of 2 batches."""
    X, rng = _data(0)
    y = np.stack([X[:, 0, 0], X[:, 1, 1]], axis=1)
    sw = rng.uniform(0.5, 2.0, X.shape[0])

    def make(device):
        return RNNRegressor(
            cell="lstm", hidden_size=3, bptt_steps=3, max_iter=1, batch_size=3,
            learning_rate_init=0.05, clip_norm=0.5, clip_value=0.3, dtype="float64",
            random_state=0, device=device,
        )  # fmt: skip

    compare_fit("fit_reg_adam_f64", make, X, y, 1e-10, sample_weight=sw)


def fit_clf_sgd_f64():
    """Bidirectional GRU classifier (3 classes), SGD with Nesterov momentum, clipping."""
    X, rng = _data(1)
    y = np.array(["a", "b", "c", "a", "b"])

    def make(device):
        return RNNClassifier(
            cell="gru", hidden_size=2, bidirectional=True, solver="sgd", momentum=0.9,
            nesterovs_momentum=True, max_iter=1, batch_size=3, learning_rate_init=0.1,
            clip_norm=0.2, clip_value=0.1, dtype="float64", random_state=1, device=device, n_models=1,
        )  # fmt: skip

    compare_fit("fit_clf_sgd_f64", make, X, y, 1e-10, proba=True)


def fit_seq_tbptt_f32():
    """RNN classifier, output='sequence' with truncated BPTT (chunks of 2), float32, Adam."""
    X, rng = _data(2)
    y = (np.nan_to_num(X[:, :, 0]) > 0).astype(int)

    def make(device):
        return RNNClassifier(
            cell="rnn", hidden_size=3, output="sequence", bptt_steps=2, max_iter=1,
            batch_size=3, learning_rate_init=0.05, clip_norm=0.5, dtype="float32",
            random_state=2, device=device, n_models=1,
        )  # fmt: skip

    compare_fit("fit_seq_tbptt_f32", make, X, y, 1e-4, proba=True)


def fit_pooled_f64():
    """Pooled readouts on the device (numrnn.kernels.cuda.readout): a bidirectional LSTM
    regressor with readout='mean' and a GRU classifier with readout='max', ragged input."""
    X, rng = _data(3)
    y = X[:, 0, 0] + 0.5 * X[:, 1, 1]

    def make_mean(device):
        return RNNRegressor(
            cell="lstm", hidden_size=3, bidirectional=True, merge_mode="mul", readout="mean",
            max_iter=2, batch_size=3, learning_rate_init=0.05, dtype="float64", random_state=0,
            device=device,
        )  # fmt: skip

    def make_max(device):
        return RNNClassifier(
            cell="gru", hidden_size=3, readout="max", num_layers=2, max_iter=2, batch_size=3,
            learning_rate_init=0.05, dtype="float64", random_state=1, device=device,
            n_models=1,
        )  # fmt: skip

    compare_fit("fit_pooled_mean_f64", make_mean, X, y, 1e-10)
    compare_fit("fit_pooled_max_f64", make_max, X, (y > 0).astype(int), 1e-10, proba=True)


def fit_lifecycle():
    """partial_fit twice (optimizer state carried from one device session to the next),
    early stopping with the best weights restored, and a diverging warm-start fit that keeps
    the last good epoch: every result equals the CPU path's."""
    from numrnn.estimators._base import NonFiniteLossError

    X, rng = _data(6, n=6, T=3)
    y = np.nan_to_num(X[:, 0, 0]) * 0.5

    def run(device):
        kw = dict(cell="rnn", hidden_size=2, batch_size=3, dtype="float64", random_state=0,
                  device=device, max_iter=1)  # fmt: skip
        m = RNNRegressor(**kw)
        m.partial_fit(X, y)
        m.partial_fit(X, y)
        out = _fitted(m, X, False)
        e = RNNRegressor(**{**kw, "max_iter": 2}, early_stopping=True, validation_fraction=0.34,
                         learning_rate_init=0.3).fit(X, y)  # fmt: skip
        out += _fitted(e, X, False) + [e.validation_scores_, e.validation_loss_curve_]
        m.set_params(warm_start=True, learning_rate_init=1e300, max_iter=3, solver="sgd")
        try:
            m.fit(X, y * 1e300)
            out.append([1.0])  # no error: differs from the expected [kept epoch]
        except NonFiniteLossError as exc:
            out.append([exc.kept_epoch])
        return out + _fitted(m, X, False)

    cpu, dev = run("cpu"), run("cuda")
    err = max(_max_diff(a, b) for a, b in zip(cpu, dev, strict=True))
    # the fitted network's backend took its launch shape from backend_options
    fitted = RNNRegressor(cell="rnn", hidden_size=2, max_iter=1, device="cuda").fit(X, y)
    launch = {k: getattr(fitted.network_.backend, k) for k in LAUNCH}
    report("fit_lifecycle", err if launch == LAUNCH else np.inf, 1e-10)


# ----------------------------------------------------------------------------- transfers
class _TransferCounter:
    """Counts host-to-device copies: ``cuda.to_device``, host arrays handed to a kernel
    (copied in automatically) and ``copy_to_device`` from host memory."""

    def __init__(self):
        from numba.cuda.simulator import kernel as sim_kernel
        from numba.cuda.simulator.cudadrv import devicearray as sim_da

        self.n = 0
        counter = self
        real_to_device = cuda.to_device

        def to_device(*a, **k):
            counter.n += 1
            return real_to_device(*a, **k)

        cuda.to_device = to_device
        real_inout = sim_kernel.InOut

        class InOut(real_inout):
            def __init__(self, *a, **k):
                counter.n += 1
                super().__init__(*a, **k)

        sim_kernel.InOut = InOut
        real_copy = sim_da.FakeCUDAArray.copy_to_device

        def copy_to_device(self, ary, stream=0):
            if not isinstance(ary, sim_da.FakeCUDAArray):
                counter.n += 1
            return real_copy(self, ary, stream)

        sim_da.FakeCUDAArray.copy_to_device = copy_to_device


def transfers_per_fit():
    """Host-to-device transfers of a fit do not grow with epochs (or batches): 1 vs 3 epochs
    of 2 batches, with early stopping (validation predictions on the device)."""
    X, rng = _data(4)
    y = X[:, 0, 0].copy()
    counter = _TransferCounter()
    counts, models = [], []
    for epochs in (1, 3, 1):
        m = RNNRegressor(
            cell="rnn", hidden_size=2, max_iter=epochs, batch_size=2, early_stopping=True,
            validation_fraction=0.4, n_iter_no_change=50, clip_norm=1.0, dtype="float64",
            random_state=4, device="cuda",
        )  # fmt: skip
        before = counter.n
        m.fit(X, y)
        counts.append(counter.n - before)
        models.append(m)
    assert m.n_iter_ == 1 and models[1].n_iter_ == 3
    # count(3 epochs) - count(1 epoch): 0 when nothing is copied per epoch or batch
    report("transfers_per_fit", abs(counts[1] - counts[0]), 0)
    print(f"INFO transfers per fit {counts}", flush=True)
    # same seed, same data, same device: bit-identical
    a, b = models[0], models[2]
    same = all(
        np.array_equal(u, v)
        for u, v in zip(
            [a.coef_, *a.network_.state_dict().values(), a.loss_curve_],
            [b.coef_, *b.network_.state_dict().values(), b.loss_curve_],
            strict=True,
        )
    )
    report("device_fit_deterministic", 0.0 if same else 1.0, 0)


# ----------------------------------------------------------------------------- kernels
def _launch(kernel, n, *args):
    KT.launch1(kernel, n, 4, *args)


def kernels_vs_numpy():
    """Adam, SGD (plain, momentum, Nesterov, weight decay), value and norm clipping and the
    two-pass reduction against nn.optim / nn.clip. On the simulator the element-wise kernels
    are bit-identical to NumPy; the global norm sums in another order (float32: loosely)."""
    for dtn in ("float64", "float32"):
        worst = 0.0  # optimizer updates and moment buffers: exact
        dt = np.dtype(dtn)
        T = dt.type
        rng = np.random.default_rng(5)
        shapes = {"w": (3, 4), "b": (5,)}
        for opt_kind in ("adam", "adam_wd", "sgd", "sgd_mom", "sgd_nesterov_wd"):
            params = {k: rng.standard_normal(s).astype(dt) for k, s in shapes.items()}
            dev_p = {k: cuda.to_device(v) for k, v in params.items()}
            if opt_kind.startswith("adam"):
                opt = Adam(params, lr=0.01, betas=(0.8, 0.95), eps=1e-6,
                           weight_decay=0.1 if "wd" in opt_kind else 0.0)  # fmt: skip
            else:
                opt = SGD(params, lr=0.05, momentum=0.0 if opt_kind == "sgd" else 0.9,
                          nesterov="nesterov" in opt_kind,
                          weight_decay=0.1 if "wd" in opt_kind else 0.0)  # fmt: skip
            bufs = {
                b: {k: cuda.to_device(v) for k, v in opt._state[b].items()} for b in opt._buffers
            }
            for _ in range(3):
                grads = {k: rng.standard_normal(s).astype(dt) for k, s in shapes.items()}
                dev_g = {k: cuda.to_device(v) for k, v in grads.items()}
                opt.step(grads)
                for k in shapes:
                    p1, g1 = KT.flat(dev_p[k]), KT.flat(dev_g[k])
                    n = p1.shape[0]
                    if isinstance(opt, Adam):
                        b1, b2 = opt.betas
                        _launch(
                            KT._adam_kernel, n, p1, g1, KT.flat(bufs["exp_avg"][k]),
                            KT.flat(bufs["exp_avg_sq"][k]), opt.weight_decay != 0,
                            T(opt.weight_decay), T(1 - b1), T(b2), T(1 - b2),
                            T((1 - b2**opt.t) ** 0.5), T(opt.eps), T(opt.lr / (1 - b1**opt.t)),
                        )  # fmt: skip
                    else:
                        _launch(
                            KT._sgd_kernel, n, p1, g1, KT.flat(bufs["momentum_buffer"][k]),
                            T(opt.lr), opt.momentum != 0, T(opt.momentum),
                            opt.weight_decay != 0, T(opt.weight_decay), opt.nesterov,
                        )  # fmt: skip
            for k in shapes:
                worst = max(worst, _max_diff(dev_p[k].copy_to_host(), params[k]))
                for b in opt._buffers:
                    worst = max(worst, _max_diff(bufs[b][k].copy_to_host(), opt._state[b][k]))
        report(f"kernels_optim_{dtn}", worst, 0.0)
        # clipping: value then norm, as the estimators apply them
        grads = {k: (3 * rng.standard_normal(s)).astype(dt) for k, s in shapes.items()}
        dev_g = {k: cuda.to_device(v) for k, v in grads.items()}
        cv, max_norm = 1.5, 2.0
        part = cuda.device_array(8, dtype=dt)
        part_bad = cuda.device_array(8, dtype=np.int64)
        stats = cuda.device_array(2 * len(shapes), dtype=dt)
        for i, k in enumerate(shapes):
            _launch(KT._grad_stats_kernel, 8, KT.flat(dev_g[k]), T(cv), True, part, part_bad)
            KT._sum_partials_kernel[1, 1](part, stats, i)
            KT._sum_partials_kernel[1, 1](part_bad, stats, len(shapes) + i)
        st = stats.copy_to_host()
        clip_grad_value(grads, cv)
        norm_ref = global_grad_norm(grads)
        norm = float(np.sqrt(sum(float(st[i]) for i in range(len(shapes)))))
        report(
            f"clip_norm_{dtn}", abs(norm - norm_ref) / norm_ref, 1e-14 if dtn == "float64" else 1e-6
        )
        worst = float(np.abs(st[len(shapes) :]).max())  # no non-finite entries
        clip_grad_norm(grads, max_norm)
        coef = max_norm / (norm_ref + 1e-6)  # the reference norm: the kernel must be exact
        for k in shapes:
            g1 = KT.flat(dev_g[k])
            _launch(KT._clip_kernel, g1.shape[0], g1, T(cv), True, T(coef), coef < 1.0)
            worst = max(worst, _max_diff(dev_g[k].copy_to_host(), grads[k]))
        # a non-finite entry is counted before value clipping could hide it
        bad = np.array([1.0, np.inf, -2.0, np.nan], dtype=dt)
        _launch(KT._grad_stats_kernel, 8, cuda.to_device(bad), T(cv), True, part, part_bad)
        KT._sum_partials_kernel[1, 1](part_bad, stats, 0)
        worst = max(worst, abs(float(stats.copy_to_host()[0]) - 2.0))
        report(f"kernels_clip_{dtn}", worst, 0.0)


CASES = {
    f.__name__: f
    for f in (
        fit_reg_adam_f64,
        fit_clf_sgd_f64,
        fit_seq_tbptt_f32,
        fit_lifecycle,
        fit_pooled_f64,
        transfers_per_fit,
        kernels_vs_numpy,
    )
}

if __name__ == "__main__":
    with backend_options(cuda=LAUNCH):
        for n in sys.argv[1:]:
            CASES[n]()

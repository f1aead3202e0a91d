"""Run by ``tests/test_training_recipe.py`` in a subprocess with ``NUMBA_ENABLE_CUDASIM=1``:
fits with the recipe options the device fit gained last (``augment``, the 'last+mean+max'
readout, readout='auto' resolved at fit time) with ``device='cuda'`` against ``device='cpu'``.

The variants are drawn on the host by the same code for both devices, so the fits must agree
as closely as the device fit does without them (tests/_cuda_fit_cases.py). Prints one
``CASE <name> <error> <tolerance>`` line per check; tiny shapes and launches (the simulator
runs every GPU thread as a Python thread).
"""

from __future__ import annotations

import os
import warnings

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run with NUMBA_ENABLE_CUDASIM=1"

import numpy as np  # noqa: E402

from numrnn import RNNClassifier  # noqa: E402
from numrnn.backends import backend_options  # noqa: E402

warnings.simplefilter("ignore")  # ConvergenceWarning: two epochs are not meant to converge
LAUNCH = {"tile": 4, "threads": 4, "rows": 2}
AUG = {"shift": 0.3, "scale": 0.2, "jitter": 0.1}


def _data(seed, n=6, T=7, F=2):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, T, F))
    X[1, 4:] = np.nan  # ragged: trailing NaN steps are padding (a partial final segment)
    X[2, 3:] = np.nan
    return X


def _fitted(m, X, proba):
    out = [m.coef_, m.intercept_, *m.network_.state_dict().values(), m.loss_curve_, [m.t_]]
    out.append(m.predict_proba(X) if proba else m.predict(X))
    return out


def _max_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)))


def compare(name, make, X, y, tol, proba, readout):
    models = [make(device).fit(X, y) for device in ("cpu", "cuda")]
    res = [_fitted(m, X, proba) for m in models]
    # the readout the device fit ran: the parameter, or 'auto' resolved by folding
    print(f"CASE {name}_readout {0.0 if models[1].readout_ == readout else 1.0:.3e} 0.0e+00")
    err = max(_max_diff(a, b) for a, b in zip(*res, strict=True))
    # and the augmentation acted: the same fit without it (on the CPU: cheaper) differs
    plain = _fitted(make("cpu", augmented=False).fit(X, y), X, proba)
    moved = max(_max_diff(a, b) for a, b in zip(res[1], plain, strict=True))
    print(f"CASE {name} {err:.3e} {tol:.1e}", flush=True)
    print(f"CASE {name}_augmented {0.0 if moved > 1e-6 else 1.0:.3e} 0.0e+00", flush=True)


def main():
    X = _data(0)
    labels = np.array(["a", "b", "a", "b", "b", "a"])

    def clf(device, augmented=True):
        # segments of 2 (folded on the host after the variant is drawn), 2 passes an epoch
        # over the 4 training rows in minibatches of 3 (one stream: 8 rows, 3 minibatches),
        # early stopping (the validation rows are never augmented); the default readout,
        # 'auto', is 'last' on folded sequences
        return RNNClassifier(
            cell="gru", hidden_size=3, n_models=1, segment_length=2,
            augment=dict(AUG, variants=2) if augmented else None,
            max_iter=2, batch_size=3, early_stopping=True, validation_fraction=0.34,
            n_iter_no_change=50, learning_rate_init=0.05, dtype="float64", random_state=0,
            device=device,
        )  # fmt: skip

    def lmm(device, augmented=True):
        # the three readouts side by side (the head reads three column blocks), bidirectional
        # with merge 'sum' (the 'last' part merges two directions), two layers
        return RNNClassifier(
            cell="lstm", hidden_size=3, n_models=1, bidirectional=True, merge_mode="sum",
            num_layers=2, readout="last+mean+max", segment_length=2,
            augment=AUG if augmented else None, max_iter=1, batch_size=4,
            learning_rate_init=0.05, dtype="float64", random_state=2, device=device,
        )  # fmt: skip

    compare("augment_clf_f64", clf, X, labels, 1e-10, True, "last")
    compare("readout_lmm_augment_f64", lmm, X, labels, 1e-10, True, "last+mean+max")


if __name__ == "__main__":
    with backend_options(cuda=LAUNCH):
        main()

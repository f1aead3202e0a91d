"""The training loop shared by :class:`RNNRegressor` and :class:`RNNClassifier`.

The estimators validate input, keep books and run the epoch loop; the mathematics lives in
``numrnn.nn``: the network, the readout (``nn.readout``), the minibatch's chunk loop
(``nn.bptt``), the update step (``nn.step``), the Linear head, losses and optimizers. One
minibatch runs on a host engine (``_host.HostEngine``, NumPy) or, with ``device='cuda'``, on
a device engine (``_device.DeviceFit``), behind the same ``nn.bptt`` loop and ``nn.step``.
See DESIGN.md §1-3.

Readout
-------
``output='last'``: the head reads one feature row per sequence, ``readout``: ``'last'``, the
*final state of each direction* of the top layer (forward: the state at each sequence's last
valid step, i.e. ``h_n``; reverse: the state after reading back to step 0, ``h_n`` of the
reverse direction), merged like the layer outputs (``merge_mode``) -- not ``out[:, -1]``,
which for the reverse direction has seen one step only; ``'mean'`` / ``'max'``, the top
layer's output pooled over the valid steps. ``output='sequence'``: the head reads every
valid step.

Truncated BPTT (``bptt_steps=k``)
---------------------------------
See :mod:`numrnn.nn.bptt`: chunks of ``k`` steps, the state carried detached, an update after
every chunk. With ``output='last'`` a sample's loss is taken in the chunk holding its last
valid step, so the gradient reaches back at most ``k`` steps from the end of each sequence.
Truncation runs forward in time, so it is not defined for a reverse direction: ``bptt_steps``
with ``bidirectional=True`` is rejected, and so is ``bptt_steps`` with a pooled readout
(the pool would span chunks whose gradient is cut).

Loss and regularisation
-----------------------
Mean squared error (regression) or softmax cross-entropy (classification), averaged over
samples (``output='last'``) or valid steps (``output='sequence'``), weighted by
``sample_weight``. ``alpha`` is an L2 penalty ``0.5 * alpha * ||W||^2`` on every weight
matrix/vector (network weights, peepholes and the head's weight, not biases), i.e. weight
decay ``alpha * W`` added to the gradient (PyTorch's ``weight_decay``, not divided by the
batch size as MLP's). ``loss_curve_`` includes the penalty.

Failures
--------
* A non-finite loss or gradient stops training at once with :class:`NonFiniteLossError`.
  The estimator keeps the last good weights: those after the last finished epoch (with
  ``early_stopping``, the ones with the best validation score), or, when no epoch finished,
  the model it had before the call (a first ``fit`` stays unfitted).
* ``KeyboardInterrupt`` (Ctrl-C) during ``fit``: like scikit-learn's MLP, training stops,
  a ``UserWarning`` says so and ``fit`` *returns* the model as it was after the last
  finished epoch (weights, optimizer, RNG and ``loss_curve_`` all restored; with
  ``early_stopping`` the best weights), so a later ``warm_start`` fit continues exactly.
  When no epoch had finished there is nothing to return: the model is left as before the
  call and the ``KeyboardInterrupt`` propagates.
* ``predict`` never keeps per-step gates: it runs without gradients, and a unidirectional
  network with ``output='last'`` carries only its state through time chunks, so memory is
  O(batch x chunk), not O(T).
"""

from __future__ import annotations

import copy
import numbers
import time
import warnings
from collections import OrderedDict

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from numrnn._threads import numrnn_blas_threads
from numrnn._validation import (
    PARAMETERS,
    check_dtype,
    check_param,
    check_real_input,
    check_sequences,
)

# The primitives under the names the estimators' code has used (a parameter of one estimator
# only may use them; shared parameters belong in the table).
from numrnn._validation import check_bool as _check_bool  # noqa: F401
from numrnn._validation import check_float as _check_real_param  # noqa: F401
from numrnn._validation import check_option as _check_choice  # noqa: F401
from numrnn._validation import fail as _fail
from numrnn.cells import CELLS
from numrnn.estimators._host import HostEngine, carry_state, state_rows
from numrnn.estimators._progress import Progress
from numrnn.exceptions import InvalidParameterError, NonFiniteLossError
from numrnn.nn.augment import augment_sequences, feature_moments, resolve_augment
from numrnn.nn.bptt import run_minibatch
from numrnn.nn.linear import Linear
from numrnn.nn.network import NETWORKS
from numrnn.nn.optim import SGD, Adam
from numrnn.nn.readout import readout_forward, readout_size, resolve_readout
from numrnn.nn.schedules import LearningRateSchedule
from numrnn.nn.segments import fold_segments, resolve_segment_length
from numrnn.nn.step import apply_update, penalty

#: ``batch_size='auto'`` is ``min(AUTO_BATCH_SIZE, n_samples)``: see the estimators' docstring.
AUTO_BATCH_SIZE = 32


_PREDICT_BATCH = 1024


#: A batch of :meth:`BaseRNN._forward_predict` may hold this many padded steps whatever its
#: padding; beyond it, at most as many padded as valid steps (see :func:`length_batches`).
_PREDICT_PADDED_STEPS = 1 << 15


def length_batches(
    lengths: np.ndarray,
    max_rows: int = _PREDICT_BATCH,
    padded_steps: int = _PREDICT_PADDED_STEPS,
) -> list[np.ndarray]:
    """Sample indices in batches formed by length, for inference.

    The samples are sorted by length (a stable sort: ties keep input order, so the batches
    depend on the lengths only and are the same run to run) and cut greedily: a batch takes
    the next (longer or equal) sample while it holds fewer than ``max_rows`` samples and,
    padded to that sample's length, either at most ``padded_steps`` steps or at most twice
    its valid steps. Padding is then bounded by the data (plus one small batch): a 50 000-step
    sequence among 10-step ones runs alone, equal lengths make batches of ``max_rows``.

    Parameters
    ----------
    lengths : int array (n,)
        Valid steps per sample.
    max_rows : int
        Samples per batch at most.
    padded_steps : int
        Padded steps (rows x longest) a batch may hold however wasteful its padding.

    Returns
    -------
    list of int arrays
        Indices into ``lengths``; together a permutation of ``range(n)``.
    """
    order = np.argsort(lengths, kind="stable")
    sorted_len = np.asarray(lengths, dtype=np.int64)[order]
    valid = np.concatenate([[0], np.cumsum(sorted_len)])
    batches, a, n = [], 0, order.shape[0]
    while a < n:
        j = np.arange(a, min(n, a + max_rows))
        padded = (j - a + 1) * sorted_len[j]
        fits = (padded <= padded_steps) | (padded <= 2 * (valid[j + 1] - valid[a]))
        fits[0] = True  # a sample always fits alone
        b = a + (int(np.argmin(fits)) if not fits.all() else fits.shape[0])
        batches.append(order[a:b])
        a = b
    return batches


class BaseRNN(BaseEstimator):
    """Common parameters, validation and the training loop (not for direct use)."""

    _is_classifier = False

    def __init__(
        self,
        cell="lstm",
        hidden_size=64,
        *,
        num_layers=1,
        bidirectional=False,
        merge_mode="concat",
        nonlinearity="tanh",
        peephole=False,
        reset_after=True,
        dropout=0.0,
        output="last",
        readout="last",
        bptt_steps=None,
        clip_norm=1.0,
        clip_value=None,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="adaptive",
        learning_rate_init=0.001,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        validation_split="random",
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        segment_length="auto",
        augment=None,
        dtype="float32",
        device="cpu",
    ):
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.merge_mode = merge_mode
        self.nonlinearity = nonlinearity
        self.peephole = peephole
        self.reset_after = reset_after
        self.dropout = dropout
        self.output = output
        self.readout = readout
        self.bptt_steps = bptt_steps
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.validation_split = validation_split
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.segment_length = segment_length
        self.augment = augment
        self.dtype = dtype
        self.device = device

    # -- validation ---------------------------------------------------------------------
    def _validate_hyperparameters(self):
        """Every parameter against its entry of the table ``numrnn._validation.PARAMETERS``,
        then the rules that join two of them."""
        for name in self._get_param_names():
            if name in PARAMETERS:
                check_param(name, getattr(self, name))
        if self.readout not in ("last", "auto") and self.output != "last":
            _fail(
                "readout",
                "'last' or 'auto' when output='sequence'",
                self.readout,
                "A pooled readout makes one prediction per sequence: set output='last', or "
                "readout='last' for per-step predictions.",
            )
        if self.bptt_steps is not None and self.readout not in ("last", "auto"):
            raise InvalidParameterError(
                f"bptt_steps must be None when readout={self.readout!r}, got bptt_steps="
                f"{self.bptt_steps!r}: a pooled readout spans every chunk of a sequence while "
                "truncated BPTT cuts the gradient between chunks. Set bptt_steps=None (full "
                "BPTT) or readout='last'."
            )
        if self.bptt_steps is not None and self.bidirectional:
            raise InvalidParameterError(
                f"bptt_steps must be None when bidirectional=True, got bptt_steps="
                f"{self.bptt_steps!r}: truncated BPTT carries the state forward in time and is "
                "not defined for the reverse direction. Set bptt_steps=None (full BPTT) or "
                "bidirectional=False."
            )
        if self.output == "sequence" and self.segment_length not in (None, "auto", 1):
            raise InvalidParameterError(
                f"segment_length must be None or 'auto' when output='sequence', got "
                f"segment_length={self.segment_length!r}: a segment has one output, not one per "
                "step. Set segment_length=None, or output='last'."
            )
        if (
            self.output == "sequence"
            and isinstance(self.augment, dict)
            and self.augment.get("shift", 0)
        ):
            _fail(
                "augment",
                "a dict with shift 0 when output='sequence'",
                self.augment,
                "A time shift would move the inputs against their per-step targets: drop "
                "'shift', or use output='last'.",
            )

    def _validate_X(self, X, *, reset, pad=True, fold=True):
        """Return (padded (n, T, F) array, lengths, was_ragged); with ``pad=False`` a ragged
        list stays a list of (T_i, F) arrays (for :meth:`_forward_predict`); with
        ``fold=False`` the steps are not folded into segments.

        Two input conventions, as a scikit-learn user expects:

        * 2-D X (arrays, DataFrames) is a table whose columns are the time steps, one
          feature each: ``n_features_in_`` (and ``feature_names_in_`` for a DataFrame) are
          its columns, and later 2-D input must have the same columns, as for every
          scikit-learn estimator (a scaler in a Pipeline needs that anyway).
        * 3-D X (n_samples, n_timesteps, n_features) and ragged lists: ``n_features_in_`` is
          the number of features per step; sequences may have any length.

        Trailing all-NaN steps are padding in both. With segments (``segment_length_ > 1``,
        fixed by the first fit) the returned array and lengths are the folded ones
        (:func:`numrnn.nn.segments.fold_segments`).
        """
        if X is None:
            raise ValueError(
                "X must be an array (n_samples, n_timesteps, n_features), a 2-D array "
                "(n_samples, n_timesteps) or a list of sequences, got None. Pass the input data."
            )
        check_real_input("X", X)  # complex, masked, dates, pd.NA, dict/str/generator
        ragged = False
        if isinstance(X, (list, tuple)):
            if len(X) == 0:
                raise ValueError(
                    "X is empty: got a list of 0 sequences. Pass at least one sequence."
                )
            ragged = not _rectangular(X)
            if not ragged:
                X = np.asarray(X)
        ndim = None if ragged else (X.ndim if hasattr(X, "ndim") else np.asarray(X).ndim)
        if ndim is not None and ndim < 2 and not hasattr(X, "tocsr"):
            raise ValueError(
                "X must be 3-D (n_samples, n_timesteps, n_features), 2-D (n_samples, "
                f"n_timesteps) or a list of sequences, got a {ndim}-D array of shape "
                f"{np.shape(X)}. Reshape your data: X.reshape(1, -1) if it is one sequence "
                "of one feature, X.reshape(-1, 1) if it is many one-step sequences."
            )
        step_features = None if reset else self._n_step_features
        if ndim is not None and ndim <= 2:
            # Tabular input: scikit-learn's own validation (sparse, complex, 1-D, object
            # dtype, column count and names), then the sequence checks below.
            if reset or self._fit_ndim == 2:
                X = validate_data(
                    self, X, reset=reset, dtype="numeric", ensure_all_finite="allow-nan"
                )
            else:
                X = check_array(X, dtype="numeric", ensure_all_finite="allow-nan")
            if reset:
                self._fit_ndim = 2
        else:
            if not ragged:
                X = np.asarray(X)
                if X.dtype == object:
                    try:
                        X = X.astype(np.float64)
                    except TypeError as exc:
                        raise TypeError(
                            f"X must contain numbers; {exc}. Convert objects to numbers first."
                        ) from None
                    except ValueError:
                        pass  # strings: check_sequences explains
            if reset:
                self._fit_ndim = 3
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
        Xp, lengths = check_sequences(
            X,
            n_features=step_features,
            dtype=check_dtype(self.dtype),
            allow_2d=True,
            nan_padding=True,
            pad=pad or not ragged,
        )
        if reset:
            self._n_step_features = int((Xp[0] if isinstance(Xp, list) else Xp).shape[-1])
            if self._fit_ndim == 3:
                self.n_features_in_ = self._n_step_features
            # fixed by the first fit, like the number of features: later X is folded alike
            self.segment_length_ = (
                1
                if self.output == "sequence"
                else resolve_segment_length(self.segment_length, int(lengths.max()))
            )
            # 'auto' by folding, next to the segment length it follows (nn.readout)
            self.readout_ = self._resolved_readout()
        if fold:
            Xp, lengths = fold_segments(Xp, lengths, getattr(self, "segment_length_", 1))
        return Xp, lengths, ragged

    def _resolved_readout(self) -> str:
        """``readout`` as the readout of a fit with this ``segment_length_``
        (:func:`numrnn.nn.readout.resolve_readout`)."""
        return resolve_readout(
            self.readout,
            getattr(self, "segment_length_", 1),
            pooled_ok=self.output == "last" and self.bptt_steps is None,
        )

    def _validate_sample_weight(self, sample_weight, n):
        if sample_weight is None:
            return None
        if isinstance(sample_weight, numbers.Number):
            sw = np.full(n, float(sample_weight))
        else:
            check_real_input("sample_weight", sample_weight)
            try:
                sw = np.asarray(sample_weight, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(
                    "sample_weight must hold numbers, got "
                    f"{np.asarray(sample_weight).dtype} values. Pass a float array."
                ) from None
        if sw.ndim != 1 or sw.shape[0] != n:
            raise ValueError(
                f"sample_weight must be 1-D with one weight per sample ({n}), got shape "
                f"{sw.shape}. Pass an array of shape (n_samples,)."
            )
        counts = {
            "NaN": int(np.isnan(sw).sum()),
            "infinite": int(np.isinf(sw).sum()),
            "negative": int((sw < 0).sum()),
        }
        if any(counts.values()):
            found = ", ".join(f"{c} {what}" for what, c in counts.items() if c)
            first = int(np.argmax(~np.isfinite(sw) | (sw < 0)))
            raise ValueError(
                f"sample_weight must hold finite, non-negative numbers, got {found} (first at "
                f"sample {first}: {sw[first]!r}). Remove or fix those weights."
            )
        if sw.sum() <= 0:
            raise ValueError(
                "sample_weight must have a positive sum, got all zeros. "
                "Give at least one sample a positive weight."
            )
        return sw

    def _seq_mask(self, lengths, T):
        return np.arange(T)[None, :] < lengths[:, None]

    # -- model construction -------------------------------------------------------------
    def _arch(self):
        return (
            self.cell,
            self.hidden_size,
            self.num_layers,
            bool(self.bidirectional),
            self.merge_mode,
            self.nonlinearity,
            bool(self.peephole),
            bool(self.reset_after),
            self.output,
            check_dtype(self.dtype).name,
            self._n_step_features,
            self.n_outputs_,
        )

    def _build(self, rng):
        """Create ``network_`` and ``head_`` from the estimator's RNG."""
        seed = int(rng.randint(np.iinfo(np.int32).max))
        gen = np.random.default_rng(seed)
        kwargs = dict(
            num_layers=self.num_layers,
            bidirectional=bool(self.bidirectional),
            merge_mode=self.merge_mode,
            dropout=float(self.dropout),
            dtype=check_dtype(self.dtype),
            random_state=gen,
            device=self.device,
        )
        # the cell's own options (numrnn.cells registry) that the estimator has as parameters
        own = self._get_param_names()
        kwargs.update(
            (name, getattr(self, name)) for name in CELLS[self.cell].option_names if name in own
        )
        input_size = self._n_step_features * getattr(self, "segment_length_", 1)
        self.network_ = NETWORKS[self.cell](input_size, self.hidden_size, **kwargs)
        self.head_ = Linear(
            readout_size(self.readout_, self.network_.layer_output_size),
            self.n_outputs_,
            dtype=check_dtype(self.dtype),
            rng=gen,
        )
        self._fitted_arch = self._arch()

    def _all_params(self):
        p = OrderedDict(self.network_.parameters())
        p["head.weight"] = self.head_.weight
        p["head.bias"] = self.head_.bias
        return p

    def _make_optimizer(self):
        params = self._all_params()
        if self.solver == "adam":
            return Adam(
                params,
                lr=self.learning_rate_init,
                betas=(self.beta_1, self.beta_2),
                eps=self.epsilon,
            )
        return SGD(
            params,
            lr=self.learning_rate_init,
            momentum=self.momentum,
            nesterov=bool(self.nesterovs_momentum and self.momentum > 0),
        )

    def _snapshot(self):
        dev = getattr(self, "_dev", None)
        if dev is not None:  # a device fit: a device-to-device copy
            return dev.snapshot()
        return {"network": self.network_.state_dict(), "head": self.head_.state_dict()}

    def _restore(self, snap):
        dev = getattr(self, "_dev", None)
        if dev is not None:
            dev.restore(snap)
            return
        self.network_.load_state_dict(snap["network"])
        self.head_.load_state_dict(snap["head"])

    _PROGRESS = ("n_iter_", "t_", "best_loss_", "best_validation_score_", "_no_improvement_count")
    _CURVES = ("loss_curve_", "validation_loss_curve_", "validation_scores_")

    def _save_progress(self, weights=None):
        """Everything an epoch changes: weights, optimizer, RNGs and bookkeeping.

        ``weights``: a :meth:`_snapshot` of the current weights already taken (the epoch's
        best), shared instead of copied again (snapshots are only read, never written).
        """
        return {
            "weights": self._snapshot() if weights is None else weights,
            "optimizer": (
                self._dev.opt_snapshot()
                if getattr(self, "_dev", None) is not None
                else self._optimizer.state_dict()
            ),
            "rng": self._rng.get_state(),
            "net_rng": copy.deepcopy(self.network_._rng.bit_generator.state),
            "scalars": {k: getattr(self, k) for k in self._PROGRESS},
            "curves": {k: len(getattr(self, k)) for k in self._CURVES},
        }

    def _restore_progress(self, snap):
        self._restore(snap["weights"])
        if getattr(self, "_dev", None) is not None:
            self._dev.opt_restore(snap["optimizer"])
        else:
            self._optimizer.load_state_dict(snap["optimizer"])
        self._rng.set_state(snap["rng"])
        self.network_._rng.bit_generator.state = snap["net_rng"]
        for k, v in snap["scalars"].items():
            setattr(self, k, v)
        for k, n in snap["curves"].items():
            del getattr(self, k)[n:]
        self.network_.train()

    @property
    def coef_(self):
        """Weight of the linear head, shape (n_outputs, network output size)."""
        check_is_fitted(self, "head_")
        return self.head_.weight

    @property
    def intercept_(self):
        """Bias of the linear head, shape (n_outputs,)."""
        check_is_fitted(self, "head_")
        return self.head_.bias

    # -- forward helpers ----------------------------------------------------------------
    def _final_state_chunked(self, xb, lb):
        """Final state of a unidirectional network, run in time chunks without gradients.

        Only the state is carried from chunk to chunk, so memory is O(batch * chunk), not
        O(batch * T): a 10^5-step sequence predicts in bounded memory. Rows that have ended
        are left out of later chunks and keep their state (as in truncated BPTT). ``xb`` is
        a padded batch or a list of sequences (:func:`_rows_slice` pads each chunk alone).
        """
        net = self.network_
        C = int(net.inference_chunk)
        if not isinstance(xb, list) and xb.shape[1] <= C:
            # one chunk holding every row (each has a step: predict's lengths are >= 1): the
            # loop below would run this same call, plus 30 us of row bookkeeping (a sixth of
            # a one-step forecast). X was checked by predict (or built from checked data by a
            # forecaster): no check per batch. Steps past every length would change nothing.
            return net._inference_checked(xb, lb)[1]
        B, Tb = len(xb), int(lb.max())
        state = None
        for t0 in range(0, Tb, C):
            lc = np.clip(lb - t0, 0, C)
            idx = np.flatnonzero(lc > 0)
            la = lc[idx]
            _, h_n = net._inference_checked(
                _rows_slice(xb, idx, t0, t0 + int(la.max())), la, state_rows(state, idx)
            )
            state = carry_state(state, h_n, idx, B)
        return state

    def _last_outputs(self, xb, lb):
        """Head outputs (B, K) of one batch for ``output='last'``: network, readout, head.

        The one definition of a 'last' prediction: :meth:`_forward_predict` calls it per
        length batch, and the forecasters call it directly on a small batch of equal-length
        windows (no sorting, no BLAS thread limit), so both give the same bits.
        """
        net, head, readout = self.network_, self.head_, self.readout_
        if readout == "last" and net.num_directions == 1:
            out, h_n = None, self._final_state_chunked(xb, lb)
        else:
            Tb = int(lb.max())
            xin = _rows_slice(xb, np.arange(len(xb)), 0, Tb) if isinstance(xb, list) else xb
            out, h_n = net._inference_checked(xin, lb)
        feat, _ = readout_forward(
            readout, None if readout == "last" else out, h_n, lb,
            net.num_layers, net.num_directions, net.merge_mode,
        )  # fmt: skip
        return feat @ head.weight.T + head.bias

    def _forward_predict(self, Xp, lengths):
        """Head outputs for every sample: (n, K) for 'last', (n, T, K) for 'sequence'.

        Batches are formed by length (:func:`length_batches`): samples sorted by length
        (stably), cut so that a batch's padding stays small, run, and the outputs scattered
        back to input order. One long sequence among short ones therefore runs alone
        instead of padding its whole batch to its length, and memory follows the data.
        ``Xp`` may be a list of sequences (``_validate_X(..., pad=False)``): each batch is
        then padded on its own (a unidirectional 'last' readout pads each time chunk only),
        and 'sequence' returns a list of (T_i, K) arrays. A padded array and the same
        sequences as a list form the same batches, so every sample gets the same bits, and
        the same input gives the same bits run to run.

        Thread-safe: the network runs through ``_inference`` (no dropout, no gradients),
        which writes nothing of the network; nothing of the head is written either.
        """
        net, head = self.network_, self.head_
        ragged = isinstance(Xp, list)
        last = self.output == "last"
        n = len(Xp)
        result = [None] * n if ragged and not last else None
        with self._blas_threads():
            for idx in length_batches(lengths):
                lb = lengths[idx]
                Tb = int(lb.max())
                # the batch's own rows and steps only: a padded X is not copied past Tb
                xb = [Xp[i] for i in idx] if ragged else Xp[idx, :Tb]
                if last:
                    z = self._last_outputs(xb, lb)
                    if result is None:
                        result = np.empty((n, z.shape[1]), dtype=z.dtype)
                    result[idx] = z
                    continue
                xin = _rows_slice(xb, np.arange(len(xb)), 0, Tb) if ragged else xb
                out, _ = net._inference_checked(xin, lb)
                z = out @ head.weight.T + head.bias
                if ragged:
                    for j, i in enumerate(idx):
                        result[i] = z[j, : lb[j]]
                    continue
                if result is None:
                    result = np.zeros((n, Xp.shape[1], z.shape[2]), dtype=z.dtype)
                result[idx, :Tb] = z
        return result

    # -- training -----------------------------------------------------------------------
    def _loss(self, z, target, mask, weight):  # pragma: no cover - abstract
        raise NotImplementedError

    def _batch_size(self, n):
        if isinstance(self.batch_size, str):
            return min(AUTO_BATCH_SIZE, n)
        if self.batch_size > n:
            warnings.warn(
                f"batch_size={self.batch_size} is larger than the number of samples ({n}); "
                "it is clipped to the number of samples.",
                UserWarning,
                stacklevel=3,
            )
        return int(np.clip(self.batch_size, 1, n))

    def _current_penalty(self):
        """The L2 penalty's loss term for the current weights (``nn.step.penalty``)."""
        engine = getattr(self, "_dev", None) or getattr(self, "_engine", None)
        return penalty(engine or self._host_engine(), self.alpha)

    def _host_engine(self):
        """The engine of a CPU fit over the current network, head and optimizer."""
        return HostEngine(
            self.network_,
            self.head_,
            getattr(self, "_optimizer", None),
            self._all_params(),
            self._loss,
            per_step=self.output == "sequence",
            readout=self.readout_,
        )

    def _train_batch(self, Xp, lengths, Y, bi, wb, dev_rows=None):
        """One minibatch (rows ``bi``; ``dev_rows`` their device copy in a device fit): full
        or truncated BPTT (``nn.bptt``) with an update per chunk (``nn.step``), on the
        engine of the fit. Returns ``(weighted loss sum, weight sum)``."""
        dev = getattr(self, "_dev", None)
        aug = getattr(self, "_augmentation", None)
        # augment: a fresh variant of the rows, drawn on the host (one definition for both
        # engines: the same seed trains on the same variants on the CPU and the GPU)
        xb = None if aug is None else aug.batch(bi, self._rng, getattr(self, "segment_length_", 1))
        if dev is None:
            engine = self._engine
            if xb is None:
                xb = _rows_slice(Xp, bi, 0, int(lengths[bi].max()))
            engine.set_batch(xb, Y[bi])
        else:
            engine = dev
            dev.set_batch(dev_rows, xb)  # the variant is uploaded; targets stay on the device
        return run_minibatch(
            engine,
            lengths[bi],
            wb,
            bptt_steps=self.bptt_steps,
            per_step=self.output == "sequence",
            update=lambda grads: apply_update(
                engine,
                grads,
                alpha=self.alpha,
                clip_value=self.clip_value,
                clip_norm=self.clip_norm,
            ),
        )

    def _eval_loss(self, Xp, lengths, Y, sw, z=None):
        if z is None:
            z = self._forward_predict(Xp, lengths)
        if self.output == "sequence":
            z = z[:, : Y.shape[1]]
            loss, _ = self._loss(z, Y, self._seq_mask(lengths, Y.shape[1]), sw)
        else:
            loss, _ = self._loss(z, Y, None, sw)
        return loss + self._current_penalty()

    def _fit(self, X, y, sample_weight=None, *, incremental=False, classes=None):
        self._validate_hyperparameters()
        # A fit that fails (bad input, non-finite loss) leaves the previous model exactly as
        # it was: see _save_before_fit.
        saved = self._save_before_fit()
        try:
            reuse = hasattr(self, "network_") and (incremental or self.warm_start)
            # a ragged list stays unpadded: each minibatch is padded alone, to its longest
            # sequence, so memory follows the data ('sequence' pads the targets anyway)
            Xp, lengths, _ = self._validate_X(
                X, reset=not reuse, pad=self.output == "sequence", fold=False
            )
            # the augmentation works on the unfolded steps; the model reads them folded
            self._augmentation = _Augmentation.of(self, Xp, lengths)
            Xp, lengths = fold_segments(Xp, lengths, self.segment_length_)
            n = len(Xp)
            sw = self._validate_sample_weight(sample_weight, n)
            Y = self._prepare_y(
                y, Xp, lengths, incremental=incremental, classes=classes, sample_weight=sw
            )
            self.__dict__.pop("_was_interrupted", None)
            with self._blas_threads():
                self._fit_loop(Xp, lengths, Y, sw, incremental)
            if getattr(self, "_was_interrupted", False):
                # Ctrl-C: the other networks are not trained; a fresh fit drops the old ones
                if not (incremental or self.warm_start):
                    self.__dict__.pop("extra_models_", None)
            else:
                self._fit_extra_models(X, y, sample_weight, incremental, classes)
        except BaseException as exc:
            if isinstance(exc, _ExtraModelError):
                # one of the other networks failed: the whole ensemble goes back to the
                # model as it was before this fit, and the member's own error is raised
                self._restore_before_fit(saved)
                cause = exc.__cause__
                if isinstance(cause, NonFiniteLossError):
                    err = NonFiniteLossError(
                        f"{cause} (That was {exc}; the estimator as a whole keeps the model "
                        "it had before this fit.)"
                    )
                    err.kept_epoch = None
                    raise err from None
                raise cause from None
            kept = getattr(exc, "kept", None)
            if kept is None:
                # nothing of this fit is usable: back to the model as it was before it
                self._restore_before_fit(saved)
            if isinstance(exc, NonFiniteLossError):
                where = exc.args[0] if exc.args else "loss"
                what = "loss" if where == "loss" else f"gradient (of {where})"
                if kept is not None:
                    keeps = f"keeps the last good weights, {kept}"
                elif hasattr(self, "network_"):
                    keeps = "keeps the weights it had before this fit"
                else:
                    keeps = "stays unfitted (no epoch finished)"
                err = NonFiniteLossError(
                    f"Training diverged: a non-finite {what} in epoch "
                    f"{getattr(exc, 'epoch', '?')} (learning_rate_init="
                    f"{self.learning_rate_init!r}, clip_norm={self.clip_norm!r}). Training "
                    f"stopped and the estimator {keeps}. Lower learning_rate_init, set "
                    "clip_norm (e.g. 1.0), or scale X and y."
                )
                err.kept_epoch = getattr(exc, "kept_epoch", None)
                raise err from None
            raise
        finally:
            self.__dict__.pop("_augmentation", None)
        return self

    def _n_models(self) -> int:
        """Networks of the ensemble (``n_models``; 1 for estimators without it)."""
        return int(getattr(self, "n_models", 1))

    def _fit_extra_models(self, X, y, sample_weight, incremental, classes):
        """Train the other ``n_models - 1`` networks of the ensemble (``extra_models_``).

        Each is an estimator of this class with ``n_models=1`` and the same parameters, its
        ``random_state`` a seed drawn from ``random_state`` (as ``RNNForecaster`` draws its
        ``n_models`` seeds), so it differs in initialisation, shuffling and validation split.
        A warm start or ``partial_fit`` continues the stored ones.
        """
        n = self._n_models()
        if n == 1:
            self.__dict__.pop("extra_models_", None)
            return
        old = getattr(self, "extra_models_", None)
        reuse = (incremental or self.warm_start) and old is not None and len(old) == n - 1
        if reuse:
            models = old
        else:
            seeds = check_random_state(self.random_state).randint(0, 2**31 - 1, size=n - 1)
            models = [type(self)() for _ in seeds]
            for m, seed in zip(models, seeds, strict=True):
                m.random_state = int(seed)
        params = self.get_params(deep=False)
        params["n_models"] = 1
        unconverged = []
        for i, m in enumerate(models):
            m.set_params(**{**params, "random_state": m.random_state})
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ConvergenceWarning)
                    if incremental:
                        kw = {"classes": self.classes_} if self._is_classifier else {}
                        m.partial_fit(X, y, sample_weight=sample_weight, **kw)
                    else:
                        m.fit(X, y, sample_weight=sample_weight)
            except KeyboardInterrupt:
                # before its first epoch ended: the networks trained so far are the model
                warnings.warn(
                    f"Training interrupted by user (KeyboardInterrupt) in network {i + 2} of "
                    f"n_models={n}; the model keeps the {i + 1} network(s) trained before it.",
                    UserWarning,
                    stacklevel=4,
                )
                self._was_interrupted = True
                models = models[:i] if not reuse else models
                break
            except BaseException as exc:
                raise _ExtraModelError(i + 2, n) from exc
            for w in caught:  # one summary below instead of a warning per network
                if issubclass(w.category, ConvergenceWarning):
                    unconverged.append(i + 2)
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            if m.__dict__.pop("_was_interrupted", False):
                self._was_interrupted = True  # it keeps its last finished epoch: stop here
                models = models[: i + 1] if not reuse else models
                break
        if models:
            self.extra_models_ = models
        else:
            self.__dict__.pop("extra_models_", None)
        if unconverged:
            warnings.warn(
                f"Stochastic optimizer: networks {sorted(set(unconverged))} of n_models={n} "
                f"reached max_iter ({self.max_iter}) with the training loss still falling. "
                "Increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _ensemble_outputs(self, Xp, lengths, transform=None):
        """The mean over the ``n_models`` networks of ``transform(z)`` (``z``: the head's
        outputs, :meth:`_forward_predict`; a list of arrays for ragged 'sequence' output)."""
        one = transform or (lambda z: z)
        total = one(self._forward_predict(Xp, lengths))
        models = getattr(self, "extra_models_", None) or []
        for m in models:
            z = one(m._forward_predict(Xp, lengths))
            if isinstance(total, list):
                total = [a + b for a, b in zip(total, z, strict=True)]
            else:
                total = total + z
        if not models:
            return total
        k = total[0].dtype.type(len(models) + 1) if isinstance(total, list) else len(models) + 1
        if isinstance(total, list):
            return [a / k for a in total]
        return total / total.dtype.type(k)

    @classmethod
    def _init_names(cls):
        return set(cls._get_param_names())

    def _save_before_fit(self):
        """What :meth:`_restore_before_fit` needs to undo a failed fit, copied cheaply.

        A fit *rebinds* most fitted attributes (a fresh network, head, optimizer, RNG,
        curves and scalars), so a shallow copy of ``__dict__`` keeps the old objects. What
        it changes *in place* -- a warm start's or ``partial_fit``'s weights, optimizer
        moments, the two RNG states, the curves it appends to, the network's mode and last
        gradients -- is copied: one copy of the parameters and the optimizer state, not a
        deep copy of every object the model holds (3.4 ms of a 7.6 ms ``partial_fit`` of a
        hidden-32 LSTM, measured, before).
        """
        attrs = {k: v for k, v in self.__dict__.items() if k not in self._init_names()}
        inplace = {"curves": {k: list(attrs[k]) for k in self._CURVES if k in attrs}}
        net, head = attrs.get("network_"), attrs.get("head_")
        if net is not None and head is not None:
            inplace["network"] = net.state_dict()
            inplace["head"] = head.state_dict()
            inplace["head_grads"] = {k: v.copy() for k, v in head.grads.items()}
            inplace["net_mode"] = (net.training, net.grads, net.grad_state)
            inplace["net_rng"] = copy.deepcopy(net._rng.bit_generator.state)
        if attrs.get("_optimizer") is not None:
            inplace["optimizer"] = attrs["_optimizer"].state_dict()
        if isinstance(attrs.get("_rng"), np.random.RandomState):
            inplace["rng"] = attrs["_rng"].get_state()
        # an ensemble's other networks continue in place on a warm start / partial_fit
        inplace["extra_models"] = [m._save_before_fit() for m in attrs.get("extra_models_", ())]
        return attrs, inplace

    def _restore_before_fit(self, saved):
        """The model as :meth:`_save_before_fit` saw it (same objects, same values)."""
        attrs, inplace = saved
        for key in [k for k in self.__dict__ if k not in self._init_names()]:
            del self.__dict__[key]
        self.__dict__.update(attrs)
        for k, curve in inplace["curves"].items():
            setattr(self, k, curve)
        if "network" in inplace:
            net, head = self.network_, self.head_
            net.load_state_dict(inplace["network"])
            head.load_state_dict(inplace["head"])
            for k, g in inplace["head_grads"].items():
                head.grads[k][...] = g
            head._x = None
            net.training, net.grads, net.grad_state = inplace["net_mode"]
            net._cache = None
            net._rng.bit_generator.state = inplace["net_rng"]
        models = self.__dict__.get("extra_models_", ())
        for m, state in zip(models, inplace["extra_models"], strict=True):
            m._restore_before_fit(state)
        if "optimizer" in inplace:
            self._optimizer.load_state_dict(inplace["optimizer"])
        if "rng" in inplace:
            # a copy, as the old deep copy was: a RandomState the user passed as
            # random_state (the same object) is not rewound
            rng = np.random.RandomState()
            rng.set_state(inplace["rng"])
            self._rng = rng

    def _fit_loop(self, Xp, lengths, Y, sw, incremental):
        reuse = hasattr(self, "network_") and (incremental or self.warm_start)
        if reuse and self._fitted_arch != self._arch():
            raise ValueError(
                "warm_start=True (or partial_fit) needs the same architecture as the previous "
                f"fit; it changed from {self._fitted_arch} to {self._arch()}. Set "
                "warm_start=False to start afresh, or restore the previous parameters."
            )
        if reuse and self._resolved_readout() != self.readout_:
            raise ValueError(
                "warm_start=True (or partial_fit) needs the same readout as the previous fit "
                f"(readout_={self.readout_!r}), got readout={self.readout!r}, which is "
                f"{self._resolved_readout()!r} here. Set warm_start=False to start afresh, or "
                f"readout={self.readout_!r}."
            )
        if not reuse:
            self._rng = check_random_state(self.random_state)
            self._build(self._rng)
            self.loss_curve_ = []
            self.validation_loss_curve_ = []
            self.validation_scores_ = []
            self.best_loss_ = np.inf
            self.best_validation_score_ = None
            self.n_iter_ = 0
            self.t_ = 0
            self._no_improvement_count = 0
        elif not incremental:
            # warm start: MLP semantics, a fresh RNG stream and optimizer, same weights
            self._rng = check_random_state(self.random_state)
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
        else:
            self._optimizer.lr = self.learning_rate_init
        params = self._all_params()
        early = bool(self.early_stopping) and not incremental
        n = len(Xp)
        if early:
            tr, va = self._split_validation(n, Y)
            if self.best_validation_score_ is None:
                self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            tr, va = np.arange(n), None
            if self.best_loss_ is None:
                self.best_loss_ = np.inf
        Y = self._scale_fit_targets(Y, lengths, sw, tr, reuse)
        n_tr = tr.shape[0]
        bs = self._batch_size(n_tr)
        epochs = 1 if incremental else self.max_iter
        if reuse:
            self._head_to_training_units()
        try:
            if self.network_.backend.name == "cuda":
                # device='cuda': data, parameters and optimizer state go to the GPU once and
                # stay there until the end of this call (numrnn.estimators._device).
                from numrnn.estimators._device import DeviceFit

                if isinstance(Xp, list):  # the device holds the padded data, once
                    Xp = _rows_slice(Xp, np.arange(n), 0, int(lengths.max()))
                self._dev = DeviceFit(self, Xp, lengths, Y, sw, tr, va, epochs)
            else:
                self._engine = self._host_engine()
            self._epochs(Xp, lengths, Y, sw, tr, va, bs, epochs, early, reuse, incremental,
                         params)  # fmt: skip
        finally:
            self.__dict__.pop("_engine", None)
            dev = self.__dict__.pop("_dev", None)
            if dev is not None:
                dev.finish()
            self._head_to_user_units()
        self.head_._x = None  # drop the cached batch so the fitted model pickles small

    def _epoch_order(self, tr: np.ndarray, per_epoch: int) -> np.ndarray:
        """The training rows of one epoch in the order they are used: a permutation of
        ``tr`` (``shuffle``), or as many as make ``per_epoch`` rows, one after the other and
        the last one cut (``augment``: one stream of full minibatches, not a short minibatch
        at the end of every pass)."""
        n_tr = tr.shape[0]
        if per_epoch == n_tr:
            return self._rng.permutation(tr) if self.shuffle else tr
        passes = [
            self._rng.permutation(tr) if self.shuffle else tr for _ in range(-(-per_epoch // n_tr))
        ]
        return np.concatenate(passes)[:per_epoch]

    def _scale_fit_targets(self, Y, lengths, sw, rows, reuse):
        """The targets in the units the network trains in (regressor: scale_y, from the
        training ``rows`` only); as they are here."""
        return Y

    def _head_to_training_units(self):
        """Before a warm start: the head back in the units it is trained in (regressor)."""

    def _head_to_user_units(self):
        """After training: the head in the units ``predict`` returns (regressor)."""

    def _epochs(self, Xp, lengths, Y, sw, tr, va, bs, epochs, early, reuse, incremental, params):
        """The epoch loop of :meth:`_fit_loop` (on the device when ``self._dev`` is set).

        The monitored loss is the validation loss with ``early_stopping``, the training loss
        otherwise. It drives the stopping rule (no improvement by ``tol`` for more than
        ``n_iter_no_change`` epochs), the 'adaptive' schedule (which lowers the rate there
        instead of stopping, until its floor) and the weights kept at the end: those of the
        epoch with the lowest monitored loss of this call (``best_epoch_``), as Keras'
        ``restore_best_weights``. ``partial_fit`` runs one epoch at ``learning_rate_init``
        and keeps its weights.
        """
        dev = getattr(self, "_dev", None)
        n_tr = tr.shape[0]
        aug = getattr(self, "_augmentation", None)
        # samples per epoch: with augment, ``variants`` passes (each a fresh variant), cut
        # into full minibatches as one stream
        per_epoch = n_tr if aug is None else aug.epoch_samples(n_tr)
        best, best_monitored = None, np.inf
        schedule = LearningRateSchedule(
            "constant" if incremental else self.learning_rate, self.learning_rate_init, epochs
        )
        self._optimizer.lr = schedule.lr
        self.network_.train()
        converged = False
        # Weights, optimizer, RNG and bookkeeping after the last finished epoch of this call:
        # a KeyboardInterrupt or a non-finite loss falls back to them.
        last_good = self._save_progress() if reuse else None
        interrupted = False
        progress = None if incremental else Progress(int(self.verbose), epochs, early)
        first_epoch = self.n_iter_
        monitored_curve = self.validation_loss_curve_ if early else self.loss_curve_
        curve_start = len(monitored_curve)
        try:
            for _ in range(epochs):
                epoch = self.n_iter_ + 1  # the one this iteration runs, whatever fails in it
                try:
                    t0 = time.perf_counter()
                    total, wsum = 0.0, 0.0
                    order = self._epoch_order(tr, per_epoch)
                    order_dev = None if dev is None else dev.epoch_order(order)
                    for s in range(0, per_epoch, bs):
                        bi = order[s : s + bs]
                        wb = None if sw is None else sw[bi]
                        dev_rows = None if dev is None else order_dev[s : s + bs]
                        ls, ws = self._train_batch(Xp, lengths, Y, bi, wb, dev_rows)
                        total += ls * ws
                        wsum += ws
                    self.n_iter_ += 1
                    self.t_ += per_epoch
                    loss = total / wsum + self._current_penalty()
                    if not np.isfinite(loss):
                        raise NonFiniteLossError("loss")
                    self.loss_curve_.append(loss)
                    msg = f"Iteration {self.n_iter_}, loss = {loss:.8f}"
                    vloss = None
                    if early:
                        vsw = None if sw is None else sw[va]
                        # device: the validation predictions, computed once and copied back
                        zv = None if dev is None else dev.predict(dev.va, lengths[va])
                        Xva = [Xp[i] for i in va] if isinstance(Xp, list) else Xp[va]
                        vloss = self._eval_loss(Xva, lengths[va], Y[va], vsw, z=zv)
                        self.validation_loss_curve_.append(vloss)
                        score = self._score_encoded(Xva, lengths[va], Y[va], vsw, z=zv)
                        self.validation_scores_.append(score)
                        msg += f", validation loss = {vloss:.8f}, validation score = {score:.6f}"
                        self.best_validation_score_ = max(self.best_validation_score_, score)
                        monitored = vloss
                    else:
                        monitored = loss
                        self.best_loss_ = min(self.best_loss_, loss)
                    if monitored > best_monitored - self.tol:
                        self._no_improvement_count += 1
                    else:
                        self._no_improvement_count = 0
                    improved = monitored < best_monitored and not incremental
                    if improved:
                        best_monitored = monitored
                        best = self._snapshot()
                        self.best_epoch_ = self.n_iter_
                    if progress is not None:
                        progress.update(msg, loss, vloss, time.perf_counter() - t0)
                    elif self.verbose:
                        print(f"{msg} ({time.perf_counter() - t0:.2f}s)")
                    if incremental:
                        break
                    if self._no_improvement_count > self.n_iter_no_change:
                        self._no_improvement_count = 0
                        if schedule.on_plateau():
                            what = "Validation loss" if early else "Training loss"
                            progress.note(
                                f"{what} did not improve more than tol={self.tol} for "
                                f"{self.n_iter_no_change} consecutive epochs"
                                + (
                                    " at the lowest learning rate"
                                    if self.learning_rate == "adaptive"
                                    else ""
                                )
                                + ". Stopping."
                            )
                            converged = True
                            break
                    self._optimizer.lr = schedule.after_epoch(self.n_iter_ - first_epoch)
                except KeyboardInterrupt:
                    if last_good is None:
                        raise  # no epoch of this call finished: _fit restores the previous model
                    self._restore_progress(last_good)
                    interrupted = True
                    self._was_interrupted = True  # no further networks of an ensemble
                    warnings.warn(
                        f"Training interrupted by user (KeyboardInterrupt) during epoch "
                        f"{self.n_iter_ + 1}; the model keeps the weights of epoch "
                        f"{self.n_iter_}"
                        + (
                            f" (then those of epoch {self.best_epoch_}, with the best "
                            + ("validation loss)" if early else "training loss)")
                            if best is not None
                            else ""
                        )
                        + ". Call fit again with warm_start=True to continue.",
                        UserWarning,
                        stacklevel=5,
                    )
                    break
                except NonFiniteLossError as exc:
                    if last_good is not None:
                        self._restore_progress(last_good)
                        if best is not None:
                            self._restore(best)
                            exc.kept = f"those of epoch {self.best_epoch_} with the best " + (
                                "validation loss" if early else "training loss"
                            )
                            exc.kept_epoch = self.best_epoch_
                        else:
                            exc.kept = f"those of epoch {self.n_iter_}, the last finished epoch"
                            exc.kept_epoch = self.n_iter_
                    exc.epoch = epoch
                    raise
                # an improving epoch's weights are its best snapshot: one copy, not two
                last_good = self._save_progress(best if improved else None)
        finally:
            if progress is not None:
                progress.close()
        if best is not None:
            self._restore(best)
        elif incremental:
            self.best_epoch_ = self.n_iter_
        if not incremental and not converged and not interrupted:
            why = still_improving(
                monitored_curve[curve_start:], self.tol, self.n_iter_no_change, epochs
            )
            if why is not None:
                warnings.warn(
                    f"Stochastic optimizer: maximum iterations ({self.max_iter}) reached and "
                    f"the optimization hasn't converged yet ("
                    + ("validation" if early else "training")
                    + f" loss: {why}). Increase max_iter or tol.",
                    ConvergenceWarning,
                    stacklevel=5,
                )

    def _split_validation(self, n, Y):
        """(training rows, validation rows) of ``n`` for early stopping, both sorted.

        ``validation_split='last'`` holds out the last rows in the order given (time order
        for forecasting windows, whose overlapping neighbours a random split would leak into
        training); ``'random'`` draws them (stratified for a classifier of sequences).
        """
        from sklearn.model_selection import train_test_split

        idx = np.arange(n)
        n_val = int(np.ceil(n * self.validation_fraction))
        if n_val < 2 or n - n_val < 1:  # one validation sample has no usable score (R^2)
            raise ValueError(
                f"early_stopping=True with validation_fraction={self.validation_fraction} "
                f"leaves {n_val} validation and {n - n_val} training samples of {n}; it needs "
                "at least 2 validation samples and 1 training sample. Pass more samples, "
                "raise validation_fraction, or set early_stopping=False."
            )
        if self.validation_split == "last":
            return idx[: n - n_val], idx[n - n_val :]
        stratify = None
        if self._is_classifier and self.output == "last":
            stratify = Y
            counts = np.bincount(Y)
            if counts[counts > 0].min() < 2 or int(round(n * self.validation_fraction)) < len(
                counts[counts > 0]
            ):
                stratify = None
        tr, va = train_test_split(
            idx, test_size=self.validation_fraction, random_state=self._rng, stratify=stratify
        )
        return np.sort(tr), np.sort(va)

    def _blas_threads(self):
        """BLAS threads for the whole fit/predict, by the network's policy (numrnn._threads).

        Held around the head's NumPy matmuls too: both BLAS pools spin after each call and
        starve each other otherwise (DESIGN §4).
        """
        return numrnn_blas_threads()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.two_d_array = True
        tags.input_tags.allow_nan = False
        return tags


class _Augmentation:
    """The training data of one fit, unfolded, and what :meth:`batch` needs to draw a fresh
    variant of a minibatch (``numrnn.nn.augment``) and fold it as the model reads it."""

    def __init__(self, X, lengths, strengths: dict):
        self.X, self.lengths = X, lengths
        self.strengths = dict(strengths)
        # passes over the training set per epoch (numrnn.nn.augment.resolve_augment)
        self.variants = self.strengths.pop("variants")
        # the jitter's and scale's reference: each feature's moments over the valid steps
        self.center, self.spread = feature_moments(X, lengths)

    @classmethod
    def of(cls, est, X, lengths):
        """The augmentation of ``est``'s fit on ``X`` (unfolded), or None when it is off."""
        strengths = resolve_augment(
            est.augment,
            len(X),
            folded=getattr(est, "segment_length_", 1) > 1,
        )
        return None if strengths is None else cls(X, lengths, strengths)

    def epoch_samples(self, n_train: int) -> int:
        """Samples an epoch trains on: ``variants`` passes over ``n_train`` samples."""
        return self.variants * n_train

    def batch(self, rows, rng, segment_length: int) -> np.ndarray:
        """A variant of the samples ``rows``, padded and folded; its draws come from a
        generator seeded by one draw from ``rng`` (the estimator's RandomState, so a warm
        start after an interrupted fit continues the same stream)."""
        lb = self.lengths[rows]
        raw = _rows_slice(self.X, rows, 0, int(lb.max()))
        gen = np.random.default_rng(rng.randint(2**32, dtype=np.int64))
        # padded to whole segments: folding (numrnn.nn.segments) is then a reshape
        n_seg = -(-raw.shape[1] // segment_length)
        out = augment_sequences(
            raw, lb, gen, **self.strengths, center=self.center, spread=self.spread,
            n_steps=n_seg * segment_length,
        )  # fmt: skip
        return out.reshape(out.shape[0], n_seg, segment_length * out.shape[2])


class _ExtraModelError(Exception):
    """Raised from the fit of network ``i`` of ``n`` of an ensemble (the cause is its error)."""

    def __init__(self, i: int, n: int):
        super().__init__(f"network {i} of the n_models={n}")


def still_improving(curve, tol: float, n_iter_no_change: int, max_iter: int) -> str | None:
    """Why a run that reached ``max_iter`` has not converged, or None when it has.

    Not converged means the monitored loss was still falling: the lowest loss of the last
    ``window`` epochs is more than ``tol`` below the lowest before them (the stopping rule's
    test, over its patience). ``window`` is ``n_iter_no_change`` when the stopping rule could
    act within ``max_iter``, else (a fixed budget, e.g. ``n_iter_no_change >= max_iter``) the
    last tenth of the run. A run no longer than its window cannot show a plateau: not
    converged. So a run that reaches ``max_iter`` on a flat loss (the 'adaptive' schedule
    still lowering its rate, or a fixed budget spent) gets no ``ConvergenceWarning``; one
    stopped while the loss still falls does.
    """
    window = n_iter_no_change if n_iter_no_change < max_iter else max(1, max_iter // 10)
    c = np.asarray(curve, dtype=np.float64)
    if c.shape[0] <= window:
        return f"{c.shape[0]} epoch(s) are too few to show a plateau over {window}"
    drop = float(c[:-window].min() - c[-window:].min())
    if drop > tol:
        return f"the loss fell by {drop:.3g} (more than tol={tol}) in the last {window} epochs"
    return None


def _rectangular(X):
    """True when a list/tuple of sequences can be stacked into one array."""
    try:
        shapes = {np.shape(s) for s in X}
    except Exception:
        return False
    return len(shapes) == 1


def _pad_sequence_targets(y, lengths, T, *, numeric):
    """Per-step targets as a padded array (n, T, ...) from an array or a ragged list.

    Numeric targets are padded with NaN, labels with None (object arrays); padded entries
    are never read.
    """
    n = lengths.shape[0]
    if y is None:
        raise ValueError(
            "requires y to be passed, but the target y is None. Pass per-step targets "
            "of shape (n_samples, n_timesteps) for output='sequence'."
        )
    if isinstance(y, (list, tuple)) and len(y) > 0 and not _rectangular(y):
        if len(y) != n:
            raise ValueError(
                f"y must hold one target sequence per sample of X ({n}), got {len(y)}. "
                "Pass as many target sequences as input sequences."
            )
        arrs = [np.asarray(a) for a in y]
        trail = {a.shape[1:] for a in arrs}
        if len(trail) != 1:
            raise ValueError(
                f"y: every target sequence must have the same shape per step, got {sorted(trail)}."
            )
        for i, a in enumerate(arrs):
            if a.ndim == 0 or a.shape[0] != lengths[i]:
                raise ValueError(
                    f"y[{i}] has {a.shape[0] if a.ndim else 0} steps but X[{i}] has {lengths[i]} "
                    "valid steps. With output='sequence' each target sequence must be as long as "
                    "its input sequence."
                )
        tr = trail.pop()
        if numeric:
            out = np.full((n, T) + tr, np.nan)
        else:
            out = np.empty((n, T) + tr, dtype=object)
        for i, a in enumerate(arrs):
            out[i, : a.shape[0]] = a
        return out
    Y = np.asarray(y)
    if Y.ndim < 2 or Y.shape[0] != n or Y.shape[1] != T:
        raise ValueError(
            f"y must have shape (n_samples, n_timesteps{', n_outputs' if numeric else ''}) = "
            f"({n}, {T}{', k' if numeric else ''}) for output='sequence' (one target per step of "
            f"X), got shape {Y.shape}. Pass per-step targets, or use output='last' for one "
            "target per sequence."
        )
    return Y


def _rows_slice(xb, rows, t0, t1):
    """Steps ``t0:t1`` of the samples ``rows`` as a padded (len(rows), t1 - t0, F) array, from
    a padded batch or from a list of sequences (zeros past each sequence, as padding)."""
    if not isinstance(xb, list):
        return xb[rows, t0:t1]
    if len(rows) == 0:
        return np.zeros((0, t1 - t0, xb[0].shape[1]), dtype=xb[0].dtype)
    first = xb[rows[0]]
    out = np.zeros((len(rows), t1 - t0, first.shape[1]), dtype=first.dtype)
    for j, r in enumerate(rows):
        part = xb[r][t0:t1]
        out[j, : part.shape[0]] = part
    return out

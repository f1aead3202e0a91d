"""A ``device='cuda'`` fit that stays on the GPU (DESIGN §4; used by ``BaseRNN._fit_loop``).

:class:`DeviceFit` lives for one call of ``fit`` / ``partial_fit``. On creation it copies to
the device, once: the padded training data (X, lengths, targets, sample weights), the
shuffling orders of the epochs ahead (drawn on the host from a copy of the estimator's RNG,
so the batches are those of the CPU path), the network's and the head's parameters and the
optimizer's moment buffers (each group packed into one array: one transfer). Every
minibatch then runs on the device: the gather of its rows, forward, the head, the loss and
its gradient, BPTT, the L2 penalty, the finiteness check, value and global-norm clipping and
the optimizer update. One small array comes back per update: the loss and, per parameter,
the sum of squares (for the global norm) and the count of non-finite gradient entries.

Snapshots (last finished epoch, best validation score) are device-to-device copies. At the
end, :meth:`finish` copies parameters and optimizer buffers back into the host arrays of
``network_``, ``head_`` and the optimizer, so a fitted estimator holds host arrays only
(``coef_``, ``predict``, ``state_dict``, pickling and ``save`` behave as on the CPU path).

What still crosses per step: dropout masks (``dropout > 0``; drawn from the host RNG so the
same seed gives the same masks on every device) and, with ``augment``, each minibatch's
variant (drawn on the host by ``numrnn.nn.augment``, as on the CPU path, and uploaded with
the epoch's order; the targets, lengths and weights stay on the device). Per epoch: the training-loss penalty
(one value per weight array when ``alpha > 0``) and, with ``early_stopping``, the
validation predictions (the score is computed on the host).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from numba import cuda

from numrnn.kernels.cuda import common as C
from numrnn.kernels.cuda import readout as RK
from numrnn.kernels.cuda import train as KT
from numrnn.nn.optim import Adam
from numrnn.nn.readout import COMBINED, last_backward, last_forward
from numrnn.nn.step import is_weight

#: Largest number of shuffled indices uploaded in one transfer (int64: 32 MiB).
ORDER_BLOCK = 1 << 22
_PREDICT_BATCH = 1024


class _Packed:
    """Host arrays (name -> array) packed into one device array; device views by name."""

    def __init__(self, arrays: OrderedDict, dtype):
        self.names = list(arrays)
        self.shapes = [np.shape(a) for a in arrays.values()]
        sizes = [int(np.prod(s)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        host = np.empty(int(self.offsets[-1]), dtype=dtype)
        for a, o0, o1 in zip(arrays.values(), self.offsets[:-1], self.offsets[1:], strict=True):
            host[o0:o1] = np.ravel(a)
        self.dev = cuda.to_device(host)
        self.views = OrderedDict(
            (n, self.dev[o0:o1].reshape(shape))
            for n, o0, o1, shape in zip(
                self.names, self.offsets[:-1], self.offsets[1:], self.shapes, strict=True
            )
        )

    def copy(self, threads):
        """A device-to-device copy of the packed array."""
        out = cuda.device_array(self.dev.shape, dtype=self.dev.dtype)
        C.copy(self.dev, out, threads=threads)
        return out

    def load(self, src, threads):
        C.copy(src, self.dev, threads=threads)

    def to_host(self, targets: OrderedDict):
        """Copy back, in place, into the host arrays ``targets`` (same names)."""
        host = self.dev.copy_to_host()
        for n, o0, o1, shape in zip(
            self.names, self.offsets[:-1], self.offsets[1:], self.shapes, strict=True
        ):
            np.copyto(targets[n], host[o0:o1].reshape(shape))


class DeviceFit:
    """Data, parameters, gradients and optimizer state of one fit, on the GPU.

    Parameters
    ----------
    est : BaseRNN
        The estimator, with ``network_`` (CUDA backend), ``head_`` and ``_optimizer`` built.
    Xp, lengths, Y, sw : the validated training data (host), all samples.
    tr, va : training and validation sample indices (``va`` None without early stopping).
    epochs : int
        Epochs this call may run (the shuffling orders drawn ahead).
    """

    def __init__(self, est, Xp, lengths, Y, sw, tr, va, epochs):
        self.est = est
        net, head = est.network_, est.head_
        self.net, self.head = net, head
        self.be = net.backend
        self.threads = self.be.threads
        self.dtype = net.dtype
        self.seq = est.output == "sequence"
        self.classifier = est._is_classifier
        n, T = Xp.shape[:2]
        self.T = T
        # -- data, once ------------------------------------------------------------------
        self.X = cuda.to_device(np.ascontiguousarray(Xp, dtype=self.dtype))
        self.lengths_h = np.asarray(lengths, dtype=np.int64)
        self.lengths = cuda.to_device(self.lengths_h)
        if self.classifier:
            Yf = np.ascontiguousarray(np.asarray(Y, dtype=np.int64).reshape(-1))
        else:
            K = Y.shape[-1]
            Yf = np.ascontiguousarray(np.asarray(Y).reshape(-1, K), dtype=self.dtype)
        self.Y = cuda.to_device(Yf)
        self.sw_h = sw
        sw_d = np.ones(n) if sw is None else sw
        self.sw = cuda.to_device(np.ascontiguousarray(sw_d, dtype=self.dtype))
        # -- shuffling orders, drawn ahead from a copy of the estimator's RNG --------------
        self.tr = np.asarray(tr)
        self.shuffle = bool(est.shuffle)
        # augment: the epochs' orders interleave with the variants' draws from the same RNG,
        # so they cannot be drawn ahead; each epoch uploads its order
        self.augmenting = getattr(est, "_augmentation", None) is not None
        self._x_src, self._x_rows = self.X, None
        self._batch_rows = {}
        self._orders_rng = None
        if self.shuffle:
            self._orders_rng = np.random.RandomState()
            self._orders_rng.set_state(est._rng.get_state())
        self._epochs_left = int(epochs)
        self._orders_host = None
        self._orders_dev = None
        self._order_row = 0
        if not self.shuffle:
            self._orders_host = self.tr[None, :]
            self._orders_dev = cuda.to_device(np.ascontiguousarray(self._orders_host))
        self.va = None if va is None else cuda.to_device(np.asarray(va, dtype=np.int64))
        # -- parameters and optimizer state, once ------------------------------------------
        host = OrderedDict()
        for layer in range(net.num_layers):
            for d in range(net.num_directions):
                for k, v in net._params[layer][d].items():
                    host[(layer, d, k)] = v
        host["head.weight"] = head.weight
        host["head.bias"] = head.bias
        self._host_params = host
        self.params = _Packed(host, self.dtype)
        v = self.params.views
        self.dparams = [
            [
                {k: v[(layer, d, k)] for k in net._params[layer][d]}
                for d in range(net.num_directions)
            ]
            for layer in range(net.num_layers)
        ]
        self.named = OrderedDict(net._named(self.dparams))
        self.named["head.weight"] = v["head.weight"]
        self.named["head.bias"] = v["head.bias"]
        opt = est._optimizer
        self.opt = opt
        self._opt_host = OrderedDict(
            ((b, name), opt._state[b][name]) for b in opt._buffers for name in opt.params
        )
        self.opt_state = _Packed(self._opt_host, self.dtype)
        # -- reduction buffers ---------------------------------------------------------------
        P = len(self.named)
        self.stats = cuda.device_array(1 + 2 * P, dtype=self.dtype)
        # Partial sums per reduction: a fixed function of the launch configuration, so the
        # same backend settings give the same summation order.
        n_part = min(KT.N_PART, 2 * self.threads)
        self.part = cuda.device_array(n_part, dtype=self.dtype)
        self.part_bad = cuda.device_array(n_part, dtype=np.int64)

    # -- orders -----------------------------------------------------------------------------
    def epoch_order(self, order_host):
        """The device copy of this epoch's order (``order_host``: the host RNG's draw)."""
        if self.augmenting:
            return cuda.to_device(np.ascontiguousarray(order_host, dtype=np.int64))
        if not self.shuffle:
            return self._orders_dev[0]
        if self._orders_host is None or self._order_row >= self._orders_host.shape[0]:
            m = max(1, min(self._epochs_left, ORDER_BLOCK // max(1, self.tr.shape[0])))
            block = np.stack([self._orders_rng.permutation(self.tr) for _ in range(m)])
            self._orders_host = block
            self._orders_dev = cuda.to_device(np.ascontiguousarray(block, dtype=np.int64))
            self._order_row = 0
        row = self._order_row
        self._order_row += 1
        self._epochs_left -= 1
        if not np.array_equal(self._orders_host[row], order_host):  # pragma: no cover
            # The estimator's RNG was used in between: upload the order it drew.
            return cuda.to_device(np.ascontiguousarray(order_host, dtype=np.int64))
        return self._orders_dev[row]

    # -- snapshots --------------------------------------------------------------------------
    def snapshot(self):
        return {"device_params": self.params.copy(self.threads)}

    def restore(self, snap):
        self.params.load(snap["device_params"], self.threads)

    def opt_snapshot(self):
        opt = self.opt
        return {
            "t": opt.t,
            "device_buffers": self.opt_state.copy(self.threads),
            "hyperparameters": {h: getattr(opt, h) for h in opt._hyperparameters},
        }

    def opt_restore(self, state):
        self.opt_state.load(state["device_buffers"], self.threads)
        self.opt.t = int(state["t"])
        for h, val in state["hyperparameters"].items():
            setattr(self.opt, h, val)

    def finish(self):
        """Copy parameters and optimizer buffers back into the host arrays (in place)."""
        self.params.to_host(self._host_params)
        self.opt_state.to_host(self._opt_host)

    # -- small helpers ----------------------------------------------------------------------
    def _zeros(self, shape):
        return C.zeros(shape, self.dtype, threads=self.threads)

    def _init_state(self, B):
        net = self.net
        LD = net.num_layers * net.num_directions
        z = self._zeros((LD, B, net.hidden_size))
        if net.spec.has_cell_state:
            return [z, self._zeros((LD, B, net.hidden_size))]
        return [z]

    def _gather(self, idx, s, Tc, k, X=None, x_rows=None):
        """Steps ``s .. s + Tc`` of the rows ``x_rows`` of ``X`` (default: the rows ``idx`` of
        the training data), time-major, and the chunk lengths of the samples ``idx``."""
        B = idx.shape[0]
        X = self.X if X is None else X
        F = X.shape[2]
        x = cuda.device_array((Tc, B, F), dtype=self.dtype)
        rows = idx if x_rows is None else x_rows
        KT.launch1(KT._gather_kernel, Tc * B * F, self.threads, X, rows, s, x)
        lc = cuda.device_array(B, dtype=np.int64)
        KT.launch1(KT._chunk_lengths_kernel, B, self.threads, self.lengths, idx, s, k, lc)
        return x, lc

    @staticmethod
    def _blocks(feat):
        """``feat`` as a list of (B, D_j) parts and the head's column ranges they read: one
        part, or the 'last+mean+max' readout's three (never concatenated on the device)."""
        parts = feat if isinstance(feat, list) else [feat]
        starts = np.cumsum([0] + [p.shape[1] for p in parts])
        return parts, list(zip(starts[:-1], starts[1:], strict=True))

    def _head_forward(self, feat2):
        """``z = feat2 @ W.T + b``; ``feat2`` a (B, D) array or a list of parts side by side
        (each part times its columns of ``W``, summed)."""
        w, b = self.named["head.weight"], self.named["head.bias"]
        parts, cols = self._blocks(feat2)
        z = cuda.device_array((parts[0].shape[0], w.shape[0]), dtype=self.dtype)
        for j, (part, (c0, c1)) in enumerate(zip(parts, cols, strict=True)):
            wj = w if len(parts) == 1 else w[:, c0:c1]
            C.gemm(part, wj, z, trans_b=True, accumulate=j > 0, bias1=b if j == 0 else None,
                   tile=self.be.tile)  # fmt: skip
        return z

    def _head_backward(self, feat2, dz, grads):
        """The head's gradients into ``grads``; returns ``dfeat`` (parts as ``feat2``)."""
        w = self.named["head.weight"]
        dw = cuda.device_array(w.shape, dtype=self.dtype)
        db = cuda.device_array(w.shape[0], dtype=self.dtype)
        parts, cols = self._blocks(feat2)
        dfeat = []
        for part, (c0, c1) in zip(parts, cols, strict=True):
            one = len(parts) == 1
            C.gemm(dz, part, dw if one else dw[:, c0:c1], trans_a=True, tile=self.be.tile)
            d = cuda.device_array(part.shape, dtype=self.dtype)
            C.gemm(dz, w if one else w[:, c0:c1], d, tile=self.be.tile)
            dfeat.append(d)
        C.column_sums(dz, db, threads=self.threads)
        grads["head.weight"] = dw
        grads["head.bias"] = db
        return dfeat if isinstance(feat2, list) else dfeat[0]

    def _loss(self, z, idx, s, k, total, scale):
        """Row weights, loss rows and ``dz`` on the device; the loss sum goes to stats[0]."""
        R = z.shape[0]
        w = cuda.device_array(R, dtype=self.dtype)
        tr = cuda.device_array(R, dtype=np.int64)
        if self.seq:
            KT.launch1(KT._rows_seq_kernel, R, self.threads, idx, self.lengths, self.sw, s,
                       self.T, w, tr)  # fmt: skip
        else:
            KT.launch1(KT._rows_last_kernel, R, self.threads, idx, self.lengths, self.sw, s,
                       k, w, tr)  # fmt: skip
        dz = cuda.device_array(z.shape, dtype=self.dtype)
        rows = cuda.device_array(R, dtype=self.dtype)
        dt = self.dtype.type
        if self.classifier:
            KT.launch1(KT._softmax_ce_kernel, R, self.threads, z, self.Y, tr, w, dt(total),
                       dt(1.0), dt(scale), dz, rows)  # fmt: skip
        else:
            c2 = dt(2.0 * (1.0 / (z.shape[1] * total)))
            KT.launch1(KT._mse_kernel, R, self.threads, z, self.Y, tr, w, c2, dt(scale), dz,
                       rows)  # fmt: skip
        KT.reduce_sum(rows, self.part, self.stats, 0, self.threads)
        return dz

    def _host_loss(self, raw, total, K):
        if self.classifier:
            return float(raw) / total
        return float(raw) * (1.0 / (K * total))

    # -- the chunk loop's primitives (numrnn.nn.bptt) -------------------------------------
    def set_batch(self, idx, x_batch=None):
        """The device rows ``idx`` of the next minibatch; ``x_batch``: its inputs from the
        host (an augmented variant, (B, T_b, F) as the model reads them), else the rows of the
        training data on the device."""
        self.idx = idx
        if x_batch is None:
            self._x_src, self._x_rows = self.X, None
            return
        B = x_batch.shape[0]
        self._x_src = cuda.to_device(np.ascontiguousarray(x_batch, dtype=self.dtype))
        if B not in self._batch_rows:  # 0 .. B-1: the uploaded batch's own rows
            self._batch_rows[B] = cuda.to_device(np.arange(B, dtype=np.int64))
        self._x_rows = self._batch_rows[B]

    def initial_state(self, B):
        self.B = B
        return self._init_state(B)

    def _carried(self, h_n, c_n):
        return [h_n, c_n] if self.net.spec.has_cell_state else [h_n]

    def advance(self, state, s, k, rows, lc):
        # every row of the batch runs; rows that have ended have chunk length 0
        x, lcd = self._gather(self.idx, s, int(lc.max()), k, self._x_src, self._x_rows)
        _, h_n, c_n, _ = self.net._forward_time_major(x, lcd, state, False, self.dparams)
        return self._carried(h_n, c_n)

    def gradients(self, state, s, k, rows, lc, row_w, scale):
        net, idx, B, dt = self.net, self.idx, self.B, self.dtype
        Tc = int(lc.max())
        x, lcd = self._gather(idx, s, Tc, k, self._x_src, self._x_rows)
        out, h_n, c_n, cache = net._forward_time_major(x, lcd, state, True, self.dparams)
        grads = OrderedDict()
        if self.seq:
            Dout = out.shape[2]
            feat = out.reshape(Tc * B, Dout)
            z = self._head_forward(feat)
            mask = np.arange(Tc)[None, :] < lc[:, None]
            w_e = np.where(
                mask, np.broadcast_to(np.asarray(row_w, dtype=dt)[:, None], mask.shape), 0
            )
            total = float(np.sum(w_e, dtype=np.float64))
            dz = self._loss(z, idx, s, k, total, scale) if total > 0 else self._zeros(z.shape)
            dfeat = self._head_backward(feat, dz, grads)
            g_pd, _, _, _ = net._backward_time_major(
                cache, dfeat.reshape(Tc, B, Dout), self._init_state(B)
            )
        else:
            feat, ctx = self._readout(out, h_n, lcd)
            z = self._head_forward(feat)
            total = float(np.sum(np.asarray(row_w, dtype=dt), dtype=np.float64))
            if float(row_w.sum()) > 0 and total > 0:
                dz = self._loss(z, idx, s, k, total, scale)
            else:
                dz = self._zeros(z.shape)
                total = 0.0
            dfeat = self._head_backward(feat, dz, grads)
            d_out, d_fin = self._readout_backward(dfeat, ctx, out.shape)
            g_pd, _, _, _ = net._backward_time_major(cache, d_out, d_fin)
        self._total, self._K = total, z.shape[1]
        named = OrderedDict(net._named(g_pd))
        named.update(grads)
        return named, self._carried(h_n, c_n)

    def _readout(self, out, h_n, lcd, mode=None):
        """The readout (``nn.readout``) of the top layer: (B, D_out) features and a context;
        for 'last+mean+max' a list of the three parts (the head reads them side by side)."""
        net, mode = self.net, mode or self.est.readout_
        if mode == COMBINED:
            parts = [self._readout(out, h_n, lcd, m) for m in ("last", "mean", "max")]
            return [f for f, _ in parts], (COMBINED, [c for _, c in parts])
        if mode == "last":
            feat, ctx = last_forward(
                h_n, net.num_layers, net.num_directions, net.merge_mode, backend=self.be
            )
            return feat, ("last", ctx)
        return RK.pool(out, lcd, mode, threads=self.threads)

    def _readout_backward(self, dfeat, ctx, out_shape):
        """``(d_out, d_fin)`` for ``_backward_time_major`` from the readout's gradient."""
        if ctx[0] == COMBINED:  # the parts' gradients summed (nn.readout.readout_backward)
            (d_last, d_mean, d_max), (c_last, c_mean, c_max) = dfeat, ctx[1]
            d_out = RK.pool_backward(d_mean, c_mean, threads=self.threads)
            d_out_max = KT.flat(RK.pool_backward(d_max, c_max, threads=self.threads))
            KT.launch1(KT._add_scaled_kernel, d_out_max.shape[0], self.threads,
                       KT.flat(d_out), d_out_max, self.dtype.type(1.0))  # fmt: skip
            return d_out, self._last_backward(d_last, c_last)
        if ctx[0] != "last":
            return RK.pool_backward(dfeat, ctx, threads=self.threads), self._init_state(self.B)
        return self._zeros(out_shape), self._last_backward(dfeat, ctx)

    def _last_backward(self, dfeat, ctx):
        """``d_fin`` (the final states' gradients) of the 'last' readout."""
        net = self.net
        d_fin = self._init_state(self.B)
        L, D = net.num_layers, net.num_directions
        dh = [d_fin[0][k] for k in range(L * D)]
        for d, g in enumerate(last_backward(dfeat, ctx[1], net.merge_mode, backend=self.be)):
            dh[(L - 1) * D + d] = g
        return [dh] + d_fin[1:]

    # -- the update's primitives (numrnn.nn.step) -----------------------------------------
    def add_weight_decay(self, grads, alpha):
        a, th = self.dtype.type(alpha), self.threads
        for name in self.named:
            if is_weight(name):
                g, p = KT.flat(grads[name]), KT.flat(self.named[name])
                KT.launch1(KT._add_scaled_kernel, g.shape[0], th, g, p, a)

    def _grad_stats(self, grads):
        """Per gradient its sum of squares and count of non-finite entries, into ``stats``
        (slot 0 holds the loss); one copy to the host."""
        names = list(self.named)
        P = len(names)
        zero = self.dtype.type(0.0)
        for i, name in enumerate(names):
            g = KT.flat(grads[name])
            KT.launch1(KT._grad_stats_kernel, self.part.shape[0], self.threads, g, zero, False,
                       self.part, self.part_bad)  # fmt: skip
            KT._sum_partials_kernel[1, 1](self.part, self.stats, 1 + i)
            KT._sum_partials_kernel[1, 1](self.part_bad, self.stats, 1 + P + i)
        self._stats = self.stats.copy_to_host()

    def check(self, grads):
        self._grad_stats(grads)
        st, P = self._stats, len(self.named)
        loss = self._host_loss(st[0], self._total, self._K) if self._total > 0 else 0.0
        for i, name in enumerate(self.named):
            if st[1 + P + i] != 0:
                return loss, name
        return loss, None

    def clip_value(self, grads, value):
        dt = self.dtype.type
        for name in self.named:
            g = KT.flat(grads[name])
            KT.launch1(KT._clip_kernel, g.shape[0], self.threads, g, dt(value), True, dt(1.0),
                       False)  # fmt: skip
        self._stats = None  # the sums of squares are of the unclipped gradients

    def squared_norm(self, grads):
        if self._stats is None:
            self._grad_stats(grads)
        return sum(float(self._stats[1 + i]) for i in range(len(self.named)))

    def scale(self, grads, coef):
        dt = self.dtype.type
        for name in self.named:
            g = KT.flat(grads[name])
            KT.launch1(KT._clip_kernel, g.shape[0], self.threads, g, dt(0.0), False, dt(coef),
                       True)  # fmt: skip

    def optimizer_step(self, grads):
        opt, dt, th = self.opt, self.dtype.type, self.threads
        views = self.opt_state.views
        if isinstance(opt, Adam):
            opt.t += 1
            beta1, beta2 = opt.betas
            step_size = opt.lr / (1.0 - beta1**opt.t)
            bc2 = (1.0 - beta2**opt.t) ** 0.5
            wd = opt.weight_decay
            for name, p in self.named.items():
                p1 = KT.flat(p)
                KT.launch1(
                    KT._adam_kernel, p1.shape[0], th, p1, KT.flat(grads[name]),
                    KT.flat(views[("exp_avg", name)]), KT.flat(views[("exp_avg_sq", name)]),
                    wd != 0.0, dt(wd), dt(1.0 - beta1), dt(beta2), dt(1.0 - beta2), dt(bc2),
                    dt(opt.eps), dt(step_size),
                )  # fmt: skip
        else:  # numrnn.nn.optim.SGD
            mu, wd = opt.momentum, opt.weight_decay
            for name, p in self.named.items():
                p1 = KT.flat(p)
                KT.launch1(
                    KT._sgd_kernel, p1.shape[0], th, p1, KT.flat(grads[name]),
                    KT.flat(views[("momentum_buffer", name)]), dt(opt.lr), mu != 0.0, dt(mu),
                    wd != 0.0, dt(wd), bool(opt.nesterov),
                )  # fmt: skip
            opt.t += 1

    # -- per epoch ----------------------------------------------------------------------------
    def weight_squared_norm(self):
        """``sum ||W||^2`` over the weights (``nn.step.penalty``; one copy back)."""
        dt = self.dtype.type
        names = [n for n in self.named if is_weight(n)]
        for i, name in enumerate(names):
            KT.launch1(KT._grad_stats_kernel, self.part.shape[0], self.threads, KT.flat(self.named[name]),
                       dt(0), False, self.part, self.part_bad)  # fmt: skip
            KT._sum_partials_kernel[1, 1](self.part, self.stats, 1 + i)
        stats = self.stats.copy_to_host()
        return sum(float(stats[1 + i]) for i in range(len(names)))

    def predict(self, rows, lengths_h):
        """Head outputs of samples ``rows`` (a device index array), copied to the host:
        (n, K) for 'last', (n, T, K) for 'sequence' (zeros at padded steps)."""
        net = self.net
        outs = []
        for s in range(0, rows.shape[0], _PREDICT_BATCH):
            idx = rows[s : s + _PREDICT_BATCH]
            lb = lengths_h[s : s + _PREDICT_BATCH]
            B, Tb = lb.shape[0], int(lb.max())
            x, lcd = self._gather(idx, 0, Tb, Tb)
            out, h_n, _, _ = net._forward_time_major(
                x, lcd, self._init_state(B), False, self.dparams, training=False
            )
            if self.seq:
                z = self._head_forward(out.reshape(Tb * B, out.shape[2]))
                zt = z.copy_to_host().reshape(Tb, B, -1).transpose(1, 0, 2)
                full = np.zeros((B, self.T, zt.shape[2]), dtype=zt.dtype)
                full[:, :Tb] = zt
                outs.append(full)
            else:
                feat, _ = self._readout(out, h_n, lcd)
                outs.append(self._head_forward(feat).copy_to_host())
        return np.concatenate(outs, axis=0)

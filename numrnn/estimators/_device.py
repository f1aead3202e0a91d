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
same seed gives the same masks on every device). Per epoch: the training-loss penalty
(one value per weight array when ``alpha > 0``) and, with ``early_stopping``, the
validation predictions (the score is computed on the host).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from numba import cuda

from numrnn.kernels.cuda import common as C
from numrnn.kernels.cuda import train as KT
from numrnn.nn.optim import Adam

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

    def _gather(self, idx, s, Tc, k):
        B = idx.shape[0]
        F = self.X.shape[2]
        x = cuda.device_array((Tc, B, F), dtype=self.dtype)
        KT.launch1(KT._gather_kernel, Tc * B * F, self.threads, self.X, idx, s, x)
        lc = cuda.device_array(B, dtype=np.int64)
        KT.launch1(KT._chunk_lengths_kernel, B, self.threads, self.lengths, idx, s, k, lc)
        return x, lc

    def _readout(self, h_n):
        """Merged final states of the top layer: (B, D_out) features and the parts."""
        net = self.net
        D, L = net.num_directions, net.num_layers
        hf = h_n[(L - 1) * D]
        if D == 1:
            return hf, None
        hb = h_n[(L - 1) * D + 1]
        B, H = hf.shape
        f3, b3 = hf.reshape(1, B, H), hb.reshape(1, B, H)
        feat = self.be.merge([f3, b3], net.merge_mode)
        return feat.reshape(B, feat.shape[2]), (f3, b3)

    def _head_forward(self, feat2):
        w, b = self.named["head.weight"], self.named["head.bias"]
        z = cuda.device_array((feat2.shape[0], w.shape[0]), dtype=self.dtype)
        C.gemm(feat2, w, z, trans_b=True, bias1=b, tile=self.be.tile)
        return z

    def _head_backward(self, feat2, dz, grads):
        w = self.named["head.weight"]
        dw = cuda.device_array(w.shape, dtype=self.dtype)
        db = cuda.device_array(w.shape[0], dtype=self.dtype)
        C.gemm(dz, feat2, dw, trans_a=True, tile=self.be.tile)
        C.column_sums(dz, db, threads=self.threads)
        dfeat = cuda.device_array(feat2.shape, dtype=self.dtype)
        C.gemm(dz, w, dfeat, tile=self.be.tile)
        grads["head.weight"] = dw
        grads["head.bias"] = db
        return dfeat

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

    # -- one minibatch --------------------------------------------------------------------
    def train_batch(self, idx, lb, wb):
        """Mirror of ``BaseRNN._train_batch`` on device rows ``idx`` (host ``lb``, ``wb``)."""
        est, net = self.est, self.net
        B = lb.shape[0]
        Tb = int(lb.max())
        k = est.bptt_steps if est.bptt_steps is not None else Tb
        k = min(k, Tb)
        w_all = np.ones(B) if wb is None else wb
        w_total = float(w_all.sum())
        norm_total = float((w_all * lb).sum()) if self.seq else w_total
        if norm_total <= 0:
            return 0.0, 0.0
        dt = self.dtype
        state = self._init_state(B)
        loss_sum = 0.0
        for s in range(0, Tb, k):
            lc = np.clip(lb - s, 0, k)
            act = np.flatnonzero(lc > 0)
            la = lc[act]
            Tc = int(la.max())
            x, lcd = self._gather(idx, s, Tc, k)
            if not self.seq:
                ends = lb[act] <= s + k
                if not ends.any():
                    _, h_n, c_n, _ = net._forward_time_major(x, lcd, state, False, self.dparams)
                    state = [h_n, c_n] if net.spec.has_cell_state else [h_n]
                    continue
                out, h_n, c_n, cache = net._forward_time_major(x, lcd, state, True, self.dparams)
                feat, parts = self._readout(h_n)
                z = self._head_forward(feat)
                wa = w_all[act] * ends
                wsum = float(wa.sum())
                total = float(np.sum(np.asarray(wa, dtype=dt), dtype=np.float64))
                scale = wsum / norm_total if wsum > 0 else 0.0
                if wsum > 0 and total > 0:
                    dz = self._loss(z, idx, s, k, total, scale)
                else:
                    dz = self._zeros(z.shape)
                    total = 0.0
                grads = OrderedDict()
                dfeat = self._head_backward(feat, dz, grads)
                d_fin = self._d_state_last(dfeat, parts, B)
                d_out = self._zeros(out.shape)
                g_pd, _, _, _ = net._backward_time_major(cache, d_out, d_fin)
            else:
                out, h_n, c_n, cache = net._forward_time_major(x, lcd, state, True, self.dparams)
                Dout = out.shape[2]
                feat = out.reshape(Tc * B, Dout)
                z = self._head_forward(feat)
                mask = np.arange(Tc)[None, :] < la[:, None]
                wa = w_all[act]
                wsum = float((wa * la).sum())
                w_e = np.where(
                    mask, np.broadcast_to(np.asarray(wa, dtype=dt)[:, None], mask.shape), 0
                )
                total = float(np.sum(w_e, dtype=np.float64))
                scale = wsum / norm_total
                if total > 0:
                    dz = self._loss(z, idx, s, k, total, scale)
                else:
                    dz = self._zeros(z.shape)
                grads = OrderedDict()
                dfeat = self._head_backward(feat, dz, grads)
                g_pd, _, _, _ = net._backward_time_major(
                    cache, dfeat.reshape(Tc, B, Dout), self._init_state(B)
                )
            state = [h_n, c_n] if net.spec.has_cell_state else [h_n]
            named = OrderedDict(net._named(g_pd))
            named.update(grads)
            loss = self._step(named, total, z.shape[1])
            loss_sum += loss * scale
        return loss_sum, w_total

    def _d_state_last(self, dfeat, parts, B):
        net = self.net
        D, L, H = net.num_directions, net.num_layers, net.hidden_size
        d_fin = self._init_state(B)
        dh = [d_fin[0][k] for k in range(L * D)]
        if D == 1:
            dh[L - 1] = dfeat
        else:
            f3, b3 = parts
            d3 = dfeat.reshape(1, B, dfeat.shape[1])
            df, db = self.be.split(d3, net.merge_mode, [f3, b3], 2)
            dh[(L - 1) * D] = df.reshape(B, H)
            dh[(L - 1) * D + 1] = db.reshape(B, H)
        return [dh] + d_fin[1:]

    # -- the update ---------------------------------------------------------------------------
    def _step(self, grads, total, K):
        """L2 penalty, finiteness check, clipping and the optimizer update (as ``_step``).

        Returns the batch loss (from the one array copied back per update).
        """
        from numrnn.estimators._base import NonFiniteLossError, _is_weight

        est, dt, th = self.est, self.dtype.type, self.threads
        names = list(self.named)
        P = len(names)
        if est.alpha > 0:
            a = dt(est.alpha)
            for name in names:
                if _is_weight(name):
                    g, p = KT.flat(grads[name]), KT.flat(self.named[name])
                    KT.launch1(KT._add_scaled_kernel, g.shape[0], th, g, p, a)
        use_cv = est.clip_value is not None
        cv = dt(est.clip_value if use_cv else 0.0)
        for i, name in enumerate(names):
            g = KT.flat(grads[name])
            KT.launch1(KT._grad_stats_kernel, self.part.shape[0], th, g, cv, use_cv, self.part,
                       self.part_bad)  # fmt: skip
            KT._sum_partials_kernel[1, 1](self.part, self.stats, 1 + i)
            KT._sum_partials_kernel[1, 1](self.part_bad, self.stats, 1 + P + i)
        stats = self.stats.copy_to_host()
        loss = self._host_loss(stats[0], total, K) if total > 0 else 0.0
        if not np.isfinite(loss):
            raise NonFiniteLossError("loss")
        for i, name in enumerate(names):
            if stats[1 + P + i] != 0:
                raise NonFiniteLossError(name)
        coef, use_coef = 1.0, False
        if est.clip_norm is not None:
            norm = float(np.sqrt(sum(float(stats[1 + i]) for i in range(P))))
            coef = est.clip_norm / (norm + 1e-6)
            use_coef = coef < 1.0
        if use_cv or use_coef:
            for name in names:
                g = KT.flat(grads[name])
                KT.launch1(KT._clip_kernel, g.shape[0], th, g, cv, use_cv, dt(coef), use_coef)
        self._optimizer_step(grads)
        return loss

    def _optimizer_step(self, grads):
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
    def penalty(self):
        """``0.5 * alpha * sum ||W||^2`` over the weights (values copied back: one per array)."""
        from numrnn.estimators._base import _is_weight

        est = self.est
        if est.alpha == 0:
            return 0.0
        dt = self.dtype.type
        names = [n for n in self.named if _is_weight(n)]
        for i, name in enumerate(names):
            KT.launch1(KT._grad_stats_kernel, self.part.shape[0], self.threads, KT.flat(self.named[name]),
                       dt(0), False, self.part, self.part_bad)  # fmt: skip
            KT._sum_partials_kernel[1, 1](self.part, self.stats, 1 + i)
        stats = self.stats.copy_to_host()
        return 0.5 * est.alpha * sum(float(stats[1 + i]) for i in range(len(names)))

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
                feat, _ = self._readout(h_n)
                outs.append(self._head_forward(feat).copy_to_host())
        return np.concatenate(outs, axis=0)

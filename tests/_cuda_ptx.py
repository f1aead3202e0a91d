"""Run by ``tests/test_cuda.py`` in a subprocess (no simulator): compile every CUDA kernel
to PTX for float32 and float64 with ``numba.cuda.compile_ptx`` (needs libnvvm and NVRTC,
no driver or GPU). Signatures come from ``numba.typeof`` on small example arguments.
Prints ``PTX <kernel> <dtype> <bytes> <has_f64> <has_ld_global_nc>
<calls_grid_sync>`` per kernel, then ``PTX-OK``.
"""

from __future__ import annotations

import sys

import numpy as np
from numba import cuda, typeof

from numrnn.backends import cuda as BE
from numrnn.kernels.cuda import common as C
from numrnn.kernels.cuda import gru as G
from numrnn.kernels.cuda import lstm as L
from numrnn.kernels.cuda import rnn as R
from numrnn.kernels.cuda import train as TR


def examples(dt):
    a1, a2, a3 = np.zeros(4, dt), np.zeros((4, 4), dt), np.zeros((4, 4, 4), dt)
    i1 = np.zeros(4, np.int64)
    t, f = np.int64(0), True
    return {
        C._gemm_kernel: (a2, a2, a2, f, f, f, a1, t, a1, t),
        C._column_sums_kernel: (a2, a1),
        C._transpose_kernel: (a2, a2),
        C._copy_kernel: (a1, a1),
        C._fill_kernel: (a1, dt.type(0)),
        C._reverse_padded_kernel: (a3, i1, a3),
        R._rnn_forward_step: (t, a2, i1, f, a3, a3, t),
        R._rnn_backward_step: (t, a2, i1, f, a3, a3, a3, a2, t),
        R._rnn_forward_persistent: (a2, i1, f, a3, a3, t, t),
        R._rnn_backward_persistent: (a2, i1, f, a3, a3, a3, a2, t, t),
        L._lstm_forward_step: (t, a2, a2, i1, a3, a2, a3, a3, a3, t),
        L._lstm_backward_step: (t, a2, a2, i1, a2, a3, a3, a3, a2, a2, t),
        L._lstm_forward_persistent: (a2, a2, i1, a3, a2, a3, a3, a3, t, t),
        L._lstm_backward_persistent: (a2, a2, i1, a2, a3, a3, a3, a2, a2, t, t),
        L._peephole_gradients: (a2, a3, a3, a2),
        G._gru_forward_step_after: (t, a2, a1, i1, a3, a3, a3, a3, t),
        G._gru_forward_step_before_rz: (t, a2, i1, a3, a3, a3, a3, a3, t),
        G._gru_forward_step_before_n: (t, a2, i1, a3, a3, a3, a3, a3, t),
        G._gru_backward_step_after: (t, a2, i1, a2, a3, a3, a3, a3, a3, a2, a2, t),
        G._gru_backward_step_before_zn: (t, a2, i1, a2, a3, a3, a3, a3, a2, a2, t),
        G._gru_backward_step_before_r: (t, a2, i1, a2, a3, a3, a3, a3, a2, a2, t),
        G._gru_forward_persistent_after: (a2, a1, i1, a3, a3, a3, a3, t, t),
        G._gru_forward_persistent_before: (a2, i1, a3, a3, a3, a3, a3, t, t),
        G._gru_backward_persistent_after: (a2, i1, a2, a3, a3, a3, a3, a3, a2, a2, t, t),
        G._gru_backward_persistent_before: (a2, i1, a2, a3, a3, a3, a3, a2, a2, t, t),
        BE._binary_kernel: (a1, a1, a1, t),
        BE._concat_kernel: (a2, a2, a2),
        BE._split_kernel: (a2, a2, a2),
        **train_examples(dt),
    }


def train_examples(dt):
    """The training-step kernels of a device-resident fit (numrnn.kernels.cuda.train)."""
    a1, a2, a3 = np.zeros(4, dt), np.zeros((4, 4), dt), np.zeros((4, 4, 4), dt)
    i1 = np.zeros(4, np.int64)
    t, f, x = np.int64(0), True, dt.type(0)
    return {
        TR._gather_kernel: (a3, i1, t, a3),
        TR._chunk_lengths_kernel: (i1, i1, t, t, i1),
        TR._rows_last_kernel: (i1, i1, a1, t, t, a1, i1),
        TR._rows_seq_kernel: (i1, i1, a1, t, t, a1, i1),
        TR._mse_kernel: (a2, a2, i1, a1, x, x, a2, a1),
        TR._softmax_ce_kernel: (a2, i1, i1, a1, x, x, x, a2, a1),
        TR._partial_sums_kernel: (a1, x, a1),
        TR._grad_stats_kernel: (a1, x, f, a1, i1),
        TR._sum_partials_kernel: (a1, a1, t),
        TR._add_scaled_kernel: (a1, a1, x),
        TR._clip_kernel: (a1, x, f, x, f),
        TR._adam_kernel: (a1, a1, a1, a1, f, x, x, x, x, x, x, x),
        TR._sgd_kernel: (a1, a1, a1, x, f, x, f, x, f),
    }


class _NoDevice:
    """Stands in for the current device where there is none (compile only)."""

    compute_capability = (8, 0)


def _allow_device_overloads_without_driver():
    """``cuda.cg.this_grid()`` is an ``@overload`` whose implementation numba-cuda compiles
    as a device function, asking the *current device* for its compute capability; with no
    driver that fails before any PTX is made. Answer with the target of this script."""
    from numba.cuda import dispatcher

    try:
        dispatcher.get_current_device()
    except Exception:
        dispatcher.get_current_device = _NoDevice


def main():
    _allow_device_overloads_without_driver()
    for dt in (np.dtype(np.float32), np.dtype(np.float64)):
        for kern, args in examples(dt).items():
            sig = tuple(typeof(a) for a in args)
            ptx, _ = cuda.compile_ptx(kern.py_func, sig, cc=(8, 0))
            body = ptx.split(".entry", 1)[1]
            # float32 kernels must not fall back to float64 arithmetic.
            has_f64 = ".f64" in body
            # Persistent kernels read what other blocks wrote before a grid sync: no
            # non-coherent (read-only cache) loads may slip in.
            nc = "ld.global.nc" in body
            coop = "cudaCGSynchronize" in ptx
            print(f"PTX {kern.py_func.__name__} {dt.name} {len(ptx)} {has_f64} {nc} {coop}")
    print("PTX-OK")


if __name__ == "__main__":
    sys.exit(main())

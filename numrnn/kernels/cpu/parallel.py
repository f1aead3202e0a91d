"""Run a row-range kernel on several ranges at once, in Numba's threading layer.

A Python thread pool hands a job over slowly on these virtual machines (a futex wake,
then the GIL handed over the same way), for ``ThreadPoolExecutor`` and for spinning Python
workers alike, and it cancelled most of the gain of splitting the rows of mid-sized calls.
Numba's threading layer (OpenMP here) keeps its native workers spinning between parallel
regions and needs no GIL: several times cheaper a launch (docs/performance.rst, *Measured*).

One driver per row kernel, each naming its kernel as a global: a generic driver taking the
kernel as an argument, or one made by a factory (a closure), cannot be cached (measured on
numba 0.68: the first misses the cache in every process, the second fails to save its
index once another process has written it), and an uncached parallel driver costs seconds
of compilation in every new process.
"""

from __future__ import annotations

from numba import njit, prange

from numrnn._jit import KERNEL_OPTIONS, cached
from numrnn.kernels.cpu.common import input_gradient_rows, input_projection_rows
from numrnn.kernels.cpu.fpenv import flush_denormals, restore_fp_mode
from numrnn.kernels.cpu.gru import gru_backward_rows, gru_forward_rows, gru_weight_gradient_rows
from numrnn.kernels.cpu.lstm import (
    lstm_backward_rows,
    lstm_forward_rows,
    lstm_weight_gradient_rows,
)
from numrnn.kernels.cpu.rnn import rnn_backward_rows, rnn_forward_rows, rnn_weight_gradient_rows


def PARALLEL(function):  # noqa: N802 - reads as the decorator it is
    """A cached ``parallel=True`` driver, invalidated with the kernels it inlines."""
    return cached(njit(parallel=True, **KERNEL_OPTIONS)(function))


@PARALLEL
def input_gradient_parallel(args, edges):
    for k in prange(edges.shape[0] - 1):
        mode = flush_denormals()  # per thread: see kernels/cpu/fpenv.py
        input_gradient_rows(*args, edges[k], edges[k + 1])
        restore_fp_mode(mode)


@PARALLEL
def input_projection_parallel(args, edges):
    for k in prange(edges.shape[0] - 1):
        mode = flush_denormals()  # per thread: see kernels/cpu/fpenv.py
        input_projection_rows(*args, edges[k], edges[k + 1])
        restore_fp_mode(mode)


@PARALLEL
def rnn_forward_parallel(args, edges):
    for k in prange(edges.shape[0] - 1):
        mode = flush_denormals()  # per thread: see kernels/cpu/fpenv.py
        rnn_forward_rows(*args, edges[k], edges[k + 1])
        restore_fp_mode(mode)


@PARALLEL
def rnn_backward_parallel(args, edges):
    for k in prange(edges.shape[0] - 1):
        mode = flush_denormals()  # per thread: see kernels/cpu/fpenv.py
        rnn_backward_rows(*args, edges[k], edges[k + 1])
        restore_fp_mode(mode)


@PARALLEL
def rnn_weight_gradient_parallel(args, edges):
    for k in prange(edges.shape[0] - 1):
        mode = flush_denormals()  # per thread: see kernels/cpu/fpenv.py
        rnn_weight_gradient_rows(*args, edges[k], edges[k + 1])
        restore_fp_mode(mode)


@PARALLEL
def lstm_forward_parallel(args, edges):
    for k in prange(edges.shape[0] - 1):
        mode = flush_denormals()  # per thread: see kernels/cpu/fpenv.py
        lstm_forward_rows(*args, edges[k], edges[k + 1])
        restore_fp_mode(mode)


@PARALLEL
def lstm_backward_parallel(args, edges):
    for k in prange(edges.shape[0] - 1):
        mode = flush_denormals()  # per thread: see kernels/cpu/fpenv.py
        lstm_backward_rows(*args, edges[k], edges[k + 1])
        restore_fp_mode(mode)


@PARALLEL
def lstm_weight_gradient_parallel(args, edges):
    for k in prange(edges.shape[0] - 1):
        mode = flush_denormals()  # per thread: see kernels/cpu/fpenv.py
        lstm_weight_gradient_rows(*args, edges[k], edges[k + 1])
        restore_fp_mode(mode)


@PARALLEL
def gru_forward_parallel(args, edges):
    for k in prange(edges.shape[0] - 1):
        mode = flush_denormals()  # per thread: see kernels/cpu/fpenv.py
        gru_forward_rows(*args, edges[k], edges[k + 1])
        restore_fp_mode(mode)


@PARALLEL
def gru_backward_parallel(args, edges):
    for k in prange(edges.shape[0] - 1):
        mode = flush_denormals()  # per thread: see kernels/cpu/fpenv.py
        gru_backward_rows(*args, edges[k], edges[k + 1])
        restore_fp_mode(mode)


@PARALLEL
def gru_weight_gradient_parallel(args, edges):
    for k in prange(edges.shape[0] - 1):
        mode = flush_denormals()  # per thread: see kernels/cpu/fpenv.py
        gru_weight_gradient_rows(*args, edges[k], edges[k + 1])
        restore_fp_mode(mode)


#: Row kernel -> its parallel driver ``driver(args, edges)``.
DRIVERS = {
    input_gradient_rows: input_gradient_parallel,
    input_projection_rows: input_projection_parallel,
    rnn_forward_rows: rnn_forward_parallel,
    rnn_backward_rows: rnn_backward_parallel,
    rnn_weight_gradient_rows: rnn_weight_gradient_parallel,
    lstm_forward_rows: lstm_forward_parallel,
    lstm_backward_rows: lstm_backward_parallel,
    lstm_weight_gradient_rows: lstm_weight_gradient_parallel,
    gru_forward_rows: gru_forward_parallel,
    gru_backward_rows: gru_backward_parallel,
    gru_weight_gradient_rows: gru_weight_gradient_parallel,
}

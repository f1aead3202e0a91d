"""The packed recurrent GEMM and the threaded time loops of the CPU kernels."""

import numpy as np
import pytest

from numrnn import _threads
from numrnn.kernels.cpu import gemm
from numrnn.nn import GRU, LSTM, RNN

CELLS = {
    "rnn_tanh": (RNN, {}),
    "rnn_relu": (RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, {}),
    "lstm_peephole": (LSTM, {"peephole": True}),
    "gru": (GRU, {}),
    "gru_reset_before": (GRU, {"reset_after": False}),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "M, K, N", [(1, 1, 1), (5, 3, 7), (13, 40, 33), (7, 17, 96), (12, 64, 200)]
)
def test_packed_matmul_matches_numpy(dtype, M, K, N, rng):
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    bp = gemm.packed_weights(b)
    NR = bp.shape[2]
    assert NR == (gemm.NR32 if dtype == np.float32 else gemm.NR64)
    assert bp.shape == (-(-N // NR), K, NR)
    c = np.full((M, gemm.padded_width(N, a)), np.nan, dtype=dtype)
    gemm.packed_matmul(a, bp, c)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c[:, :N], exact, rtol=tol, atol=tol * K)
    # Padded columns multiply zeros: exact zeros, never garbage.
    assert np.all(c[:, N:] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_matmul_rows_do_not_depend_on_the_split(dtype, rng):
    """A row's result is bit-identical whichever block (and call) it falls in."""
    a_wide = rng.standard_normal((17, 50)).astype(dtype)
    a = a_wide[:, 3:40]  # strided rows: row stride 50, 37 columns
    b = rng.standard_normal((37, 70)).astype(dtype)
    bp = gemm.packed_weights(b)
    full = np.empty((17, gemm.padded_width(70, a)), dtype=dtype)
    gemm.packed_matmul(a, bp, full)
    for r0, r1 in [(0, 1), (1, 8), (8, 17), (3, 4), (5, 16)]:
        part = np.empty((r1 - r0, full.shape[1]), dtype=dtype)
        gemm.packed_matmul(a[r0:r1], bp, part)
        assert np.array_equal(part, full[r0:r1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
# (1030, 300, 40): a transposed A whose k are >= 4 KB apart is packed (matmul_rows).
@pytest.mark.parametrize(
    "M, K, N", [(1, 1, 1), (7, 3, 5), (13, 300, 33), (50, 700, 64), (1030, 300, 40)]
)
@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
@pytest.mark.parametrize("accumulate", [False, True])
def test_matmul_matches_numpy(dtype, M, K, N, transpose_a, transpose_b, accumulate, rng):
    """Strided (transposed) operands, K over several packed blocks, partial panels."""
    a = rng.standard_normal((K, M) if transpose_a else (M, K)).astype(dtype)
    a = a.T if transpose_a else a
    b = rng.standard_normal((N, K) if transpose_b else (K, N)).astype(dtype)
    b = b.T if transpose_b else b
    c0 = rng.standard_normal((M, N)).astype(dtype)
    c = c0.copy()
    gemm.matmul(a, b, c, accumulate)
    exact = a.astype(np.float64) @ b.astype(np.float64) + (c0 if accumulate else 0)
    tol = 3e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(c, exact, rtol=tol, atol=tol * np.sqrt(K) * 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M", [251, 1100])  # 1100: A is packed (k >= 4 KB apart)
def test_matmul_rows_do_not_depend_on_the_split(dtype, M, rng):
    a = rng.standard_normal((600, M)).astype(dtype).T  # (M, 600), strided
    b = rng.standard_normal((600, 45)).astype(dtype)
    full = np.empty((M, 45), dtype=dtype)
    gemm.matmul(a, b, full, False)
    split = np.empty_like(full)
    for r0, r1 in [(0, 7), (7, 100), (100, 251), (251, M)]:
        gemm.matmul_rows(a, b, split, False, r0, r1)
    assert np.array_equal(split, full)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_blocking_is_an_argument(dtype, rng):
    """The blocking is passed, not frozen: any KC and MC give a correct product, MC changes
    no bit, and a KC of at least K (one block) gives the bits of the default when K fits in
    one default block."""
    a = rng.standard_normal((700, 300)).astype(dtype).T  # (300, 700): A is packed
    b = rng.standard_normal((700, 45)).astype(dtype)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    tol = 3e-6 if dtype == np.float32 else 1e-13
    results = {}
    for kc, mc in [(256, 240), (64, 240), (64, 18), (1000, 240), (1000, 7)]:
        c = np.empty((300, 45), dtype=dtype)
        gemm._matmul_rows(a[:, :], b, c, False, 0, 300, kc, mc)
        np.testing.assert_allclose(c, exact, rtol=tol, atol=tol * np.sqrt(700) * 4)
        results[kc, mc] = c
    assert np.array_equal(results[64, 240], results[64, 18])
    assert np.array_equal(results[1000, 240], results[1000, 7])
    assert not np.array_equal(results[64, 240], results[1000, 240])  # K split differently
    short = a[:, :100]  # K = 100: one block at the default KC, and at 1000
    default = np.empty((300, 45), dtype=dtype)
    gemm.matmul(short, b[:100], default, False)
    one_block = np.empty_like(default)
    gemm._matmul_rows(short, b[:100], one_block, False, 0, 300, 1000, 240)
    assert np.array_equal(default, one_block)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_weights_layout_and_stacking(dtype, rng):
    w_ih = rng.standard_normal((40, 5)).astype(dtype)
    w_hh = rng.standard_normal((40, 3)).astype(dtype)
    b = np.concatenate([w_ih, w_hh], axis=1).T  # (K, N) = (8, 40)
    bp = gemm.packed_weights(w_ih.T, w_hh.T)
    P, K, NR = bp.shape
    # panel p holds columns p*NR .. p*NR+NR-1 of B, zero past N
    padded = np.zeros((K, P * NR), dtype=dtype)
    padded[:, :40] = b
    assert np.array_equal(bp, padded.reshape(K, P, NR).transpose(1, 0, 2))
    assert np.array_equal(bp, gemm.packed_weights(b))
    # the host packing runs the GEMM's own packing specialisation: it compiles nothing new
    c = np.empty((3, 40), dtype)
    gemm.matmul(rng.standard_normal((3, 8)).astype(dtype), b.copy(), c, False)
    before = set(gemm._pack_columns.signatures)
    gemm.packed_weights(w_ih.T, w_hh.T)
    assert set(gemm._pack_columns.signatures) == before


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("batch", [1, 2, 7, 64])
def test_row_ranges_cover_the_batch_once(n, batch):
    ranges = _threads.row_ranges(batch, n)
    rows = [r for b0, b1 in ranges for r in range(b0, b1)]
    assert rows == list(range(batch))
    sizes = [b1 - b0 for b0, b1 in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_loop_threads_policy(monkeypatch):
    monkeypatch.setattr(_threads, "_cpu_count", lambda: 8)
    monkeypatch.delenv("NUMRNN_NUM_THREADS", raising=False)
    big = 1 << 30
    assert _threads.loop_threads(64, _threads.LOOP_THREADS_BELOW - 1) == 0  # direct call
    with _threads.loop_thread_limit(3):
        assert _threads.loop_threads(64, big) == 3
        assert _threads.loop_threads(4, big) == 2  # at least two rows per thread
    monkeypatch.setenv("NUMRNN_NUM_THREADS", "1")
    assert _threads.loop_threads(64, big) == 1


def _run(name, threads, x, lengths, d_out_seed):
    cls, opts = CELLS[name]
    net = cls(x.shape[2], 9, num_layers=2, bidirectional=True, **opts,
              dtype=x.dtype, random_state=0)  # fmt: skip
    with _threads.loop_thread_limit(threads):
        out, state = net.forward(x, lengths=lengths)
        d = np.random.default_rng(d_out_seed).standard_normal(out.shape).astype(x.dtype)
        net.backward(d)
        inference, _ = net.forward(x, lengths=lengths, requires_grad=False)
    return out, state, net.grads, net.grad_state, inference


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threaded_time_loops_are_bit_identical(name, dtype, monkeypatch, rng):
    """Rows split over 1, 2 or 3 threads give the same bits: outputs, states, gradients."""
    monkeypatch.setattr(_threads, "LOOP_THREADS_BELOW", 0)
    monkeypatch.setattr(_threads, "_cpu_count", lambda: 3)
    x = rng.standard_normal((7, 6, 4)).astype(dtype)
    lengths = np.array([6, 1, 4, 6, 2, 5, 3])
    ref = _run(name, 1, x, lengths, 1)
    for threads in (2, 3):
        got = _run(name, threads, x, lengths, 1)
        assert np.array_equal(got[0], ref[0])
        for a, b in zip(np.atleast_1d(got[1]), np.atleast_1d(ref[1]), strict=True):
            assert np.array_equal(a, b)
        assert got[2].keys() == ref[2].keys()
        for k in ref[2]:
            assert np.array_equal(got[2][k], ref[2][k]), k
        for a, b in zip(np.atleast_1d(got[3]), np.atleast_1d(ref[3]), strict=True):
            assert np.array_equal(a, b)
        assert np.array_equal(got[4], ref[4])


def test_run_row_ranges_runs_inline_when_parallel_is_unavailable(monkeypatch):
    """One range, a forked child (OpenMP is not fork-safe), a second concurrent caller, or a
    plain Python function runs its ranges in order, in the calling thread; every row is
    covered exactly once. Otherwise the parallel driver gets the kernel's address and all
    the ranges."""
    from numrnn.kernels.cpu import parallel

    calls, driven = [], []

    def record(out, b0, b1):
        calls.append((b0, b1))
        out[b0:b1] += 1

    record.overloads = {}  # looks like a Numba kernel to run_row_ranges

    def driver(address, args, edges):
        assert address == 1234
        driven.append(list(edges))
        for k in range(len(edges) - 1):
            record(*args, edges[k], edges[k + 1])

    monkeypatch.setattr(parallel, "rows_parallel", driver)
    monkeypatch.setattr(parallel, "native_address", lambda kernel, args: 1234)
    monkeypatch.setattr(parallel, "driver_ready", lambda kernel, args: True)
    out = np.zeros(10)
    _threads.run_row_ranges(record, (out,), 10, 3)
    assert driven == [[0, 3, 7, 10]]
    _threads.run_row_ranges(record, (out,), 10, 1)
    monkeypatch.setattr(_threads, "_forked", True)
    _threads.run_row_ranges(record, (out,), 10, 3)
    monkeypatch.setattr(_threads, "_forked", False)
    with _threads._dispatch_lock:  # another thread is using the threading layer
        _threads.run_row_ranges(record, (out,), 10, 2)
    del record.overloads
    _threads.run_row_ranges(record, (out,), 10, 2)
    assert len(driven) == 1
    assert (
        calls == [(0, 3), (3, 7), (7, 10), (0, 10), (0, 3), (3, 7), (7, 10)] + [(0, 5), (5, 10)] * 2
    )
    assert np.all(out == 5)


def test_driver_compiles_once_it_pays(monkeypatch):
    """A driver that is neither compiled nor cached waits: the calls that wanted threads run
    on one thread (same bits) until they have taken DRIVER_COMPILE_AFTER_S (not counting the
    first, which compiles the kernel), then it compiles once and the calls go through it; a
    cached one is used at once; eager compiles at once."""
    from numrnn.kernels import cpu as K
    from numrnn.kernels.cpu import parallel

    compiled, driven = [], []

    class FakeDriver:
        overloads: dict = {}

        def compile(self, sig):
            compiled.append(sig)

        def __call__(self, address, args, edges):
            driven.append(list(edges))
            for k in range(len(edges) - 1):
                K.input_gradient_rows(*args, edges[k], edges[k + 1])

    monkeypatch.setattr(parallel, "rows_parallel", FakeDriver())
    monkeypatch.setattr(parallel, "_drivers", {})
    monkeypatch.setattr(parallel, "_eager", False)
    monkeypatch.setattr(parallel, "DRIVER_COMPILE_AFTER_S", 1.0)
    monkeypatch.setattr(parallel, "_load_cached_driver", lambda sig: False)
    ticks = iter(range(100))
    monkeypatch.setattr(parallel, "clock", lambda: 0.3 * next(ticks))  # 0.3 s a call
    d = np.ones((4, 8, 16), np.float32)
    w = np.ones((16, 3), np.float32)
    results = []
    for _ in range(7):
        dx = np.zeros((4, 8, 3), np.float32)
        _threads.run_row_ranges(K.input_gradient_rows, (d, w, dx), 32, 2)
        results.append(dx)
    # calls 1-5 waited (the first, which compiles the kernel, is not counted; 2-5 at 0.3 s
    # each: 1.2 s >= 1.0 before the 6th), 6 and 7 were driven
    assert len(compiled) == 1 and len(driven) == 2
    assert all(np.array_equal(r, results[0]) for r in results)
    assert float(results[0].sum()) == 4 * 8 * 3 * 16

    monkeypatch.setattr(parallel, "_drivers", {})
    monkeypatch.setattr(parallel, "_load_cached_driver", lambda sig: True)  # in the cache
    _threads.run_row_ranges(K.input_gradient_rows, (d, w, dx), 32, 2)
    assert len(compiled) == 1 and len(driven) == 3
    monkeypatch.setattr(parallel, "_drivers", {})
    monkeypatch.setattr(parallel, "_load_cached_driver", lambda sig: False)
    with parallel.eager_drivers():
        _threads.run_row_ranges(K.input_gradient_rows, (d, w, dx), 32, 2)
    assert len(compiled) == 2 and len(driven) == 4
    assert not parallel._eager


def test_parallel_driver_runs_the_kernels_own_machine_code():
    """The driver calls the kernel compiled for a direct call (the same address), on every
    range it is given, with the rows' arguments passed through unchanged."""
    from numba import typeof, types

    from numrnn._jit import kernel
    from numrnn.kernels import cpu as K
    from numrnn.kernels.cpu import parallel

    args = (np.ones((4, 8, 16), np.float32), np.ones((16, 3), np.float32),
            np.empty((4, 8, 3), np.float32))  # fmt: skip
    address = parallel.native_address(K.input_gradient_rows, args)
    assert address == parallel.native_address(K.input_gradient_rows, args)  # looked up once
    sig = (*(typeof(a) for a in args), types.int64, types.int64)
    result = K.input_gradient_rows.overloads[sig]
    assert address == result.library.get_pointer_to_function(result.fndesc.llvm_func_name)

    @kernel
    def mark_rows(out, scale, b0, b1):
        for r in range(b0, b1):
            out[r] = r * scale

    out = np.zeros(9)
    edges = np.array([0, 2, 7, 9], dtype=np.int64)
    parallel.rows_parallel(parallel.native_address(mark_rows, (out, 0.5)), (out, 0.5), edges)
    assert list(out) == [r * 0.5 for r in range(9)]


def test_kernel_cache_keyed_by_every_kernel_source(tmp_path, monkeypatch):
    """A change in any CPU kernel module invalidates every cached kernel and driver: Numba's
    own key (the function's file) misses a change in an inlined callee."""
    import shutil

    import numrnn._jit as jit
    from numrnn.kernels import cpu as K
    from numrnn.kernels.cpu import parallel

    for dispatcher in [K.lstm_forward_rows, K.gru_backward_rows, parallel.rows_parallel]:
        assert isinstance(dispatcher._cache, jit.KernelCache)
    stamp = jit.kernel_sources_stamp()
    assert stamp == jit.kernel_sources_stamp()  # read once per process
    shutil.copytree(jit._PACKAGE / "kernels" / "cpu", tmp_path / "kernels" / "cpu")
    monkeypatch.setattr(jit, "_PACKAGE", tmp_path)
    monkeypatch.setattr(jit, "_stamp", None)
    assert jit.kernel_sources_stamp() == stamp  # same sources, same stamp
    gemm_copy = tmp_path / "kernels" / "cpu" / "gemm.py"
    gemm_copy.write_text(gemm_copy.read_text() + "\n# edited\n")
    monkeypatch.setattr(jit, "_stamp", None)
    assert jit.kernel_sources_stamp() != stamp


def test_kernels_flush_denormals_and_leave_the_callers_mode_alone():
    """Issue #18: BPTT over long sequences makes gradients denormal, ~100x slower per
    operation (the large LSTM step: 29 s -> 1.8 s on one thread with them flushed). Kernels
    run with FTZ/DAZ; the calling thread's mode is restored after, for the user's NumPy."""
    import platform

    from numrnn.kernels.cpu.fpenv import flush_denormals, restore_fp_mode
    from numrnn.nn import LSTM

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("FTZ/DAZ is x86's")
    tiny = np.float32(1e-39)  # below float32's smallest normal number
    mode = flush_denormals()
    try:
        assert tiny * np.float32(1.0) == 0.0
    finally:
        restore_fp_mode(mode)
    assert tiny * np.float32(1.0) == tiny
    # BPTT whose state gradient decays below the normal range over 130 steps (all 16 entries
    # of (dh0, dc0) are denormal without the flush, checked): flushed, they are zero
    net = LSTM(1, 4, random_state=0)
    for p in net.parameters().values():
        p *= np.float32(1e-3)
    out, _ = net.forward(np.ones((2, 130, 1), np.float32))
    d_out = np.zeros_like(out)
    d_out[:, -1] = 1.0
    net.backward(d_out)
    dh0, dc0 = net.grad_state
    assert not dh0.any() and not dc0.any()
    assert tiny * np.float32(1.0) == tiny  # the caller's mode is back

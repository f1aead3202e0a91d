"""Running numrnn on many cores or machines: thread settings, worker set-up, compile cache.

Nothing here imports :mod:`dask` or :mod:`distributed` at module level; they are an optional
extra (``pip install 'numrnn[dask]'``). See ``docs/dask.rst``.

Threads
-------
A large numrnn layer call splits its batch rows between threads (:mod:`numrnn._threads`);
the small fits that forecasting runs by the hundred stay on one thread, and their
parallelism comes from running *many fits at once*, one per core. Four thread pools could
fight for those cores:

* Dask's worker threads (``threads_per_worker``; the parallelism we want),
* numrnn's time-loop threads (capped by ``NUMRNN_NUM_THREADS`` / ``NUMBA_NUM_THREADS``),
* the BLAS pools (NumPy's and SciPy's OpenBLAS, or MKL),
* Numba's threading layer (``NUMBA_NUM_THREADS``; numrnn's ``parallel=True`` row-range
  drivers, :mod:`numrnn.kernels.cpu.parallel`, run in it).

The rule: ``n_workers * threads_per_worker == cores`` and every other pool at one thread.
:func:`single_thread_env` gives the environment for spawned worker processes (a Nanny applies
it before the interpreter starts, which is the only moment ``NUMBA_NUM_THREADS`` and the
OpenBLAS variables are read); :class:`NumrnnWorkerPlugin` (via :func:`worker_plugin`) also
caps already-loaded BLAS libraries in a running worker with threadpoolctl, and each task of
:func:`fit_many_series` runs under :func:`single_threaded` (one BLAS
thread, one time-loop thread).

Compile cache
-------------
Kernels are compiled with ``cache=True``: the machine code is written next to the source
(``numrnn/kernels/cpu/__pycache__``) or, when that directory is not writable, under
``NUMBA_CACHE_DIR``. A worker process then *loads* kernels (about a second for the first
task, once per process) instead of compiling them (about ten seconds). Workers on the same
machine share the cache; on a cluster, point ``NUMBA_CACHE_DIR`` at a directory on each
node's local disk (or bake a warmed cache into the container image) and call
:func:`warm_up` once per worker (``client.run(warm_up)`` or the plugin's ``warm_up=True``)
so the first real task is not the one paying. :func:`compile_kernels` (the ``numrnn compile``
command) fills the cache for several cells at once, one process per core, e.g. in a Docker
build step.
"""

from __future__ import annotations

import os
import time
import warnings

from numrnn._threads import blas_threads, single_threaded
from numrnn._validation import check_int
from numrnn.forecasting import RNNForecaster, _pandas

__all__ = [
    "SeriesFitError",
    "blas_threads",
    "compile_kernels",
    "fit_many_series",
    "kernel_cache_stats",
    "single_threaded",
    "single_thread_env",
    "warm_up",
    "worker_plugin",
]


def single_thread_env(threads=1):
    """Environment for a spawned worker process whose tasks each use ``threads`` threads.

    Pass it to ``distributed.LocalCluster(env=...)``, ``dask-worker`` (export it) or a
    ``Nanny(env=...)``. The Nanny already sets the BLAS/OpenMP variables to 1 by default
    (``distributed.nanny.pre-spawn-environ``); this adds ``NUMBA_NUM_THREADS`` and makes the
    choice explicit.
    """
    t = str(int(threads))
    return {
        "OMP_NUM_THREADS": t,
        "OPENBLAS_NUM_THREADS": t,
        "MKL_NUM_THREADS": t,
        "BLIS_NUM_THREADS": t,
        "VECLIB_MAXIMUM_THREADS": t,
        "NUMBA_NUM_THREADS": t,
        "NUMRNN_NUM_THREADS": t,
    }


def exercise_kernels(cell="lstm", dtype="float32"):
    """Run every CPU kernel a fit of ``cell`` in ``dtype`` can call, on tiny data.

    A fit above the threading threshold on two or more threads also goes through the
    parallel driver (:func:`numrnn._threads.loop_threads`; the driver is compiled for each
    kernel's argument types), one below it calls the row kernels only, and a recursive
    forecast predicts below it after training above it: both are run, the first on two
    threads where the machine has two CPUs, with two layers, both directions and the Adam
    update, so that a cold cache is filled with what any later fit of this cell and dtype
    loads. Returns nothing; compiles or loads only.
    """
    import numpy as np

    from numrnn._threads import loop_thread_limit
    from numrnn.estimators import RNNRegressor
    from numrnn.kernels.cpu.parallel import eager_drivers

    rng = np.random.default_rng(0)
    # 32 rows x 64 units pass the threshold (2**21 multiply-adds) for every cell, also after
    # segment_length='auto' folds the 64 steps into ~22 (8 rows did not, for the RNN).
    for n, T, H, layers, bidirectional in ((32, 64, 64, 2, False), (4, 4, 4, 2, True)):
        X = rng.standard_normal((n, T, 1)).astype(dtype)
        y = X[:, -1, 0]
        with loop_thread_limit(2), eager_drivers():
            model = RNNRegressor(
                cell, H, num_layers=layers, bidirectional=bidirectional, max_iter=1,
                dtype=dtype, random_state=0,
            ).fit(X, y)  # fmt: skip
            model.predict(X[:1])


def warm_up(cell="lstm", dtype="float32", **forecaster_params):
    """Load (on a cold cache: compile) the kernels a fit of ``cell`` uses, in this process.

    Runs :func:`exercise_kernels` and fits and predicts with a tiny
    :class:`~numrnn.forecasting.RNNForecaster` with ``forecaster_params``, so a later task
    does not pay for it. Returns the seconds it took. Use ``client.run(warm_up, cell='gru')``
    to warm every worker of a dask cluster (or :func:`compile_kernels` on each machine).
    """
    import numpy as np

    t0 = time.perf_counter()
    params = dict(window=4, hidden_size=2, max_iter=1, random_state=0)
    params.update(forecaster_params)
    params.update(cell=cell, dtype=dtype)
    y = np.sin(np.arange(4 * params["window"] + 8, dtype=np.float64))
    with warnings.catch_warnings(), single_threaded():
        warnings.simplefilter("ignore")
        exercise_kernels(cell, dtype)
        RNNForecaster(**params).fit(y).predict(2)
    return time.perf_counter() - t0


def _compile_in_this_process(cell, dtype):
    """:func:`exercise_kernels` in a worker process: (cell, dtype, wall s, CPU s)."""
    import resource

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    t0, c0 = time.perf_counter(), cpu()
    with warnings.catch_warnings(), single_threaded():
        warnings.simplefilter("ignore")
        exercise_kernels(cell, dtype)
    return cell, dtype, time.perf_counter() - t0, cpu() - c0


def compile_kernels(cells=("rnn", "lstm", "gru"), dtypes=("float32",), processes=None,
                    report=None):  # fmt: skip
    """Fill the on-disk kernel cache for ``cells`` x ``dtypes``, one process per core.

    Each (cell, dtype) runs :func:`exercise_kernels` in its own process (compilation is
    single-threaded, so processes are what use the cores); kernels already cached load in
    about a second. ``report(cell, dtype, wall_s, cpu_s)`` is called as each finishes.
    Returns ``{(cell, dtype): (wall_s, cpu_s)}``.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from numrnn._jit import COLD_COMPILE_SECONDS
    from numrnn._threads import _cpu_count

    # Longest first: on two cores, gru and lstm then rnn ends sooner than rnn and lstm then gru.
    jobs = sorted(((c, d) for c in cells for d in dtypes),
                  key=lambda job: -COLD_COMPILE_SECONDS.get(job[0], 0))  # fmt: skip
    workers = max(1, min(len(jobs), processes or _cpu_count()))
    results = {}
    # spawn: a fresh interpreter per worker (a forked child of a process that ran Numba's
    # threading layer cannot use it).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_compile_in_this_process, c, d) for c, d in jobs]
        for future in as_completed(futures):
            cell, dtype, wall, cpu = future.result()
            results[cell, dtype] = (wall, cpu)
            if report is not None:
                report(cell, dtype, wall, cpu)
    return results


def kernel_cache_stats():
    """Compile-cache use of numrnn's CPU kernels in this process.

    Returns ``{'cache_dir': str, 'hits': int, 'misses': int, 'compiled': [names]}``: *hits*
    are specialisations loaded from the on-disk cache, *misses* ones that had to be compiled
    (a cold or unwritable cache). ``client.run(kernel_cache_stats)`` shows it per worker.
    """
    import importlib

    from numba.core.registry import CPUDispatcher

    hits = misses = 0
    compiled, cache_dir = [], None
    for mod in ("common", "gemm", "rnn", "lstm", "gru", "parallel"):
        m = importlib.import_module(f"numrnn.kernels.cpu.{mod}")
        for name, obj in vars(m).items():
            if not isinstance(obj, CPUDispatcher) or obj.__module__ != m.__name__:
                continue
            st = obj.stats
            cache_dir = cache_dir or st.cache_path
            hits += sum(st.cache_hits.values())
            misses += sum(st.cache_misses.values())
            if st.cache_misses:
                compiled.append(f"{mod}.{name}")
    return {"cache_dir": cache_dir, "hits": hits, "misses": misses, "compiled": compiled}


def _cap_threads(threads):
    """Cap BLAS/OpenMP pools and Numba's threading layer in this process."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=int(threads))  # global: stays in force for the process
    try:
        import numba

        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    except Exception:  # pragma: no cover - a threading layer that cannot start
        pass


def worker_plugin(threads=1, warm_up_params=None):
    """A ``distributed.WorkerPlugin`` that caps thread pools and optionally warms kernels.

    Register it once per client: ``client.register_plugin(worker_plugin())``; it runs on
    every current worker and on every worker that joins later (including a restarted one).

    Parameters
    ----------
    threads : int, default=1
        BLAS/OpenMP/Numba threads per worker process (use 1 with one Dask thread per core).
    warm_up_params : dict, optional
        When given, :func:`warm_up` ``(**warm_up_params)`` runs at worker set-up, so the
        compile-cache load happens before the first task.
    """
    from distributed import WorkerPlugin

    class NumrnnWorkerPlugin(WorkerPlugin):
        name = "numrnn-threads"

        def __init__(self, threads, warm_up_params):
            self.threads = int(threads)
            self.warm_up_params = warm_up_params

        def setup(self, worker):
            os.environ["NUMBA_NUM_THREADS"] = str(self.threads)  # for subprocesses
            _cap_threads(self.threads)
            if self.warm_up_params is not None:
                worker.numrnn_warm_up_s = warm_up(**self.warm_up_params)

    return NumrnnWorkerPlugin(threads, warm_up_params)


# -- many series (one model per series) ----------------------------------------------------------------------------
def _series_items(series, id_col, value_col, time_col):
    """(ids, list of series) from a dict, a list/tuple or a long-format DataFrame."""
    pd = _pandas()
    if pd is not None and isinstance(series, pd.DataFrame):
        need = [id_col, value_col] + ([] if time_col is None else [time_col])
        missing = [c for c in need if c not in series.columns]
        if missing:
            raise ValueError(
                f"series is a DataFrame without the column(s) {missing}; it has "
                f"{list(series.columns)}. A long-format frame needs id_col={id_col!r} and "
                f"value_col={value_col!r} (and time_col, if given); pass the right names, or "
                "dict(df.items()) for a wide frame with one column per series."
            )
        ids, out = [], []
        for key, g in series.groupby(id_col, sort=False):
            if time_col is not None:
                g = g.sort_values(time_col, kind="stable")
                s = pd.Series(g[value_col].to_numpy(), index=pd.Index(g[time_col]), name=value_col)
                if isinstance(s.index, pd.DatetimeIndex) and len(s) >= 3:
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            s.index.freq = pd.infer_freq(s.index)
                    except (TypeError, ValueError):
                        pass
            else:
                s = g[value_col].to_numpy()
            ids.append(key)
            out.append(s)
        return ids, out
    if isinstance(series, dict):
        return list(series.keys()), list(series.values())
    if isinstance(series, (list, tuple)):
        return list(range(len(series))), list(series)
    raise TypeError(
        "series must be a dict {id: series}, a list of series, or a long-format pandas "
        f"DataFrame with id and value columns; got {type(series).__name__}. For a single "
        "series use RNNForecaster(...).fit(y)."
    )


def _fit_one(y, params, horizon):
    """Fit one forecaster (the task run on a worker) on one thread: tasks are the parallelism.

    A ``ConvergenceWarning`` is not silenced: it fires only for a series whose loss was
    still falling at ``max_iter``, which its user needs to know."""
    with single_threaded():
        f = RNNForecaster(**params).fit(y)
        return f if horizon is None else f.predict(horizon)


class SeriesFitError(ValueError):
    """Fitting one series of :func:`fit_many_series` failed; ``series_id`` names it and the
    original exception is the ``__cause__``."""

    def __init__(self, message, series_id=None):
        super().__init__(message)
        self.series_id = series_id

    def __reduce__(self):  # picklable with its id (dask and joblib send it between processes)
        return (type(self), (self.args[0], self.series_id))


def _fit_chunk(chunk, params, horizon, errors="raise"):
    """Fit a chunk [(id, y), ...] -> [(id, result), ...]; a failure is named by its id."""
    out = []
    for i, y in chunk:
        try:
            out.append((i, _fit_one(y, params, horizon)))
        except Exception as exc:
            err = SeriesFitError(f"series {i!r} failed: {type(exc).__name__}: {exc}", i)
            if errors == "raise":
                raise err from exc
            err.__cause__ = exc
            out.append((i, err))
    return out


def fit_many_series(
    series,
    client=None,
    *,
    horizon=None,
    id_col="id",
    value_col="value",
    time_col=None,
    series_per_task=1,
    n_jobs=None,
    errors="raise",
    **forecaster_params,
):
    """Fit one :class:`RNNForecaster` per series, for many series, locally or on dask.

    Parameters
    ----------
    series : dict, list or pandas DataFrame
        ``{id: series}``; a list of series (ids 0..n-1); or a long-format DataFrame with one
        row per observation, series ``id_col``, values ``value_col`` and, optionally, the
        time ``time_col`` (rows are sorted by it within each series, and the forecasts carry
        the continued time index when it is regular). Each series is anything
        :meth:`RNNForecaster.fit` accepts.
    client : distributed.Client, optional
        Run on this dask cluster (one task per ``series_per_task`` series). Without one, the
        fits run locally with joblib (``n_jobs``; under ``joblib.parallel_backend('dask')``
        they go to dask too).
    horizon : int, optional
        When given, return each series' forecast of ``horizon`` steps instead of the fitted
        forecaster (smaller to send back).
    id_col, value_col, time_col : str
        Column names for a long-format DataFrame.
    series_per_task : int, default=1
        Series fitted in one task. Larger values amortise scheduling for very short fits;
        1 keeps the retry unit (a task lost with a dying worker) to one series.
    n_jobs : int, optional
        joblib workers for the local run (None: 1, or the active joblib backend's default).
    errors : {'raise', 'return'}, default='raise'
        A series whose fit fails raises :class:`SeriesFitError` naming its id (``'raise'``),
        or (``'return'``) its entry in the result is that :class:`SeriesFitError` (the
        original exception as its ``__cause__``) and every other series is fitted as usual.
    **forecaster_params
        Passed to every :class:`RNNForecaster` (``window``, ``cell``, ``hidden_size``,
        ``max_iter``, ``random_state``, ...). With a fixed ``random_state`` a series gets the
        same model wherever and however often it is fitted.

    Returns
    -------
    results : dict
        ``{id: fitted RNNForecaster}`` or, with ``horizon``, ``{id: forecast}``, in the order
        the series were given. ``pandas.concat(results, names=[id_col])`` turns forecasts
        into one long Series.

    Notes
    -----
    *Failures*: on dask, each task has a deterministic key (a hash of its series, the
    parameters and ``horizon``) and is pure, so when a worker dies its tasks are re-run
    elsewhere (up to ``distributed.scheduler.allowed-failures`` times) and every id appears
    exactly once in the result, with the same value a local run gives. Two clients
    submitting the same work at the same time share the tasks instead of fitting twice.

    *Threads*: every task holds BLAS to one thread; run one dask thread per core (see
    :mod:`numrnn.parallel`).

    Examples
    --------
    >>> import numpy as np
    >>> ys = {f"s{i}": np.sin(np.arange(60) * 0.3 + i) for i in range(3)}
    >>> fc = fit_many_series(ys, horizon=5, window=8, hidden_size=4, max_iter=300,
    ...                      n_models=1, random_state=0)  # 60 points: 2 updates per epoch
    >>> sorted(fc), fc["s0"].shape
    (['s0', 's1', 's2'], (5,))
    """
    if errors not in ("raise", "return"):
        raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}.")
    ids, values = _series_items(series, id_col, value_col, time_col)
    if len(set(ids)) != len(ids):
        raise ValueError("series ids must be unique; some ids repeat.")
    k = check_int("series_per_task", series_per_task, 1)
    horizon = check_int("horizon", horizon, 1, allow_none=True)
    # Check every parameter here, once, rather than in every task: the forecaster's own and
    # those it passes to its RNNRegressor.
    proto = RNNForecaster(**forecaster_params)
    proto._check_params()
    proto._regressor()._validate_hyperparameters()
    params = proto.get_params()
    items = list(zip(ids, values, strict=True))
    chunks = [items[s : s + k] for s in range(0, len(items), k)]
    if client is None:
        from joblib import Parallel, delayed

        parts = Parallel(n_jobs=n_jobs)(
            delayed(_fit_chunk)(c, params, horizon, errors) for c in chunks
        )
    else:
        from dask.base import tokenize

        keys = [
            f"numrnn-fit-{tokenize([(repr(i), y) for i, y in c], params, horizon, errors)}"
            for c in chunks
        ]
        futures = client.map(
            _fit_chunk, chunks, params=params, horizon=horizon, errors=errors, key=keys, pure=True
        )
        try:
            parts = client.gather(futures)
        finally:
            for fut in futures:
                fut.release()
    done = dict(pair for part in parts for pair in part)
    return {i: done[i] for i in ids}

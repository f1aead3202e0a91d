"""Many small forecasters: series per second locally (joblib) and on a 2-worker LocalCluster.

Also measures what the first task on a fresh dask worker costs (importing numrnn and loading
the compiled kernels from numba's on-disk cache) against later tasks, and, with ``--cold``,
the same with an empty cache (``NUMBA_CACHE_DIR`` pointed at a new directory: every worker
compiles the kernels itself).

    PYTHONPATH=. python benchmarks/many_series.py [--n-series 48] [--cold]

Not an asv benchmark: it starts processes and clusters. Keep n_workers x threads at the
number of cores (2 here).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings


def timed_fit(y, params):
    """Run on a worker: (pid, import seconds, fit+predict seconds, kernels compiled)."""
    t0 = time.perf_counter()
    import numrnn.forecasting as F
    from numrnn.parallel import kernel_cache_stats

    t1 = time.perf_counter()
    F._fit_one(y, params, 3)
    t2 = time.perf_counter()
    return os.getpid(), t1 - t0, t2 - t1, kernel_cache_stats()["misses"]


def first_task_overhead(series, params, env, label):
    """Fresh cluster; per worker, the first task's round trip vs later ones."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
            env=env,
        ) as cluster,
        Client(cluster) as client,
    ):
        workers = sorted(client.scheduler_info()["workers"])
        rows = {w: [] for w in workers}
        for r in range(6):
            for w in workers:
                t0 = time.perf_counter()
                fut = client.submit(timed_fit, series[r], params, workers=[w], pure=False)
                pid, t_imp, t_fit, misses = fut.result()
                rows[w].append((time.perf_counter() - t0, t_imp, t_fit, misses))
        print(f"\nfirst task on a fresh worker ({label}):")
        for w, rs in rows.items():
            later = statistics.median(x[0] for x in rs[1:])
            rt, t_imp, t_fit, misses = rs[0]
            print(
                f"  {w}: first {rt:6.2f} s round trip (import numrnn {t_imp:.2f} s, "
                f"fit {t_fit:.2f} s, kernels compiled {misses}); later tasks median "
                f"{later * 1e3:.0f} ms; overhead {rt - later:.2f} s"
            )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-series", type=int, default=48)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--max-iter", type=int, default=20)
    ap.add_argument("--hidden-size", type=int, default=8)
    ap.add_argument("--cell", default="lstm")
    ap.add_argument("--cold", action="store_true", help="also measure with an empty cache")
    args = ap.parse_args(argv)

    import numpy as np

    from numrnn.parallel import fit_many_series, single_thread_env, warm_up

    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    t = np.arange(args.length)
    series = {
        f"s{i}": np.sin(t * rng.uniform(0.05, 0.4) + rng.uniform(0, 6))
        + 0.1 * rng.normal(size=t.size)
        for i in range(args.n_series)
    }
    params = dict(
        window=16,
        cell=args.cell,
        hidden_size=args.hidden_size,
        max_iter=args.max_iter,
        random_state=0,
        n_models=1,  # one network a series, max_iter epochs: the rates are per network
        choose_epochs=False,
    )
    n = args.n_series
    print(
        f"{n} series x {args.length} steps, {args.cell} H={args.hidden_size}, "
        f"{args.max_iter} epochs, horizon 3; {os.cpu_count()} cores"
    )
    warm_up(cell=args.cell)

    def rate(label, fn):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        assert len(out) == n
        print(f"  {label:<44s} {n / dt:7.1f} series/s ({dt:.2f} s)")
        return out

    print("\nthroughput:")
    ref = rate("local, 1 process", lambda: fit_many_series(series, horizon=3, **params))
    rate(
        "local joblib n_jobs=2 (incl. loky start)",
        lambda: fit_many_series(series, horizon=3, n_jobs=2, **params),
    )
    rate(
        "local joblib n_jobs=2 (warm pool)",
        lambda: fit_many_series(series, horizon=3, n_jobs=2, **params),
    )

    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
            env=single_thread_env(),
        ) as cluster,
        Client(cluster) as client,
    ):
        out = rate(
            "dask 2x1 LocalCluster (first run)",
            lambda: fit_many_series(series, client, horizon=3, **params),
        )
        assert all(np.array_equal(out[k], ref[k]) for k in ref)
        rate(
            "dask 2x1 LocalCluster (warm workers)",
            lambda: fit_many_series(series, client, horizon=3, **params),
        )
        rate(
            "dask 2x1, series_per_task=8",
            lambda: fit_many_series(series, client, horizon=3, series_per_task=8, **params),
        )

    ys = list(series.values())
    first_task_overhead(ys, params, single_thread_env(), "warm on-disk cache")
    if args.cold:
        with tempfile.TemporaryDirectory() as d:
            env = dict(single_thread_env(), NUMBA_CACHE_DIR=d)
            first_task_overhead(ys, params, env, "empty NUMBA_CACHE_DIR: compiles")


if __name__ == "__main__":
    main()

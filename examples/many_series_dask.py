"""Forecast many series at once on a dask cluster.

A long-format table (one row per store and day) -> one RNNForecaster per store, fitted on a
two-worker LocalCluster -> a long table of 7-day forecasts. Without dask installed, or with
``--local``, the same call runs in this process.

    PYTHONPATH=. python examples/many_series_dask.py [--local] [--scheduler tcp://host:8786]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd

from numrnn.parallel import fit_many_series


def make_sales(n_stores=12, n_days=180, seed=0):
    rng = np.random.default_rng(seed)
    days = pd.date_range("2024-01-01", periods=n_days, freq="D")
    t = np.arange(n_days)
    frames = []
    for s in range(n_stores):
        weekly = np.sin(2 * np.pi * t / 7 + rng.uniform(0, 2 * np.pi))
        level = rng.uniform(50, 150) + 0.05 * t
        sales = level + 10 * weekly + rng.normal(0, 2, n_days)
        frames.append(pd.DataFrame({"store": f"store-{s:02d}", "day": days, "sales": sales}))
    return pd.concat(frames, ignore_index=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--local", action="store_true", help="run without dask")
    ap.add_argument("--scheduler", help="address of a running dask scheduler")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")  # short demo fits do not converge fully

    df = make_sales()
    # one network a series, trained a fixed budget: quick (the default trains 3, epochs chosen)
    params = dict(window=14, cell="lstm", hidden_size=8, random_state=0, n_models=1,
                  choose_epochs=False)  # fmt: skip
    kw = dict(id_col="store", value_col="sales", time_col="day", horizon=7, **params)

    if args.local:
        forecasts = fit_many_series(df, **kw)
    else:
        from distributed import Client, LocalCluster

        from numrnn.parallel import single_thread_env, worker_plugin

        if args.scheduler:
            client, cluster = Client(args.scheduler), None
        else:
            # One single-threaded worker process per core; BLAS/Numba held to one thread.
            cluster = LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                env=single_thread_env(),
            )
            client = Client(cluster)
        # Cap threads on every worker (also ones that join or restart later) and load the
        # compiled kernels before the first task.
        client.register_plugin(worker_plugin(warm_up_params=dict(cell=params["cell"])))
        try:
            forecasts = fit_many_series(df, client, **kw)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    table = pd.concat(forecasts, names=["store", "day"]).rename("forecast").reset_index()
    print(table.pivot(index="day", columns="store", values="forecast").round(1).iloc[:, :4])
    print(f"\n{len(forecasts)} stores, {len(table)} forecast rows")


if __name__ == "__main__":
    main()

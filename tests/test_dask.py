"""numrnn on dask ``distributed`` (issue #8): many series, GridSearchCV, a worker dying.

One two-process LocalCluster (1 thread each, loopback, no dashboard) serves the module; the
machines that run this have 2 cores. Fits are tiny (hidden_size 4, a few epochs): the tests
check equality with the local run, not forecast quality.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
import warnings

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

import joblib  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit, cross_val_score  # noqa: E402

from numrnn.estimators import RNNRegressor  # noqa: E402
from numrnn.forecasting import RNNForecaster  # noqa: E402
from numrnn.parallel import (  # noqa: E402
    fit_many_series,  # noqa: E402
    kernel_cache_stats,
    single_thread_env,
    warm_up,
    worker_plugin,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# one network, max_iter epochs: these tests are about distributing fits (fast)
PARAMS = dict(window=6, hidden_size=4, max_iter=4, random_state=0, n_models=1, choose_epochs=False)


def _series(n, length=50):
    return {f"s{i}": np.sin(np.arange(length) * (0.2 + 0.03 * i) + i) for i in range(n)}


@pytest.fixture(scope="module")
def client():
    warm_up()  # fills the on-disk kernel cache the workers load from (no-op when warm)
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        env=single_thread_env(),
    )
    c = distributed.Client(cluster)
    c.register_plugin(worker_plugin(warm_up_params={}))
    yield c
    c.close()
    cluster.close()


def _assert_same(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=str(k))


def test_forecasts_equal_local_run(client):
    ys = _series(6)
    local = fit_many_series(ys, horizon=3, **PARAMS)
    remote = fit_many_series(ys, client, horizon=3, **PARAMS)
    _assert_same(remote, local)
    chunked = fit_many_series(ys, client, horizon=3, series_per_task=4, **PARAMS)
    _assert_same(chunked, local)


def test_fitted_forecasters_come_back(client):
    ys = list(_series(3).values())
    models = fit_many_series(ys, client, **PARAMS)
    assert list(models) == [0, 1, 2]
    for i, m in models.items():
        assert isinstance(m, RNNForecaster)
        local = RNNForecaster(**PARAMS).fit(ys[i])
        np.testing.assert_array_equal(m.predict(4), local.predict(4))
        assert len(pickle.dumps(m)) < 50_000  # cheap to ship back


def test_long_dataframe_with_time_column(client):
    ys = _series(3, length=40)
    t = pd.date_range("2024-01-01", periods=40, freq="D")
    rows = [pd.DataFrame({"store": k, "day": t, "sales": v}) for k, v in ys.items()]
    df = pd.concat(rows).sample(frac=1.0, random_state=0)  # shuffled: time_col orders it
    kw = dict(id_col="store", value_col="sales", time_col="day", horizon=2, **PARAMS)
    remote = fit_many_series(df, client, **kw)
    local = fit_many_series(df, **kw)
    _assert_same(remote, local)
    direct = RNNForecaster(**PARAMS).fit(ys["s1"]).predict(2)
    np.testing.assert_array_equal(remote["s1"].to_numpy(), direct)
    assert remote["s1"].index[0] == pd.Timestamp("2024-02-10")
    long = pd.concat(remote, names=["store"])
    assert long.shape == (6,)


def test_workers_use_compile_cache_and_one_thread(client):
    stats = client.run(kernel_cache_stats)
    for addr, st in stats.items():
        assert st["misses"] == 0, (addr, st["compiled"])
        assert st["hits"] > 0, addr
    info = client.run(
        lambda: (
            os.environ.get("NUMBA_NUM_THREADS"),
            {
                d["user_api"]: d["num_threads"]
                for d in __import__("threadpoolctl").threadpool_info()
            },
        )
    )
    for env, pools in info.values():
        assert env == "1"
        assert all(n == 1 for n in pools.values()), pools


def test_gridsearch_and_cross_val_under_dask_backend(client):
    y = np.sin(np.arange(80) * 0.25)
    grid = {"hidden_size": [4, 6], "window": [5, 8]}
    est = RNNForecaster(max_iter=3, random_state=0)
    cv = TimeSeriesSplit(n_splits=2, test_size=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        local = GridSearchCV(est, grid, cv=cv, n_jobs=1).fit(y)
        with joblib.parallel_backend("dask"):
            remote = GridSearchCV(est, grid, cv=cv, n_jobs=-1).fit(y)
        np.testing.assert_array_equal(
            remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
        )
        assert remote.best_params_ == local.best_params_

        X = np.random.default_rng(0).normal(size=(40, 5, 2))
        t = X.sum(axis=(1, 2))
        reg = RNNRegressor(cell="gru", hidden_size=4, max_iter=3, random_state=0)
        with joblib.parallel_backend("dask"):
            s_remote = cross_val_score(reg, X, t, cv=3, n_jobs=-1)
        s_local = cross_val_score(reg, X, t, cv=3, n_jobs=1)
    np.testing.assert_array_equal(s_remote, s_local)


def test_worker_killed_mid_run(client):
    """SIGKILL a worker while it fits; the scheduler re-runs its tasks on the other one."""
    ys = _series(8, length=120)
    # Long enough (~70 ms a series, measured) that the killer finds a task under way.
    params = dict(PARAMS, max_iter=200)
    pids = client.run(os.getpid)
    killed = {}

    def killer():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            busy = [a for a, ks in client.processing().items() if ks and a in pids]
            if busy:
                time.sleep(0.005)  # let the task get under way
                keys = list(client.processing().get(busy[0], ()))
                if keys:
                    killed[busy[0]] = keys
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    return
            time.sleep(0.01)

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    remote = fit_many_series(ys, client, horizon=3, **params)
    th.join(5)
    assert killed, "no worker was busy: nothing was killed"
    local = fit_many_series(ys, horizon=3, **params)
    _assert_same(remote, local)
    # The killed worker's in-flight task(s) were scheduled again on a live worker.
    (keys,) = killed.values()
    stories = client.run_on_scheduler(
        lambda dask_scheduler: [dask_scheduler.story(k) for k in keys]
    )
    assert any(sum(s[2] == "processing" for s in story) >= 2 for story in stories), stories
    client.wait_for_workers(2, timeout=60)  # the nanny brings a fresh worker back


def test_local_joblib_and_input_errors():
    ys = _series(3)
    seq = fit_many_series(ys, horizon=2, **PARAMS)
    par = fit_many_series(ys, horizon=2, n_jobs=2, **PARAMS)
    _assert_same(par, seq)
    with pytest.raises(TypeError, match="series must be a dict"):
        fit_many_series(np.zeros(10), **PARAMS)
    with pytest.raises(ValueError, match="without the column"):
        fit_many_series(pd.DataFrame({"a": [1.0]}), **PARAMS)
    with pytest.raises(ValueError, match="horizon must be"):
        fit_many_series(ys, horizon=0, **PARAMS)
    with pytest.raises(ValueError, match="strategy must be"):
        fit_many_series(ys, strategy="nope", **PARAMS)

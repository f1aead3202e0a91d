"""Forecast accuracy of RNNForecaster against the classical yardsticks, on real series.

Every series ships inside an installed package (nothing is downloaded): statsmodels
(co2, sunspots, nile, elnino, macrodata's realgdp and unemp) and aeon (airline, lynx, shampoo). The last
``h`` points of each series are held out; every model is fitted on the rest and forecasts
``h`` steps. One run prints, per series, sMAPE and MASE of

* ``numrnn``: the default ``RNNForecaster(season_length=m, random_state=seed)`` (mean ± standard
  deviation over ``--seeds`` seeds) and its fit time (CPU seconds of this process);
* ``numrnn x5``: the same with ``n_models=5`` (one seed);
* seasonal naive, AutoETS, AutoARIMA, AutoTheta (statsforecast; skipped when absent);

then the geometric-mean sMAPE ratios to AutoETS and to seasonal naive, the transform the
forecaster used (what ``transform='auto'`` chose), and the empirical coverage of its 80 %
intervals, per series and over all held-out points: ``conformal=True`` (every seed: the point
forecast is the default's, the backtest fold only adds the intervals) and/or the pinball-loss
heads of ``quantiles=(0.1, 0.5, 0.9)`` (seed 0), as ``--intervals`` says.

The yardsticks are optional (``pip install -e ".[bench]"``); a series whose package is missing
is skipped with a note. Usage::

    python benchmarks/forecast_accuracy.py            # everything (~10 min on 2 busy cores)
    python benchmarks/forecast_accuracy.py --quick    # 4 series, 1 seed, no ensemble
    python benchmarks/forecast_accuracy.py --series airline,lynx --seeds 2
    python benchmarks/forecast_accuracy.py --param scaler=standard --param transform=None
    python benchmarks/forecast_accuracy.py --intervals both   # conformal and quantile heads
    python benchmarks/forecast_accuracy.py --origins 5   # also 5 earlier held-out blocks
    python benchmarks/forecast_accuracy.py --origins 4 --rules   # fall-back rules too

``--param name=value`` (a Python literal) overrides one forecaster parameter, to compare
settings on the same table (how the defaults were chosen).

``--rules`` also scores rules that fall back to, or combine the network with, a classical
forecast (seasonal naive, the last value), each decided from the training series only, on the
backtest fold of ``conformal=True`` (RNNForecaster's Notes record the table): on the last
block for every seed and, with ``--origins``, on the earlier blocks (seed 0).
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import resource
import sys
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


# -- data -------------------------------------------------------------------------------------
def _aeon(name):
    import aeon.datasets as d

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(getattr(d, name)(), dtype=np.float64).ravel()


def _co2():
    import statsmodels.datasets as d

    s = d.co2.load_pandas().data["co2"]  # weekly, with gaps: monthly means as is usual
    return s.resample("MS").mean().interpolate().to_numpy()


def _sunspots():
    import statsmodels.datasets as d

    return d.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(dtype=np.float64)


def _nile():
    import statsmodels.datasets as d

    return d.nile.load_pandas().data["volume"].to_numpy(dtype=np.float64)


def _elnino():
    import statsmodels.datasets as d

    return d.elnino.load_pandas().data.iloc[:, 1:13].to_numpy(dtype=np.float64).ravel()


def _realgdp():
    import statsmodels.datasets as d

    return d.macrodata.load_pandas().data["realgdp"].to_numpy(dtype=np.float64)


def _unemp():
    import statsmodels.datasets as d

    return d.macrodata.load_pandas().data["unemp"].to_numpy(dtype=np.float64)


# name -> (loader, horizon, season length): the horizons are the usual ones for the frequency
# (two years for monthly data, as in the table; one cycle for the yearly cyclic series).
SERIES = {
    "airline": (lambda: _aeon("load_airline"), 24, 12),
    "shampoo": (lambda: _aeon("load_shampoo_sales"), 12, 1),
    "co2": (_co2, 24, 12),
    "lynx": (lambda: _aeon("load_lynx"), 14, 10),
    "sunspots": (_sunspots, 22, 11),
    "nile": (_nile, 10, 1),
    "elnino": (_elnino, 24, 12),
    "realgdp": (_realgdp, 8, 4),
    "unemp": (_unemp, 8, 4),
}
QUICK = ("airline", "shampoo", "lynx", "nile")


# -- metrics ----------------------------------------------------------------------------------
def smape(y, f):
    y, f = np.asarray(y, float), np.asarray(f, float)
    den = np.abs(y) + np.abs(f)
    return float(np.mean(np.where(den == 0, 0.0, 200.0 * np.abs(y - f) / np.where(den, den, 1))))


def mase(y, f, train, m):
    m = max(int(m), 1)
    scale = np.mean(np.abs(train[m:] - train[:-m]))
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(f))) / scale)


def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- models -----------------------------------------------------------------------------------
def classical(train, h, m):
    """{name: forecast} of the statsforecast yardsticks (those installed)."""
    out = {"seasonal naive": classical_snaive(train, h, m)}
    try:
        from statsforecast.models import AutoARIMA, AutoETS, AutoTheta
    except ImportError:
        return out
    for name, model in (
        ("AutoETS", AutoETS(season_length=m)),
        ("AutoARIMA", AutoARIMA(season_length=m)),
        ("AutoTheta", AutoTheta(season_length=m)),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out[name] = np.asarray(model.forecast(y=train, h=h)["mean"], dtype=float)
            except Exception as exc:  # noqa: BLE001 - a yardstick failing is reported, not fatal
                print(f"  ({name} failed: {type(exc).__name__}: {exc})")
    return out


def rnn(train, h, m, seed, params):
    """(forecast, CPU seconds of the fit, fitted forecaster)."""
    from numrnn.forecasting import RNNForecaster

    kw = dict(season_length=m, random_state=seed)
    kw.update(params)
    f = RNNForecaster(**kw)
    t0 = _cpu()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f.fit(train)
    fit_s = _cpu() - t0
    return np.asarray(f.predict(h), float), fit_s, f


def earlier_origins(y, h, m, k, params, rules=None):
    """sMAPE of numrnn (seed 0) and seasonal naive on the ``k`` blocks of ``h`` steps
    before the held-out one, each forecast from the series up to its start. ``rules``: a
    dict that gets each --rules rule's sMAPEs (and seasonal naive's, under ``'_snaive'``)."""
    s_net, s_sn = [], []
    for j in range(1, k + 1):
        end = len(y) - j * h
        train, test = y[: end - h], y[end - h : end]
        if train.size < 3 * max(m, 4) + h:
            break
        fit_params = params if rules is None else dict(params, conformal=True)
        fc, _, f = rnn(train, h, m, 0, fit_params)
        s_net.append(smape(test, fc))
        s_sn.append(smape(test, classical_snaive(train, h, m)))
        if rules is not None:
            for rule, g in rule_forecasts(train, h, m, fc, f.residuals_[:, :, 0]).items():
                rules.setdefault(rule, []).append(smape(test, g))
            rules.setdefault("_snaive", []).append(s_sn[-1])
    return s_net, s_sn


def classical_snaive(train, h, m):
    return np.tile(train[-m:], h // m + 1)[:h] if m > 1 else np.repeat(train[-1], h)


# -- rules that fall back to / combine with a classical forecast (--rules) --------------------
RULE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
RULE_DAMPING = (1.0, 0.95, 0.9, 0.8, 0.7, 0.5)


def _fold(train, residuals, h, m):
    """The backtest fold of ``conformal=True`` up to horizon ``h``: actuals, the network's
    forecasts, seasonal naive's and the last value's, each (origins, h), NaN past the end."""
    n, c = train.size, residuals.shape[0]
    H = min(h, residuals.shape[1])
    A = np.full((c, H), np.nan)
    S, N = np.empty((c, H)), np.empty((c, H))
    for p, t in enumerate(range(n - c, n)):
        k = min(H, n - t)
        A[p, :k] = train[t : t + k]
        S[p] = classical_snaive(train[:t], H, m)
        N[p] = train[t - 1]
    return A, A - residuals[:, :H], S, N


def rule_forecasts(train, h, m, forecast, residuals):
    """{rule: forecast} of the network's forecast and the rules built on it, each choice made
    on the backtest fold (``residuals``: the fitted forecaster's ``residuals_[:, :, 0]``)."""
    A, F, S, N = _fold(train, residuals, h, m)
    s = classical_snaive(train, h, m)
    last = np.repeat(train[-1], h)

    def err(f):
        return float(np.nanmean(np.abs(A - f)))

    out = {"network": forecast}
    e_net, e_sn = err(F), err(S)
    for margin in (0.0, 0.1, 0.2):
        out[f"fallback {margin:.0%}"] = s if e_net > (1 + margin) * e_sn else forecast
    w = min(RULE_WEIGHTS, key=lambda w: err(w * F + (1 - w) * S))
    out["weight grid"] = w * forecast + (1 - w) * s
    j_fold, j = np.arange(1, F.shape[1] + 1), np.arange(1, h + 1)
    for label, base_fold, base in (("snaive", S, s), ("last", N, last)):
        phi = min(RULE_DAMPING, key=lambda p: err(base_fold + p**j_fold * (F - base_fold)))
        out[f"damped to {label}"] = base + phi**j * (forecast - base)
    wn, ws = 1.0 / max(e_net, 1e-12), 1.0 / max(e_sn, 1e-12)
    out["inverse error"] = (wn * forecast + ws * s) / (wn + ws)
    out["mean w snaive"] = 0.5 * (forecast + s)
    out["median of 3"] = np.median(np.stack([forecast, s, last]), axis=0)
    return out


def print_rules(rules_last, rules_earlier, snaive, ets):
    """The --rules table: per rule, last-block sMAPE per series (mean over seeds), series
    below seasonal naive, geometric-mean ratios to AutoETS and (earlier blocks) to snaive."""

    def gmean(v):
        return math.exp(np.mean(np.log(v))) if v else float("nan")

    names = list(snaive)
    print()
    print(
        "rules falling back to / combining with a classical forecast, chosen on the backtest "
        "fold of conformal=True: sMAPE (%) of the last block (mean over seeds)"
    )
    print(
        f"{'rule':<16} |"
        + "".join(f" {n[:8]:>8}" for n in names)
        + " | below snaive  /ETS | earlier: /snaive below"
    )
    for rule, per in rules_last.items():
        last = {n: float(np.mean(per[n])) for n in names}
        # a tie (a rule that returns seasonal naive) is not "below": the mean over seeds of
        # equal values can differ from the value in its last bit
        below = sum(last[n] < snaive[n] * (1 - 1e-12) for n in names)
        r_ets = gmean([last[n] / ets[n] for n in names if n in ets])
        er, wins = [], 0
        for n in names:
            for got, sn in zip(
                rules_earlier.get(n, {}).get(rule, []),
                rules_earlier.get(n, {}).get("_snaive", []),
                strict=True,
            ):
                er.append(got / sn)
                wins += got < sn
        print(
            f"{rule:<16} |"
            + "".join(f" {last[n]:>8.2f}" for n in names)
            + f" | {below:>2} of {len(names):<4} {r_ets:>5.3f} | {gmean(er):>8.3f} {wins:>2} of {len(er)}"
        )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help=f"series {QUICK}, 1 seed, no ensemble")
    p.add_argument("--series", default=None, help="comma-separated subset of " + ",".join(SERIES))
    p.add_argument("--seeds", type=int, default=3, help="seeds of the default forecaster")
    p.add_argument("--models", type=int, default=5, help="n_models of the ensemble (0: skip)")
    p.add_argument(
        "--intervals",
        choices=("conformal", "quantile", "both", "none"),
        default="conformal",
        help="80%% intervals whose coverage is measured (default: conformal)",
    )
    p.add_argument("--no-intervals", action="store_true", help="same as --intervals none")
    p.add_argument(
        "--transforms",
        default=None,
        help="also fit these fixed transforms, ';'-separated, steps joined by '+' (e.g. "
        "'none;diff;seasonal_diff;log+diff'), and compare them with the forecaster's choice",
    )
    p.add_argument(
        "--origins",
        type=int,
        default=0,
        help="also forecast from this many earlier origins per series (non-overlapping "
        "held-out blocks of h steps before the last one; seed 0 and seasonal naive): whether "
        "a loss to seasonal naive is the model's or the one split's",
    )
    p.add_argument(
        "--rules",
        action="store_true",
        help="also score the rules that fall back to / combine with seasonal naive or the last "
        "value, chosen on the backtest fold of conformal=True (its point forecast is the "
        "default's)",
    )
    p.add_argument("--param", action="append", default=[], help="forecaster override name=value")
    a = p.parse_args(argv)
    names = list(QUICK) if a.quick else list(SERIES)
    if a.series:
        names = a.series.split(",")
    seeds = 1 if a.quick else a.seeds
    intervals = "none" if a.no_intervals else a.intervals
    conformal = intervals in ("conformal", "both")
    quantile = intervals in ("quantile", "both")
    n_models = 0 if a.quick else a.models
    params = {}
    for item in a.param:
        k, v = item.split("=", 1)
        try:
            params[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            params[k] = v
    if params:
        print("forecaster overrides:", params)

    rows, ratios_ets, ratios_snaive, ratios_ens = [], [], [], []
    cover_c, cover_q, chosen = {}, {}, {}  # series -> list of per-point hits; transform_
    fixed = {}  # series -> {fixed transform: mean sMAPE over seeds}
    sm_all = {}  # series -> seasonal naive sMAPE
    wins_ens = 0
    counted = 0
    earlier = {}  # series -> (numrnn sMAPEs, seasonal naive sMAPEs) at the earlier origins
    rules_last, rules_earlier = {}, {}  # --rules: rule -> series -> sMAPEs; series -> rule -> ...
    for name in names:
        loader, h, m = SERIES[name]
        try:
            y = loader()
        except ImportError as exc:
            print(f"{name}: skipped ({exc})")
            continue
        train, test = y[:-h], y[-h:]
        cl = classical(train, h, m)
        sm = {k: smape(test, v) for k, v in cl.items()}
        ms = {k: mase(test, v, train, m) for k, v in cl.items()}
        s_rnn, m_rnn, t_rnn = [], [], []
        for seed in range(seeds):
            fit_params = dict(params, conformal=True) if conformal or a.rules else params
            fc, t, f = rnn(train, h, m, seed, fit_params)
            s_rnn.append(smape(test, fc))
            if a.rules:
                for rule, g in rule_forecasts(train, h, m, fc, f.residuals_[:, :, 0]).items():
                    rules_last.setdefault(rule, {}).setdefault(name, []).append(smape(test, g))
            m_rnn.append(mase(test, fc, train, m))
            t_rnn.append(t)
            if seed == 0:
                chosen[name] = "+".join(map(str, f.transform_)) or "none"
            if conformal:
                q = np.asarray(f.predict_quantiles(h), float)
                cover_c.setdefault(name, []).extend((test >= q[:, 0]) & (test <= q[:, -1]))
        if a.transforms:
            for spec in a.transforms.split(";"):
                steps = [] if spec == "none" else spec.split("+")
                if ("seasonal_diff" in steps and m < 2) or ("log" in steps and train.min() <= 0):
                    continue
                got = [
                    rnn(train, h, m, seed, dict(params, transform=steps))[0]
                    for seed in range(seeds)
                ]
                fixed.setdefault(name, {})[spec] = np.mean([smape(test, g) for g in got])
        if quantile:
            _, _, fq = rnn(train, h, m, 0, dict(params, quantiles=(0.1, 0.5, 0.9)))
            q = np.asarray(fq.predict_quantiles(h), float)
            cover_q[name] = list((test >= q[:, 0]) & (test <= q[:, -1]))
        ens = None
        if n_models:
            fc, t_ens, _ = rnn(train, h, m, 0, dict(params, n_models=n_models))
            ens = (smape(test, fc), mase(test, fc, train, m), t_ens)
        if a.origins:
            earlier[name] = earlier_origins(
                y, h, m, a.origins, params, rules_earlier.setdefault(name, {}) if a.rules else None
            )
        rows.append((name, h, m, s_rnn, m_rnn, t_rnn, ens, sm, ms))
        sm_all[name] = sm["seasonal naive"]
        sn = sm["seasonal naive"]
        ratios_snaive.append(np.mean(s_rnn) / sn)
        if "AutoETS" in sm:
            ratios_ets.append(np.mean(s_rnn) / sm["AutoETS"])
            if ens is not None:
                ratios_ens.append(ens[0] / sm["AutoETS"])
                counted += 1
                wins_ens += ens[0] <= min(sm.values()) + 1e-12
        print(f"  {name} done", file=sys.stderr, flush=True)

    cols = ["seasonal naive", "AutoETS", "AutoARIMA", "AutoTheta"]
    print()
    print("sMAPE (%), lower is better; numrnn: mean ± sd over seeds; fit: CPU s per model")
    if conformal:
        print("(numrnn fit s includes the conformal backtest fold: about twice a plain fit)")
    hdr = f"{'series':<9} {'h':>3} {'m':>3} | {'numrnn':>13} {'fit s':>6} | {'numrnn x' + str(n_models):>10} {'fit s':>6} |"
    hdr += "".join(f" {c:>14}" for c in cols)
    print(hdr)
    print("-" * len(hdr))
    for name, h, m, s_rnn, _m_rnn, t_rnn, ens, sm, _ms in rows:
        line = f"{name:<9} {h:>3} {m:>3} | {np.mean(s_rnn):>6.2f} ± {np.std(s_rnn):>4.2f} {np.mean(t_rnn):>6.2f} |"
        line += f" {ens[0]:>10.2f} {ens[2]:>6.2f} |" if ens else f" {'-':>10} {'-':>6} |"
        line += "".join(f" {sm[c]:>14.2f}" if c in sm else f" {'-':>14}" for c in cols)
        print(line)
    print()
    print("MASE")
    hdr = f"{'series':<9} | {'numrnn':>13} | {'numrnn x' + str(n_models):>10} |" + "".join(
        f" {c:>14}" for c in cols
    )
    print(hdr)
    print("-" * len(hdr))
    for name, _h, _m, _s, m_rnn, _t, ens, _sm, ms in rows:
        line = f"{name:<9} | {np.mean(m_rnn):>6.3f} ± {np.std(m_rnn):>4.3f} |"
        line += f" {ens[1]:>10.3f} |" if ens else f" {'-':>10} |"
        line += "".join(f" {ms[c]:>14.3f}" if c in ms else f" {'-':>14}" for c in cols)
        print(line)
    print()

    def gmean(v):
        return math.exp(np.mean(np.log(v))) if v else float("nan")

    below = sum(r < 1 for r in ratios_snaive)
    print(
        f"default below seasonal naive on {below} of {len(ratios_snaive)} series; "
        f"geometric-mean sMAPE ratio to seasonal naive {gmean(ratios_snaive):.3f}"
    )
    if ratios_ets:
        print(f"geometric-mean sMAPE ratio to AutoETS: default {gmean(ratios_ets):.3f}", end="")
        if ratios_ens:
            print(
                f", x{n_models} ensemble {gmean(ratios_ens):.3f}; ensemble at or below the best "
                f"classical model on {wins_ens} of {counted} series"
            )
        else:
            print()
    if fixed:
        specs = a.transforms.split(";")
        print()
        print("sMAPE (%) of fixed transforms (mean over seeds) against the forecaster's own")
        print(
            f"{'series':<9} |"
            + "".join(f" {sp:>17}" for sp in specs)
            + f" | {'used':>8} {'best?':>5}"
        )
        hits, ratio = 0, []
        for name, _h, _m, s_rnn, *_ in rows:
            fx = fixed.get(name, {})
            line = f"{name:<9} |" + "".join(
                f" {fx[sp]:>17.2f}" if sp in fx else f" {'-':>17}" for sp in specs
            )
            best = min(fx.values())
            ok = np.mean(s_rnn) <= best + 1e-9
            hits += ok
            ratio.append(np.mean(s_rnn) / best)
            print(line + f" | {np.mean(s_rnn):>8.2f} {'yes' if ok else 'no':>5}")
        print(
            f"the forecaster's transform is the per-series best fixed one on {hits} of {len(rows)} "
            f"series; geometric-mean sMAPE ratio to the per-series best {gmean(ratio):.3f}"
        )
        for sp in specs:
            r = [fixed[n][sp] / sm_all[n] for n in fixed if sp in fixed[n]]
            print(
                f"  fixed {sp:<20} geometric-mean sMAPE ratio to seasonal naive {gmean(r):.3f} ({len(r)} series)"
            )
    if earlier:
        print()
        print(
            f"earlier origins ({a.origins} held-out blocks of h steps before the last, seed 0): "
            "mean sMAPE (%)"
        )
        print(f"{'series':<9} | {'numrnn':>8} {'snaive':>8} | numrnn below snaive")
        for name, (s_net, s_sn) in earlier.items():
            if not s_net:
                print(f"{name:<9} | {'-':>8} {'-':>8} | series too short for an earlier block")
                continue
            wins = int(np.sum(np.asarray(s_net) < np.asarray(s_sn)))
            print(
                f"{name:<9} | {np.mean(s_net):>8.2f} {np.mean(s_sn):>8.2f} | {wins} of {len(s_net)}"
            )
    if rules_last:
        ets = {name: sm["AutoETS"] for name, *_, sm, _ms in rows if "AutoETS" in sm}
        print_rules(rules_last, rules_earlier, sm_all, ets)
    print()
    print("transform used (seed 0) and 80 % interval coverage (%) of the held-out points")
    print(f"{'series':<9} | {'transform':<20} | {'conformal':>9} | {'quantile':>9}")
    for name, *_ in rows:
        cc = f"{100 * np.mean(cover_c[name]):>9.1f}" if name in cover_c else f"{'-':>9}"
        cq = f"{100 * np.mean(cover_q[name]):>9.1f}" if name in cover_q else f"{'-':>9}"
        print(f"{name:<9} | {chosen[name]:<20} | {cc} | {cq}")
    for label, cov, who in (
        ("conformal=True", cover_c, f"{seeds} seed(s)"),
        ("quantiles=(0.1, 0.5, 0.9)", cover_q, "seed 0"),
    ):
        if cov:
            hits = np.concatenate([np.asarray(v, float) for v in cov.values()])
            per = [100 * np.mean(v) for v in cov.values()]
            print(
                f"80 % intervals, {label} ({who}): coverage {100 * hits.mean():.1f} % of "
                f"{hits.size} held-out points; per series {min(per):.1f}-{max(per):.1f} %"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

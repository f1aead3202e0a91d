"""numrnn against PyTorch on the DESIGN §5 configurations, in one run, five modes.

Each mode prints numrnn's time, PyTorch's time for the same work measured in the same run,
and their ratio (torch/ours > 1: numrnn is faster), float32:

- ``step``: per configuration and cell, a training step (forward, linear head on the last
  state, MSE, BPTT without the input gradient, Adam on every parameter) and the forward pass
  alone (inference), with achieved GFLOP/s (DESIGN §4's ``6*G*B*H*(I+H)*T`` per layer and
  direction) beside the fraction of the best sgemm rate of the same run, and the peak memory
  of a step beside what BPTT needs; then cold and warm start per cell;
- ``ownloop``: a loop as a user writes it with ``numrnn.nn`` (``out = net.forward(x)``, a
  head and MSE on every step, ``dx = net.backward(d_out)`` with the input gradient, Adam);
- ``fit``: ``RNNRegressor`` / ``RNNClassifier`` ``fit`` end to end (validation, shuffling,
  minibatches, head, loss, clipping, Adam, bookkeeping) on ``small`` / ``digits`` /
  ``medium``-shaped data against a plain PyTorch training loop of the same work;
- ``predict``: the fitted estimator's ``predict`` over all of that data (many short
  sequences in one call) against PyTorch's inference over the same batch;
- ``latency``: a one-step forecast with carried state by a hidden-32 LSTM estimator.

    PYTHONPATH=. python benchmarks/compare_torch.py                     # everything
    PYTHONPATH=. python benchmarks/compare_torch.py --configs tiny,small --cells lstm
    PYTHONPATH=. python benchmarks/compare_torch.py --modes ownloop,fit --configs digits
    PYTHONPATH=. python benchmarks/compare_torch.py --markdown --threads 1

Timings are only meaningful on a quiet machine: nothing else running. The load average at
the start and end of the run is printed with the tables. numrnn's and PyTorch's calls are
timed alternately (:func:`paired_ms`: call by call, or in rounds for calls under 50 ms), so
that a slow phase of a shared machine falls on both.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # noqa: E402
from common import (  # noqa: E402
    CELLS,
    CONFIGS,
    FIT_BATCHES,
    FIT_TASKS,
    GATES,
    Config,
    EstimatorFit,
    EstimatorPredict,
    OneStepForecast,
    OwnLoopStep,
    TrainingStep,
    cold_and_warm_start,
    forward_flops,
    median_us,
    parse_list,
    sgemm_rates,
    step_memory,
    theoretical_train_bytes,
    train_flops,
    wall_times,
)
from torch_ref import (  # noqa: E402
    TorchFit,
    TorchOneStep,
    TorchOwnLoop,
    TorchPredict,
    TorchStep,
    torch,
)

MB = 1024.0**2


# -- measurements -----------------------------------------------------------------------------
def median_ms(fn, repeat: int, max_seconds: float) -> float:
    return 1e3 * float(np.median(wall_times(fn, repeat, warmup=1, max_seconds=max_seconds)))


#: Rounds of :func:`paired_ms` for short calls: numrnn's calls, then PyTorch's, this many
#: times over.
ROUNDS = 3
#: Calls shorter than this run in :data:`ROUNDS` rounds, with an untimed call each time the
#: library changes (the other library's worker threads may still be spinning for a fraction
#: of a millisecond); longer ones alternate call by call.
SHORT_CALL_S = 0.05


def _timed(fn) -> float:
    t0 = common.TIMER()
    fn()
    return common.TIMER() - t0


def paired_ms(ours, theirs, repeat: int, max_seconds: float) -> tuple[float, float | None]:
    """Median ms of ``ours`` and of ``theirs`` (None: not measured), timed alternately:
    ``repeat`` calls and ``max_seconds`` of timed work each (at least :data:`ROUNDS` calls).

    A shared virtual machine has slow phases of a second or more (one digits LSTM step
    took 27-41 ms within one second, nothing else running; a medium LSTM step 355-433 ms
    of CPU time a minute apart): measured one after the other, such a phase falls on one
    library only and moves the ratio by 20 % either way. Calls of
    :data:`SHORT_CALL_S` or more therefore alternate call by call, so each phase falls on
    both libraries' calls alike; shorter ones, whose switch costs an untimed call, in
    :data:`ROUNDS` rounds.
    """
    if theirs is None:
        return median_ms(ours, repeat, max_seconds), None
    fns, times = (ours, theirs), ([], [])
    for fn in fns:
        fn()  # warm-up
    for i, fn in enumerate(fns):
        times[i].append(_timed(fn))
    if min(times[0] + times[1]) >= SHORT_CALL_S:
        # at least ROUNDS calls each, as the rounds give: a large LSTM step alone takes 5 s
        while len(times[0]) < repeat and (
            len(times[0]) < ROUNDS or max(sum(times[0]), sum(times[1])) < max_seconds
        ):
            for i, fn in enumerate(fns):
                times[i].append(_timed(fn))
    else:
        per_round = -(-repeat // ROUNDS)
        for r in range(ROUNDS):
            for i, fn in enumerate(fns):
                if r:
                    fn()  # the switch's untimed call
                spent = 0.0
                while len(times[i]) < per_round * (r + 1) and spent <= max_seconds / ROUNDS:
                    times[i].append(_timed(fn))
                    spent += times[i][-1]
    return 1e3 * float(np.median(times[0])), 1e3 * float(np.median(times[1]))


def measure_gemm(cfgs: list[Config]) -> dict[str, float]:
    """GFLOP/s of float32 GEMM: NumPy at 1024^3 and at the largest config's hoisted GEMM shape
    (B*T, H, 4H); SciPy's BLAS (what Numba's ``np.dot`` calls) and torch.mm at 1024^3."""
    big = max(cfgs, key=lambda c: c.B * c.T * c.H * c.H)
    typical = (big.B * big.T, big.H, 4 * big.H)
    rates = {}
    for shape, r in sgemm_rates([(1024, 1024, 1024), typical]).items():
        rates["numpy " + "x".join(map(str, shape))] = r
    try:
        from scipy.linalg.blas import sgemm

        a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32, order="F")
        best = min(wall_times(lambda: sgemm(1.0, a, a), 5))
        rates["scipy 1024^3"] = 2 * 1024**3 / best / 1e9
    except ImportError:  # pragma: no cover
        pass
    if torch is not None:
        a = torch.randn(1024, 1024)
        out = torch.empty(1024, 1024)
        best = min(wall_times(lambda: torch.mm(a, a, out=out), 5))
        rates["torch 1024^3"] = 2 * 1024**3 / best / 1e9
    return rates


def threads_context(n: int | None):
    """Limit BLAS, Numba and PyTorch threads to ``n`` (None: leave the defaults)."""
    if n is None:
        return contextlib.nullcontext()
    import numba
    from threadpoolctl import threadpool_limits

    from numrnn._threads import loop_thread_limit

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    if torch is not None:
        torch.set_num_threads(n)
    stack = contextlib.ExitStack()
    stack.enter_context(threadpool_limits(limits=n))
    stack.enter_context(loop_thread_limit(n))  # numrnn's time loops, whatever the load
    return stack


# -- output -----------------------------------------------------------------------------------
def fmt(v, spec=".2f") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return format(v, spec)


def render(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells):
        return "  ".join(
            c.rjust(w) if i > 1 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


MODES = ("step", "ownloop", "fit", "predict", "latency")


def step_rows(configs, cells, args, use_torch, floor_rate) -> list[list[str]]:
    """Training step (head on the last state, no input gradient) and inference per cell."""
    rows = []
    for cfg in configs:
        for cell in cells:
            step = TrainingStep(cell, cfg)
            tstep = TorchStep(cell, cfg) if use_torch else None
            tr, ttr = paired_ms(step, tstep, args.repeat, args.max_seconds)
            fw, tfw = paired_ms(
                step.forward, tstep and tstep.forward, args.repeat, args.max_seconds
            )
            mem, held = (None, None) if args.no_memory else step_memory(step)
            del step, tstep
            gflops = train_flops(cell, cfg) / (tr / 1e3) / 1e9
            need = theoretical_train_bytes(cell, cfg)
            rows.append([
                cfg.name, cell,
                fmt(tr, ".3f"), fmt(ttr, ".3f"), fmt(ttr / tr if ttr else None),
                fmt(gflops, ".1f"), fmt(100 * gflops / floor_rate, ".1f"),
                fmt(fw, ".3f"), fmt(tfw, ".3f"), fmt(tfw / fw if tfw else None),
                fmt(forward_flops(cell, cfg) / (fw / 1e3) / 1e9, ".1f"),
                fmt(None if mem is None else (mem + held) / MB, ".2f"),
                fmt(need["total"] / MB, ".2f"),
            ])  # fmt: skip
            print(f"  done step {cfg.name}/{cell}", file=sys.stderr, flush=True)
    return rows


def ownloop_rows(configs, cells, args, use_torch, floor_rate) -> list[list[str]]:
    """A user's own loop: per-step head and loss, ``backward(d_out)`` with dx, Adam."""
    rows = []
    for cfg in configs:
        for cell in cells:
            step = OwnLoopStep(cell, cfg)
            tstep = TorchOwnLoop(cell, cfg) if use_torch else None
            ours, theirs = paired_ms(step, tstep, args.repeat, args.max_seconds)
            del step, tstep
            # + dX of layer 0 (2*G*B*H*I*T per direction): the own loop's extra GEMM
            flops = train_flops(cell, cfg) + 2 * GATES[cell] * cfg.B * cfg.H * cfg.I * cfg.T * cfg.D
            gflops = flops / (ours / 1e3) / 1e9
            rows.append([
                cfg.name, cell, fmt(ours, ".3f"), fmt(theirs, ".3f"),
                fmt(theirs / ours if theirs else None), fmt(gflops, ".1f"),
                fmt(100 * gflops / floor_rate, ".1f"),
            ])  # fmt: skip
            print(f"  done ownloop {cfg.name}/{cell}", file=sys.stderr, flush=True)
    return rows


def fit_rows(fit_configs, cells, args, use_torch) -> list[list[str]]:
    """Estimator ``fit`` end to end against a plain PyTorch loop of the same work."""
    rows = []
    for cfg in fit_configs:
        for cell in cells:
            fit = EstimatorFit(cell, cfg, epochs=args.epochs)
            tfit = TorchFit(cell, cfg, epochs=args.epochs) if use_torch else None
            ours, theirs = paired_ms(fit, tfit, args.fit_repeat, args.max_seconds * 3)
            ours, theirs = ours / 1e3, (theirs / 1e3 if theirs else None)
            step = TrainingStep(cell, cfg)  # the minibatch's kernel work alone
            kernel = median_ms(step, args.repeat, args.max_seconds) / 1e3
            del fit, tfit, step
            steps = FIT_BATCHES * args.epochs
            rows.append([
                cfg.name, cell, FIT_TASKS[cfg.name], f"{steps}",
                fmt(ours, ".3f"), fmt(theirs, ".3f"), fmt(theirs / ours if theirs else None),
                fmt(1e3 * ours / steps, ".2f"), fmt(1e3 * kernel, ".2f"),
                fmt(100 * (1 - kernel * steps / ours), ".0f"),
            ])  # fmt: skip
            print(f"  done fit {cfg.name}/{cell}", file=sys.stderr, flush=True)
    return rows


def predict_rows(fit_configs, cells, args, use_torch) -> list[list[str]]:
    """Estimator ``predict`` over many short sequences against PyTorch's inference."""
    rows = []
    for cfg in fit_configs:
        for cell in cells:
            pred = EstimatorPredict(cell, cfg)
            n, T = pred.X.shape[:2]
            tpred = TorchPredict(cell, cfg) if use_torch else None
            ours, theirs = paired_ms(pred, tpred, args.repeat, args.max_seconds)
            del pred, tpred
            rows.append([
                cfg.name, cell, f"{n}", f"{T}", fmt(ours, ".2f"), fmt(theirs, ".2f"),
                fmt(theirs / ours if theirs else None),
            ])  # fmt: skip
            print(f"  done predict {cfg.name}/{cell}", file=sys.stderr, flush=True)
    return rows


def latency_rows(args, use_torch) -> list[list[str]]:
    """One-step forecast with carried state, hidden-32 LSTM."""
    one = OneStepForecast()
    est = median_us(one, args.latency_repeat)
    stream = median_us(one.stream, args.latency_repeat)
    net = median_us(one.network, args.latency_repeat)
    theirs = median_us(TorchOneStep(), args.latency_repeat) if use_torch else None
    print("  done latency", file=sys.stderr, flush=True)

    def ratio(ours):
        return fmt(theirs / ours if theirs else None)

    return [
        ["numrnn generate(model, x_t, 1, state=...)", fmt(est, ".1f"), fmt(theirs, ".1f"),
         ratio(est)],
        ["numrnn Stream(model).step(x_t)", fmt(stream, ".1f"), fmt(theirs, ".1f"),
         ratio(stream)],
        ["numrnn network_.forward(x_t, state) + head", fmt(net, ".1f"), fmt(theirs, ".1f"),
         ratio(net)],
    ]  # fmt: skip


def print_section(title: str, headers: list, rows: list, markdown: bool, note: str) -> None:
    """One mode's table: a blank line, the title, the table, a blank line, the note."""
    print()
    print(title)
    print(render(headers, rows, markdown))
    print()
    print(note)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default="all", help=f"comma list of {','.join(MODES)}")
    ap.add_argument("--configs", default="all", help=f"comma list of {','.join(CONFIGS)}")
    ap.add_argument("--cells", default="all", help="comma list of rnn,lstm,gru")
    ap.add_argument(
        "--fit-data", default="small,digits",
        help=f"configs whose data the fit and predict modes use: comma list of {','.join(FIT_TASKS)}",
    )  # fmt: skip
    ap.add_argument("--epochs", type=int, default=3, help="epochs of the fit mode")
    ap.add_argument("--fit-repeat", type=int, default=3, help="fits per measurement (median)")
    ap.add_argument("--latency-repeat", type=int, default=2000, help="one-step calls (median)")
    ap.add_argument("--repeat", type=int, default=7, help="timed calls per measurement (median)")
    ap.add_argument(
        "--max-seconds", type=float, default=4.0,
        help="stop repeating a measurement after this much timed work (at least 2 calls)",
    )  # fmt: skip
    ap.add_argument("--threads", type=int, default=None, help="threads for BLAS/Numba/PyTorch")
    ap.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall",
        help="wall time, or the calling thread's CPU time (needs --threads 1; robust to load)",
    )  # fmt: skip
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even when installed")
    ap.add_argument("--no-startup", action="store_true", help="skip cold/warm start subprocesses")
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc step")
    args = ap.parse_args(argv)
    modes = parse_list(args.modes, MODES, "modes")
    configs = [CONFIGS[c] for c in parse_list(args.configs, CONFIGS, "configs")]
    fit_configs = [CONFIGS[c] for c in parse_list(args.fit_data, FIT_TASKS, "fit data")]
    cells = parse_list(args.cells, CELLS, "cells")
    use_torch = torch is not None and not args.no_torch
    if args.repeat < 1 or args.fit_repeat < 1 or args.epochs < 1:
        raise SystemExit("--repeat, --fit-repeat and --epochs must be >= 1")

    if args.clock == "cpu":
        if args.threads != 1:
            raise SystemExit("--clock cpu times the calling thread: use it with --threads 1")
        common.TIMER = time.thread_time
    t_start = time.perf_counter()
    load_start = os.getloadavg()
    import numba

    from numrnn._threads import cpu_contended, max_loop_threads

    with threads_context(args.threads):
        gemm = measure_gemm(configs)
        floor_rate = max(gemm.values())
        loop_threads = max_loop_threads()
        contended = cpu_contended()
        rows = step_rows(configs, cells, args, use_torch, floor_rate) if "step" in modes else []
        own = (
            ownloop_rows(configs, cells, args, use_torch, floor_rate) if "ownloop" in modes else []
        )
        fits = fit_rows(fit_configs, cells, args, use_torch) if "fit" in modes else []
        preds = predict_rows(fit_configs, cells, args, use_torch) if "predict" in modes else []
        lat = latency_rows(args, use_torch) if "latency" in modes else []

        startup_rows = []
        if not args.no_startup and "step" in modes:
            for cell in cells:
                cold, warm = cold_and_warm_start(cell)
                startup_rows.append([
                    cell, fmt(cold["import"] + cold["first"], ".2f"), fmt(cold["first"], ".2f"),
                    fmt(warm["import"], ".3f"), fmt(warm["first"] * 1e3, ".1f"),
                    fmt(warm["second"] * 1e3, ".2f"), fmt(warm["maxrss_kib"] / 1024, ".0f"),
                ])  # fmt: skip
                print(f"  done start-up/{cell}", file=sys.stderr, flush=True)

    threads = args.threads if args.threads is not None else "default"
    torch_note = (
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
        if use_torch
        else (
            "torch: not installed, PyTorch columns skipped" if torch is None else "torch: skipped"
        )
    )
    h = "## " if args.markdown else ""
    print(f"{h}numrnn vs PyTorch, float32; torch/ours > 1 means numrnn is faster")
    print(
        f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, threads={threads}, "
        f"clock={args.clock}, "
        f"numrnn loop threads {loop_threads} (CPU contended: {contended}), "
        f"numpy {np.__version__}, numba {numba.__version__}, {torch_note}"
    )
    print(
        "load average (1, 5, 15 min) at start "
        + ", ".join(f"{v:.2f}" for v in load_start)
        + ", at end "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    print(
        "sgemm GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in gemm.items())
        + f"; best {floor_rate:.0f} is the '%sgemm' reference"
    )  # fmt: skip
    if rows:
        headers = [
            "config", "cell", "train ms", "torch ms", "torch/ours", "GFLOP/s", "%sgemm",
            "fwd ms", "torch fwd ms", "fwd torch/ours", "fwd GFLOP/s", "mem MB", "need MB",
        ]  # fmt: skip
        print_section(
            f"{h}Training step = forward + BPTT + Adam (+ linear head on the last state, MSE)",
            headers, rows, args.markdown,
            "median of up to --repeat calls after 1 warm-up, numrnn's and PyTorch's timed "
            "alternately (call by call from 50 ms, else 3 rounds); no input gradient (PyTorch: x "
            "without requires_grad); mem = NumPy peak during a step (tracemalloc) + params, "
            "Adam state and data; need = activations BPTT keeps + 4x params (value, grad, "
            "2 Adam moments) + data.",
        )  # fmt: skip
    if own:
        print_section(
            f"{h}Own loop: out = net.forward(x); head + MSE on every step; "
            "dx = net.backward(d_out) (input gradient, the default); Adam",
            ["config", "cell", "ms", "torch ms", "torch/ours", "GFLOP/s", "%sgemm"],
            own, args.markdown,
            "PyTorch: x with requires_grad=True, head(out) on every step, MSELoss, backward, "
            "Adam. GFLOP/s counts the training FLOPs plus layer 0's dX GEMM.",
        )  # fmt: skip
    if fits:
        headers = [
            "data", "cell", "task", "steps", "fit s", "torch s", "torch/ours",
            "ms/step", "kernel ms/step", "% outside kernels",
        ]  # fmt: skip
        print_section(
            f"{h}Estimator fit end to end ({args.epochs} epochs x {FIT_BATCHES} minibatches; "
            "RNNRegressor / RNNClassifier vs a plain PyTorch loop of the same work)",
            headers, fits, args.markdown,
            "median of --fit-repeat fits, numrnn's and PyTorch's alternating. Estimator defaults except "
            "batch_size=B, hidden_size=H, "
            "max_iter=epochs, n_iter_no_change>epochs, segment_length=None, readout='last', "
            "n_models=1 (the work PyTorch does). PyTorch: randperm, minibatch indexing, network, "
            "head on h_n, MSE/CE, clip_grad_norm_(1), Adam(1e-3, weight_decay 1e-4 on weights). "
            "kernel ms/step: compare_torch's training step (forward, head, BPTT, Adam) on one "
            "minibatch; '% outside kernels' is the rest of the fit: validation, batching, "
            "shuffling, loss, clipping, bookkeeping.",
        )  # fmt: skip
    if preds:
        print_section(
            f"{h}Estimator predict over many short sequences (all of the fit mode's data, one call)",
            ["data", "cell", "sequences", "steps", "ms", "torch ms", "torch/ours"],
            preds, args.markdown,
            "median of up to --repeat calls, timed alternately; the fit mode's estimator "
            "after one epoch. PyTorch: "
            "the network over the whole batch under inference_mode, the head on h_n, argmax "
            "for classes.",
        )  # fmt: skip
    if lat:
        print_section(
            f"{h}One-step forecast with carried state, LSTM hidden 32, one feature (µs)",
            ["call", "µs", "torch µs", "torch/ours"], lat, args.markdown,
            f"median of {args.latency_repeat} calls; PyTorch: lstm(x_t, (h, c)) + "
            "Linear under inference_mode.",
        )  # fmt: skip
    if startup_rows:
        print()
        print(f"{h}Start-up (new process, tiny config, training step)")
        sheaders = [
            "cell", "cold s (import+1st)", "cold compile s", "warm import s",
            "warm 1st ms", "warm 2nd ms", "maxrss MB",
        ]  # fmt: skip
        print(render(sheaders, startup_rows, args.markdown))
        print()
        print(
            "cold: empty NUMBA_CACHE_DIR, so the first step compiles its kernels; warm: the "
            "same cache directory again, kernels load from disk. `import numrnn` does not "
            "import numba, so the first step also pays numba's import."
        )
    print(f"\ntotal run time {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

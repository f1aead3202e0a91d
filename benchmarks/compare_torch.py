"""numrnn against PyTorch on the DESIGN §5 configurations, in one table from one run.

For each configuration and cell (float32): a training step (forward, linear head on the last
output, MSE loss, BPTT, Adam on every parameter) and a forward-only (inference) pass, timed
as the median of repeated calls after a warm-up, for numrnn and for the same work in PyTorch
(``torch.nn.RNN/LSTM/GRU(batch_first=True)`` + ``nn.Linear`` + ``nn.MSELoss`` +
``torch.optim.Adam``). Achieved GFLOP/s (DESIGN §4's ``6*G*B*H*(I+H)*T`` per layer and
direction) is shown beside the fraction of the best sgemm rate measured in the same run, and
the peak memory of a numrnn step beside what BPTT theoretically needs. Below the table: cold
compile (new process, empty ``NUMBA_CACHE_DIR``) and warm start (new process, cache filled)
per cell.

    PYTHONPATH=. python benchmarks/compare_torch.py                     # everything (~10 min)
    PYTHONPATH=. python benchmarks/compare_torch.py --configs tiny,small --cells lstm
    PYTHONPATH=. python benchmarks/compare_torch.py --markdown --threads 1

Timings are only meaningful on a quiet machine: nothing else running.
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

from common import (  # noqa: E402
    CELLS,
    CONFIGS,
    Config,
    TrainingStep,
    cold_and_warm_start,
    forward_flops,
    make_data,
    parse_list,
    sgemm_rates,
    step_memory,
    theoretical_train_bytes,
    train_flops,
    wall_times,
)

try:  # PyTorch is a yardstick, never a dependency
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None

MB = 1024.0**2


# -- PyTorch side -----------------------------------------------------------------------------
class TorchStep:
    """The same training step in PyTorch (float32, CPU)."""

    def __init__(self, cell: str, cfg: Config, seed: int = 0):
        torch.manual_seed(seed)
        cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
        self.rnn = cls(cfg.I, cfg.H, cfg.L, batch_first=True, bidirectional=cfg.bidirectional)
        self.head = torch.nn.Linear(cfg.D * cfg.H, 1)
        self.loss_fn = torch.nn.MSELoss()
        params = list(self.rnn.parameters()) + list(self.head.parameters())
        self.opt = torch.optim.Adam(params, lr=1e-3)
        x, y = make_data(cfg, np.float32, seed)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def __call__(self) -> float:
        self.opt.zero_grad(set_to_none=True)
        out, _ = self.rnn(self.x)
        loss = self.loss_fn(self.head(out[:, -1, :]), self.y)
        loss.backward()
        self.opt.step()
        return loss.item()

    def forward(self):
        with torch.inference_mode():
            out, _ = self.rnn(self.x)
            return self.head(out[:, -1, :])


# -- measurements -----------------------------------------------------------------------------
def median_ms(fn, repeat: int, max_seconds: float) -> float:
    return 1e3 * float(np.median(wall_times(fn, repeat, warmup=1, max_seconds=max_seconds)))


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

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    if torch is not None:
        torch.set_num_threads(n)
    return threadpool_limits(limits=n)


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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="all", help=f"comma list of {','.join(CONFIGS)}")
    ap.add_argument("--cells", default="all", help="comma list of rnn,lstm,gru")
    ap.add_argument("--repeat", type=int, default=7, help="timed calls per measurement (median)")
    ap.add_argument(
        "--max-seconds", type=float, default=4.0,
        help="stop repeating a measurement after this much timed work (at least 2 calls)",
    )  # fmt: skip
    ap.add_argument("--threads", type=int, default=None, help="threads for BLAS/Numba/PyTorch")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even when installed")
    ap.add_argument("--no-startup", action="store_true", help="skip cold/warm start subprocesses")
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc step")
    args = ap.parse_args(argv)
    configs = [CONFIGS[c] for c in parse_list(args.configs, CONFIGS, "configs")]
    cells = parse_list(args.cells, CELLS, "cells")
    use_torch = torch is not None and not args.no_torch
    if args.repeat < 1:
        raise SystemExit("--repeat must be >= 1")

    t_start = time.perf_counter()
    import numba

    with threads_context(args.threads):
        gemm = measure_gemm(configs)
        floor_rate = max(gemm.values())
        rows = []
        for cfg in configs:
            for cell in cells:
                step = TrainingStep(cell, cfg)
                tr = median_ms(step, args.repeat, args.max_seconds)
                fw = median_ms(step.forward, args.repeat, args.max_seconds)
                mem, held = (None, None) if args.no_memory else step_memory(step)
                del step
                ttr = tfw = None
                if use_torch:
                    tstep = TorchStep(cell, cfg)
                    ttr = median_ms(tstep, args.repeat, args.max_seconds)
                    tfw = median_ms(tstep.forward, args.repeat, args.max_seconds)
                    del tstep
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
                print(f"  done {cfg.name}/{cell}", file=sys.stderr, flush=True)

        startup_rows = []
        if not args.no_startup:
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
    print(
        f"{h}numrnn vs PyTorch, float32, training step = forward + BPTT + Adam (+ linear head, MSE)"
    )
    print(
        f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, threads={threads}, "
        f"numpy {np.__version__}, numba {numba.__version__}, {torch_note}"
    )
    print(
        "sgemm GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in gemm.items())
        + f"; best {floor_rate:.0f} is the '%sgemm' reference"
    )  # fmt: skip
    print()
    headers = [
        "config", "cell", "train ms", "torch ms", "torch/ours", "GFLOP/s", "%sgemm",
        "fwd ms", "torch fwd ms", "fwd torch/ours", "fwd GFLOP/s", "mem MB", "need MB",
    ]  # fmt: skip
    print(render(headers, rows, args.markdown))
    print()
    print(
        "median of up to --repeat calls after 1 warm-up; torch/ours > 1 means numrnn is faster; "
        "mem = NumPy peak during a step (tracemalloc) + params, Adam state and data; need = "
        "activations BPTT keeps + 4x params (value, grad, 2 Adam moments) + data."
    )
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

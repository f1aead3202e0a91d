"""Time one training step (forward + BPTT + Adam update) on the GPU: numrnn vs torch cuDNN.

Runs every DESIGN §5 configuration for rnn, lstm and gru in float32 and prints the median
time per step, achieved GFLOP/s (training FLOPs ``6·G·B·H·(I+H)·T`` per layer and
direction) and the ratio to torch. Needs a real CUDA GPU; without one it says so and exits
with status 0. Usage: ``python benchmarks/gpu_vs_torch.py [config ...] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

CONFIGS = {  # name: (B, T, I, H, layers, bidirectional)
    "tiny": (1, 100, 1, 16, 1, False),
    "small": (32, 50, 1, 32, 1, False),
    "digits": (64, 28, 28, 128, 1, False),
    "medium": (64, 100, 8, 128, 2, False),
    "bidir": (64, 200, 20, 128, 3, True),
    "large": (128, 200, 32, 512, 1, False),
    "long": (16, 1000, 4, 64, 1, False),
}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def flops(cell, B, T, I, H, L, bidir):
    D = 2 if bidir else 1
    total = 0
    for layer in range(L):
        size = I if layer == 0 else D * H
        total += D * 6 * GATES[cell] * B * H * (size + H) * T
    return total


def _median_time(step, repeat, sync):
    step()  # compile / warm up
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench_numrnn(cell, cfg, repeat):
    from numba import cuda

    import numrnn.nn as nn

    B, T, I, H, L, bidir = cfg
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
    net = cls(I, H, L, bidirectional=bidir, dtype="float32", random_state=0, device="cuda")
    x = np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32)
    params = net.parameters()
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v2 = {k: np.zeros_like(v) for k, v in params.items()}

    def step():
        out, _ = net.forward(x)
        net.backward(out / out.size)  # d(0.5 * mean(out**2))
        for k, p in params.items():  # Adam (host; parameters are small)
            g = net.grads[k]
            m[k] = 0.9 * m[k] + 0.1 * g
            v2[k] = 0.999 * v2[k] + 0.001 * g * g
            p -= 1e-3 * m[k] / (np.sqrt(v2[k]) + 1e-8)

    return _median_time(step, repeat, cuda.synchronize)


def bench_torch(cell, cfg, repeat):
    import torch

    B, T, I, H, L, bidir = cfg
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    net = cls(I, H, L, bidirectional=bidir, batch_first=True).cuda()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.randn(B, T, I, device="cuda")

    def step():
        opt.zero_grad()
        out, _ = net(x)
        (0.5 * out.pow(2).mean()).backward()
        opt.step()

    return _median_time(step, repeat, torch.cuda.synchronize)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="*", default=list(CONFIGS))
    ap.add_argument("--cells", nargs="*", default=list(GATES))
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args(argv)
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        print("gpu_vs_torch: the CUDA simulator is on; timings would be meaningless. Exiting.")
        return 0
    from numba import cuda

    if not cuda.is_available():
        print(
            "gpu_vs_torch: no CUDA GPU available (numba.cuda.is_available() is False); "
            "nothing to benchmark. Run it on a machine with an NVIDIA GPU."
        )
        return 0
    try:
        import torch

        have_torch = torch.cuda.is_available()
    except ImportError:
        have_torch = False
    print(
        f"{'config':8} {'cell':5} {'numrnn ms':>10} {'GFLOP/s':>8} {'torch ms':>9} {'GFLOP/s':>8} {'ratio':>6}"
    )
    for name in args.configs:
        cfg = CONFIGS[name]
        for cell in args.cells:
            fl = flops(cell, *cfg)
            t_n = bench_numrnn(cell, cfg, args.repeat)
            t_t = bench_torch(cell, cfg, args.repeat) if have_torch else float("nan")
            print(
                f"{name:8} {cell:5} {t_n * 1e3:10.2f} {fl / t_n / 1e9:8.1f} "
                f"{t_t * 1e3:9.2f} {fl / t_t / 1e9:8.1f} {t_n / t_t:6.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

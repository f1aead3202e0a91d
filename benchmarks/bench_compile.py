"""Start-up costs: cold compilation and warm (cached) first call, each in a new process.

As an asv suite, :class:`TrackStartup` tracks the tiny training step's cold and warm start.
Run as a script, it prints the first-use figures of issue #17, each in a fresh interpreter
with its own empty ``NUMBA_CACHE_DIR``:

- per cell, the cold first ``RNNRegressor(cell=...).fit`` on the ``small`` data (32
  sequences of 50 steps, one feature; every other parameter the default), then the same fit
  warm (cache filled), as CPU seconds of the process (user + system: what compilation
  costs, independent of other load) and wall seconds;
- ``numrnn compile`` for all three cells on a cold cache (wall seconds, one process per
  core), then the cold first fit of each cell on that cache;
- with ``--demo``, the README's main command (``numrnn demo``) cold and warm.

``python benchmarks/bench_compile.py [--cells lstm,gru] [--demo]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

if __package__:
    from .common import CELLS, cold_and_warm_start, parse_list, run_python
else:  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from common import CELLS, cold_and_warm_start, parse_list, run_python


class TrackStartup:
    """Per cell, the tiny config's first training step in a fresh interpreter.

    ``setup_cache`` runs, once for all cells, a subprocess with an empty ``NUMBA_CACHE_DIR``
    (cold: import + compile every kernel the step needs) and a second one on the now-filled
    directory (warm: kernels load from disk).
    """

    params = [list(CELLS)]
    param_names = ["cell"]
    timeout = 900
    unit = "seconds"

    def setup_cache(self):
        return {cell: cold_and_warm_start(cell) for cell in CELLS}

    def track_cold_compile(self, results, cell):
        cold, _ = results[cell]
        return cold["import"] + cold["first"]

    def track_warm_first_step(self, results, cell):
        _, warm = results[cell]
        return warm["import"] + warm["first"]


_FIRST_FIT = """
import resource, time, warnings
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
import numpy as np
from numrnn import RNNRegressor
rng = np.random.default_rng(0)
X = rng.standard_normal((32, 50, 1)).astype(np.float32)  # the `small` data
y = X[:, -5:, 0].sum(axis=1)
warnings.simplefilter("ignore")
c0, t0 = cpu(), time.perf_counter()
RNNRegressor(cell={cell!r}, random_state=0).fit(X, y)
print("RESULT", cpu() - c0, time.perf_counter() - t0)
"""


def first_fit(cell: str, cache_dir: str) -> tuple[float, float]:
    """(CPU s, wall s) of the first default fit of ``cell`` in a new process."""
    out = run_python(_FIRST_FIT.format(cell=cell), {"NUMBA_CACHE_DIR": cache_dir})
    line = [s for s in out.splitlines() if s.startswith("RESULT")][-1].split()
    return float(line[1]), float(line[2])


def _numrnn(args: list[str], cache_dir: str, cwd: str) -> float:
    """Wall seconds of ``python -m numrnn ARGS`` in a new process."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    import numrnn

    root = os.path.dirname(os.path.dirname(os.path.abspath(numrnn.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "numrnn", *args], check=True, env=env, cwd=cwd,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", help="comma-separated cells (default: all)")
    ap.add_argument("--demo", action="store_true", help="also time `numrnn demo` cold and warm")
    args = ap.parse_args(argv)
    cells = parse_list(args.cells, CELLS, "cell")
    print("first RNNRegressor(cell=...).fit on the small data (32 x 50 x 1), new process")
    print(f"{'cell':6s} {'cold CPU s':>10s} {'cold wall s':>11s} {'warm CPU s':>10s} "
          f"{'warm wall s':>11s}")  # fmt: skip
    for cell in cells:
        with tempfile.TemporaryDirectory(prefix="numrnn-cache-") as d:
            cold = first_fit(cell, d)
            warm = first_fit(cell, d)
        print(f"{cell:6s} {cold[0]:10.1f} {cold[1]:11.1f} {warm[0]:10.1f} {warm[1]:11.1f}",
              flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="numrnn-cache-") as d:
        wall = _numrnn(["compile", "--cells", *cells], d, d)
        print(f"\n`numrnn compile --cells {' '.join(cells)}` on a cold cache: {wall:.1f} s wall")
        for cell in cells:
            cpu, w = first_fit(cell, d)
            print(f"  then the first {cell} fit: {cpu:.1f} s CPU, {w:.1f} s wall")
    if args.demo:
        with tempfile.TemporaryDirectory(prefix="numrnn-cache-") as d:
            cold = _numrnn(["demo", "--out", os.path.join(d, "plots")], d, d)
            warm = _numrnn(["demo", "--out", os.path.join(d, "plots")], d, d)
        print(f"\n`numrnn demo`: cold {cold:.1f} s, warm {warm:.1f} s (wall)")
    print("\nCPU s: user + system time of the process (compilation is single-threaded); wall "
          "s depends on other load on the machine.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

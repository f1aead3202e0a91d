"""Start-up costs: cold compilation and warm (cached) first call, each in a new process."""

from .common import CELLS, cold_and_warm_start


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

"""What ``fit`` prints: ``verbose=1`` a progress bar, ``verbose=2`` one line per epoch.

``verbose=1`` (or True) draws one line on standard error, redrawn after every epoch, with
the epoch count, the training loss, the validation loss (``early_stopping``) and the time
left if every epoch runs (an upper bound when the stopping rule ends the fit earlier). It
uses ``tqdm`` when that is installed (an optional nicety, never a dependency) and a plain
carriage-return line otherwise. ``verbose=2`` prints scikit-learn MLP's
``Iteration k, loss = ...`` line per epoch on standard output.
"""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """Per-epoch output of one ``fit`` call.

    Parameters
    ----------
    level : int
        0 silent, 1 progress bar, 2 one line per epoch.
    total : int
        Epochs at most (``max_iter``).
    early : bool
        Whether a validation loss is shown.
    use_tqdm : bool or None
        None: tqdm when importable; False: the plain line.
    """

    def __init__(self, level: int, total: int, early: bool, use_tqdm: bool | None = None):
        self.level, self.total, self.early = level, total, early
        self.done = 0
        self.start = time.perf_counter()
        self.bar = None
        self.width = 0
        if level == 1 and use_tqdm is not False:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, unit="epoch", file=sys.stderr, leave=True)

    def update(self, msg: str, loss: float, vloss: float | None, seconds: float) -> None:
        """One finished epoch: its line (``msg``), losses and duration."""
        self.done += 1
        if self.level >= 2:
            print(f"{msg} ({seconds:.2f}s)")
            return
        if self.level != 1:
            return
        stats = f"loss={loss:.4g}" + (f", val_loss={vloss:.4g}" if vloss is not None else "")
        if self.bar is not None:
            self.bar.set_postfix_str(stats, refresh=False)
            self.bar.update(1)
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        line = f"epoch {self.done}/{self.total} {stats} [{_clock(elapsed)}<{_clock(eta)} ETA]"
        sys.stderr.write("\r" + line.ljust(self.width))
        sys.stderr.flush()
        self.width = len(line)

    def note(self, text: str) -> None:
        """A message at the end (why training stopped), shown from ``verbose=1`` on."""
        if self.level == 1:
            self.close()
            sys.stderr.write(text + "\n")
        elif self.level >= 2:
            print(text)

    def close(self) -> None:
        """End the bar's line (once)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.level == 1 and self.width:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.width = 0

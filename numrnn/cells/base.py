"""What every cell shares: PyTorch's parameter layout and default initialisation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class CellSpec:
    """A recurrent cell's shape.

    Attributes
    ----------
    name : 'rnn', 'lstm' or 'gru'
    num_gates : G, the number of H-sized blocks in ``weight_ih`` (1, 4 or 3)
    has_cell_state : whether the state is (h, c) rather than h
    forget_gate : index of the forget-gate block, or None
    backward_writes_d_out : whether the CPU backward writes its pre-activation gradients
        into an output gradient it may overwrite (the Elman RNN's one-pass path), so the
        network gives it its own copy of a caller's ``d_out``; the gated cells only read it
    options : the cell's own options with their defaults (the network's keyword arguments;
        an estimator passes those of them it has as parameters)
    layers : per backend name, the ``(forward, backward)`` pair that runs one layer and
        direction of this cell; each backend registers its own (:meth:`register`)
    """

    name: str
    num_gates: int
    has_cell_state: bool = False
    forget_gate: int | None = None
    backward_writes_d_out: bool = False
    options: tuple = ()
    layers: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def option_names(self) -> tuple:
        return tuple(name for name, _ in self.options)

    def register(self, backend: str, forward, backward) -> None:
        """Record ``backend``'s functions for one layer and direction of this cell."""
        self.layers[backend] = (forward, backward)

    def layer(self, backend: str):
        """``(forward, backward)`` of ``backend`` for this cell."""
        return self.layers[backend]


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))  # uniform over the orthogonal group


def init_direction_params(
    spec: CellSpec,
    input_size: int,
    hidden_size: int,
    rng: np.random.Generator,
    dtype,
    *,
    peephole: bool = False,
    orthogonal: bool = False,
    forget_bias: float | None = None,
) -> dict[str, np.ndarray]:
    """Parameters of one layer and direction, PyTorch's default init U(-1/√H, 1/√H).

    Returns a dict with ``w_ih`` (G*H, I), ``w_hh`` (G*H, H), ``b_ih``, ``b_hh`` (G*H,) and,
    for the LSTM, ``w_peep`` (3, H) (zeros unless ``peephole``). ``orthogonal`` makes each
    gate block of ``w_hh`` orthogonal; ``forget_bias`` sets the LSTM forget-gate bias (the
    sum of both biases) to that value.
    """
    G, H = spec.num_gates, hidden_size
    k = 1.0 / np.sqrt(H)

    def uniform(*shape):
        return rng.uniform(-k, k, size=shape)

    p = {
        "w_ih": uniform(G * H, input_size),
        "w_hh": uniform(G * H, H),
        "b_ih": uniform(G * H),
        "b_hh": uniform(G * H),
    }
    if orthogonal:
        p["w_hh"] = np.concatenate([_orthogonal(rng, H) for _ in range(G)], axis=0)
    if spec.has_cell_state:
        p["w_peep"] = uniform(3, H) if peephole else np.zeros((3, H))
        if forget_bias is not None:
            f = slice(spec.forget_gate * H, (spec.forget_gate + 1) * H)
            p["b_ih"][f] = forget_bias
            p["b_hh"][f] = 0.0
    return {name: np.ascontiguousarray(a, dtype=dtype) for name, a in p.items()}

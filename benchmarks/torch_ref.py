"""The PyTorch side of ``compare_torch.py`` and of the asv ratio benchmarks: the same work as
each numrnn mode, written as a PyTorch user writes it (float32, CPU, default threads).

Importable without torch: ``torch`` is then None and the classes raise on construction.
"""

from __future__ import annotations

import numpy as np

if __package__:
    from .common import FIT_BATCHES, FIT_TASKS, LATENCY_HIDDEN, Config, make_data, make_fit_data
else:  # imported by compare_torch.py run as a script
    from common import FIT_BATCHES, FIT_TASKS, LATENCY_HIDDEN, Config, make_data, make_fit_data

try:  # PyTorch is a yardstick, never a dependency
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None


def _rnn(cell: str, cfg: Config):
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    return cls(cfg.I, cfg.H, cfg.L, batch_first=True, bidirectional=cfg.bidirectional)


class TorchStep:
    """Training step: forward, linear head on the last output, MSE, backward, Adam."""

    def __init__(self, cell: str, cfg: Config, seed: int = 0):
        torch.manual_seed(seed)
        self.rnn = _rnn(cell, cfg)
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


class TorchOwnLoop:
    """``OwnLoopStep`` in PyTorch: head and MSE on every step, the input's gradient too."""

    def __init__(self, cell: str, cfg: Config, seed: int = 0):
        torch.manual_seed(seed)
        self.rnn = _rnn(cell, cfg)
        self.head = torch.nn.Linear(cfg.D * cfg.H, 1)
        params = list(self.rnn.parameters()) + list(self.head.parameters())
        self.opt = torch.optim.Adam(params, lr=1e-3)
        x, _ = make_data(cfg, np.float32, seed)
        y = np.random.default_rng(seed + 2).standard_normal((cfg.B, cfg.T, 1)).astype(np.float32)
        self.x = torch.from_numpy(x).requires_grad_(True)
        self.y = torch.from_numpy(y)

    def __call__(self) -> float:
        self.opt.zero_grad(set_to_none=True)
        self.x.grad = None
        out, _ = self.rnn(self.x)
        loss = torch.nn.functional.mse_loss(self.head(out), self.y)
        loss.backward()
        self.opt.step()
        return loss.item()


class TorchFit:
    """A plain PyTorch training loop doing the estimator fit's work: per epoch a shuffled
    permutation, minibatches of ``B``, the network, a linear head on the top layer's final
    state (``h_n``), MSE or cross-entropy, backward, ``clip_grad_norm_(1.0)``, Adam at 1e-3
    with ``weight_decay=1e-4`` on the weights only (numrnn's ``alpha``), the epoch's loss."""

    def __init__(self, cell: str, cfg: Config, epochs: int = 3, seed: int = 0):
        self.cell, self.cfg, self.epochs, self.seed = cell, cfg, epochs, seed
        X, y = make_fit_data(cfg, seed)
        self.classify = FIT_TASKS[cfg.name] == "classification"
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y.astype(np.int64) if self.classify else y[:, None])
        assert self.X.shape[0] == FIT_BATCHES * cfg.B

    def __call__(self) -> float:
        cfg = self.cfg
        torch.manual_seed(self.seed)
        rnn = _rnn(self.cell, cfg)
        head = torch.nn.Linear(cfg.D * cfg.H, 10 if self.classify else 1)
        named = list(rnn.named_parameters()) + [
            ("head." + k, v) for k, v in head.named_parameters()
        ]
        weights = [p for k, p in named if "weight" in k]
        biases = [p for k, p in named if "weight" not in k]
        params = weights + biases
        opt = torch.optim.Adam(
            [{"params": weights, "weight_decay": 1e-4}, {"params": biases}], lr=1e-3
        )
        loss_fn = torch.nn.CrossEntropyLoss() if self.classify else torch.nn.MSELoss()
        n = self.X.shape[0]
        gen = torch.Generator().manual_seed(self.seed)
        epoch_loss = float("nan")
        for _ in range(self.epochs):
            order = torch.randperm(n, generator=gen)
            total = 0.0
            for s in range(0, n, cfg.B):
                idx = order[s : s + cfg.B]
                xb, yb = self.X[idx], self.y[idx]
                opt.zero_grad(set_to_none=True)
                _, state = rnn(xb)
                h_n = state[0] if isinstance(state, tuple) else state
                feat = h_n[-cfg.D :].transpose(0, 1).reshape(xb.shape[0], -1)
                loss = loss_fn(head(feat), yb)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                total += loss.item() * xb.shape[0]
            epoch_loss = total / n
        return epoch_loss


class TorchPredict:
    """Inference over all the fit mode's sequences in one call, as a PyTorch user scores a
    data set: ``inference_mode``, the network, the head on ``h_n``, argmax for classes."""

    def __init__(self, cell: str, cfg: Config, seed: int = 0):
        torch.manual_seed(seed)
        self.cfg = cfg
        self.classify = FIT_TASKS[cfg.name] == "classification"
        self.rnn = _rnn(cell, cfg)
        self.head = torch.nn.Linear(cfg.D * cfg.H, 10 if self.classify else 1)
        self.X = torch.from_numpy(make_fit_data(cfg, seed)[0])

    def __call__(self) -> np.ndarray:
        D = self.cfg.D
        with torch.inference_mode():
            _, state = self.rnn(self.X)
            h_n = state[0] if isinstance(state, tuple) else state
            out = self.head(h_n[-D:].transpose(0, 1).reshape(self.X.shape[0], -1))
            return (out.argmax(1) if self.classify else out[:, 0]).numpy()


class TorchOneStep:
    """One step of a hidden-32 LSTM with carried state and its linear head, as a streaming
    PyTorch user writes it (``inference_mode``; the state tensors carried between calls)."""

    def __init__(self, seed: int = 0):
        torch.manual_seed(seed)
        self.rnn = torch.nn.LSTM(1, LATENCY_HIDDEN, batch_first=True)
        self.head = torch.nn.Linear(LATENCY_HIDDEN, 1)
        self.state = (torch.zeros(1, 1, LATENCY_HIDDEN), torch.zeros(1, 1, LATENCY_HIDDEN))
        self.x = torch.full((1, 1, 1), 0.5)

    def __call__(self):
        with torch.inference_mode():
            out, self.state = self.rnn(self.x, self.state)
            return self.head(out[:, -1]).numpy()

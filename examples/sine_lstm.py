"""Train a small LSTM with ``numrnn.nn`` on a sine wave and print the loss falling.

Next-step prediction: the input is sin(t), the target sin(t + dt), one value per
step. The loop is written by hand, as a PyTorch user would: forward, loss, backward, Adam.
"""

from __future__ import annotations

import time

import numpy as np

from numrnn.nn import LSTM


def main(epochs: int = 150, hidden_size: int = 32, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 8 * np.pi, 401)
    wave = np.sin(t).astype(np.float32)
    starts = rng.integers(0, 400 - 50, size=32)
    x = np.stack([wave[s : s + 50] for s in starts])[:, :, None]
    y = np.stack([wave[s + 1 : s + 51] for s in starts])[:, :, None]

    net = LSTM(1, hidden_size, random_state=seed)
    w_out = (rng.standard_normal((hidden_size, 1)) / np.sqrt(hidden_size)).astype(np.float32)
    params = dict(net.parameters(), w_out=w_out)
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        out, _ = net.forward(x)
        pred = out @ w_out
        err = pred - y
        loss = float(np.mean(err**2))
        d_pred = (2.0 / err.size) * err
        grads = {"w_out": np.einsum("bth,bto->ho", out, d_pred)}
        net.backward(d_pred @ w_out.T)
        grads.update(net.grads)
        for k, p in params.items():  # Adam
            m[k] = b1 * m[k] + (1 - b1) * grads[k]
            v[k] = b2 * v[k] + (1 - b2) * grads[k] ** 2
            p -= lr * (m[k] / (1 - b1**epoch)) / (np.sqrt(v[k] / (1 - b2**epoch)) + eps)
        if epoch == 1 or epoch % 25 == 0:
            print(f"epoch {epoch:4d}  mse {loss:.5f}")
    print(f"trained in {time.perf_counter() - start:.2f} s (first epoch includes compilation)")
    return loss


if __name__ == "__main__":
    main()

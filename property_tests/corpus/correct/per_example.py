"""One example at a time: a forward and backward pass per column, gradients accumulated over the batch.

Vectors are 1-D ``(n,)``; every derivative is written from the activation's output, as many tutorials do
(σ' = a(1 − a), tanh' = 1 − a²), with the logistic as 1/(1 + e^(−z)).  The subject protocol's arrays are
column per example: ``X`` ``(n_0, m)``, ``W{l}`` ``(n_l, n_{l-1})``, ``b{l}`` ``(n_l, 1)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _act(name: str, z: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.where(z > 0, z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    if name == "softplus":
        return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
    if name == "softmax":
        shifted = np.exp(z - z.max())
        return shifted / shifted.sum()
    return z


def _slope(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return np.where(z > 0, 1.0, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, 0.01)
    if name == "softplus":
        return 1.0 / (1.0 + np.exp(-z))
    return np.ones_like(z)


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    names, loss = spec["activations"], spec["loss"]
    depth, m = len(names), X.shape[1]
    Ws = [params[f"W{i}"] for i in range(1, depth + 1)]
    bs = [params[f"b{i}"][:, 0] for i in range(1, depth + 1)]
    gW = [np.zeros_like(W) for W in Ws]
    gb = [np.zeros_like(b) for b in bs]
    for i in range(m):
        x, y = X[:, i], Y[:, i]
        zs, outs = [], [x]
        for W, b, name in zip(Ws, bs, names, strict=True):
            zs.append(W @ outs[-1] + b)
            outs.append(_act(name, zs[-1]))
        out = outs[-1]
        if loss in ("bce", "cce"):
            delta = (out - y) / m
        elif loss == "mse":
            delta = (2.0 / m) * (out - y) * _slope(names[-1], zs[-1], out)
        else:
            delta = (out - y) * _slope(names[-1], zs[-1], out)
        for layer in reversed(range(depth)):
            gW[layer] += np.outer(delta, outs[layer])
            gb[layer] += delta
            if layer:
                delta = (Ws[layer].T @ delta) * _slope(names[layer - 1], zs[layer - 1], outs[layer])
    grads: dict[str, Any] = {}
    for layer in range(depth):
        grads[f"W{layer + 1}"] = gW[layer]
        grads[f"b{layer + 1}"] = gb[layer].reshape(-1, 1)
    return grads

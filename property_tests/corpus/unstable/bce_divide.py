"""Binary cross-entropy differentiated step by step: ∂L/∂a = (a − y)/(a(1 − a))/m, then multiplied by
σ'(z) = a(1 − a).  Exact algebra gives (a − y)/m, but once σ(z) rounds to exactly 1 (z ≥ 36.74) or 0
the division is by zero and inf·0 = NaN.  Other losses and layers are computed carefully.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def act(name: str, z: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    if name == "softplus":
        return np.logaddexp(0.0, z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=0, keepdims=True))
        return e / e.sum(axis=0, keepdims=True)
    return z


def slope(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return a * (1.0 - a)
    if name == "tanh":
        return 1.0 - a * a
    if name == "relu":
        return (z > 0).astype(float)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, 0.01)
    if name == "softplus":
        return sigmoid(z)
    return np.ones_like(z)


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    names = spec["activations"]
    zs, acts = [], [X]
    for i, name in enumerate(names, start=1):
        zs.append(params[f"W{i}"] @ acts[-1] + params[f"b{i}"])
        acts.append(act(name, zs[-1]))
    a, m = acts[-1], X.shape[1]
    if spec["loss"] == "bce":
        dA = (a - Y) / (a * (1.0 - a)) / m
        delta = dA * slope("sigmoid", zs[-1], a)
    elif spec["loss"] == "cce":
        delta = (a - Y) / m
    else:
        dA = 2.0 * (a - Y) / m if spec["loss"] == "mse" else a - Y
        delta = dA * slope(names[-1], zs[-1], a)
    grads: dict[str, Any] = {}
    for i in range(len(names), 0, -1):
        grads[f"W{i}"] = delta @ acts[i - 1].T
        grads[f"b{i}"] = delta.sum(axis=1, keepdims=True)
        if i > 1:
            delta = (params[f"W{i}"].T @ delta) * slope(names[i - 2], zs[i - 2], acts[i - 1])
    return grads

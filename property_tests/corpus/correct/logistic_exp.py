"""The logistic written 1/(1 + e^(−z)) everywhere it appears — σ itself, σ' = σ(1 − σ), softplus' — and
tanh as 2σ(2z) − 1 with tanh' = 1 − tanh².  For z below −709, e^(−z) overflows to inf and 1/(1 + inf) is
the right 0 (NumPy warns; the value is exact).  The cross-entropies use the fused δ = a − y.

Column per example: ``X`` ``(n_0, m)``, ``W{i}`` ``(n_l, n_{i-1})``, ``b{i}`` ``(n_l, 1)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def logistic(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def activation(name: str, z: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return logistic(z)
    if name == "tanh":
        return 2 * logistic(2 * z) - 1
    if name == "softplus":
        return np.where(z > 30, z + np.log1p(np.exp(-np.abs(z))), np.log1p(np.exp(np.minimum(z, 30))))
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.maximum(z, 0.01 * z)
    if name == "softmax":
        e = np.exp(z - z.max(0))
        return e / e.sum(0)
    return z


def derivative(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a**2
    if name == "softplus":
        return logistic(z)
    if name == "relu":
        return np.heaviside(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, 1, 0.01)
    return np.ones_like(z)


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    acts = spec["activations"]
    cache = [(X, X)]  # (z, a) per layer; layer 0 has no z
    for i, name in enumerate(acts, start=1):
        z = np.dot(params["W" + str(i)], cache[-1][1]) + params["b" + str(i)]
        cache.append((z, activation(name, z)))
    m = X.shape[1]
    z_L, a_L = cache[-1]
    if spec["loss"] == "bce" or spec["loss"] == "cce":
        dZ = (a_L - Y) / m
    elif spec["loss"] == "mse":
        dZ = 2 * (a_L - Y) / m * derivative(acts[-1], z_L, a_L)
    else:
        dZ = (a_L - Y) * derivative(acts[-1], z_L, a_L)
    grads = {}
    for i in range(len(acts), 0, -1):
        a_prev = cache[i - 1][1]
        grads["W" + str(i)] = np.dot(dZ, a_prev.T)
        grads["b" + str(i)] = np.sum(dZ, axis=1, keepdims=True)
        if i > 1:
            z_prev, a_prev = cache[i - 1]
            dZ = np.dot(params["W" + str(i)].T, dZ) * derivative(acts[i - 2], z_prev, a_prev)
    return grads

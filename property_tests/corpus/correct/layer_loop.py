"""A per-layer loop with the textbook derivatives: σ' = σ(1 − σ), tanh' = 1 − tanh², fused δ^[L] = a − y.

Written the way a course teaches it, column per example: ``X`` ``(n_0, m)``, ``W{i}`` ``(n_l, n_{i-1})``,
``b{i}`` ``(n_l, 1)``.  Only the softmax subtracts its column maximum and softplus uses ``logaddexp``, the
two places where the textbook form itself is unsafe.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _forward(name: str, z: np.ndarray) -> np.ndarray:
    if name == "identity":
        return z
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(0.0, z)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    if name == "softplus":
        return np.logaddexp(0.0, z)
    if name == "softmax":
        e = np.exp(z - np.max(z, axis=0, keepdims=True))
        return e / np.sum(e, axis=0, keepdims=True)
    raise ValueError(name)


def _derivative(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    if name == "identity":
        return np.ones_like(z)
    if name == "sigmoid":
        return a * (1.0 - a)
    if name == "tanh":
        return 1.0 - a**2
    if name == "relu":
        return (z > 0).astype(float)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, 0.01)
    if name == "softplus":
        return _sigmoid(z)
    raise ValueError(name)


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    activations, loss = spec["activations"], spec["loss"]
    L, m = len(activations), X.shape[1]
    zs, acts = [], [X]
    for i in range(1, L + 1):
        z = params[f"W{i}"] @ acts[-1] + params[f"b{i}"]
        zs.append(z)
        acts.append(_forward(activations[i - 1], z))
    a = acts[-1]
    if loss in ("bce", "cce"):
        dz = (a - Y) / m
    else:
        dA = 2.0 * (a - Y) / m if loss == "mse" else a - Y
        dz = dA * _derivative(activations[-1], zs[-1], a)
    grads = {}
    for i in range(L, 0, -1):
        grads[f"W{i}"] = dz @ acts[i - 1].T
        grads[f"b{i}"] = np.sum(dz, axis=1, keepdims=True)
        if i > 1:
            dz = (params[f"W{i}"].T @ dz) * _derivative(activations[i - 2], zs[i - 2], acts[i - 1])
    return grads

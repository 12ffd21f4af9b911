"""tanh written (e^z − e^(−z))/(e^z + e^(−z)) and tanh' = 4/(e^z + e^(−z))²: right in exact arithmetic, but
for |z| > 709.78 the exponential overflows and inf/inf = NaN.  The rest is careful.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def tanh(z: np.ndarray) -> np.ndarray:
    return (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z))


def tanh_prime(z: np.ndarray) -> np.ndarray:
    return 4.0 / (np.exp(z) + np.exp(-z)) ** 2


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    names = spec["activations"]
    forward: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "identity": lambda z: z,
        "sigmoid": _sigmoid,
        "tanh": tanh,
        "relu": lambda z: np.maximum(z, 0.0),
        "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
        "softplus": lambda z: np.logaddexp(0.0, z),
        "softmax": lambda z: np.exp(z - z.max(0)) / np.exp(z - z.max(0)).sum(0),
    }
    slope: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "identity": np.ones_like,
        "sigmoid": lambda z: _sigmoid(z) * _sigmoid(-z),
        "tanh": tanh_prime,
        "relu": lambda z: (z > 0) * 1.0,
        "leaky_relu": lambda z: np.where(z > 0, 1.0, 0.01),
        "softplus": _sigmoid,
    }
    zs, acts = [], [X]
    for i, name in enumerate(names, start=1):
        zs.append(params[f"W{i}"] @ acts[-1] + params[f"b{i}"])
        acts.append(forward[name](zs[-1]))
    m = X.shape[1]
    if spec["loss"] in ("bce", "cce"):
        delta = (acts[-1] - Y) / m
    else:
        delta = (2.0 / m if spec["loss"] == "mse" else 1.0) * (acts[-1] - Y) * slope[names[-1]](zs[-1])
    grads: dict[str, Any] = {}
    for i in range(len(names), 0, -1):
        grads[f"W{i}"] = delta @ acts[i - 1].T
        grads[f"b{i}"] = delta.sum(axis=1, keepdims=True)
        if i > 1:
            delta = (params[f"W{i}"].T @ delta) * slope[names[i - 2]](zs[i - 2])
    return grads

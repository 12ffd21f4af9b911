"""Softplus written log(1 + e^z), its derivative e^z/(1 + e^z): right in exact arithmetic, but for z > 709.78
e^z overflows, softplus is inf and its derivative inf/inf = NaN.  The rest is careful.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def softplus(z: np.ndarray) -> np.ndarray:
    return np.log(1.0 + np.exp(z))


def softplus_prime(z: np.ndarray) -> np.ndarray:
    return np.exp(z) / (1.0 + np.exp(z))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 + 0.5 * np.tanh(0.5 * z)


ACT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda z: z,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "softplus": softplus,
}
PRIME: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": np.ones_like,
    "sigmoid": lambda z: _sigmoid(z) * (1.0 - _sigmoid(z)),
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,
    "relu": lambda z: np.where(z > 0, 1.0, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, 1.0, 0.01),
    "softplus": softplus_prime,
}


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=0))
    return e / e.sum(axis=0)


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    names = spec["activations"]
    zs, outs = [], [X]
    for i, name in enumerate(names, start=1):
        zs.append(params[f"W{i}"] @ outs[-1] + params[f"b{i}"])
        outs.append(_softmax(zs[-1]) if name == "softmax" else ACT[name](zs[-1]))
    m = X.shape[1]
    if spec["loss"] in ("bce", "cce"):
        delta = (outs[-1] - Y) / m
    else:
        delta = (2.0 / m if spec["loss"] == "mse" else 1.0) * (outs[-1] - Y) * PRIME[names[-1]](zs[-1])
    grads: dict[str, Any] = {}
    for i in range(len(names), 0, -1):
        grads[f"W{i}"] = delta @ outs[i - 1].T
        grads[f"b{i}"] = delta.sum(axis=1, keepdims=True)
        if i > 1:
            delta = (params[f"W{i}"].T @ delta) * PRIME[names[i - 2]](zs[i - 2])
    return grads

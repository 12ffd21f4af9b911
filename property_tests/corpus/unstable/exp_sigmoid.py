"""The logistic written e^z/(1 + e^z) (and its derivative e^z/(1 + e^z)²): right in exact arithmetic, but
e^z overflows for z > 709.78 and inf/inf = NaN.  The rest is a careful per-layer backprop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(z)
    return e / (1.0 + e)


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    e = np.exp(z)
    return e / (1.0 + e) ** 2


def forward(name: str, z: np.ndarray) -> np.ndarray:
    table: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "sigmoid": sigmoid,
        "tanh": np.tanh,
        "relu": lambda v: np.maximum(v, 0.0),
        "leaky_relu": lambda v: np.where(v > 0, v, 0.01 * v),
        "softplus": lambda v: np.logaddexp(0.0, v),
        "identity": lambda v: v,
        "softmax": lambda v: np.exp(v - v.max(0)) / np.exp(v - v.max(0)).sum(0),
    }
    return table[name](z)


def prime(name: str, z: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return sigmoid_prime(z)
    if name == "tanh":
        return 1.0 / np.cosh(z) ** 2
    if name == "relu":
        return (z > 0) * 1.0
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
        acts.append(forward(name, zs[-1]))
    m = X.shape[1]
    if spec["loss"] in ("bce", "cce"):
        delta = (acts[-1] - Y) / m
    else:
        delta = (2.0 / m if spec["loss"] == "mse" else 1.0) * (acts[-1] - Y) * prime(names[-1], zs[-1])
    grads: dict[str, Any] = {}
    for i in range(len(names), 0, -1):
        grads[f"W{i}"] = delta @ acts[i - 1].T
        grads[f"b{i}"] = delta.sum(axis=1, keepdims=True)
        if i > 1:
            delta = (params[f"W{i}"].T @ delta) * prime(names[i - 2], zs[i - 2])
    return grads

"""Softmax as e^z / Σ e^z, without subtracting the column maximum: right in exact arithmetic, but a logit
above 709.78 makes e^z = inf and the probabilities inf/inf = NaN.  Everything else is a careful
per-layer backprop (column per example, fused δ = p − y).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z)
    return e / e.sum(axis=0, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


FUNCTIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * _sigmoid(-z)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1.0, 0.01)),
    "softplus": (lambda z: np.logaddexp(0.0, z), _sigmoid),
}


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    names = spec["activations"]
    zs, acts = [], [X]
    for i, name in enumerate(names, start=1):
        z = params[f"W{i}"] @ acts[-1] + params[f"b{i}"]
        zs.append(z)
        acts.append(softmax(z) if name == "softmax" else FUNCTIONS[name][0](z))
    m = X.shape[1]
    if spec["loss"] in ("bce", "cce"):
        delta = (acts[-1] - Y) / m
    else:
        k = 2.0 / m if spec["loss"] == "mse" else 1.0
        delta = k * (acts[-1] - Y) * FUNCTIONS[names[-1]][1](zs[-1])
    grads: dict[str, Any] = {}
    for i in range(len(names), 0, -1):
        grads[f"W{i}"] = delta @ acts[i - 1].T
        grads[f"b{i}"] = delta.sum(axis=1, keepdims=True)
        if i > 1:
            delta = (params[f"W{i}"].T @ delta) * FUNCTIONS[names[i - 2]][1](zs[i - 2])
    return grads

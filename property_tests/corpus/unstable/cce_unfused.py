"""Categorical cross-entropy through the chain rule: ∂L/∂p = −y/p/m, then the softmax Jacobian
pᵢ(gᵢ − Σⱼ pⱼgⱼ).  Exact algebra gives (p − y)/m; but a probability that rounds to exactly 0 (a logit gap
beyond 745) makes −y/p = −inf and the Jacobian product inf·0 = NaN.  The rest is careful.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def _act(name: str, z: np.ndarray) -> np.ndarray:
    if name == "softmax":
        e = np.exp(z - z.max(axis=0, keepdims=True))
        return e / e.sum(axis=0, keepdims=True)
    table: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "identity": lambda v: v,
        "sigmoid": _sigmoid,
        "tanh": np.tanh,
        "relu": lambda v: np.maximum(v, 0.0),
        "leaky_relu": lambda v: np.where(v > 0, v, 0.01 * v),
        "softplus": lambda v: np.logaddexp(0.0, v),
    }
    return table[name](z)


def _vjp(name: str, z: np.ndarray, a: np.ndarray, g: np.ndarray) -> np.ndarray:
    if name == "softmax":
        return a * (g - (a * g).sum(axis=0, keepdims=True))
    slope = {
        "identity": np.ones_like(z),
        "sigmoid": _sigmoid(z) * _sigmoid(-z),
        "tanh": 1.0 - np.tanh(z) ** 2,
        "relu": (z > 0) * 1.0,
        "leaky_relu": np.where(z > 0, 1.0, 0.01),
        "softplus": _sigmoid(z),
    }[name]
    return g * slope


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    names = spec["activations"]
    zs, acts = [], [X]
    for i, name in enumerate(names, start=1):
        zs.append(params[f"W{i}"] @ acts[-1] + params[f"b{i}"])
        acts.append(_act(name, zs[-1]))
    a, m = acts[-1], X.shape[1]
    if spec["loss"] == "cce":
        delta = _vjp("softmax", zs[-1], a, -Y / a / m)
    elif spec["loss"] == "bce":
        delta = (a - Y) / m
    else:
        delta = _vjp(names[-1], zs[-1], a, (2.0 / m if spec["loss"] == "mse" else 1.0) * (a - Y))
    grads: dict[str, Any] = {}
    for i in range(len(names), 0, -1):
        grads[f"W{i}"] = delta @ acts[i - 1].T
        grads[f"b{i}"] = delta.sum(axis=1, keepdims=True)
        if i > 1:
            delta = _vjp(names[i - 2], zs[i - 2], acts[i - 1], params[f"W{i}"].T @ delta)
    return grads

"""Everything as ``np.einsum``: the forward products, the δ recursion and the gradient contractions.

Index letters: ``j`` a unit of this layer, ``k`` a unit of the layer below, ``i`` an example.  Column per
example (``X`` ``(n_0, m)``, ``W{l}`` ``(n_l, n_{l-1})``).  tanh' is written 1/cosh² (cosh overflows to inf in
deep saturation, which gives the right 0), σ' as σ(1 − σ).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _sigma(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


FORWARD: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda z: z,
    "sigmoid": _sigma,
    "tanh": np.tanh,
    "relu": lambda z: z * (z > 0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "softplus": lambda z: np.logaddexp(0.0, z),
}

SLOPE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda z: np.ones_like(z),
    "sigmoid": lambda z: _sigma(z) * (1.0 - _sigma(z)),
    "tanh": lambda z: 1.0 / np.cosh(z) ** 2,
    "relu": lambda z: (z > 0) * 1.0,
    "leaky_relu": lambda z: np.where(z > 0, 1.0, 0.01),
    "softplus": _sigma,
}


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=0))
    return e / np.einsum("ji->i", e)


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    names, depth, m = spec["activations"], len(spec["activations"]), X.shape[1]
    zs, acts = [], [X]
    for layer, name in enumerate(names, start=1):
        z = np.einsum("jk,ki->ji", params[f"W{layer}"], acts[-1]) + params[f"b{layer}"]
        zs.append(z)
        acts.append(_softmax(z) if name == "softmax" else FORWARD[name](z))
    a = acts[-1]
    if spec["loss"] == "cce":
        delta = (a * np.einsum("ji->i", Y) - Y) / m
    elif spec["loss"] == "bce":
        delta = (a - Y) / m
    else:
        coefficient = 2.0 / m if spec["loss"] == "mse" else 1.0
        delta = np.einsum("ji,ji->ji", coefficient * (a - Y), SLOPE[names[-1]](zs[-1]))
    grads: dict[str, Any] = {}
    for layer in range(depth, 0, -1):
        grads[f"W{layer}"] = np.einsum("ji,ki->jk", delta, acts[layer - 1])
        grads[f"b{layer}"] = np.einsum("ji->j", delta)[:, None]
        if layer > 1:
            delta = np.einsum("jk,ji->ki", params[f"W{layer}"], delta) * SLOPE[names[layer - 2]](zs[layer - 2])
    return grads

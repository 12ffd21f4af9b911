"""Backprop the way row-major libraries store it: examples in rows, kernels ``(n_in, n_out)`` (Wᵀ),
a bias row, and the backward pass written recursively from the first layer down to the loss and back.

Role markers (``# role: …``) label the code for the mutant generator.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _logistic(x: np.ndarray) -> np.ndarray:
    # role: forward
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def _act(kind: str, x: np.ndarray) -> np.ndarray:
    # role: forward
    if kind == "identity":
        return x
    if kind == "sigmoid":
        return _logistic(x)
    if kind == "tanh":
        return np.tanh(x)
    if kind == "relu":
        return np.clip(x, 0.0, None)
    if kind == "leaky_relu":
        return np.where(x >= 0, x, x * 0.01)
    if kind == "softplus":
        return np.logaddexp(x, 0.0)
    shifted = x - np.max(x, axis=1, keepdims=True)
    return np.exp(shifted) / np.sum(np.exp(shifted), axis=1, keepdims=True)


def _dact(kind: str, x: np.ndarray, y: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Chain rule through one activation: x pre-activation, y its output, up = ∂L/∂y (rows: examples)."""
    # role: derivative
    if kind == "softmax":
        return y * up - y * np.sum(y * up, axis=1, keepdims=True)
    if kind == "sigmoid":
        return up * _logistic(x) * _logistic(-x)
    if kind == "tanh":
        return up * (1.0 - y) * (1.0 + y)
    if kind == "relu":
        return np.where(x > 0, up, 0.0)
    if kind == "leaky_relu":
        return np.where(x > 0, up, 0.01 * up)
    if kind == "softplus":
        return up * _logistic(x)
    return up


def _loss_grad(loss: str, kind: str, x: np.ndarray, y: np.ndarray, target: np.ndarray) -> np.ndarray:
    """∂L/∂x of the output layer; rows are examples."""
    # role: output
    batch = x.shape[0]
    if kind == "sigmoid" and loss == "bce":
        return (y - target) / batch
    if kind == "softmax" and loss == "cce":
        return (y - target) / batch
    if loss == "half_sse":
        return _dact(kind, x, y, y - target)
    return _dact(kind, x, y, (y - target) * (2.0 / batch))


def _layer(
    kernels: list[np.ndarray],
    biases: list[np.ndarray],
    spec: dict[str, Any],
    i: int,
    inputs: np.ndarray,
    target: np.ndarray,
    out: dict[str, np.ndarray],
) -> np.ndarray:
    """Forward through layer i and everything after it, then return ∂L/∂inputs (filling ``out``)."""
    # role: forward
    kinds = spec["activations"]
    x = inputs @ kernels[i] + biases[i]
    y = _act(kinds[i], x)
    # role: output
    if i == len(kinds) - 1:
        grad_x = _loss_grad(spec["loss"], kinds[i], x, y, target)
    else:
        # role: recursion
        grad_x = _dact(kinds[i], x, y, _layer(kernels, biases, spec, i + 1, y, target, out))
    # role: weight
    out[f"W{i + 1}"] = (inputs.T @ grad_x).T
    # role: bias
    out[f"b{i + 1}"] = grad_x.sum(axis=0).reshape(-1, 1)
    # role: recursion
    return grad_x @ kernels[i].T


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    # role: plumbing
    depth = len(spec["activations"])
    kernels = [params[f"W{i}"].T for i in range(1, depth + 1)]
    biases = [params[f"b{i}"].T for i in range(1, depth + 1)]
    found: dict[str, np.ndarray] = {}
    _layer(kernels, biases, spec, 0, X.T, Y.T, found)
    return found

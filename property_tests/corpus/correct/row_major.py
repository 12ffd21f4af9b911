"""Row-major, as most frameworks store it: examples are rows and a layer keeps W as ``(n_in, n_out)``.

The network below knows nothing of the protocol's column-per-example layout; :func:`gradients` is the
adapter that transposes going in (``X.T`` ``(m, n_0)``, ``W.T`` ``(n_{l-1}, n_l)``, ``b`` as a row) and coming
out.  σ' is written σ(z)·σ(−z) and tanh' as (1 − a)(1 + a).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _forward(kind: str, z: np.ndarray) -> np.ndarray:
    if kind == "sigmoid":
        return _sigmoid(z)
    if kind == "tanh":
        return np.tanh(z)
    if kind == "relu":
        return np.maximum(z, 0.0)
    if kind == "leaky_relu":
        return np.maximum(z, 0.0) + 0.01 * np.minimum(z, 0.0)
    if kind == "softplus":
        return np.logaddexp(z, 0.0)
    if kind == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return z


def _local_grad(kind: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    if kind == "sigmoid":
        return _sigmoid(z) * _sigmoid(-z)
    if kind == "tanh":
        return (1.0 - a) * (1.0 + a)
    if kind == "relu":
        return (z > 0) * 1.0
    if kind == "leaky_relu":
        return np.where(z > 0, 1.0, 0.01)
    if kind == "softplus":
        return _sigmoid(z)
    return np.ones_like(z)


def backprop_rows(
    kinds: list[str], loss: str, weights: list[np.ndarray], biases: list[np.ndarray], A0: np.ndarray, T: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Rows are examples: ``A0`` ``(m, n_0)``, ``weights[l]`` ``(n_l, n_{l+1})``, ``biases[l]`` ``(1, n_{l+1})``."""
    batch = A0.shape[0]
    pre, post = [], [A0]
    for W, b, kind in zip(weights, biases, kinds, strict=True):
        pre.append(post[-1] @ W + b)
        post.append(_forward(kind, pre[-1]))
    P = post[-1]
    if loss == "bce":
        G = (P - T) / batch
    elif loss == "cce":
        G = (P * T.sum(axis=1, keepdims=True) - T) / batch
    else:
        scale = 2.0 / batch if loss == "mse" else 1.0
        G = scale * (P - T) * _local_grad(kinds[-1], pre[-1], P)
    dWs: list[np.ndarray] = [np.empty(0)] * len(weights)
    dbs: list[np.ndarray] = [np.empty(0)] * len(weights)
    for i in range(len(weights) - 1, -1, -1):
        dWs[i] = post[i].T @ G
        dbs[i] = G.sum(axis=0, keepdims=True)
        if i > 0:
            G = (G @ weights[i].T) * _local_grad(kinds[i - 1], pre[i - 1], post[i])
    return dWs, dbs


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    kinds = list(spec["activations"])
    n = len(kinds)
    weights = [params[f"W{i + 1}"].T for i in range(n)]
    biases = [params[f"b{i + 1}"].T for i in range(n)]
    dWs, dbs = backprop_rows(kinds, spec["loss"], weights, biases, X.T, Y.T)
    out: dict[str, Any] = {}
    for i in range(n):
        out[f"W{i + 1}"] = dWs[i].T
        out[f"b{i + 1}"] = dbs[i].T
    return out

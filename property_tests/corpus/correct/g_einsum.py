"""Backprop with rows as examples and every product an ``einsum`` (per-example outer products summed).

The subject protocol is column per example; this implementation transposes once on the way in
(``A`` ``(m, n)``) and once on the way out.  Role markers (``# role: …``) label the code for the mutant
generator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

LEAK = 0.01


def _sigma(u: np.ndarray) -> np.ndarray:
    # role: forward
    return 0.5 * (1.0 + np.tanh(0.5 * u))


def _apply(kind: str, u: np.ndarray) -> np.ndarray:
    # role: forward
    table: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "identity": lambda v: v,
        "sigmoid": _sigma,
        "tanh": np.tanh,
        "relu": lambda v: np.where(v > 0, v, 0.0),
        "leaky_relu": lambda v: np.where(v > 0, v, LEAK * v),
        "softplus": lambda v: np.log1p(np.exp(-np.abs(v))) + np.maximum(v, 0.0),
    }
    if kind == "softmax":
        e = np.exp(u - u.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return table[kind](u)


def _vjp(kind: str, u: np.ndarray, out: np.ndarray, g: np.ndarray) -> np.ndarray:
    """∂L/∂u from ∂L/∂out, rows are examples."""
    # role: derivative
    if kind == "softmax":
        inner = np.einsum("ij,ij->i", out, g)
        return out * (g - inner[:, None])
    if kind == "sigmoid":
        s = _sigma(u)
        return g * s * _sigma(-u)
    if kind == "tanh":
        return g * (1.0 - np.tanh(u) ** 2) if np.max(np.abs(u), initial=0.0) < 15 else g / np.cosh(u) ** 2
    if kind == "relu":
        return g * (u > 0)
    if kind == "leaky_relu":
        return g * np.where(u > 0, 1.0, LEAK)
    if kind == "softplus":
        return g * _sigma(u)
    return g


def _seed(loss: str, kind: str, u: np.ndarray, out: np.ndarray, T: np.ndarray) -> np.ndarray:
    """∂L/∂u at the output, rows are examples (T is the targets, (m, n_L))."""
    # role: output
    count = T.shape[0]
    if loss in ("bce", "cce"):
        return (out - T) / count
    scale = 2.0 / count if loss == "mse" else 1.0
    return _vjp(kind, u, out, scale * (out - T))


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    # role: plumbing
    kinds = spec["activations"]
    depth = len(kinds)
    Ws = [params[f"W{k}"] for k in range(1, depth + 1)]
    bs = [params[f"b{k}"][:, 0] for k in range(1, depth + 1)]
    # role: forward
    rows = [X.T]
    pre = []
    for W, b, kind in zip(Ws, bs, kinds, strict=True):
        u = np.einsum("ij,kj->ik", rows[-1], W) + b
        pre.append(u)
        rows.append(_apply(kind, u))
    # role: output
    g = _seed(spec["loss"], kinds[-1], pre[-1], rows[-1], Y.T)
    # role: plumbing
    out: dict[str, Any] = {}
    for k in range(depth - 1, -1, -1):
        # role: weight
        out[f"W{k + 1}"] = np.einsum("ij,ik->jk", g, rows[k])
        # role: bias
        out[f"b{k + 1}"] = np.einsum("ij->j", g)[:, None]
        # role: recursion
        if k > 0:
            back = np.einsum("ij,jk->ik", g, Ws[k])
            g = _vjp(kinds[k - 1], pre[k - 1], rows[k], back)
    # role: plumbing
    return out

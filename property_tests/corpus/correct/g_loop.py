"""Backprop as a plain loop over layers, column per example, caches in lists (a course's first version).

Role markers (``# role: …``) say which part of backprop each stretch of code is; the mutant generator
uses them to label its mutants (forward, derivative, output, recursion, weight, bias, plumbing).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def activate(name: str, z: np.ndarray) -> np.ndarray:
    # role: forward
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    if name == "softplus":
        return np.logaddexp(0.0, z)
    if name == "softmax":
        shifted = z - np.max(z, axis=0, keepdims=True)
        e = np.exp(shifted)
        return e / np.sum(e, axis=0, keepdims=True)
    return z


def slope(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    # role: derivative
    if name == "sigmoid":
        return np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))) ** 2
    if name == "tanh":
        return 1.0 / np.cosh(np.clip(z, -300.0, 300.0)) ** 2
    if name == "relu":
        return (z > 0).astype(float)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, 0.01)
    if name == "softplus":
        return activate("sigmoid", z)
    return np.ones_like(z)


def output_delta(loss: str, out: str, z: np.ndarray, a: np.ndarray, Y: np.ndarray) -> np.ndarray:
    # role: output
    m = Y.shape[1]
    if loss == "cce":
        return (a * np.sum(Y, axis=0, keepdims=True) - Y) / m
    if loss == "bce":
        return (a - Y) / m
    dA = 2.0 * (a - Y) / m if loss == "mse" else a - Y
    return dA * slope(out, z, a)


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    # role: plumbing
    acts = list(spec["activations"])
    L = len(acts)
    # role: forward
    zs = []
    outs = [X]
    for k in range(1, L + 1):
        z = params["W" + str(k)] @ outs[k - 1] + params["b" + str(k)]
        zs.append(z)
        outs.append(activate(acts[k - 1], z))
    # role: output
    delta = output_delta(spec["loss"], acts[L - 1], zs[L - 1], outs[L], Y)
    # role: plumbing
    grads = {}
    for k in range(L, 0, -1):
        # role: weight
        grads["W" + str(k)] = delta @ outs[k - 1].T
        # role: bias
        grads["b" + str(k)] = np.sum(delta, axis=1, keepdims=True)
        # role: recursion
        if k > 1:
            back = params["W" + str(k)].T @ delta
            delta = back * slope(acts[k - 2], zs[k - 2], outs[k - 1])
    # role: plumbing
    return grads

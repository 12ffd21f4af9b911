"""Backprop as a tape of closures: every forward step returns its output and a function that pulls a
cotangent back through it (a hand-written reverse mode), columns are examples.

Role markers (``# role: …``) label the code for the mutant generator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Pullback = Callable[[np.ndarray], np.ndarray]


def _sig(v: np.ndarray) -> np.ndarray:
    # role: forward
    return np.exp(-np.logaddexp(0.0, -v))


FORWARD: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    # role: forward
    "identity": lambda v: v,
    "sigmoid": _sig,
    "tanh": np.tanh,
    "relu": lambda v: v * (v > 0),
    "leaky_relu": lambda v: v * np.where(v > 0, 1.0, 0.01),
    "softplus": lambda v: np.logaddexp(0.0, v),
}

SLOPE: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    # role: derivative
    "identity": lambda v, a: np.ones_like(v),
    "sigmoid": lambda v, a: _sig(v) * _sig(-v),
    "tanh": lambda v, a: np.square(1.0 / np.cosh(np.minimum(np.abs(v), 350.0))),
    "relu": lambda v, a: 1.0 * (v > 0),
    "leaky_relu": lambda v, a: np.where(v > 0, 1.0, 0.01),
    "softplus": lambda v, a: _sig(v),
}


def activation_step(kind: str, v: np.ndarray) -> tuple[np.ndarray, Pullback]:
    # role: forward
    if kind == "softmax":
        e = np.exp(v - v.max(axis=0, keepdims=True))
        p = e / e.sum(axis=0, keepdims=True)

        def pull_softmax(cot: np.ndarray) -> np.ndarray:
            # role: derivative
            return p * cot - p * (p * cot).sum(axis=0, keepdims=True)

        return p, pull_softmax
    a = FORWARD[kind](v)

    def pull(cot: np.ndarray) -> np.ndarray:
        # role: derivative
        return cot * SLOPE[kind](v, a)

    return a, pull


def affine_step(
    W: np.ndarray, b: np.ndarray, x: np.ndarray, sink: dict[str, np.ndarray], layer: int
) -> tuple[np.ndarray, Pullback]:
    # role: forward
    v = W @ x + b

    def pull(cot: np.ndarray) -> np.ndarray:
        # role: weight
        sink[f"W{layer}"] = cot @ x.T
        # role: bias
        sink[f"b{layer}"] = cot @ np.ones((cot.shape[1], 1))
        # role: recursion
        return W.T @ cot

    return v, pull


def loss_cotangent(loss: str, kind: str, a: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, bool]:
    """(cotangent, whether it is already ∂L/∂z): fused for sigmoid+bce and softmax+cce."""
    # role: output
    m = a.shape[1]
    if (loss, kind) in (("bce", "sigmoid"), ("cce", "softmax")):
        return (a - Y) / m, True
    if loss == "mse":
        return (a - Y) * 2 / m, False
    return a - Y, False


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    # role: plumbing
    kinds = spec["activations"]
    tape: list[Pullback] = []
    sink: dict[str, np.ndarray] = {}
    # role: forward
    h = X
    for layer, kind in enumerate(kinds, start=1):
        v, pull_affine = affine_step(params[f"W{layer}"], params[f"b{layer}"], h, sink, layer)
        h, pull_act = activation_step(kind, v)
        tape += [pull_affine, pull_act]
    # role: output
    cot, fused = loss_cotangent(spec["loss"], kinds[-1], h, Y)
    # role: plumbing
    steps = tape[:-1] if fused else tape
    for pull in reversed(steps):
        cot = pull(cot)
    return sink

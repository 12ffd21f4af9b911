"""A tiny reverse-mode autodiff: every operation records a backward closure on a tape, and the loss is
differentiated by replaying the tape backwards — no δ recursion written by hand.

Arrays are column per example (``X`` ``(n_0, m)``, ``W{l}`` ``(n_l, n_{l-1})``, ``b{l}`` ``(n_l, 1)``).  The
losses are written as functions of the logits where a stable form exists (bce as softplus(z) − yz, cce
through log-softmax), as an autodiff user would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class Node:
    def __init__(self, value: np.ndarray, parents: tuple[tuple[Node, Callable[[np.ndarray], np.ndarray]], ...] = ()):
        self.value = value
        self.parents = parents
        self.grad = np.zeros_like(value)


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def matmul(a: Node, b: Node) -> Node:
    return Node(a.value @ b.value, ((a, lambda g: g @ b.value.T), (b, lambda g: a.value.T @ g)))


def add(a: Node, b: Node) -> Node:
    return Node(
        a.value + b.value,
        ((a, lambda g: _unbroadcast(g, a.value.shape)), (b, lambda g: _unbroadcast(g, b.value.shape))),
    )


def unary(a: Node, value: np.ndarray, slope: np.ndarray) -> Node:
    return Node(value, ((a, lambda g: g * slope),))


def activate(name: str, a: Node) -> Node:
    z = a.value
    if name == "sigmoid":
        s = np.exp(-np.logaddexp(0.0, -z))
        return unary(a, s, s * (1.0 - s))
    if name == "tanh":
        t = np.tanh(z)
        return unary(a, t, 1.0 - t * t)
    if name == "relu":
        return unary(a, np.maximum(z, 0.0), (z > 0).astype(float))
    if name == "leaky_relu":
        return unary(a, np.where(z > 0, z, 0.01 * z), np.where(z > 0, 1.0, 0.01))
    if name == "softplus":
        return unary(a, np.logaddexp(0.0, z), np.exp(-np.logaddexp(0.0, -z)))
    if name == "identity":
        return a
    raise ValueError(name)


def loss_node(name: str, z: Node, out: Node, Y: np.ndarray) -> Node:
    m = Y.shape[1]
    if name == "mse":
        r = out.value - Y
        return Node(np.array(np.sum(r * r) / m), ((out, lambda g: g * 2.0 * r / m),))
    if name == "half_sse":
        r = out.value - Y
        return Node(np.array(0.5 * np.sum(r * r)), ((out, lambda g: g * r),))
    if name == "bce":
        value = np.sum(np.logaddexp(0.0, z.value) - Y * z.value) / m
        sig = np.exp(-np.logaddexp(0.0, -z.value))
        return Node(np.array(value), ((z, lambda g: g * (sig - Y) / m),))
    shifted = z.value - z.value.max(axis=0, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))
    p = np.exp(log_p)
    value = -np.sum(Y * log_p) / m
    return Node(np.array(value), ((z, lambda g: g * (p * Y.sum(axis=0, keepdims=True) - Y) / m),))


def backward(root: Node) -> None:
    order: list[Node] = []
    seen: set[int] = set()

    def visit(node: Node) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        for parent, _ in node.parents:
            visit(parent)
        order.append(node)

    visit(root)
    root.grad = np.ones_like(root.value)
    for node in reversed(order):
        for parent, pull in node.parents:
            parent.grad = parent.grad + pull(node.grad)


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    leaves = {name: Node(np.asarray(value, dtype=float)) for name, value in params.items()}
    out = Node(X)
    z = out
    for layer, name in enumerate(spec["activations"], start=1):
        z = add(matmul(leaves[f"W{layer}"], out), leaves[f"b{layer}"])
        out = z if name == "softmax" else activate(name, z)
    backward(loss_node(spec["loss"], z, out, Y))
    return {name: leaf.grad for name, leaf in leaves.items()}

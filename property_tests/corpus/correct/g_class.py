"""Backprop with layer objects that remember their inputs (a small framework's style): ``Dense`` and
activation modules with ``forward``/``backward``, a loss module that starts the backward pass.

Columns are examples.  Role markers (``# role: …``) label the code for the mutant generator.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Dense:
    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.W, self.b = W, b
        self.x = np.zeros((W.shape[1], 1))
        self.dW = np.zeros_like(W)
        self.db = np.zeros_like(b)

    def forward(self, x: np.ndarray) -> np.ndarray:
        # role: forward
        self.x = x
        return self.W @ x + self.b

    def backward(self, grad: np.ndarray) -> np.ndarray:
        # role: weight
        self.dW = grad @ self.x.T
        # role: bias
        self.db = grad.sum(axis=1, keepdims=True)
        # role: recursion
        return self.W.T @ grad


class Activation:
    def __init__(self, name: str) -> None:
        self.name = name
        self.z = np.zeros((1, 1))
        self.out = np.zeros((1, 1))

    def forward(self, z: np.ndarray) -> np.ndarray:
        # role: forward
        self.z = z
        if self.name == "sigmoid":
            self.out = np.where(
                z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z)))
            )
        elif self.name == "tanh":
            self.out = np.tanh(z)
        elif self.name == "relu":
            self.out = z * (z > 0)
        elif self.name == "leaky_relu":
            self.out = np.maximum(z, 0.01 * z)
        elif self.name == "softplus":
            self.out = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
        elif self.name == "softmax":
            e = np.exp(z - z.max(axis=0))
            self.out = e / e.sum(axis=0)
        else:
            self.out = z
        return self.out

    def local_slope(self) -> np.ndarray:
        # role: derivative
        z, out = self.z, self.out
        if self.name == "sigmoid":
            t = np.tanh(0.5 * z)
            return 0.25 * (1.0 - t) * (1.0 + t)
        if self.name == "tanh":
            e = np.exp(-2.0 * np.abs(z))
            return 4.0 * e / (1.0 + e) ** 2
        if self.name == "relu":
            return np.heaviside(z, 0.0)
        if self.name == "leaky_relu":
            return 0.01 + 0.99 * (z > 0)
        if self.name == "softplus":
            return 0.5 + 0.5 * np.tanh(0.5 * z)
        del out
        return np.ones_like(z)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        # role: recursion
        if self.name == "softmax":
            return self.out * (grad - np.sum(self.out * grad, axis=0, keepdims=True))
        return grad * self.local_slope()


class Loss:
    def __init__(self, name: str, out: Activation) -> None:
        self.name, self.out = name, out

    def start(self, Y: np.ndarray) -> np.ndarray:
        """∂L/∂z of the last layer (the fused form where the pairing has one)."""
        # role: output
        p, n = self.out.out, Y.shape[1]
        if self.name == "bce" and self.out.name == "sigmoid":
            return (p - Y) / n
        if self.name == "cce" and self.out.name == "softmax":
            return (p - Y) / n
        if self.name == "mse":
            return self.out.backward(2.0 / n * (p - Y))
        return self.out.backward(p - Y)


class Network:
    def __init__(self, spec: dict[str, Any], params: dict[str, np.ndarray]) -> None:
        # role: plumbing
        names = spec["activations"]
        self.dense = [Dense(params[f"W{i + 1}"], params[f"b{i + 1}"]) for i in range(len(names))]
        self.acts = [Activation(name) for name in names]
        self.loss = Loss(spec["loss"], self.acts[-1])

    def forward(self, X: np.ndarray) -> np.ndarray:
        # role: forward
        h = X
        for dense, act in zip(self.dense, self.acts, strict=True):
            h = act.forward(dense.forward(h))
        return h

    def backward(self, Y: np.ndarray) -> None:
        # role: output
        grad = self.loss.start(Y)
        # role: plumbing
        for i in reversed(range(len(self.dense))):
            grad = self.dense[i].backward(grad)
            if i > 0:
                grad = self.acts[i - 1].backward(grad)

    def grads(self) -> dict[str, np.ndarray]:
        # role: plumbing
        found = {}
        for i, dense in enumerate(self.dense):
            found[f"W{i + 1}"] = dense.dW
            found[f"b{i + 1}"] = dense.db
        return found


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    # role: plumbing
    net = Network(spec, params)
    net.forward(X)
    net.backward(Y)
    return net.grads()

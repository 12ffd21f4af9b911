"""Object style: layers and losses are classes with ``forward``/``backward`` methods that cache what they
need, chained by a ``Network``; the subject is an object with a ``.gradients`` method (``network``).

Column per example throughout (``X`` ``(n_0, m)``).  Each activation's backward multiplies by its own
derivative written from the cached output; the cross-entropies fuse with their output activation.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Activation:
    def forward(self, z: np.ndarray) -> np.ndarray:
        self.z = z
        self.a = self.apply(z)
        return self.a

    def apply(self, z: np.ndarray) -> np.ndarray:
        return z

    def derivative(self) -> np.ndarray:
        return np.ones_like(self.z)

    def backward(self, grad_a: np.ndarray) -> np.ndarray:
        return grad_a * self.derivative()


class Sigmoid(Activation):
    def apply(self, z: np.ndarray) -> np.ndarray:
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    def derivative(self) -> np.ndarray:
        return self.a * (1.0 - self.a)


class Tanh(Activation):
    def apply(self, z: np.ndarray) -> np.ndarray:
        return np.tanh(z)

    def derivative(self) -> np.ndarray:
        return 1.0 - np.square(self.a)


class ReLU(Activation):
    slope = 0.0

    def apply(self, z: np.ndarray) -> np.ndarray:
        return np.where(z > 0, z, self.slope * z)

    def derivative(self) -> np.ndarray:
        return np.where(self.z > 0, 1.0, self.slope)


class LeakyReLU(ReLU):
    slope = 0.01


class Softplus(Activation):
    def apply(self, z: np.ndarray) -> np.ndarray:
        return np.logaddexp(0.0, z)

    def derivative(self) -> np.ndarray:
        return 0.5 * (1.0 + np.tanh(0.5 * self.z))


class Softmax(Activation):
    def apply(self, z: np.ndarray) -> np.ndarray:
        e = np.exp(z - np.max(z, axis=0))
        return e / np.sum(e, axis=0)


ACTIVATIONS = {
    "identity": Activation,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "softplus": Softplus,
    "softmax": Softmax,
}


class Dense:
    def __init__(self, W: np.ndarray, b: np.ndarray, activation: Activation) -> None:
        self.W, self.b, self.activation = W, b, activation

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return self.activation.forward(self.W @ x + self.b)

    def backward_from_z(self, dz: np.ndarray) -> np.ndarray:
        self.dW = dz @ self.x.T
        self.db = dz.sum(axis=1, keepdims=True)
        return self.W.T @ dz


class Network:
    """``network.gradients(spec, params, X, Y)`` builds the layers from the spec and runs them."""

    def gradients(
        self, spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray
    ) -> dict[str, Any]:
        names = spec["activations"]
        layers = [Dense(params[f"W{i}"], params[f"b{i}"], ACTIVATIONS[name]()) for i, name in enumerate(names, start=1)]
        out = X
        for layer in layers:
            out = layer.forward(out)
        batch = X.shape[1]
        if spec["loss"] in ("bce", "cce"):
            dz = (out - Y) / batch
        else:
            factor = 2.0 / batch if spec["loss"] == "mse" else 1.0
            dz = layers[-1].activation.backward(factor * (out - Y))
        for index in range(len(layers) - 1, -1, -1):
            grad_x = layers[index].backward_from_z(dz)
            if index:
                dz = layers[index - 1].activation.backward(grad_x)
        grads: dict[str, Any] = {}
        for i, layer in enumerate(layers, start=1):
            grads[f"W{i}"], grads[f"b{i}"] = layer.dW, layer.db
        return grads


network = Network()
SUBJECT = "network"  # the corpus runs this object (its .gradients), as `verify MODULE:network` would

"""The article's §5 NumPy listings, as written, and a subject wrapper around them.

The listings are reproduced verbatim (``sigmoid``, ``forward_propagation``, ``sigmoid_derivative``,
``backward_propagation`` and the example data) so that the audit can run them; the wrapper only maps
the subject protocol onto their arguments.  Nothing here is trusted: the audit and ``verify`` decide
what these functions actually compute.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_impl.spec import Array, Params, SpecError, as_spec

# --- §5.1, as written -------------------------------------------------------------------------


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def forward_propagation(X, W, b):
    z = np.dot(W, X) + b
    a = sigmoid(z)
    return a


EXAMPLE_X = np.array([[0.5], [0.1]])
EXAMPLE_W = np.array([[0.2, 0.4], [0.3, 0.7]])
EXAMPLE_B = np.array([[0.1], [0.2]])

# --- §5.2, as written (the article's listing is cut off after ``dW,``) ----------------------------


def sigmoid_derivative(z):
    return sigmoid(z) * (1 - sigmoid(z))


def backward_propagation(X, Y, W, b, a):
    m = X.shape[1]
    dz = a - Y
    dW = np.dot(dz, X.T) / m
    db = np.sum(dz) / m
    return dW, db


EXAMPLE_Y = np.array([[1], [0]])

# --- the subject wrapper ----------------------------------------------------------------------

# What the listings can be asked about: one sigmoid layer; the text never names the loss.
SUPPORTS: dict[str, Any] = {"activations": ["sigmoid"], "losses": ["bce", "mse", "half_sse"], "max_depth": 1}


def gradients(spec: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Params:
    """The §5 listings as a subject: one sigmoid layer, ``(dW, db)`` returned as W1/b1.

    ``db`` is whatever the listing returns (a scalar, since ``np.sum`` has no axis); it is broadcast to
    b1's shape ``(n_1, 1)`` only because the protocol needs an array, which keeps its value visible.
    """
    checked = as_spec(spec)
    if checked.depth != 1 or checked.activations != ("sigmoid",):
        raise SpecError("the article's listing implements a single sigmoid layer only")
    W, b = params["W1"], params["b1"]
    a = forward_propagation(X, W, b)
    dW, db = backward_propagation(X, Y, W, b, a)
    return {"W1": np.asarray(dW, dtype=np.float64), "b1": np.full(b.shape, db, dtype=np.float64)}

"""The widely taught backward pass: dA^[L] = −(y/a − (1 − y)/(1 − a)), then dZ = dA·g'(Z) layer by layer,
dW = dZ·A_prevᵀ/m, db = Σ dZ/m, dA_prev = Wᵀ dZ.  Right in exact arithmetic; once a sigmoid output rounds to
exactly 1 (z ≥ 36.74) the division by 1 − a gives inf and inf·0 = NaN.  For the other losses dA^[L] is
their own derivative (times m, since the 1/m is applied to dW and db), for cce the fused p − y.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def sigmoid(Z):
    A = 1 / (1 + np.exp(-Z))
    return A, Z


def relu(Z):
    return np.maximum(0, Z), Z


def forward_one(A_prev, W, b, kind):
    Z = np.dot(W, A_prev) + b
    if kind == "sigmoid":
        A, _ = sigmoid(Z)
    elif kind == "relu":
        A, _ = relu(Z)
    elif kind == "tanh":
        A = np.tanh(Z)
    elif kind == "leaky_relu":
        A = np.where(Z > 0, Z, 0.01 * Z)
    elif kind == "softplus":
        A = np.logaddexp(0, Z)
    elif kind == "softmax":
        T = np.exp(Z - np.max(Z, axis=0, keepdims=True))
        A = T / np.sum(T, axis=0, keepdims=True)
    else:
        A = Z
    return A, (A_prev, W, b, Z, A)


def backward_one(dA, cache, kind):
    A_prev, W, _, Z, A = cache
    m = A_prev.shape[1]
    if kind == "sigmoid":
        s = 1 / (1 + np.exp(-Z))
        dZ = dA * s * (1 - s)
    elif kind == "tanh":
        dZ = dA * (1 - np.power(A, 2))
    elif kind == "relu":
        dZ = np.array(dA, copy=True)
        dZ[Z <= 0] = 0
    elif kind == "leaky_relu":
        dZ = dA * np.where(Z > 0, 1, 0.01)
    elif kind == "softplus":
        dZ = dA / (1 + np.exp(-Z))
    else:
        dZ = dA
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def gradients(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    kinds = spec["activations"]
    L = len(kinds)
    caches = []
    A = X
    for i in range(1, L + 1):
        A, cache = forward_one(A, params["W" + str(i)], params["b" + str(i)], kinds[i - 1])
        caches.append(cache)
    AL = A
    loss = spec["loss"]
    if loss == "bce":
        dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    elif loss == "mse":
        dAL = 2 * (AL - Y)
    elif loss == "half_sse":
        dAL = (AL - Y) * X.shape[1]
    grads = {}
    if loss == "cce":
        # softmax + cross-entropy: dZ = AL − Y, straight to the last layer's gradients
        A_prev, W, _, _, _ = caches[L - 1]
        m = A_prev.shape[1]
        dZ = AL - Y
        grads["W" + str(L)] = 1 / m * np.dot(dZ, A_prev.T)
        grads["b" + str(L)] = 1 / m * np.sum(dZ, axis=1, keepdims=True)
        dA = np.dot(W.T, dZ)
    else:
        dA, grads["W" + str(L)], grads["b" + str(L)] = backward_one(dAL, caches[L - 1], kinds[L - 1])
    for i in reversed(range(1, L)):
        dA, grads["W" + str(i)], grads["b" + str(i)] = backward_one(dA, caches[i - 1], kinds[i - 1])
    return grads

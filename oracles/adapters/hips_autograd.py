"""HIPS autograd as a subject: the spec's forward written in ``autograd.numpy``, differentiated by
``autograd.grad``.  Nothing from the reference is reused except the names in the spec.

Column per example, as everywhere: ``X`` ``(n_0, m)``, ``W{l}`` ``(n_l, n_{l-1})``, ``b{l}`` ``(n_l, 1)``.
Kinks follow the suite's conventions on purpose (``where(z > 0, …)`` has derivative 0 at z = 0 for relu and
the slope for leaky_relu), because ``autograd.numpy.maximum`` would split a tie and give ½ there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import autograd.numpy as anp
import numpy as np
from autograd import grad

from reference_impl.spec import Array, Params, as_spec

LEAKY_SLOPE = 0.01


def _log_softmax(z: Any) -> Any:
    shifted = z - anp.max(z, axis=0, keepdims=True)
    return shifted - anp.log(anp.sum(anp.exp(shifted), axis=0, keepdims=True))


ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "identity": lambda z: z,
    "sigmoid": lambda z: 0.5 * (anp.tanh(0.5 * z) + 1.0),  # no overflow for large |z|
    "tanh": anp.tanh,
    "relu": lambda z: anp.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: anp.where(z > 0, z, LEAKY_SLOPE * z),
    "softplus": lambda z: anp.logaddexp(z, 0.0),
    "softmax": lambda z: anp.exp(_log_softmax(z)),
}


def _loss(spec_loss: str, z_out: Any, a_out: Any, Y: Array) -> Any:
    m = Y.shape[1]
    if spec_loss == "mse":
        return anp.sum((a_out - Y) ** 2) / m
    if spec_loss == "half_sse":
        return 0.5 * anp.sum((a_out - Y) ** 2)
    if spec_loss == "bce":
        # −[y log σ(z) + (1 − y) log(1 − σ(z))] = softplus(z) − y z, finite for every z.
        return anp.sum(anp.logaddexp(z_out, 0.0) - Y * z_out) / m
    if spec_loss == "cce":
        return -anp.sum(Y * _log_softmax(z_out)) / m
    raise KeyError(spec_loss)


def loss(spec_dict: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> float:
    spec = as_spec(spec_dict)
    return float(_objective(spec.activations, spec.loss, X, Y)(params))


def _objective(activations: tuple[str, ...], loss_name: str, X: Array, Y: Array) -> Callable[[dict[str, Any]], Any]:
    def objective(params: dict[str, Any]) -> Any:
        a: Any = X
        z: Any = X
        for layer, name in enumerate(activations, start=1):
            z = anp.dot(params[f"W{layer}"], a) + params[f"b{layer}"]
            a = ACTIVATIONS[name](z)
        return _loss(loss_name, z, a, Y)

    return objective


def gradients(spec_dict: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Params:
    """The subject protocol: autograd's reverse mode on the spec's forward."""
    spec = as_spec(spec_dict)
    X64, Y64 = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    inputs = {name: np.array(params[name], dtype=np.float64) for name in spec.parameter_names}
    result = grad(_objective(spec.activations, spec.loss, X64, Y64))(inputs)
    return {name: np.asarray(result[name], dtype=np.float64) for name in spec.parameter_names}

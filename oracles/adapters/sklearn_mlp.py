"""scikit-learn's MLPRegressor / MLPClassifier backprop (``_backprop``), as subjects.

scikit-learn keeps one example per *row*: ``coefs_[l-1]`` is ``(n_{l-1}, n_l)`` (our ``W{l}ᵀ``),
``intercepts_[l-1]`` is ``(n_l,)``, inputs ``(m, n_0)``.  The adapter builds an estimator with
``alpha = 0`` (no L2 term), installs the case's parameters, calls its private ``_backprop`` and maps the
gradients back.  Nothing is corrected: whatever constant scikit-learn puts in front of its loss is what
``verify`` sees, and the convention detector names it.

What it can be asked: one activation shared by every hidden layer (``identity``, ``sigmoid`` = its
``logistic``, ``tanh``, ``relu``); an identity output with a squared error (MLPRegressor), a sigmoid
output with ``bce`` or a softmax output with ``cce`` (MLPClassifier).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from reference_impl.spec import Array, Params, SpecError, as_spec

SKLEARN_ACTIVATION = {"identity": "identity", "sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}
OUTPUT_OF_LOSS = {"mse": "identity", "half_sse": "identity", "bce": "logistic", "cce": "softmax"}


def _estimator(hidden: str, output: str, hidden_sizes: tuple[int, ...]) -> Any:
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    common = {"hidden_layer_sizes": hidden_sizes or (1,), "activation": hidden, "alpha": 0.0}
    if output == "identity":
        return MLPRegressor(**common)
    return MLPClassifier(**common)


def sklearn_gradients(spec_dict: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Params:
    """The subject protocol on top of scikit-learn's own forward and backward pass."""
    return sklearn_backprop(spec_dict, params, X, Y)[1]


def sklearn_loss(spec_dict: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> float:
    """The loss value scikit-learn's ``_backprop`` reports beside those gradients."""
    return sklearn_backprop(spec_dict, params, X, Y)[0]


def sklearn_backprop(spec_dict: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> tuple[float, Params]:
    """(loss, gradients) from one call of scikit-learn's ``_backprop``, mapped to column-per-example."""
    spec = as_spec(spec_dict)
    hidden_names = set(spec.activations[:-1])
    if len(hidden_names) > 1:
        raise SpecError("scikit-learn uses one activation for every hidden layer")
    hidden = SKLEARN_ACTIVATION.get(next(iter(hidden_names)) if hidden_names else "identity")
    if hidden is None:
        raise SpecError(f"scikit-learn has no {sorted(hidden_names)} activation")
    output = OUTPUT_OF_LOSS[spec.loss]
    expected_output = {"identity": "identity", "logistic": "sigmoid", "softmax": "softmax"}[output]
    if spec.activations[-1] != expected_output:
        raise SpecError(f"scikit-learn pairs {spec.loss} with a {expected_output} output")
    L = spec.depth
    estimator = _estimator(hidden, output, tuple(spec.widths[1:-1]))
    estimator.coefs_ = [np.array(params[f"W{layer}"], dtype=np.float64).T for layer in range(1, L + 1)]
    estimator.intercepts_ = [np.array(params[f"b{layer}"], dtype=np.float64).ravel() for layer in range(1, L + 1)]
    estimator.n_layers_ = L + 1
    estimator.out_activation_ = output
    rows_X, rows_Y = np.array(X, dtype=np.float64).T, np.array(Y, dtype=np.float64).T
    activations: list[Any] = [rows_X] + [None] * L
    deltas: list[Any] = [None] * L
    coef_grads = [np.empty_like(c) for c in estimator.coefs_]
    intercept_grads = [np.empty_like(b) for b in estimator.intercepts_]
    # scikit-learn ≥ 1.6 added sample_weight to the private signature; older releases lack it.
    if "sample_weight" in inspect.signature(estimator._backprop).parameters:
        loss, coef_grads, intercept_grads = estimator._backprop(
            rows_X, rows_Y, None, activations, deltas, coef_grads, intercept_grads
        )
    else:
        loss, coef_grads, intercept_grads = estimator._backprop(
            rows_X, rows_Y, activations, deltas, coef_grads, intercept_grads
        )
    grads: Params = {}
    for layer in range(1, L + 1):
        grads[f"W{layer}"] = np.asarray(coef_grads[layer - 1], dtype=np.float64).T
        grads[f"b{layer}"] = np.asarray(intercept_grads[layer - 1], dtype=np.float64).reshape(-1, 1)
    return float(loss), grads


# ``verify oracles.adapters.sklearn_mlp:regressor`` and friends: one subject per hidden activation
# family, each with the SUPPORTS that keeps generation inside what scikit-learn can express.
class SklearnSubject:
    def __init__(self, hidden: str, losses: tuple[str, ...]) -> None:
        outputs = sorted(
            {
                "identity" if loss in ("mse", "half_sse") else {"bce": "sigmoid", "cce": "softmax"}[loss]
                for loss in losses
            }
        )
        self.SUPPORTS: dict[str, Any] = {
            "hidden_activations": [hidden],
            "output_activations": outputs,
            "losses": list(losses),
            "max_depth": 3,
        }

    def gradients(self, spec: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Params:
        return sklearn_gradients(spec, params, X, Y)


regressor = SklearnSubject("tanh", ("mse",))
regressor_relu = SklearnSubject("relu", ("mse",))
classifier = SklearnSubject("tanh", ("bce", "cce"))
classifier_logistic = SklearnSubject("sigmoid", ("bce", "cce"))

"""Turning a :class:`Case` recipe into arrays, and drawing cases from ``(seed, index)`` alone.

Everything here takes an explicit :class:`numpy.random.Generator`; no global RNG state is touched.
"""

from __future__ import annotations

import numpy as np

from reference_impl.activations import get_activation
from reference_impl.spec import (
    ACTIVATION_NAMES,
    KINKED_ACTIVATIONS,
    LOSS_OUTPUT_ACTIVATION,
    Array,
    Case,
    Params,
    Problem,
    Spec,
)

# Kink placement works on a dyadic grid: every product and partial sum is then exact in float64,
# whatever order a BLAS sums in, so z = W a + b lands on exactly 0.
_GRID = 16.0


def _on_grid(values: Array) -> Array:
    return np.round(values * _GRID) / _GRID


def _is_dyadic(values: Array) -> bool:
    scaled = np.ldexp(values, 40)
    return bool(np.all(scaled == np.round(scaled)) and np.all(np.abs(values) < 2.0**10))


def make_targets(spec: Spec, m: int, rng: np.random.Generator) -> Array:
    """Targets ``(n_L, m)`` valid for the loss: probability columns for cce, [0, 1] for bce."""
    n_out = spec.widths[-1]
    if spec.loss == "cce":
        # Soft labels (not only one-hot), so every term of the cross-entropy is exercised.
        if rng.random() < 0.3:
            Y = np.zeros((n_out, m))
            Y[rng.integers(0, n_out, size=m), np.arange(m)] = 1.0
            return Y
        return rng.dirichlet(np.ones(n_out), size=m).T
    if spec.loss == "bce":
        Y = rng.uniform(0.0, 1.0, size=(n_out, m))
        hard = rng.random(size=(n_out, m)) < 0.3
        return np.where(hard, np.round(Y), Y)
    if spec.activations[-1] == "sigmoid":
        return rng.uniform(0.0, 1.0, size=(n_out, m))
    return rng.normal(0.0, 1.0, size=(n_out, m))


def make_problem(case: Case) -> Problem:
    spec = case.spec
    rng = np.random.default_rng([case.seed, 0x5EED])
    params: Params = {}
    X = rng.normal(0.0, 1.0, size=(spec.widths[0], case.batch)) * case.data_scale
    for layer in range(1, spec.depth + 1):
        fan_in, fan_out = spec.widths[layer - 1], spec.widths[layer]
        params[f"W{layer}"] = rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=(fan_out, fan_in)) * case.param_scale
        params[f"b{layer}"] = rng.normal(0.0, 0.5, size=(fan_out, 1)) * case.param_scale
    Y = make_targets(spec, case.batch, rng)
    sites: list[tuple[int, int, int]] = []
    if case.kinks and any(a in KINKED_ACTIVATIONS for a in spec.activations):
        X = _on_grid(np.clip(X, -4, 4))
        for name in params:
            params[name] = _on_grid(np.clip(params[name], -4, 4))
        a = X
        for layer, act_name in enumerate(spec.activations, start=1):
            W, b = params[f"W{layer}"], params[f"b{layer}"]
            if act_name in KINKED_ACTIVATIONS and _is_dyadic(a):
                unit, example = int(rng.integers(0, W.shape[0])), int(rng.integers(0, a.shape[1]))
                b[unit, 0] = -float(np.dot(W[unit], a[:, example]))
                sites.append((layer, unit, example))
            a = get_activation(act_name).function(W @ a + b)
    return Problem(params=params, X=X, Y=Y, kink_sites=tuple(sites))


def random_spec(rng: np.random.Generator, max_depth: int = 5, max_width: int = 8) -> Spec:
    """An architecture drawn without Hypothesis (campaigns): widths as a list, so non-square is common."""
    depth = int(rng.integers(1, max_depth + 1))
    widths = [int(w) for w in rng.integers(1, max_width + 1, size=depth + 1)]
    hidden = [a for a in ACTIVATION_NAMES if a != "softmax"]
    activations = [str(rng.choice(hidden)) for _ in range(depth - 1)]
    loss = str(rng.choice(list(LOSS_OUTPUT_ACTIVATION)))
    required = LOSS_OUTPUT_ACTIVATION[loss]
    activations.append(required if required is not None else str(rng.choice(hidden)))
    return Spec(tuple(widths), tuple(activations), loss)


def case_from_index(seed: int, index: int) -> Case:
    """Campaign case number ``index`` of campaign ``seed``: a pure function of the two."""
    rng = np.random.default_rng([seed, index, 0xCA5E])
    spec = random_spec(rng)
    return Case(
        spec=spec,
        batch=int(rng.integers(1, 9)),
        seed=int(rng.integers(0, 2**31)),
        param_scale=float(rng.choice([0.5, 1.0, 1.0, 2.0])),
        data_scale=float(rng.choice([0.5, 1.0, 1.0, 3.0])),
        kinks=bool(rng.random() < 0.15),
        label=f"{seed}-{index:06d}",
    )

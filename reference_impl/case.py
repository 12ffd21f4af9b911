"""The one frozen case object that flows through the suite, and the arrays it determines.

A :class:`Case` is a *recipe*: spec + batch size + scales + seed.  Its arrays (:class:`Problem`) are a pure
function of those fields, drawn from an explicit :class:`numpy.random.Generator`, so its ``repr`` is valid
Python that rebuilds exactly the same problem.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from reference_impl.activations import get_activation
from reference_impl.spec import KINKED_ACTIVATIONS, Array, Params, Spec, SpecError
from reference_impl.stress import stress_params


@dataclass(frozen=True)
class Problem:
    """Concrete arrays of a case.

    ``params``: W{l} ``(n_l, n_{l-1})``, b{l} ``(n_l, 1)``; ``X`` ``(n_0, m)``; ``Y`` ``(n_L, m)``.
    """

    params: Params
    X: Array
    Y: Array
    kink_sites: tuple[tuple[int, int, int], ...] = ()  # (layer, unit, example) placed exactly on z = 0


@dataclass(frozen=True)
class Case:
    """A reproducible problem.  ``repr`` is pasteable Python (``Case(spec=Spec(...), ...)``).

    ``param_scale`` multiplies Glorot-like weights, ``data_scale`` the inputs; ``kinks`` places some
    relu/leaky_relu pre-activations exactly on 0 (on a dyadic grid, so it is exact in any summation order);
    ``stress`` drives saturable and softmax layers into float64's hard corners
    (:mod:`reference_impl.stress`).
    """

    spec: Spec
    batch: int = 3
    seed: int = 0
    param_scale: float = 1.0
    data_scale: float = 1.0
    kinks: bool = False
    stress: bool = False
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise SpecError("batch size must be at least 1")
        if self.kinks and self.stress:
            # Rescaling a layer moves every pre-activation after it: the kink sites would no longer be exact.
            raise SpecError("a case places kinks or stresses its layers, not both")

    @property
    def id(self) -> str:
        if self.label:
            return self.label
        digest = hashlib.sha1(repr(self).encode()).hexdigest()[:12]
        return f"case-{digest}"

    @cached_property
    def problem(self) -> Problem:
        return make_problem(self)

    @property
    def params(self) -> Params:
        return {k: v.copy() for k, v in self.problem.params.items()}

    @property
    def X(self) -> Array:
        return self.problem.X.copy()

    @property
    def Y(self) -> Array:
        return self.problem.Y.copy()

    def arrays(self) -> tuple[Params, Array, Array]:
        """Fresh copies, so a subject that mutates its inputs cannot poison the case."""
        return self.params, self.X, self.Y


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
    if case.stress:
        # A stream of its own: the ordinary draw above is the same with or without stress.
        params = stress_params(spec, params, X, np.random.default_rng([case.seed, 0x57E55]))
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

"""The derivative of one activation written wrongly: g'(z) replaced by some h(z), fitted and then checked.

h is sought as a combination of a few functions of z and g(z) (1, g, g², z, z² for smooth activations;
the slopes left and right of 0 for relu-like ones), which covers the usual slips — 1 − tanh(z) for
1 − tanh²(z), σ(z) for σ(z)(1 − σ(z)), a wrong leaky slope, the derivative taken as 1 — without naming
any of them.  The coefficients are fitted by least squares on runs where g' enters the backward pass at
exactly one place (there the gradient is linear in h), then the fitted h must reproduce every
fault-free run, wherever and however often g' enters.  Where g' is used is itself a hypothesis: in the
hidden layers only, also at a squared-loss output, or also at an unfused cross-entropy output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from oracles.diagnosis.evidence import Explanation, LossEvidence, Run, reproduces
from oracles.diagnosis.wording import Diagnosis
from reference_impl.activations import get_activation
from reference_impl.losses import get_loss
from reference_impl.spec import KINKED_ACTIVATIONS, Array, Params, Spec

Basis = list[tuple[str, Callable[[Array], Array]]]
SITES = ("hidden", "squared output", "any output")  # where the wrong derivative is used


def basis(name: str) -> Basis:
    """Functions of z whose combinations h may be (named as they are printed)."""
    if name in KINKED_ACTIVATIONS:
        # g'(0) takes the left slope, as the suite's convention does; another g'(0) alone is a kink finding.
        return [("[z > 0]", lambda z: (z > 0).astype(float)), ("[z ≤ 0]", lambda z: (z <= 0).astype(float))]
    g = get_activation(name).function
    label = {"identity": "z", "softplus": "softplus(z)"}.get(name, f"{name}(z)")
    terms: Basis = [("1", np.ones_like), ("z", lambda z: z.copy()), ("z²", lambda z: z * z)]
    if name != "identity":
        terms += [(label, g), (f"{label}²", lambda z: g(z) ** 2)]
    if name == "softplus":  # softplus' = σ: the slips are σ's
        sigma = get_activation("sigmoid").function
        terms += [("σ(z)", sigma), ("σ(z)²", lambda z: sigma(z) ** 2)]
    return terms


def _uses(spec: Spec, site: str, layer: int, name: str) -> bool:
    """Whether layer ``layer``'s derivative is g' = ``name``'s, under the ``site`` hypothesis."""
    if spec.activations[layer - 1] != name:
        return False
    if layer < spec.depth:
        return True
    loss = get_loss(spec.loss)
    fused = loss.delta_from_logits is not None and spec.activations[-1] == loss.output_activation
    if site == "hidden":
        return False
    if site == "squared output":
        return not fused and get_activation(name).derivative is not None
    return get_activation(name).derivative is not None


def backward_with(run: Run, derivative: Callable[[int, Array], Array | None]) -> Params:
    """The reference backward pass with layer l's g'(z^[l]) replaced by ``derivative(l, z)`` where not None."""
    spec, tape = run.case.spec, run.tape
    params, _, Y = run.case.arrays()
    L = spec.depth
    loss = get_loss(spec.loss)
    override = derivative(L, tape.z(L))
    delta = loss.gradient(tape.output, Y) * override if override is not None else run.trace.delta(L)
    grads: Params = {}
    for layer in range(L, 0, -1):
        grads[f"W{layer}"] = delta @ tape.a(layer - 1).T
        grads[f"b{layer}"] = delta.sum(axis=1, keepdims=True)
        if layer == 1:
            break
        carried = params[f"W{layer}"].T @ delta
        below = derivative(layer - 1, tape.z(layer - 1))
        act = get_activation(spec.activations[layer - 2])
        delta = carried * below if below is not None else act.vjp(tape.z(layer - 1), tape.a(layer - 1), carried)
    return grads


def _at(layers: set[int], h: Callable[[Array], Array]) -> Callable[[int, Array], Array | None]:
    """A derivative override: h at ``layers``, the right derivative elsewhere."""

    def derivative(layer: int, z: Array) -> Array | None:
        return h(z) if layer in layers else None

    return derivative


def _sites(run: Run, site: str, name: str) -> list[int]:
    return [layer for layer in range(1, run.case.spec.depth + 1) if _uses(run.case.spec, site, layer, name)]


def _flat(grads: Params, names: Sequence[str]) -> Array:
    return np.concatenate([grads[n].ravel() for n in names])


def _fit(runs: Sequence[Run], site: str, name: str, terms: Basis) -> Array | None:
    """Least-squares coefficients of h from runs where g' enters once; None if none or not exact."""
    columns: list[list[Array]] = [[] for _ in terms]
    target: list[Array] = []
    for run in runs:
        places = _sites(run, site, name)
        if len(places) != 1 or run.blocks is None:
            continue
        # Blocks of layers above the site do not depend on h; those at or below it are linear in h.
        names = sorted(n for n in run.reference if int(n[1:]) <= places[0])
        for k, (_, phi) in enumerate(terms):
            grads = backward_with(run, _at({places[0]}, phi))
            columns[k].append(_flat(grads, names))
        target.append(_flat(run.blocks, names))
    if not target:
        return None
    A = np.stack([np.concatenate(col) for col in columns], axis=1)
    b = np.concatenate(target)
    scale = np.maximum(np.max(np.abs(A), axis=0), 1e-300)
    coefficients, *_ = np.linalg.lstsq(A / scale, b, rcond=None)
    coefficients = coefficients / scale
    if float(np.max(np.abs(A @ coefficients - b))) > 1e-9 * max(float(np.max(np.abs(b))), 1e-300):
        return None
    return np.asarray(coefficients)


def _h(terms: Basis, coefficients: Array) -> Callable[[Array], Array]:
    def h(z: Array) -> Array:
        return sum((c * phi(z) for (_, phi), c in zip(terms, coefficients, strict=True) if c != 0.0), np.zeros_like(z))

    return h


def _nice(coefficients: Array) -> Array:
    """Coefficients rounded where they are a simple number (1, 0.5, 0.1, …) to rounding error."""
    out = coefficients.copy()
    largest = float(np.max(np.abs(out))) if out.size else 0.0
    for i, c in enumerate(out):
        if abs(c) <= 1e-9 * largest:
            out[i] = 0.0
            continue
        for digits in range(0, 7):
            rounded = round(float(c), digits)
            if rounded != 0 and abs(rounded - c) <= 1e-9 * abs(c):
                out[i] = rounded
                break
    return out


def formula_of(terms: Basis, coefficients: Array) -> str:
    parts: list[str] = []
    for (label, _), c in zip(terms, coefficients, strict=True):
        if c == 0.0:
            continue
        magnitude = abs(c)
        body = label if label != "1" else f"{magnitude:g}"
        if label != "1" and magnitude != 1.0:
            body = f"{magnitude:g}·{label}"
        sign = "−" if c < 0 else "+"
        parts.append(f"{sign} {body}" if parts else (f"−{body}" if c < 0 else body))
    return " ".join(parts) or "0"


def _explains(runs: Sequence[Run], site: str, name: str, h: Callable[[Array], Array]) -> int | None:
    """Runs h tells apart from the right answer, or None if some run contradicts it."""
    differing = 0
    for run in runs:
        places = set(_sites(run, site, name))
        if not places:
            if not all(run.right.values()):
                return None
            continue
        grads = backward_with(run, _at(places, h))
        if not reproduces(run, grads):
            return None
        differing += not all(run.right.values())
    return differing


def derivative_explanation(evidence: LossEvidence) -> Explanation | None:
    """One activation's derivative replaced by a fitted h on every fault-free run."""
    if evidence.shaped or not evidence.wrong:
        return None
    runs = evidence.valid
    wrong_names = set.intersection(*(set(r.case.spec.activations) for r in evidence.wrong))
    for name in sorted(wrong_names - {"softmax"}):
        terms = basis(name)
        for site in SITES:
            coefficients = _fit(runs, site, name, terms)
            if coefficients is None:
                continue
            nice = _nice(coefficients)
            h = _h(terms, nice)
            differing = _explains(runs, site, name, h)
            if differing is None:
                h = _h(terms, coefficients)
                differing = _explains(runs, site, name, h)
                nice = coefficients
            if not differing:
                continue
            return Explanation(
                [_diagnosis(name, formula_of(terms, nice), nice, terms, evidence.loss)], differing=differing
            )
    return None


def _diagnosis(name: str, h_text: str, coefficients: Array, terms: Basis, loss: str) -> Diagnosis:
    right = {
        "sigmoid": "σ(z)(1 − σ(z))",
        "tanh": "1 − tanh(z)²",
        "softplus": "σ(z)",
        "relu": "[z > 0]",
        "leaky_relu": "[z > 0] + 0.01·[z ≤ 0]",
        "identity": "1",
    }[name]
    if name == "leaky_relu" and len(coefficients) == 2 and coefficients[0] == 1.0:
        message = f"leaky_relu's slope for z < 0 is {coefficients[1]:g} in the backward pass; it should be 0.01."
        return Diagnosis("leaky_slope", None, f"leaky_relu'(z) = {right}", message, 0.9, (loss,))
    message = f"The derivative of {name} is computed as {h_text} instead of {right}."
    return Diagnosis("activation_derivative", None, f"{name}'(z) = {right}", message, 0.9, (loss,))

"""Gradient descent as §3.5 and §4.4 write it: the two update rules and the sufficient-decrease check.

Parameters and gradients are dicts W{l} ``(n_l, n_{l-1})``, b{l} ``(n_l, 1)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from hypothesis import strategies as st

from reference_impl.spec import Params
from reports.audit.checks import setting_value
from reports.audit.core import Instance, Outcome, Setting, setting
from reports.audit.instances import ELEMENTWISE, PAIRINGS, networks
from reports.audit.truth import loss_value

Update = Callable[[Params, Params, float], Params]
LEARNING_RATES: tuple[float, ...] = (0.001, 0.1, 1.0, 10.0)
ARMIJO = 1e-4  # sufficient-decrease constant: L must drop by at least this fraction of η‖g‖²


def update_each_parameter(params: Params, grads: Params, eta: float) -> Params:
    updated = dict(params)
    for name in params:  # w = w − η ∂L/∂w and b = b − η ∂L/∂b, one parameter at a time
        updated[name] = params[name] - eta * grads[name]
    return updated


def update_layers(params: Params, grads: Params, eta: float) -> Params:
    updated = dict(params)
    layers = len(params) // 2
    for layer in range(1, layers + 1):
        updated[f"W{layer}"] = params[f"W{layer}"] - eta * grads[f"W{layer}"]
        updated[f"b{layer}"] = params[f"b{layer}"] - eta * grads[f"b{layer}"]
    return updated


def descent_check(update: Update) -> Callable[[Instance], Outcome]:
    """The step must decrease L by at least ARMIJO·η‖g‖² (rounding of L allowed for)."""

    def run(instance: Instance) -> Outcome:
        eta = float(instance.extra["eta"])
        grads = instance.truth.grads
        before = instance.truth.loss
        after = loss_value(instance.spec, update(instance.params, grads, eta), instance.X, instance.Y)
        squared_norm = float(sum(np.sum(g**2) for g in grads.values()))
        allowed = before - ARMIJO * eta * squared_norm + 64 * np.finfo(float).eps * max(1.0, abs(before))
        holds = bool(np.isfinite(after) and after <= allowed)
        return Outcome(holds, after, before, f"L: {before:.6g} → {after:.6g} with η = {eta:g}")

    return run


def descent_settings() -> tuple[Setting, ...]:
    return tuple(setting(eta=eta, loss=loss) for eta in LEARNING_RATES for loss in ("mse", "half_sse", "bce", "cce"))


def descent_instances(depths: Sequence[int]) -> Callable[[Setting], st.SearchStrategy[Instance]]:
    def instances(point: Setting) -> st.SearchStrategy[Instance]:
        loss = setting_value(point, "loss")
        outputs = [a for a, pair_loss in PAIRINGS if pair_loss == loss]

        @st.composite
        def acts(draw: st.DrawFn) -> tuple[str, ...]:
            depth = draw(st.sampled_from(list(depths)))
            hidden = [draw(st.sampled_from(ELEMENTWISE)) for _ in range(depth - 1)]
            return (*hidden, draw(st.sampled_from(outputs)))

        return networks(
            point, activations=acts(), loss=loss, extra={"eta": st.just(float(setting_value(point, "eta")))}
        )

    return instances

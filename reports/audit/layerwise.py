"""The article's §4 (layer by layer, a batch of m examples), §4.1–§4.4, as claims: quote, gloss, readings, grid.

As in §3's module, each factory's keyword arguments are the encodings it evaluates (defaults: the
article's formulas).  Column per example: a^[l] ``(n_l, m)``, W^[l] ``(n_l, n_{l-1})``, Y ``(n_L, m)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st

from reference_impl.activations import get_activation
from reference_impl.spec import Array
from reports.audit.checks import both, setting_value
from reports.audit.core import Claim, Instance, Outcome, Reading, Setting, compare, setting
from reports.audit.descent import Update, descent_check, descent_instances, descent_settings, update_layers
from reports.audit.instances import BATCHES, PAIRINGS, networks, pairing_label, parse_pairing, two_layer
from reports.audit.recursion import (
    RECURSION_SETTINGS,
    Recursion,
    recursion_4_3,
    recursion_4_3_other_parse,
    recursion_check,
    recursion_instances,
    symbolic_twin,
)

# --- §4.1 forward, layer by layer ----------------------------------------------------------------------

LayerForward = Callable[[Array, Array, Array], Array]  # (W, a_prev, b) -> z


def layer_forward(W: Array, a_prev: Array, b: Array) -> Array:
    return W @ a_prev + b


def claim_4_1(pre_activation: LayerForward = layer_forward) -> Claim:
    def instances(point: Setting) -> st.SearchStrategy[Instance]:
        shape = setting_value(point, "shape")
        output, loss = parse_pairing(setting_value(point, "pairing"))
        return two_layer(
            point, hidden="tanh", shape=shape, batch=setting_value(point, "m"), pairings=[(output, loss)]
        ) | (two_layer(point, hidden="relu", shape=shape, batch=setting_value(point, "m"), pairings=[(output, loss)]))

    def check(instance: Instance) -> Outcome:
        t, a = instance.truth, instance.X
        outcomes = []
        for layer, name in enumerate(instance.spec.activations, start=1):
            z = pre_activation(instance.params[f"W{layer}"], a, instance.params[f"b{layer}"])
            a = get_activation(name).function(z)
            outcomes += [compare(z, t.z[layer - 1]), compare(a, t.a[layer])]
        return both(*outcomes)

    return Claim(
        key="§4.1",
        title="z^[l] = W^[l] a^[l-1] + b^[l], a^[l] = g^[l](z^[l])",
        quote=("$$z^{[l]} = W^{[l]} a^{[l-1]} + b^{[l]}$$\n$$a^{[l]} = g^{[l]}(z^{[l]})$$"),
        gloss="Layer l maps the previous layer's output a^[l-1] through "
        "z^[l] = W^[l] a^[l-1] + b^[l], a^[l] = g^[l](z^[l]).",
        kind="formula",
        settings=tuple(
            setting(pairing=pairing_label(a, loss), shape=s, m=b)
            for a, loss in PAIRINGS
            for s in ("square", "non-square")
            for b in BATCHES
        ),
        instances=instances,
        readings=(Reading("column per example, b broadcast over the batch", "z = W @ a_prev + b; a = g(z)", check),),
        correction="",
    )


# --- §4.2 MSE with 1/m ---------------------------------------------------------------------------------


def mse_per_example_norm(Y: Array, Y_hat: Array) -> float:
    m = Y.shape[1]
    return float(sum(np.sum((Y[:, i] - Y_hat[:, i]) ** 2) for i in range(m)) / m)


def mse_entrywise_mean(Y: Array, Y_hat: Array) -> float:
    return float(np.mean((Y - Y_hat) ** 2))


def mse_per_unit(Y: Array, Y_hat: Array) -> Array | float:
    per_unit = np.sum((Y - Y_hat) ** 2, axis=1) / Y.shape[1]
    return float(per_unit[0]) if per_unit.size == 1 else per_unit


def claim_4_2(
    per_example: Callable[[Array, Array], float] = mse_per_example_norm,
    entrywise: Callable[[Array, Array], float] = mse_entrywise_mean,
    per_unit: Callable[[Array, Array], Array | float] = mse_per_unit,
) -> Claim:
    def instances(point: Setting) -> st.SearchStrategy[Instance]:
        n = int(setting_value(point, "n_L"))
        acts = st.sampled_from(["sigmoid", "tanh", "identity"]).map(lambda a: (a,))
        return networks(point, activations=acts, loss="mse", batch=setting_value(point, "m"), n_out=st.just(n))

    def check(reading: Callable[[Array, Array], Array | float]) -> Callable[[Instance], Outcome]:
        def run(instance: Instance) -> Outcome:
            # The oracle's loss is the suite's mse: the mean over the m samples of each sample's ‖y − ŷ‖².
            return compare(reading(instance.Y, instance.truth.a[-1]), instance.truth.loss)

        return run

    return Claim(
        key="§4.2",
        title="L = (1/m) Σ_i (y_i − ŷ_i)² for vector outputs",
        quote=(
            "$$L = \\frac{1}{m} \\sum_{i=1}^{m} (y_i - \\hat{y}_i)^2$$\n"
            "其中，$m$ 是样本数量，$y_i$ 是实际值，$\\hat{y}_i$ 是预测值。"
        ),
        gloss="L = (1/m) Σ_{i=1..m} (y_i − ŷ_i)², where m is the number of samples, "
        "y_i the target, ŷ_i the prediction.",
        kind="formula",
        settings=tuple(setting(n_L=n, m=b) for n in (1, 2, 3) for b in BATCHES),
        instances=instances,
        readings=(
            Reading(
                "(y_i − ŷ_i)² = ‖y_i − ŷ_i‖², sample i a column",
                "sum(np.sum((Y[:, i] - Yh[:, i])**2) for i) / m",
                check(per_example),
            ),
            Reading("every entry squared and averaged (np.mean)", "np.mean((Y - Yh) ** 2)", check(entrywise)),
            Reading(
                "(y_i − ŷ_i)² elementwise: one loss per output unit",
                "np.sum((Y - Yh) ** 2, axis=1) / m",
                check(per_unit),
            ),
        ),
        correction=(
            "For vector outputs write L = (1/m) Σ_i ‖y_i − ŷ_i‖² (sum over the n_L units, mean over the m samples); "
            "np.mean over all entries is smaller by a factor n_L, and so is its gradient."
        ),
    )


# --- §4.3 the error recursion -----------------------------------------------------------------------------


def claim_4_3(recursion: Recursion = recursion_4_3) -> Claim:
    return Claim(
        key="§4.3",
        title="δ^[l-1] = (W^[l])ᵀ δ^[l] ⊙ g'(z^[l-1])",
        quote=(
            "假设第 $l$ 层的误差为 $\\delta^{[l]}$，则上一层的误差 $\\delta^{[l-1]}$ 为：\n"
            "$$\\delta^{[l-1]} = (W^{[l]})^T \\delta^{[l]} \\odot g'^{[l-1]}(z^{[l-1]})$$\n"
            "其中，$\\odot$ 表示元素逐个相乘，$g'^{[l-1]}$ 是激活函数的导数。"
        ),
        gloss="If layer l's error is δ^[l], the previous layer's error is "
        "δ^[l-1] = (W^[l])ᵀ δ^[l] ⊙ g'^[l-1](z^[l-1]).",
        kind="formula",
        settings=RECURSION_SETTINGS,
        instances=recursion_instances,
        readings=(
            Reading(
                "((W^[l])ᵀ δ^[l]) ⊙ g'(z^[l-1])",
                "delta_prev = (W.T @ delta) * g_prime(z_prev)",
                recursion_check(recursion),
                symbolic=symbolic_twin(recursion),
            ),
            Reading(
                "(W^[l])ᵀ (δ^[l] ⊙ g'(z^[l-1])) — ⊙ binding tighter",
                "delta_prev = W.T @ (delta * g_prime(z_prev))",
                recursion_check(recursion_4_3_other_parse),
                literal=False,
                symbolic=symbolic_twin(recursion_4_3_other_parse),
            ),
        ),
        correction="δ^[l-1] = ((W^[l])ᵀ δ^[l]) ⊙ g'^[l-1](z^[l-1]) for elementwise g (the matrix product first).",
    )


# --- §4.4 gradient descent ------------------------------------------------------------------------------


def claim_4_4(update: Update = update_layers) -> Claim:
    return Claim(
        key="§4.4",
        title="the layer-wise update lowers the loss",
        quote=(
            "假设学习率为 $\\eta$，则权重和偏置的更新公式为：\n"
            "$$W^{[l]} = W^{[l]} - \\eta \\cdot \\frac{\\partial L}{\\partial W^{[l]}}$$\n"
            "$$b^{[l]} = b^{[l]} - \\eta \\cdot \\frac{\\partial L}{\\partial b^{[l]}}$$"
        ),
        gloss="Gradient descent minimises the loss by iterating "
        "W^[l] ← W^[l] − η ∂L/∂W^[l], b^[l] ← b^[l] − η ∂L/∂b^[l].",
        kind="formula",
        settings=descent_settings(),
        instances=descent_instances((2, 3)),
        readings=(
            Reading(
                "one step over every layer decreases L (Armijo c = 1e-4)",
                "for l: W[l] -= eta * dW[l]; b[l] -= eta * db[l]",
                descent_check(update),
            ),
        ),
        correction="The update is a descent step only for a small enough η; the article gives no condition on η.",
    )

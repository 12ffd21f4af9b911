"""The article's §3, the single-neuron walk-through (§3.1–§3.5), as claims: quote, gloss, readings, grid.

Each claim is built by a factory whose keyword arguments are the encodings it evaluates (defaults: the
article's formulas, literally).  Passing a different encoding builds the same claim around another
formula — which is how the tests prove a verdict is computed, not written down.

Array conventions in the encodings: column per example, W^[l] ``(n_l, n_{l-1})``, δ ``(n_l, m)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from hypothesis import strategies as st

from reference_impl.activations import get_activation
from reference_impl.spec import Array
from reports.audit.checks import both, elementwise_derivative, setting_value
from reports.audit.core import Claim, Instance, Outcome, Reading, Setting, compare, setting
from reports.audit.descent import Update, descent_check, descent_instances, descent_settings, update_each_parameter
from reports.audit.instances import ELEMENTWISE, PAIRINGS, networks, pairing_label, parse_pairing
from reports.audit.recursion import (
    RECURSION_SETTINGS,
    Recursion,
    recursion_check,
    recursion_instances,
    recursion_no_transpose,
    recursion_rows,
    recursion_scalar,
    recursion_written_order,
    symbolic_twin,
)
from reports.audit.symbolic import scalar_output_rule

# --- §3.1 forward, one layer ---------------------------------------------------------------------------

Forward = Callable[[Array, Array, Array, Callable[[Array], Array]], tuple[Array, Array]]


def forward_scalar(w: Array, x: Array, b: Array, f: Callable[[Array], Array]) -> tuple[Array, Array]:
    z = w * x + b
    return z, f(z)


def forward_matrix(w: Array, x: Array, b: Array, f: Callable[[Array], Array]) -> tuple[Array, Array]:
    z = w @ x + b
    return z, f(z)


def claim_3_1(scalar: Forward = forward_scalar, matrix: Forward = forward_matrix) -> Claim:
    def instances(point: Setting) -> st.SearchStrategy[Instance]:
        act = setting_value(point, "activation")
        return networks(point, activations=st.just((act,)), loss="mse", shape=setting_value(point, "units"))

    def check(encoding: Forward) -> Callable[[Instance], Outcome]:
        def run(instance: Instance) -> Outcome:
            t, act = instance.truth, get_activation(instance.spec.activations[0]).function
            z, a = encoding(instance.params["W1"], instance.X, instance.params["b1"], act)
            return both(compare(z, t.z[0]), compare(a, t.a[1]))

        return run

    return Claim(
        key="§3.1",
        title="one layer's forward pass",
        quote=(
            "假设某一层的输入为 $x$，权重为 $w$，偏置为 $b$，激活函数为 $f$，则该层输出为：\n"
            "$$z = wx + b$$\n$$a = f(z)$$"
        ),
        gloss="For a layer with input x, weight w, bias b and activation f: z = wx + b, a = f(z).",
        kind="formula",
        settings=tuple(setting(activation=a, units=u) for a in ELEMENTWISE for u in ("scalar", "any")),
        instances=instances,
        readings=(
            Reading(
                "scalars (one unit in, one out)",
                "z = w * x + b; a = f(z)",
                check(scalar),
                applies=lambda p: setting_value(p, "units") == "scalar",
            ),
            Reading(
                "a layer: w the weight matrix (n_out × n_in), x a column per example",
                "z = W @ x + b; a = f(z)",
                check(matrix),
            ),
        ),
        correction="",
    )


# --- §3.2 the loss called MSE --------------------------------------------------------------------------

LossOfErrors = Callable[[Array, Array], float]


def half_sum_of_squares(y: Array, y_hat: Array) -> float:
    return float(0.5 * np.sum((y - y_hat) ** 2))


def claim_3_2(loss: LossOfErrors = half_sum_of_squares) -> Claim:
    def instances(point: Setting) -> st.SearchStrategy[Instance]:
        n = int(setting_value(point, "n"))
        # One example whose n output units are the n terms of the sum: i runs over the output nodes.
        widths_ok = st.sampled_from(["sigmoid", "tanh", "softplus"]).map(lambda a: (a,))
        return networks(point, activations=widths_ok, loss="mse", batch="1", n_out=st.just(n))

    def check(instance: Instance) -> Outcome:
        y_hat = instance.truth.a[-1]
        mean_squared_error = torch.nn.functional.mse_loss(
            torch.tensor(y_hat), torch.tensor(instance.Y), reduction="mean"
        ).item()
        return compare(loss(instance.Y, y_hat), mean_squared_error, note=f"n = {y_hat.size} terms")

    return Claim(
        key="§3.2",
        title="the mean squared error is ½Σ(y − ŷ)²",
        quote="例如，对于均方误差损失函数：\n$$L = \\frac{1}{2} \\sum_{i=1}^{n} (y_i - \\hat{y}_i)^2$$",
        gloss="For example, for the mean-squared-error loss: L = ½ Σ_{i=1..n} (y_i − ŷ_i)².",
        kind="formula",
        settings=tuple(setting(n=n) for n in (1, 2, 3)),
        instances=instances,
        readings=(
            Reading(
                "½·sum of the n squared errors, as the mean of those n errors (torch mse_loss, mean)",
                "L = 0.5 * np.sum((y - y_hat) ** 2)",
                check,
            ),
        ),
        correction=(
            "½Σ(y − ŷ)² is half the sum of squared errors, not their mean; MSE = (1/n) Σ (y_i − ŷ_i)². "
            "The ½ is a convention that makes ∂L/∂ŷ = ŷ − y; it equals the mean only when n = 2."
        ),
    )


# --- §3.3 the output layer's derivative ----------------------------------------------------------------

OutputRule = Callable[[Array, Array], Array]  # (∂L/∂ŷ, f'(z)) -> the claimed quantity


def article_output_rule(dl_dyhat: Array, f_prime: Array) -> Array:
    return dl_dyhat * f_prime


def claim_3_3(rule: OutputRule = article_output_rule, names: str = "grad_a") -> Claim:
    """``names``: which oracle quantity the left side is compared with: ``grad_a`` (∂L/∂a) or ``delta``."""

    def instances(point: Setting) -> st.SearchStrategy[Instance]:
        act, loss = parse_pairing(setting_value(point, "pairing"))
        return networks(point, activations=st.just((act,)), loss=loss)

    def check(target: str) -> Callable[[Instance], Outcome]:
        def run(instance: Instance) -> Outcome:
            t = instance.truth
            f_prime = elementwise_derivative(instance.spec.activations[-1])(t.z[-1])
            expected = t.grad_a[-1] if target == "grad_a" else t.delta[-1]
            return compare(rule(t.grad_a[-1], f_prime), expected)

        return run

    literal_name = {"grad_a": "∂L/∂a (as written; a = ŷ is the output)", "delta": "δ = ∂L/∂z"}[names]
    return Claim(
        key="§3.3",
        title="∂L/∂a = ∂L/∂ŷ · f'(z) at the output",
        quote=(
            "对于输出层的每个节点，计算损失函数对其输出的偏导数。假设输出层的激活函数为 $f$，则偏导数为：\n"
            "$$\\frac{\\partial L}{\\partial a} = \\frac{\\partial L}{\\partial \\hat{y}} \\cdot f'(z)$$"
        ),
        gloss="For each output node, the derivative of the loss with respect to its output a is ∂L/∂ŷ · f'(z).",
        kind="formula",
        settings=tuple(setting(pairing=pairing_label(a, loss)) for a, loss in PAIRINGS),
        instances=instances,
        readings=(
            Reading(
                literal_name,
                "dL_da = dL_dyhat * f_prime(z)",
                check(names),
                symbolic=lambda: scalar_output_rule(names_dl_da=names == "grad_a"),
            ),
            Reading(
                "δ = ∂L/∂z (what the formula computes)",
                "delta = dL_dyhat * f_prime(z)",
                check("delta"),
                literal=False,
                symbolic=lambda: scalar_output_rule(names_dl_da=False),
            ),
        ),
        correction=(
            "δ^[L] = ∂L/∂z^[L] = ∂L/∂ŷ ⊙ f'(z^[L]) for an elementwise f (∂L/∂a^[L] is ∂L/∂ŷ itself, since a^[L] = ŷ). "
            "For softmax, f'(z) is a Jacobian: δ = J_f(z)ᵀ ∂L/∂ŷ."
        ),
    )


# --- §3.4 the error recursion -----------------------------------------------------------------------------


def claim_3_4(
    scalar: Recursion = recursion_scalar,
    rows: Recursion = recursion_rows,
    written_order: Recursion = recursion_written_order,
    no_transpose: Recursion = recursion_no_transpose,
) -> Claim:
    return Claim(
        key="§3.4",
        title="δ_prev = δ · w · f'(z_prev)",
        quote=(
            "对于某一层的误差 $\\delta$，其与上一层的误差 $\\delta_{prev}$ 的关系为：\n"
            "$$\\delta_{prev} = \\delta \\cdot w \\cdot f'(z_{prev})$$"
        ),
        gloss="The error δ of a layer and the error δ_prev of the layer before it are related by "
        "δ_prev = δ · w · f'(z_prev).",
        kind="formula",
        settings=RECURSION_SETTINGS,
        instances=recursion_instances,
        readings=(
            Reading(
                "scalars: one unit per layer",
                "delta_prev = delta * w * f_prime(z_prev)",
                recursion_check(scalar),
                applies=lambda p: setting_value(p, "shape") == "scalar",
            ),
            Reading(
                "row vectors (one example per row), δ·W in the written order",
                "delta_prev_rows = (delta_rows @ W) * f_prime_rows",
                recursion_check(rows),
            ),
            Reading(
                "column vectors, δ·W in the written order",
                "delta_prev = np.dot(delta, W) * f_prime(z_prev)",
                recursion_check(written_order),
                symbolic=symbolic_twin(written_order),
            ),
            Reading(
                "column vectors, W·δ without a transpose",
                "delta_prev = np.dot(W, delta) * f_prime(z_prev)",
                recursion_check(no_transpose),
                symbolic=symbolic_twin(no_transpose),
            ),
        ),
        correction=(
            "With column vectors and W^[l] of shape (n_l, n_{l-1}): δ^[l-1] = (W^[l])ᵀ δ^[l] ⊙ f'(z^[l-1]) "
            "(as §4.3 writes it); the row-vector form δ_prev = (δ W) ⊙ f'(z_prev) is the same thing transposed."
        ),
    )


# --- §3.5 gradient descent ------------------------------------------------------------------------------


def claim_3_5(update: Update = update_each_parameter) -> Claim:
    return Claim(
        key="§3.5",
        title="the gradient-descent update lowers the loss",
        quote=(
            "根据计算出的误差，使用梯度下降法更新每个权重和偏置。假设学习率为 $\\eta$，则更新公式为：\n"
            "$$w = w - \\eta \\cdot \\frac{\\partial L}{\\partial w}$$\n"
            "$$b = b - \\eta \\cdot \\frac{\\partial L}{\\partial b}$$"
        ),
        gloss="Update every weight and bias by gradient descent with learning rate η: "
        "w ← w − η ∂L/∂w, b ← b − η ∂L/∂b.",
        kind="formula",
        settings=descent_settings(),
        instances=descent_instances((1, 2)),
        readings=(
            Reading(
                "one step decreases L (sufficient decrease, Armijo c = 1e-4)",
                "L(w − η ∂L/∂w, b − η ∂L/∂b) ≤ L(w, b) − 1e-4·η‖∇L‖²",
                descent_check(update),
            ),
        ),
        correction="A gradient step decreases L only for a small enough η (below ~2/curvature); "
        "the article gives no condition on η.",
    )

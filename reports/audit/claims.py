"""The article's statements, §3.1–§4.4, as claims: quote, gloss, executable readings, search grid.

Each claim is built by a factory whose keyword arguments are the encodings it evaluates (defaults: the
article's formulas, literally).  Passing a different encoding builds the same claim around another
formula — which is how the tests prove a verdict is computed, not written down.  The §5 listings live
in ``reports.audit.listings``; :func:`all_claims` returns every claim in article order.

Array conventions in the encodings: column per example, W^[l] ``(n_l, n_{l-1})``, δ ``(n_l, m)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from hypothesis import strategies as st

from reference_impl.activations import get_activation
from reference_impl.spec import Array, Params
from reports.audit.core import (
    Claim,
    Instance,
    Outcome,
    Reading,
    Setting,
    SymbolicResult,
    compare,
    setting,
)
from reports.audit.instances import (
    BATCHES,
    ELEMENTWISE,
    PAIRINGS,
    SHAPES,
    networks,
    pairing_label,
    parse_pairing,
    two_layer,
)
from reports.audit.symbolic import MatrixFormula, recursion_rule, scalar_output_rule
from reports.audit.truth import loss_value

Derivative = Callable[[Array], Array]


def elementwise_derivative(name: str) -> Derivative:
    """f'(z) read elementwise; for softmax that is the Jacobian's diagonal ∂a_i/∂z_i = a_i(1 − a_i)."""
    derivative = get_activation(name).derivative
    if derivative is not None:
        return derivative
    softmax = get_activation(name).function
    return lambda z: softmax(z) * (1.0 - softmax(z))


def both(*outcomes: Outcome) -> Outcome:
    """Several quantities of one claim: it holds only if every one does."""
    notes = "; ".join(o.note for o in outcomes if o.note)
    return Outcome(all(o.holds for o in outcomes), [o.claimed for o in outcomes], [o.expected for o in outcomes], notes)


def _dim(point: Setting, name: str) -> str:
    return dict(point)[name]


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
        act = _dim(point, "activation")
        return networks(point, activations=st.just((act,)), loss="mse", shape=_dim(point, "units"))

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
                applies=lambda p: _dim(p, "units") == "scalar",
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
        n = int(_dim(point, "n"))
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
        act, loss = parse_pairing(_dim(point, "pairing"))
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


# --- §3.4 and §4.3 the error recursion -----------------------------------------------------------------

Recursion = Callable[[Array, Array, Array], Array]  # (δ, W, f'(z_prev)) -> δ_prev, column convention


def recursion_scalar(delta: Array, w: Array, f_prime: Array) -> Array:
    return delta * w * f_prime


def recursion_rows(delta: Array, w: Array, f_prime: Array) -> Array:
    # One example per row: δ (m, n_l) · W (n_l, n_{l-1}) ⊙ f' (m, n_{l-1}); transposed back to columns.
    return ((delta.T @ w) * f_prime.T).T


def recursion_written_order(delta: Array, w: Array, f_prime: Array) -> Array:
    return np.dot(delta, w) * f_prime


def recursion_no_transpose(delta: Array, w: Array, f_prime: Array) -> Array:
    return np.dot(w, delta) * f_prime


def recursion_4_3(delta: Array, w: Array, f_prime: Array) -> Array:
    return (w.T @ delta) * f_prime


def recursion_4_3_other_parse(delta: Array, w: Array, f_prime: Array) -> Array:
    return w.T @ (delta * f_prime)


RECURSION_SETTINGS: tuple[Setting, ...] = tuple(
    setting(hidden=h, shape=s, m=b) for h in ELEMENTWISE for s in SHAPES for b in BATCHES
)


def _recursion_instances(point: Setting) -> st.SearchStrategy[Instance]:
    shape = _dim(point, "shape")
    pairings = [p for p in PAIRINGS if not (shape == "scalar" and p[0] == "softmax")]
    return two_layer(point, hidden=_dim(point, "hidden"), shape=shape, batch=_dim(point, "m"), pairings=pairings)


def _recursion_check(recursion: Recursion, against: Recursion | None = None) -> Callable[[Instance], Outcome]:
    """δ^[1] from δ^[2] by ``recursion``, against the oracle's δ^[1] (or against another formula)."""

    def run(instance: Instance) -> Outcome:
        t = instance.truth
        f_prime = elementwise_derivative(instance.spec.activations[0])(t.z[0])
        W2 = instance.params["W2"]
        expected = t.delta[0] if against is None else against(t.delta[1], W2, f_prime)
        return compare(recursion(t.delta[1], W2, f_prime), expected)

    return run


_SYMBOLIC_FORMS: dict[Recursion, tuple[MatrixFormula, str]] = {
    recursion_4_3: (lambda W, d, gp: (W.T * d).multiply_elementwise(gp), "((W)ᵀδ) ⊙ g'"),
    recursion_4_3_other_parse: (lambda W, d, gp: W.T * d.multiply_elementwise(gp), "(W)ᵀ(δ ⊙ g')"),
    recursion_no_transpose: (lambda W, d, gp: (W * d).multiply_elementwise(gp), "W δ ⊙ g'"),
    recursion_written_order: (lambda W, d, gp: (d * W).multiply_elementwise(gp), "δ·W ⊙ g'"),
}


def _symbolic(recursion: Recursion) -> Callable[[], SymbolicResult] | None:
    """The SymPy twin of a NumPy recursion (SymPy's * is the matrix product); None for any other encoding."""
    if recursion not in _SYMBOLIC_FORMS:
        return None
    formula, statement = _SYMBOLIC_FORMS[recursion]
    return lambda: recursion_rule(formula, statement=statement)


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
        instances=_recursion_instances,
        readings=(
            Reading(
                "scalars: one unit per layer",
                "delta_prev = delta * w * f_prime(z_prev)",
                _recursion_check(scalar),
                applies=lambda p: _dim(p, "shape") == "scalar",
            ),
            Reading(
                "row vectors (one example per row), δ·W in the written order",
                "delta_prev_rows = (delta_rows @ W) * f_prime_rows",
                _recursion_check(rows),
            ),
            Reading(
                "column vectors, δ·W in the written order",
                "delta_prev = np.dot(delta, W) * f_prime(z_prev)",
                _recursion_check(written_order),
                symbolic=_symbolic(written_order),
            ),
            Reading(
                "column vectors, W·δ without a transpose",
                "delta_prev = np.dot(W, delta) * f_prime(z_prev)",
                _recursion_check(no_transpose),
                symbolic=_symbolic(no_transpose),
            ),
        ),
        correction=(
            "With column vectors and W^[l] of shape (n_l, n_{l-1}): δ^[l-1] = (W^[l])ᵀ δ^[l] ⊙ f'(z^[l-1]) "
            "(as §4.3 writes it); the row-vector form δ_prev = (δ W) ⊙ f'(z_prev) is the same thing transposed."
        ),
    )


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
        instances=_recursion_instances,
        readings=(
            Reading(
                "((W^[l])ᵀ δ^[l]) ⊙ g'(z^[l-1])",
                "delta_prev = (W.T @ delta) * g_prime(z_prev)",
                _recursion_check(recursion),
                symbolic=_symbolic(recursion),
            ),
            Reading(
                "(W^[l])ᵀ (δ^[l] ⊙ g'(z^[l-1])) — ⊙ binding tighter",
                "delta_prev = W.T @ (delta * g_prime(z_prev))",
                _recursion_check(recursion_4_3_other_parse),
                literal=False,
                symbolic=_symbolic(recursion_4_3_other_parse),
            ),
        ),
        correction="δ^[l-1] = ((W^[l])ᵀ δ^[l]) ⊙ g'^[l-1](z^[l-1]) for elementwise g (the matrix product first).",
    )


def consistency_3_4_vs_4_3(
    written_order: Recursion = recursion_written_order, no_transpose: Recursion = recursion_no_transpose
) -> Claim:
    return Claim(
        key="§3.4 vs §4.3",
        title="§3.4 and §4.3 state the same recursion",
        quote="$$\\delta_{prev} = \\delta \\cdot w \\cdot f'(z_{prev})$$  vs  "
        "$$\\delta^{[l-1]} = (W^{[l]})^T \\delta^{[l]} \\odot g'^{[l-1]}(z^{[l-1]})$$",
        gloss="§3.4 has no transpose and puts δ first; §4.3 transposes W and puts it first. Same δ_prev?",
        kind="consistency",
        settings=RECURSION_SETTINGS,
        instances=_recursion_instances,
        readings=(
            Reading(
                "§3.4 in §4.3's column notation, written order (δ·W)",
                "np.dot(delta, W) * f' == (W.T @ delta) * f'",
                _recursion_check(written_order, against=recursion_4_3),
            ),
            Reading(
                "§3.4 in §4.3's column notation, W·δ",
                "np.dot(W, delta) * f' == (W.T @ delta) * f'",
                _recursion_check(no_transpose, against=recursion_4_3),
            ),
        ),
        correction="They agree only when read with row vectors (§3.4's δ·w is δᵀW); in §4.3's column notation "
        "§3.4 must read δ_prev = Wᵀδ ⊙ f'(z_prev).",
    )


# --- §3.5 and §4.4 gradient descent --------------------------------------------------------------------

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


def _descent_check(update: Update) -> Callable[[Instance], Outcome]:
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


def _descent_settings() -> tuple[Setting, ...]:
    return tuple(setting(eta=eta, loss=loss) for eta in LEARNING_RATES for loss in ("mse", "half_sse", "bce", "cce"))


def _descent_instances(depths: Sequence[int]) -> Callable[[Setting], st.SearchStrategy[Instance]]:
    def instances(point: Setting) -> st.SearchStrategy[Instance]:
        loss = _dim(point, "loss")
        outputs = [a for a, pair_loss in PAIRINGS if pair_loss == loss]

        @st.composite
        def acts(draw: st.DrawFn) -> tuple[str, ...]:
            depth = draw(st.sampled_from(list(depths)))
            hidden = [draw(st.sampled_from(ELEMENTWISE)) for _ in range(depth - 1)]
            return (*hidden, draw(st.sampled_from(outputs)))

        return networks(point, activations=acts(), loss=loss, extra={"eta": st.just(float(_dim(point, "eta")))})

    return instances


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
        settings=_descent_settings(),
        instances=_descent_instances((1, 2)),
        readings=(
            Reading(
                "one step decreases L (sufficient decrease, Armijo c = 1e-4)",
                "L(w − η ∂L/∂w, b − η ∂L/∂b) ≤ L(w, b) − 1e-4·η‖∇L‖²",
                _descent_check(update),
            ),
        ),
        correction="A gradient step decreases L only for a small enough η (below ~2/curvature); "
        "the article gives no condition on η.",
    )


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
        settings=_descent_settings(),
        instances=_descent_instances((2, 3)),
        readings=(
            Reading(
                "one step over every layer decreases L (Armijo c = 1e-4)",
                "for l: W[l] -= eta * dW[l]; b[l] -= eta * db[l]",
                _descent_check(update),
            ),
        ),
        correction="The update is a descent step only for a small enough η; the article gives no condition on η.",
    )


# --- §4.1 forward, layer by layer ----------------------------------------------------------------------

LayerForward = Callable[[Array, Array, Array], Array]  # (W, a_prev, b) -> z


def layer_forward(W: Array, a_prev: Array, b: Array) -> Array:
    return W @ a_prev + b


def claim_4_1(pre_activation: LayerForward = layer_forward) -> Claim:
    def instances(point: Setting) -> st.SearchStrategy[Instance]:
        shape = _dim(point, "shape")
        output, loss = parse_pairing(_dim(point, "pairing"))
        return two_layer(point, hidden="tanh", shape=shape, batch=_dim(point, "m"), pairings=[(output, loss)]) | (
            two_layer(point, hidden="relu", shape=shape, batch=_dim(point, "m"), pairings=[(output, loss)])
        )

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
        n = int(_dim(point, "n_L"))
        acts = st.sampled_from(["sigmoid", "tanh", "identity"]).map(lambda a: (a,))
        return networks(point, activations=acts, loss="mse", batch=_dim(point, "m"), n_out=st.just(n))

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


# --- consistency: §3.2's loss vs §4.2's -----------------------------------------------------------------


def consistency_3_2_vs_4_2(
    loss_3_2: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    loss_4_2: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> Claim:
    first = loss_3_2 or (lambda y, yh: 0.5 * torch.sum((y - yh) ** 2))
    second = loss_4_2 or (lambda y, yh: torch.sum((y - yh) ** 2) / y.shape[1])

    def instances(point: Setting) -> st.SearchStrategy[Instance]:
        acts = st.sampled_from(["sigmoid", "tanh"]).map(lambda a: (a,))
        return networks(point, activations=acts, loss="half_sse", batch=_dim(point, "m"))

    def gradient(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], Y: Array, Y_hat: Array) -> Array:
        y_hat = torch.tensor(Y_hat, requires_grad=True)
        (grad,) = torch.autograd.grad(loss(torch.tensor(Y), y_hat), y_hat)
        return np.asarray(grad.numpy(), dtype=np.float64)

    def check(instance: Instance) -> Outcome:
        Y_hat = instance.truth.a[-1]
        g1, g2 = gradient(first, instance.Y, Y_hat), gradient(second, instance.Y, Y_hat)
        nonzero = np.abs(g2) > 0
        ratio = float(np.median(g1[nonzero] / g2[nonzero])) if np.any(nonzero) else float("nan")
        return compare(g1, g2, note=f"∇L(§3.2) / ∇L(§4.2) = {ratio:.6g} at m = {instance.m}")

    return Claim(
        key="§3.2 vs §4.2",
        title="§3.2 and §4.2 define the same MSE (and gradient)",
        quote="$$L = \\frac{1}{2} \\sum_{i=1}^{n} (y_i - \\hat{y}_i)^2$$  vs  "
        "$$L = \\frac{1}{m} \\sum_{i=1}^{m} (y_i - \\hat{y}_i)^2$$",
        gloss="Both sections call their formula the mean squared error; §3.2 has ½ and no 1/m, §4.2 has 1/m.",
        kind="consistency",
        settings=tuple(setting(m=m) for m in (1, 2, 3)),
        instances=instances,
        readings=(
            Reading("∂L/∂ŷ of ½Σ(y−ŷ)² equals ∂L/∂ŷ of (1/m)Σ‖y−ŷ‖²", "grad(½Σ(y−ŷ)²) == grad((1/m)Σ(y−ŷ)²)", check),
        ),
        correction="The two losses differ by a factor m/2 (§3.2 = (m/2)·§4.2), and so do their gradients: a learning "
        "rate tuned for one is m/2 times too large or too small for the other. Pick one normalisation.",
    )


# --- registry ------------------------------------------------------------------------------------------

UNCHECKED: tuple[tuple[str, str], ...] = (
    ("§2.1", "describes the layered structure in words; §3.1/§4.1 make it checkable"),
    ("§2.2", "names MSE and cross-entropy as common losses; §3.2/§4.2 give formulas, audited there"),
    ("§2.3", "says updating by the partial derivatives minimises L; audited as the descent claims §3.5/§4.4"),
)


def formula_claims() -> list[Claim]:
    return [
        claim_3_1(),
        claim_3_2(),
        claim_3_3(),
        claim_3_4(),
        claim_3_5(),
        claim_4_1(),
        claim_4_2(),
        claim_4_3(),
        claim_4_4(),
        consistency_3_2_vs_4_2(),
        consistency_3_4_vs_4_3(),
    ]


def all_claims() -> list[Claim]:
    from reports.audit.listings import listing_claims

    return [*formula_claims(), *listing_claims()]


__all__ = ["UNCHECKED", "all_claims", "formula_claims"]

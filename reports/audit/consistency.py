"""Where §3 and §4 state the same thing twice: do the two statements agree (the loss, the recursion)?"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from hypothesis import strategies as st

from reference_impl.spec import Array
from reports.audit.checks import setting_value
from reports.audit.core import Claim, Instance, Outcome, Reading, Setting, compare, setting
from reports.audit.instances import networks
from reports.audit.recursion import (
    RECURSION_SETTINGS,
    Recursion,
    recursion_4_3,
    recursion_check,
    recursion_instances,
    recursion_no_transpose,
    recursion_written_order,
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
        return networks(point, activations=acts, loss="half_sse", batch=setting_value(point, "m"))

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


# --- consistency: §3.4's recursion vs §4.3's ----------------------------------------------------------------


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
        instances=recursion_instances,
        readings=(
            Reading(
                "§3.4 in §4.3's column notation, written order (δ·W)",
                "np.dot(delta, W) * f' == (W.T @ delta) * f'",
                recursion_check(written_order, against=recursion_4_3),
            ),
            Reading(
                "§3.4 in §4.3's column notation, W·δ",
                "np.dot(W, delta) * f' == (W.T @ delta) * f'",
                recursion_check(no_transpose, against=recursion_4_3),
            ),
        ),
        correction="They agree only when read with row vectors (§3.4's δ·w is δᵀW); in §4.3's column notation "
        "§3.4 must read δ_prev = Wᵀδ ⊙ f'(z_prev).",
    )

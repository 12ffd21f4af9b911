"""Ground truth for the article audit: every intermediate of one network, differentiated by torch autograd.

The audit needs more than parameter gradients: ∂L/∂a^[l] (what the article's §3.3 names), δ^[l] = ∂L/∂z^[l]
(what it means) and the per-example error ∂(Σ_i ℓ_i)/∂z^[L] (what the §5.2 listing's ``dz`` stands for).
Losses are written *unfused*, as functions of the predictions ŷ = a^[L], so that ∂L/∂ŷ exists for the
cross-entropies too.  Nothing here imports the reference implementation.

Shapes: ``z[l-1]``, ``a[l]``, ``grad_a[l-1]``, ``delta[l-1]`` are ``(n_l, m)`` (``a[0]`` is X ``(n_0, m)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from oracles.torch_autograd import TORCH_ACTIVATIONS
from reference_impl.spec import Array, Params, Spec

Tensor = torch.Tensor


def summed_loss(loss: str, A: Tensor, Y: Tensor) -> Tensor:
    """Σ_i ℓ_i over the batch: the suite's loss *before* any 1/m (``half_sse`` has none to begin with)."""
    if loss in ("mse", "half_sse"):
        squares = torch.sum((Y - A) ** 2)
        return squares if loss == "mse" else 0.5 * squares
    if loss == "bce":
        return -torch.sum(torch.special.xlogy(Y, A) + torch.special.xlogy(1.0 - Y, 1.0 - A))
    if loss == "cce":
        return -torch.sum(torch.special.xlogy(Y, A))
    raise KeyError(loss)


def batch_normaliser(loss: str, m: int) -> float:
    """L = Σ_i ℓ_i / normaliser: the suite's mse, bce and cce are means over the batch, half_sse is not."""
    return 1.0 if loss == "half_sse" else float(m)


@dataclass(frozen=True)
class Truth:
    """Every intermediate of one forward/backward pass, as float64 NumPy arrays."""

    z: tuple[Array, ...]  # z^[1..L]
    a: tuple[Array, ...]  # a^[0..L], a^[0] = X
    loss: float
    grad_a: tuple[Array, ...]  # ∂L/∂a^[1..L]; the last one is ∂L/∂ŷ
    delta: tuple[Array, ...]  # δ^[1..L] = ∂L/∂z^[l]
    per_example_delta: Array  # ∂(Σ_i ℓ_i)/∂z^[L] = normaliser · δ^[L]
    grads: Params


def truth(spec: Spec, params: Mapping[str, Array], X: Array, Y: Array) -> Truth:
    tensors = {k: torch.tensor(np.asarray(v, np.float64), requires_grad=True) for k, v in params.items()}
    a: Tensor = torch.tensor(np.asarray(X, np.float64))
    Y_t = torch.tensor(np.asarray(Y, np.float64))
    zs: list[Tensor] = []
    acts: list[Tensor] = [a]
    for layer, name in enumerate(spec.activations, start=1):
        z = tensors[f"W{layer}"] @ a + tensors[f"b{layer}"]
        a = TORCH_ACTIVATIONS[name](z)
        if a is z:  # identity: a^[l] needs its own node, or retain_grad would count z^[l]'s gradient twice
            a = z.clone()
        zs.append(z)
        acts.append(a)
    total = summed_loss(spec.loss, acts[-1], Y_t)
    value = total / batch_normaliser(spec.loss, int(Y.shape[1]))
    # Before retain_grad: its hooks would also fire during this call and add into .grad.
    per_example = torch.autograd.grad(total, zs[-1], retain_graph=True)[0]
    for t in (*zs, *acts[1:]):
        t.retain_grad()
    value.backward()

    def numpy(t: Tensor | None, like: Tensor) -> Array:
        if t is None:  # not reached by the loss: exactly zero
            return np.zeros(tuple(like.shape))
        return np.asarray(t.detach().numpy(), dtype=np.float64)

    return Truth(
        z=tuple(numpy(z, z) for z in zs),
        a=tuple(numpy(t, t) for t in acts),
        loss=float(value.item()),
        grad_a=tuple(numpy(t.grad, t) for t in acts[1:]),
        delta=tuple(numpy(z.grad, z) for z in zs),
        per_example_delta=numpy(per_example, zs[-1]),
        grads={k: numpy(t.grad, t) for k, t in tensors.items()},
    )


def loss_value(spec: Spec, params: Mapping[str, Array], X: Array, Y: Array) -> float:
    """L(θ) alone, in the same unfused torch definitions (used for the descent claims)."""
    with torch.no_grad():
        a: Tensor = torch.tensor(np.asarray(X, np.float64))
        for layer, name in enumerate(spec.activations, start=1):
            W = torch.tensor(np.asarray(params[f"W{layer}"], np.float64))
            b = torch.tensor(np.asarray(params[f"b{layer}"], np.float64))
            a = TORCH_ACTIVATIONS[name](W @ a + b)
        total = summed_loss(spec.loss, a, torch.tensor(np.asarray(Y, np.float64)))
        return float(total.item()) / batch_normaliser(spec.loss, int(Y.shape[1]))

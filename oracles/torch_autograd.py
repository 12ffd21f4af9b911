"""PyTorch autograd oracle: an independent float64 forward in torch ops, differentiated by autograd.

Nothing here imports the reference's activations or losses; the only shared knowledge is the spec's
names and the suite's loss definitions.  δ^[l] comes from autograd on the pre-activations z^[l].
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from oracles.registry import Oracle, OracleOutput, register
from reference_impl.spec import Array, Params, Spec, as_spec

Tensor = torch.Tensor


def _softplus_exact(z: Tensor) -> Tensor:
    # F.softplus switches to the identity above its threshold (an error of ~2e-9 at z = 20);
    # logaddexp(z, 0) = log(1 + e^z) is exact everywhere and differentiates to sigmoid.
    return torch.logaddexp(z, torch.zeros_like(z))


def _sigmoid_accurate(z: Tensor) -> Tensor:
    # torch.sigmoid's backward is y(1 − y), which cancels once y rounds near 1 (relative error ~eps·e^z).
    # σ(z) = exp(−log(1 + e^{−z})): autograd then yields σ(z)·σ(−z), each factor computed directly.
    return torch.exp(-torch.logaddexp(torch.zeros_like(z), -z))


def _tanh_half(x: Tensor) -> Tensor:
    """tanh on x ≥ 0 as (1 − e^{−2x})/(1 + e^{−2x}), with the numerator chosen per range.

    Near 0 the numerator must be −expm1(−2x) for an accurate value; away from 0 it must be 1 − e^{−2x},
    because torch differentiates expm1 as (result + 1), which cancels to 0 as the result tends to −1.
    """
    e = torch.exp(-2.0 * x)
    numerator = torch.where(x < 0.5, -torch.expm1(-2.0 * x), 1.0 - e)
    return numerator / (1.0 + e)


def _tanh_accurate(z: Tensor) -> Tensor:
    # torch.tanh's backward is 1 − y², which cancels as y → ±1 (relative error ~eps/sech²).  Through this
    # formulation autograd sums positive terms only (4e^{−2x}/(1 + e^{−2x})² in effect).  The clamps keep
    # the branch that torch.where discards finite, so its zero gradient cannot turn into inf·0 = NaN.
    positive = _tanh_half(z.clamp(min=0.0))
    negative = -_tanh_half((-z).clamp(min=0.0))
    return torch.where(z >= 0, positive, negative)


# Column per example: z is (n, m); softmax normalises over units, i.e. dim 0.
TORCH_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": lambda z: z,
    "sigmoid": _sigmoid_accurate,
    "tanh": _tanh_accurate,
    "relu": torch.relu,  # autograd gives relu'(0) = 0, the suite's convention
    "leaky_relu": lambda z: F.leaky_relu(z, negative_slope=0.01),  # slope at 0, the convention
    "softplus": _softplus_exact,
    "softmax": lambda z: torch.softmax(z, dim=0),
}


def _loss(spec: Spec, z_out: Tensor, a_out: Tensor, Y: Tensor) -> Tensor:
    m = Y.shape[1]
    if spec.loss == "mse":
        return F.mse_loss(a_out, Y, reduction="sum") / m
    if spec.loss == "half_sse":
        return 0.5 * F.mse_loss(a_out, Y, reduction="sum")
    if spec.loss == "bce":
        # Torch's own fused, stable form: same definition (sum over units, mean over the batch).
        return F.binary_cross_entropy_with_logits(z_out, Y, reduction="sum") / m
    if spec.loss == "cce":
        # cross_entropy wants (batch, classes); probability targets are allowed, mean over the batch.
        return F.cross_entropy(z_out.T, Y.T, reduction="mean")
    raise KeyError(spec.loss)


def _forward(spec: Spec, params: Mapping[str, Tensor], X: Tensor) -> tuple[list[Tensor], Tensor]:
    zs: list[Tensor] = []
    a = X
    for layer, name in enumerate(spec.activations, start=1):
        z = params[f"W{layer}"] @ a + params[f"b{layer}"]
        zs.append(z)
        a = TORCH_ACTIVATIONS[name](z)
    return zs, a


def _tensors(params: Mapping[str, Array], dtype: torch.dtype) -> dict[str, Tensor]:
    return {k: torch.tensor(np.asarray(v), dtype=dtype, requires_grad=True) for k, v in params.items()}


def evaluate(spec: Spec, params: Params, X: Array, Y: Array, dtype: torch.dtype = torch.float64) -> OracleOutput:
    start = time.perf_counter()
    tensors = _tensors(params, dtype)
    X_t, Y_t = torch.tensor(X, dtype=dtype), torch.tensor(Y, dtype=dtype)
    zs, a_out = _forward(spec, tensors, X_t)
    value = _loss(spec, zs[-1], a_out, Y_t)
    names = list(spec.parameter_names)
    outs = torch.autograd.grad(value, [tensors[n] for n in names] + zs, allow_unused=True)
    grads = {n: _numpy(g, tensors[n]) for n, g in zip(names, outs[: len(names)], strict=True)}
    deltas = tuple(_numpy(g, z) for g, z in zip(outs[len(names) :], zs, strict=True))
    return OracleOutput(grads=grads, loss=float(value.item()), deltas=deltas, elapsed=time.perf_counter() - start)


def _numpy(grad: Tensor | None, like: Tensor) -> Array:
    if grad is None:  # not reached by the loss at all: the gradient is exactly zero
        return np.zeros(tuple(like.shape), dtype=np.float64)
    return np.asarray(grad.detach().cpu().numpy(), dtype=np.float64)


def gradients(spec: Mapping[str, Any] | Spec, params: Mapping[str, Array], X: Array, Y: Array) -> Params:
    """The subject protocol."""
    return ORACLE.gradients(spec, params, X, Y)


def loss(spec: Mapping[str, Any] | Spec, params: Mapping[str, Array], X: Array, Y: Array) -> float:
    spec = as_spec(spec)
    with torch.no_grad():
        zs, a_out = _forward(
            spec, {k: torch.tensor(np.asarray(v, np.float64)) for k, v in params.items()}, torch.tensor(X)
        )
        return float(_loss(spec, zs[-1], a_out, torch.tensor(Y)).item())


def vjp(
    spec: Mapping[str, Any] | Spec, params: Mapping[str, Array], X: Array, cotangent: Array
) -> tuple[Params, tuple[Array, ...]]:
    """Pull a cotangent ``(n_L, m)`` on the output activations back: (parameter grads, δ per layer)."""
    spec = as_spec(spec)
    tensors = _tensors(params, torch.float64)
    zs, a_out = _forward(spec, tensors, torch.tensor(np.asarray(X, np.float64)))
    names = list(spec.parameter_names)
    outs = torch.autograd.grad(
        a_out,
        [tensors[n] for n in names] + zs,
        grad_outputs=torch.tensor(np.asarray(cotangent, np.float64)),
        allow_unused=True,
    )
    grads = {n: _numpy(g, tensors[n]) for n, g in zip(names, outs[: len(names)], strict=True)}
    return grads, tuple(_numpy(g, z) for g, z in zip(outs[len(names) :], zs, strict=True))


ORACLE = register(
    Oracle(
        name="torch_autograd",
        evaluate=evaluate,
        kind="autodiff",
        description="independent torch float64 forward, reverse-mode autograd; δ from the pre-activations",
    )
)

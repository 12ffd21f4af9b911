"""Hypothesis strategies for audit instances: small networks on a coarse lattice, one per setting.

Entries of W, b and X are drawn from {−1, −½, 0, ½, 1}, so a shrunk counterexample reads like a hand
calculation.  Targets respect the loss (bce: {0, ½, 1}; cce: one-hot columns).  A relu/leaky_relu
pre-activation exactly on 0 would test the derivative *convention* rather than the claim, so such draws
are rejected.

Shapes: ``"scalar"`` every width 1; ``"square"`` every width n ∈ {2, 3}; ``"non-square"`` n_{L-1} ≠ n_L;
``"any"`` widths in 1..3.  Batch ``">1"`` is m ∈ {2, 3}, a number is exactly that m.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np
from hypothesis import strategies as st

from reference_impl.activations import get_activation
from reference_impl.spec import KINKED_ACTIVATIONS, Array, Params, Spec
from reports.audit.core import Instance, Setting

LATTICE = st.integers(-2, 2).map(lambda k: k / 2.0)
ELEMENTWISE: tuple[str, ...] = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus")
# Every valid (output activation, loss) pairing of the suite.
PAIRINGS: tuple[tuple[str, str], ...] = (
    *((act, loss) for loss in ("mse", "half_sse") for act in ELEMENTWISE),
    ("sigmoid", "bce"),
    ("softmax", "cce"),
)
SHAPES: tuple[str, ...] = ("scalar", "square", "non-square")
BATCHES: tuple[str, ...] = ("1", ">1")


def pairing_label(activation: str, loss: str) -> str:
    return f"{activation}+{loss}"


def parse_pairing(label: str) -> tuple[str, str]:
    activation, loss = label.split("+")
    return activation, loss


@cache
def batch_sizes(batch: str) -> st.SearchStrategy[int]:
    """``">1"``: m ∈ {2, 3}; a number: exactly that m."""
    return st.integers(2, 3) if batch == ">1" else st.just(int(batch))


# Strategies are cached: building (and validating) one per draw dominated the audit's run time.
@cache
def widths_for(shape: str, depth: int, output: str) -> st.SearchStrategy[tuple[int, ...]]:
    smallest_output = 2 if output == "softmax" else 1
    if shape == "scalar":
        return st.just((1,) * (depth + 1))
    if shape == "square":
        return st.integers(max(2, smallest_output), 3).map(lambda n: (n,) * (depth + 1))
    any_width = st.lists(st.integers(1, 3), min_size=depth + 1, max_size=depth + 1).map(tuple)
    if shape == "non-square":
        return any_width.filter(lambda w: w[-2] != w[-1] and w[-1] >= smallest_output)
    return any_width.filter(lambda w: w[-1] >= smallest_output)


@cache
def _matrix(rows: int, cols: int) -> st.SearchStrategy[Array]:
    return st.lists(LATTICE, min_size=rows * cols, max_size=rows * cols).map(
        lambda v: np.asarray(v, dtype=np.float64).reshape(rows, cols)
    )


@cache
def _targets(loss: str, rows: int, cols: int) -> st.SearchStrategy[Array]:
    if loss == "bce":
        values = st.sampled_from([0.0, 0.5, 1.0])
        return st.lists(values, min_size=rows * cols, max_size=rows * cols).map(
            lambda v: np.asarray(v, dtype=np.float64).reshape(rows, cols)
        )
    if loss == "cce":
        return st.lists(st.integers(0, rows - 1), min_size=cols, max_size=cols).map(
            lambda hot: np.eye(rows)[:, hot].astype(np.float64)
        )
    return _matrix(rows, cols)


def _on_a_kink(spec: Spec, params: Params, X: Array) -> bool:
    a = X
    for layer, name in enumerate(spec.activations, start=1):
        z = params[f"W{layer}"] @ a + params[f"b{layer}"]
        if name in KINKED_ACTIVATIONS and bool(np.any(z == 0.0)):
            return True
        a = get_activation(name).function(z)
    return False


@st.composite
def networks(
    draw: st.DrawFn,
    point: Setting,
    *,
    activations: st.SearchStrategy[tuple[str, ...]],
    loss: str | st.SearchStrategy[str],
    shape: str = "any",
    batch: str = ">1",
    extra: Mapping[str, st.SearchStrategy[float]] | None = None,
    n_out: st.SearchStrategy[int] | None = None,
) -> Instance:
    """One instance of ``point``: the activations' tuple sets the depth; the loss may be drawn too.

    ``n_out`` overrides the output width the shape would give.
    """
    chosen = draw(activations)
    loss_name = draw(loss) if isinstance(loss, st.SearchStrategy) else loss
    widths = draw(widths_for(shape, len(chosen), chosen[-1]))
    if n_out is not None:
        widths = (*widths[:-1], draw(n_out))
    spec = Spec(widths, chosen, loss_name)
    m = draw(batch_sizes(batch))
    params: Params = {}
    for layer in range(1, spec.depth + 1):
        params[f"W{layer}"] = draw(_matrix(widths[layer], widths[layer - 1]))
        params[f"b{layer}"] = draw(_matrix(widths[layer], 1))
    X = draw(_matrix(widths[0], m))
    if _on_a_kink(spec, params, X):
        draw(st.nothing())
    Y = draw(_targets(loss_name, widths[-1], m))
    chosen_extra = {name: draw(values) for name, values in (extra or {}).items()}
    return Instance(point, spec, params, X, Y, chosen_extra)


def output_pairings(pairings: Sequence[tuple[str, str]] = PAIRINGS) -> st.SearchStrategy[tuple[str, str]]:
    return st.sampled_from(list(pairings))


@st.composite
def two_layer(
    draw: st.DrawFn, point: Setting, *, hidden: str, shape: str, batch: str, pairings: Sequence[tuple[str, str]]
) -> Instance:
    """A depth-2 network with the given hidden activation; the output pairing is drawn from ``pairings``."""
    output, loss = draw(output_pairings(pairings))
    return draw(networks(point, activations=st.just((hidden, output)), loss=loss, shape=shape, batch=batch))

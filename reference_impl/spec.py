"""Architecture specs: names, validation and the hashable :class:`Spec`.

An architecture travels as a plain dict ``{"widths": [n_0, ..., n_L], "activations": [...], "loss": ...}``
so that code outside this project can speak it; :class:`Spec` is its validated, hashable twin.  The case
built on a spec lives in :mod:`reference_impl.case`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
Params = dict[str, Array]

ACTIVATION_NAMES: tuple[str, ...] = (
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "softplus",
    "softmax",
)
LOSS_NAMES: tuple[str, ...] = ("mse", "half_sse", "bce", "cce")
# Which output activation a loss requires (None: any elementwise activation).
LOSS_OUTPUT_ACTIVATION: dict[str, str | None] = {"mse": None, "half_sse": None, "bce": "sigmoid", "cce": "softmax"}
KINKED_ACTIVATIONS: frozenset[str] = frozenset({"relu", "leaky_relu"})


class SpecError(ValueError):
    """An architecture dict that no subject could be asked about (category: usage/input)."""


@dataclass(frozen=True)
class Spec:
    """A validated architecture: ``widths`` has L+1 entries, ``activations`` L, one ``loss``."""

    widths: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "activations", tuple(str(a) for a in self.activations))
        validate(self)

    @property
    def depth(self) -> int:
        return len(self.activations)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(name for layer in range(1, self.depth + 1) for name in (f"W{layer}", f"b{layer}"))

    def parameter_shape(self, name: str) -> tuple[int, int]:
        layer = int(name[1:])
        if name[0] == "W":
            return (self.widths[layer], self.widths[layer - 1])
        return (self.widths[layer], 1)

    @property
    def n_parameters(self) -> int:
        return sum(int(np.prod(self.parameter_shape(n))) for n in self.parameter_names)

    def to_dict(self) -> dict[str, Any]:
        return {"widths": list(self.widths), "activations": list(self.activations), "loss": self.loss}

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Spec:
        missing = {"widths", "activations", "loss"} - set(spec)
        if missing:
            raise SpecError(f"spec is missing {sorted(missing)}")
        return cls(tuple(spec["widths"]), tuple(spec["activations"]), str(spec["loss"]))


def as_spec(spec: Spec | Mapping[str, Any]) -> Spec:
    """Accept either the public dict form or a :class:`Spec`."""
    return spec if isinstance(spec, Spec) else Spec.from_dict(spec)


def validate(spec: Spec) -> None:
    if len(spec.widths) < 2:
        raise SpecError("widths needs at least an input and an output width")
    if any(w < 1 for w in spec.widths):
        raise SpecError(f"widths must be positive, got {list(spec.widths)}")
    if len(spec.activations) != len(spec.widths) - 1:
        raise SpecError(
            f"{len(spec.widths) - 1} layers need {len(spec.widths) - 1} activations, got {len(spec.activations)}"
        )
    unknown = [a for a in spec.activations if a not in ACTIVATION_NAMES]
    if unknown:
        raise SpecError(f"unknown activation(s) {unknown}; known: {list(ACTIVATION_NAMES)}")
    if spec.loss not in LOSS_NAMES:
        raise SpecError(f"unknown loss {spec.loss!r}; known: {list(LOSS_NAMES)}")
    if "softmax" in spec.activations[:-1]:
        raise SpecError("softmax is only allowed on the output layer")
    required = LOSS_OUTPUT_ACTIVATION[spec.loss]
    output = spec.activations[-1]
    if required is not None and output != required:
        raise SpecError(f"loss {spec.loss!r} needs a {required!r} output layer, got {output!r}")
    if output == "softmax" and spec.loss != "cce":
        raise SpecError("a softmax output layer is only paired with 'cce'")


def check_arrays(spec: Spec, params: Mapping[str, Array], X: Array, Y: Array) -> None:
    """Raise :class:`SpecError` unless params, X and Y have the shapes the spec implies."""
    for name in spec.parameter_names:
        if name not in params:
            raise SpecError(f"params lack {name!r}")
        if np.shape(params[name]) != spec.parameter_shape(name):
            raise SpecError(f"{name} has shape {np.shape(params[name])}, expected {spec.parameter_shape(name)}")
    if X.ndim != 2 or X.shape[0] != spec.widths[0]:
        raise SpecError(f"X has shape {X.shape}, expected ({spec.widths[0]}, m)")
    if Y.shape != (spec.widths[-1], X.shape[1]):
        raise SpecError(f"Y has shape {Y.shape}, expected ({spec.widths[-1]}, {X.shape[1]})")


def spec_from_lists(widths: Sequence[int], activations: Sequence[str], loss: str) -> Spec:
    return Spec(tuple(widths), tuple(activations), loss)

"""Case features, and the conditions on them that separate failing cases from passing ones.

A diagnosis that cannot name a defect can still say *where* the subject fails: "wrong exactly when the
targets are not one-hot", "raises on every case with a softplus layer, and only there".  Each case gets a
small set of named features (:func:`case_features`: activation per layer, loss, m = 1 or not, square or
non-square layers, one-hot or soft targets, output width 1 or more, saturation, exact kinks, whether it
has the first call's layer widths); :func:`separate` finds the feature values (or pairs of them) that hold
on every case of one group and on no case of the other.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from reference_impl.case import Case
from reference_impl.mlp import forward

SATURATING = frozenset({"sigmoid", "tanh", "softmax"})
SATURATED_Z = 8.0  # |z| beyond this: σ' < 4e-4, tanh' < 5e-7 (a unit that barely passes a gradient)

Features = dict[str, Hashable]


@dataclass(frozen=True)
class Condition:
    """One feature value, or (``other``) the conjunction of two."""

    feature: str
    value: Hashable
    other: tuple[str, Hashable] | None = None

    def holds(self, features: Mapping[str, Hashable]) -> bool:
        if features.get(self.feature, None) != self.value:
            return False
        return self.other is None or features.get(self.other[0], None) == self.other[1]

    def text(self) -> str:
        first = describe(self.feature, self.value)
        return first if self.other is None else f"{first} and {describe(*self.other)}"


def one_hot_targets(case: Case) -> bool | None:
    """Whether every target is 0 or 1 (and, for cce, each column one-hot); None for squared losses."""
    if case.spec.loss not in ("bce", "cce"):
        return None
    Y = case.problem.Y
    hard = bool(np.all((Y == 0.0) | (Y == 1.0)))
    return hard and (case.spec.loss != "cce" or bool(np.all(Y.sum(axis=0) == 1.0)))


def _saturated(case: Case) -> bool:
    tape = forward(case.spec, case.problem.params, case.problem.X)
    for layer, name in enumerate(case.spec.activations, start=1):
        z = tape.z(layer)
        if name == "softmax":
            p = tape.a(layer)
            if z.shape[0] > 1 and float(np.max(p)) > 1.0 - 1e-4:
                return True
        elif name in SATURATING and float(np.max(np.abs(z))) > SATURATED_Z:
            return True
    return False


def case_features(case: Case, first: Case | None = None) -> Features:
    """Named features of ``case``; ``first`` is the first case the subject was ever called on."""
    spec = case.spec
    widths = spec.widths
    features: Features = {
        "loss": spec.loss,
        "output activation": spec.activations[-1],
        "single example": case.batch == 1,
        "single output": widths[-1] == 1,
        "some layer square": any(a == b for a, b in itertools.pairwise(widths)),
        "every layer square": all(a == b for a, b in itertools.pairwise(widths)),
        "one-hot targets": one_hot_targets(case),
        "saturated": _saturated(case),
        "exact kink": bool(case.kinks and case.problem.kink_sites),
        "depth": spec.depth,
    }
    for name in sorted(set(spec.activations)):
        features[f"has {name}"] = True
    for layer in range(1, spec.depth + 1):
        features[f"layer {layer} square"] = widths[layer] == widths[layer - 1]
        if layer < spec.depth:
            features[f"hidden {layer} activation"] = spec.activations[layer - 1]
    if first is not None:
        features["widths of the first call"] = widths == first.spec.widths
    return features


_FIXED_TEXT: dict[tuple[str, Hashable], str] = {
    ("single example", True): "m = 1",
    ("single example", False): "m > 1",
    ("single output", True): "the output has one unit",
    ("single output", False): "the output has several units",
    ("some layer square", True): "some layer is square",
    ("some layer square", False): "no layer is square",
    ("every layer square", True): "every layer is square",
    ("every layer square", False): "some layer is not square",
    ("one-hot targets", True): "the targets are one-hot (0/1)",
    ("one-hot targets", False): "the targets are soft (not one-hot)",
    ("saturated", True): "some unit is saturated",
    ("saturated", False): "no unit is saturated",
    ("exact kink", True): "a pre-activation sits exactly on a kink",
    ("exact kink", False): "no pre-activation sits on a kink",
    ("widths of the first call", True): "the layer widths are those of the first call",
    ("widths of the first call", False): "the layer widths differ from the first call's",
}


def describe(feature: str, value: Hashable) -> str:
    """Plain words for ``feature == value``."""
    if (feature, value) in _FIXED_TEXT:
        return _FIXED_TEXT[(feature, value)]
    if feature.startswith("has "):
        name = feature[4:]
        return f"there is a {name} layer" if value else f"there is no {name} layer"
    if feature.startswith("layer ") and feature.endswith(" square"):
        layer = feature.split()[1]
        return f"W^[{layer}] is square" if value else f"W^[{layer}] is not square"
    if feature.startswith("hidden ") and feature.endswith(" activation"):
        return f"hidden layer {feature.split()[1]} is {value}"
    if feature == "loss":
        return f"the loss is {value}"
    if feature == "output activation":
        return f"the output activation is {value}"
    if feature == "depth":
        return f"the net has {value} layer{'s' if value != 1 else ''}"
    return f"{feature} = {value}"


# When several conditions separate equally well, the simpler, more common explanation is listed first.
PRIORITY = (
    "loss",
    "one-hot targets",
    "single example",
    "single output",
    "some layer square",
    "every layer square",
    "saturated",
    "exact kink",
    "output activation",
    "widths of the first call",
)


def _rank(condition: Condition) -> tuple[int, int, str]:
    def one(feature: str) -> int:
        if feature in PRIORITY:
            return PRIORITY.index(feature)
        return len(PRIORITY) + (0 if feature.startswith("has ") else 1)

    extra = one(condition.other[0]) if condition.other else -1
    return (1 if condition.other else 0, one(condition.feature) * 100 + extra, condition.text())


def _values(group: Sequence[Features]) -> set[tuple[str, Hashable]]:
    """(feature, value) pairs shared by every member of ``group`` (absent features count as False)."""
    shared: set[tuple[str, Hashable]] | None = None
    for features in group:
        here = {(k, v) for k, v in features.items() if v is not None}
        shared = here if shared is None else shared & here
    return shared or set()


def _complete(features: Features, keys: set[str]) -> Features:
    return {key: features.get(key, False if key.startswith("has ") else None) for key in keys}


def separate(inside: Sequence[Features], outside: Sequence[Features], limit: int = 3) -> list[Condition]:
    """Conditions true on every case of ``inside`` and on none of ``outside`` (single ones, else pairs)."""
    if not inside or not outside:
        return []
    keys = {k for f in [*inside, *outside] for k in f}
    inside = [_complete(f, keys) for f in inside]
    outside = [_complete(f, keys) for f in outside]
    shared = sorted(_values(inside), key=lambda kv: (kv[0], str(kv[1])))
    singles = [Condition(k, v) for k, v in shared if not any(Condition(k, v).holds(f) for f in outside)]
    if singles:
        return sorted(singles, key=_rank)[:limit]
    pairs = [
        Condition(a[0], a[1], b)
        for a, b in itertools.combinations(shared, 2)
        if a[0] != b[0] and not any(Condition(a[0], a[1], b).holds(f) for f in outside)
    ]
    return sorted(pairs, key=_rank)[:limit]


def common(group: Sequence[Features], others: Sequence[Features], limit: int = 3) -> list[Condition]:
    """Conditions shared by every case of ``group`` but not by every case of ``others`` (a weaker hint)."""
    keys = {k for f in [*group, *others] for k in f}
    group = [_complete(f, keys) for f in group]
    others = [_complete(f, keys) for f in others]
    shared = _values(group)
    everywhere = _values(others) if others else set()
    hints = [Condition(k, v) for k, v in shared - everywhere]
    return sorted(hints, key=_rank)[:limit]

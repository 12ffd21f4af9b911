"""What a subject implements (its ``SUPPORTS``), and seeded cases drawn only from that.

``SUPPORTS`` is an optional dict beside a subject::

    SUPPORTS = {"activations": ["tanh", "identity"], "losses": ["mse"], "max_depth": 3}

``activations`` restricts every layer; ``hidden_activations`` / ``output_activations`` restrict hidden
and output layers separately (a library with one activation shared by all hidden layers says
``"uniform_hidden": True``); ``convention`` declares the subject's loss convention, for every loss
(``"mean_elements"``) or per loss (``{"mse": "mean_elements"}``).  Unknown keys are an error, so a typo
does not silently widen the net.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference_impl.case import Case
from reference_impl.spec import ACTIVATION_NAMES, LOSS_NAMES, LOSS_OUTPUT_ACTIVATION, Spec, SpecError
from reference_impl.stress import STRESS_BATCHES, STRESS_SHARE, is_stress_index, stress_ordinal, stress_spec

SUPPORTS_KEYS = frozenset(
    {
        "activations",
        "hidden_activations",
        "output_activations",
        "losses",
        "max_depth",
        "min_depth",
        "uniform_hidden",
        "convention",  # the subject's loss convention(s): read by conventions.parse_declaration, not here
    }
)
HIDDEN_NAMES: tuple[str, ...] = tuple(a for a in ACTIVATION_NAMES if a != "softmax")
DEFAULT_MAX_DEPTH = 4


def _names(value: Any, known: Sequence[str], key: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise SpecError(f"SUPPORTS[{key!r}] must be a list of names, got {value!r}")
    unknown = [v for v in value if v not in known]
    if unknown:
        raise SpecError(f"SUPPORTS[{key!r}] names unknown {unknown}; known: {list(known)}")
    return tuple(str(v) for v in value)


@dataclass(frozen=True)
class Family:
    """The architectures a subject can be asked about."""

    hidden: tuple[str, ...] = HIDDEN_NAMES
    outputs: tuple[str, ...] = ACTIVATION_NAMES
    losses: tuple[str, ...] = LOSS_NAMES
    min_depth: int = 1
    max_depth: int = DEFAULT_MAX_DEPTH
    uniform_hidden: bool = False

    @classmethod
    def from_supports(cls, supports: Mapping[str, Any] | None) -> Family:
        if not supports:
            return cls()
        unknown = set(supports) - SUPPORTS_KEYS
        if unknown:
            raise SpecError(f"SUPPORTS has unknown keys {sorted(unknown)}; known: {sorted(SUPPORTS_KEYS)}")
        both = _names(supports.get("activations", ACTIVATION_NAMES), ACTIVATION_NAMES, "activations")
        hidden_default = [a for a in both if a in HIDDEN_NAMES]
        hidden = _names(supports.get("hidden_activations", hidden_default), HIDDEN_NAMES, "hidden_activations")
        outputs = _names(supports.get("output_activations", both), ACTIVATION_NAMES, "output_activations")
        losses = _names(supports.get("losses", LOSS_NAMES), LOSS_NAMES, "losses")
        family = cls(
            hidden=tuple(a for a in hidden if a in both),
            outputs=tuple(a for a in outputs if a in both),
            losses=losses,
            min_depth=int(supports.get("min_depth", 1)),
            max_depth=int(supports.get("max_depth", DEFAULT_MAX_DEPTH)),
            uniform_hidden=bool(supports.get("uniform_hidden", False)),
        )
        family.check()
        return family

    def restricted(self, activations: Sequence[str] | None = None, losses: Sequence[str] | None = None) -> Family:
        """Narrow by command-line flags (an intersection: flags never widen what a subject declared)."""
        hidden, outputs, chosen = self.hidden, self.outputs, self.losses
        if activations:
            wanted = _names(list(activations), ACTIVATION_NAMES, "activations")
            hidden = tuple(a for a in hidden if a in wanted)
            outputs = tuple(a for a in outputs if a in wanted)
        if losses:
            wanted_losses = _names(list(losses), LOSS_NAMES, "losses")
            chosen = tuple(loss for loss in chosen if loss in wanted_losses)
        family = Family(hidden, outputs, chosen, self.min_depth, self.max_depth, self.uniform_hidden)
        family.check()
        return family

    def output_for(self, loss: str, prefer: Sequence[str] = ()) -> str | None:
        """The output activation for ``loss``: the required one, else the first preferred one allowed."""
        required = LOSS_OUTPUT_ACTIVATION[loss]
        if required is not None:
            return required if required in self.outputs else None
        elementwise = [a for a in self.outputs if a != "softmax"]
        for name in prefer:
            if name in elementwise:
                return name
        return elementwise[0] if elementwise else None

    @property
    def usable_losses(self) -> tuple[str, ...]:
        return tuple(loss for loss in self.losses if self.output_for(loss) is not None)

    @property
    def deepest(self) -> int:
        return self.max_depth if self.hidden else min(self.max_depth, 1)

    def check(self) -> None:
        if not self.usable_losses:
            raise SpecError(
                f"no architecture fits: losses {list(self.losses)} cannot be paired with outputs {list(self.outputs)}"
            )
        if self.max_depth < self.min_depth or self.min_depth < 1:
            raise SpecError(f"depth range {self.min_depth}..{self.max_depth} is empty")
        if self.min_depth > 1 and not self.hidden:
            raise SpecError("depth > 1 needs at least one hidden activation")

    def allows(self, spec: Spec) -> bool:
        hidden = spec.activations[:-1]
        return (
            spec.loss in self.losses
            and spec.activations[-1] in self.outputs
            and all(a in self.hidden for a in hidden)
            and self.min_depth <= spec.depth <= self.max_depth
            and (not self.uniform_hidden or len(set(hidden)) <= 1)
        )

    def random_case(self, rng: np.random.Generator, label: str, max_width: int = 6, max_batch: int = 6) -> Case:
        """One seeded case inside the family (widths drawn independently, so non-square is common)."""
        loss = str(rng.choice(list(self.usable_losses)))
        depth = int(rng.integers(self.min_depth, self.deepest + 1))
        if self.uniform_hidden:
            hidden = [str(rng.choice(list(self.hidden)))] * (depth - 1)
        else:
            hidden = [str(rng.choice(list(self.hidden))) for _ in range(depth - 1)]
        elementwise = [a for a in self.outputs if a != "softmax"]
        required = LOSS_OUTPUT_ACTIVATION[loss]
        output = required if required is not None else str(rng.choice(elementwise))
        widths = [int(w) for w in rng.integers(1, max_width + 1, size=depth + 1)]
        if loss == "cce":
            widths[-1] = max(widths[-1], 2)  # one softmax unit has a constant output and a zero gradient
        spec = Spec(tuple(widths), (*hidden, output), loss)
        return Case(
            spec=spec,
            batch=int(rng.integers(1, max_batch + 1)),
            seed=int(rng.integers(0, 2**31)),
            param_scale=float(rng.choice([0.5, 1.0, 1.0, 2.0])),
            data_scale=float(rng.choice([0.5, 1.0, 1.0, 3.0])),
            label=label,
        )

    def stress_case(self, seed: int, index: int, ordinal: int, label: str, max_width: int = 6) -> Case:
        """Stress case ``index`` (the ``ordinal``-th of its run) inside the family: its losses in turn, its
        saturable activations in turn, a larger batch (:mod:`reference_impl.stress`)."""
        rng = np.random.default_rng([seed, index, 0x57E55])
        required = {loss: act for loss, act in LOSS_OUTPUT_ACTIVATION.items() if act is not None}
        spec = stress_spec(
            rng,
            ordinal,
            self.usable_losses,
            self.hidden,
            self.outputs,
            required,
            (self.min_depth, self.deepest),
            max_width,
            self.uniform_hidden,
        )
        batch = int(rng.choice(STRESS_BATCHES))
        return Case(spec=spec, batch=batch, seed=int(rng.integers(0, 2**31)), stress=True, label=label)


def family_cases(family: Family, seed: int, count: int, stress_share: float = STRESS_SHARE) -> list[Case]:
    """``count`` cases that are a pure function of ``(family, seed, stress_share)``, labelled
    ``verify-<seed>-<i>``; case i is a stress case when :func:`~reference_impl.stress.is_stress_index` says so."""
    rng = np.random.default_rng([seed, 0xFA11])
    drawn: list[Case] = []
    for index in range(count):
        label = f"verify-{seed}-{index:04d}"
        # Drawn even when replaced by a stress case, so the ordinary cases do not depend on the share.
        case = family.random_case(rng, label)
        if is_stress_index(index, stress_share):
            case = family.stress_case(seed, index, stress_ordinal(index, stress_share), label)
        drawn.append(case)
    return drawn


def family_of_cases(cases: Sequence[Case]) -> Family:
    """The smallest family containing ``cases`` (what a caller who only gave cases is asking about)."""
    hidden = sorted({a for c in cases for a in c.spec.activations[:-1]})
    outputs = sorted({c.spec.activations[-1] for c in cases})
    losses = sorted({c.spec.loss for c in cases})
    depth = max(c.spec.depth for c in cases)
    return Family(tuple(hidden), tuple(outputs), tuple(losses), 1, depth)

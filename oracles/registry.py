"""One registry of oracles: name -> :class:`Oracle`, each with a ``supports(spec)`` predicate.

Every oracle is also a *subject*: ``oracle.gradients(spec, params, X, Y)`` follows the same protocol as
the reference and as any third-party implementation.  ``evaluate`` returns more (per-layer δ, per-entry
error estimates, the loss) for the oracles that can give it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reference_impl.case import Case
from reference_impl.spec import ACTIVATION_NAMES, LOSS_NAMES, Array, Params, Spec, as_spec

# Oracle modules, imported on first use of the registry.
ORACLE_MODULES: tuple[str, ...] = (
    "oracles.torch_autograd",
    "oracles.sympy_exact",
    "oracles.numeric.complex_step",
    "oracles.numeric.richardson",
    "oracles.numeric.finite_diff",
)
# Oracles whose modules import neither torch nor SymPy, only NumPy: a process can compare a case with
# them without seconds of imports (a campaign's main process does, while its workers start).  A test
# holds them to it.
LIGHT_ORACLES: tuple[str, ...] = ("complex_step", "richardson", "finite_diff")


@dataclass(frozen=True)
class OracleOutput:
    """``grads`` like params; ``deltas[l-1]`` is δ^[l] ``(n_l, m)``; ``error`` per-entry |error| estimates."""

    grads: Params
    loss: float | None = None
    deltas: tuple[Array, ...] | None = None
    error: Params | None = None
    elapsed: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


Evaluate = Callable[[Spec, Params, Array, Array], OracleOutput]
Directional = Callable[[Spec, Params, Array, Array, list[Params]], "np.ndarray"]


def _always(spec: Spec) -> str | None:
    return None


@dataclass(frozen=True)
class Oracle:
    name: str
    evaluate: Evaluate
    kind: str  # "autodiff", "exact", "numeric"
    supports_fn: Callable[[Spec], str | None] = _always  # None when supported, else the reason
    # Activation/loss names this oracle declares it cannot handle, with the reason.
    unsupported: Mapping[str, str] = field(default_factory=dict)
    # ⟨∇L, v⟩ for each direction v, when this oracle has a cheaper route than the full gradient.
    directional: Directional | None = None
    description: str = ""
    # Why this oracle cannot judge stress cases (reference_impl.stress), or None when it can.
    stress_reason: str | None = None

    def supports(self, spec: Spec | Mapping[str, Any]) -> bool:
        return self.why_unsupported(spec) is None

    def supports_case(self, case: Case) -> bool:
        return self.why_unsupported_case(case) is None

    def why_unsupported_case(self, case: Case) -> str | None:
        """:meth:`why_unsupported` of the case's spec, and the stress regime's own limit."""
        reason = self.why_unsupported(case.spec)
        if reason is None and case.stress and self.stress_reason is not None:
            return f"{self.name} does not judge stress cases: {self.stress_reason}"
        return reason

    def why_unsupported(self, spec: Spec | Mapping[str, Any]) -> str | None:
        spec = as_spec(spec)
        for name in (*spec.activations, spec.loss):
            if name in self.unsupported:
                return f"{self.name} does not support {name}: {self.unsupported[name]}"
        return self.supports_fn(spec)

    def gradients(self, spec: Spec | Mapping[str, Any], params: Mapping[str, Array], X: Array, Y: Array) -> Params:
        """The subject protocol."""
        return self.evaluate(
            as_spec(spec), _float64(params), np.asarray(X, np.float64), np.asarray(Y, np.float64)
        ).grads


def _float64(params: Mapping[str, Array]) -> Params:
    return {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}


_REGISTRY: dict[str, Oracle] = {}
_loaded = False


def register(oracle: Oracle) -> Oracle:
    unknown = set(oracle.unsupported) - set(ACTIVATION_NAMES) - set(LOSS_NAMES)
    if unknown:
        raise ValueError(f"{oracle.name} declares unknown names unsupported: {sorted(unknown)}")
    _REGISTRY[oracle.name] = oracle
    return oracle


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in ORACLE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            # Only a module that is not there yet may be skipped; a broken import must surface.
            if exc.name != module:
                raise


def oracle_names() -> list[str]:
    """The registered oracles' names, without importing an oracle module that is not imported yet.

    Each module in :data:`ORACLE_MODULES` registers the oracle named like the module (a test holds them
    to it), so a campaign's main process, which only writes records, need not import torch and SymPy.
    """
    if _loaded or all(module in sys.modules for module in ORACLE_MODULES):
        return sorted(_REGISTRY)
    names = set(_REGISTRY)
    for module in ORACLE_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package that is not there
            found = False
        if found:
            names.add(module.rpartition(".")[2])
    return sorted(names)


def all_oracles() -> dict[str, Oracle]:
    _load()
    return dict(_REGISTRY)


def get_oracle(name: str) -> Oracle:
    if name not in _REGISTRY:
        # Import the oracle's own module first: asking for torch_autograd alone (verify) need not pay
        # for importing SymPy and SymEngine (~1 s), which only the exact oracle uses.
        for module in ORACLE_MODULES:
            if module.rpartition(".")[2] == name:
                try:
                    importlib.import_module(module)
                except ModuleNotFoundError as exc:
                    if exc.name != module:
                        raise
    if name in _REGISTRY:
        return _REGISTRY[name]
    oracles = all_oracles()
    if name not in oracles:
        raise KeyError(f"unknown oracle {name!r}; known: {sorted(oracles)}")
    return oracles[name]


def oracles_for(spec: Spec | Mapping[str, Any], names: list[str] | None = None) -> list[Oracle]:
    """The named (default: all) oracles that support ``spec``."""
    chosen = [get_oracle(n) for n in names] if names else list(all_oracles().values())
    return [o for o in chosen if o.supports(spec)]


def oracles_for_case(case: Case, names: list[str] | None = None) -> list[Oracle]:
    """The named (default: all) oracles that support ``case`` (its spec, and its stress regime)."""
    return [o for o in oracles_for(case.spec, names) if o.supports_case(case)]

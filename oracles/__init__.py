"""Independent ground truths for gradients, one registry, and the one comparer.

Every oracle module (``oracles.torch_autograd``, ``oracles.sympy_exact``, ``oracles.finite_diff``,
``oracles.richardson``, ``oracles.complex_step``) exposes ``gradients(spec, params, X, Y)``, the same
subject protocol as the reference.  Submodules load on first attribute access, so ``import oracles``
stays cheap.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from oracles.registry import ORACLE_MODULES, Oracle, OracleOutput, all_oracles, get_oracle, oracles_for, register

__all__ = ["ORACLE_MODULES", "Oracle", "OracleOutput", "all_oracles", "get_oracle", "oracles_for", "register"]

_SUBMODULES = {m.rsplit(".", 1)[1] for m in ORACLE_MODULES} | {"compare", "subjects", "tolerances"}


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"oracles.{name}")
    raise AttributeError(f"module 'oracles' has no attribute {name!r}")

"""Independent ground truths for gradients and everything that judges a subject against them.

Layout, in the order the data flows: the registry and the subject protocol (``registry``, ``subjects``);
the ground truths (``torch_autograd``, ``sympy_exact`` with its symbolic twins in ``symbolic``, and the
numeric oracles in ``numeric/``); the verdicts (``verdicts/``: records, tolerances, the comparer, kinks,
triangulation, the Taylor test); the diagnosis (``diagnosis/``); adapters for third-party code
(``adapters/``).

Every oracle module (``oracles.torch_autograd``, ``oracles.sympy_exact``, ``oracles.numeric.finite_diff``,
``oracles.numeric.richardson``, ``oracles.numeric.complex_step``) exposes ``gradients(spec, params, X, Y)``, the same
subject protocol as the reference.  Submodules load on first attribute access, so ``import oracles``
stays cheap.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from oracles.registry import ORACLE_MODULES, Oracle, OracleOutput, all_oracles, get_oracle, oracles_for, register

__all__ = ["ORACLE_MODULES", "Oracle", "OracleOutput", "all_oracles", "get_oracle", "oracles_for", "register"]

# Oracle name -> its module, so ``oracles.finite_diff`` reaches ``oracles.numeric.finite_diff`` too.
_SUBMODULES = {m.rsplit(".", 1)[1]: m for m in ORACLE_MODULES} | {"subjects": "oracles.subjects"}


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(_SUBMODULES[name])
    raise AttributeError(f"module 'oracles' has no attribute {name!r}")

"""Held-out material: backprop implementations written independently of the reference, in the styles
people really use, that the suite's verdicts and diagnoses are measured on but never tuned to.

``correct/`` holds right implementations (no verdict may flag them), ``unstable/`` numerically unstable
ones (mathematically right, broken in float64 somewhere the truth is finite).  Each module is a subject:
``MODULE:gradients``, or ``MODULE:<SUBJECT>`` when it names another attribute (an object with
``.gradients``).  :func:`targets` lists them, so a file dropped into either folder is picked up.
"""

from __future__ import annotations

import importlib
import pkgutil

KINDS = ("correct", "unstable")


def targets(kind: str) -> list[str]:
    """``MODULE:ATTR`` of every implementation in ``correct`` or ``unstable``, sorted by module name."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    package = importlib.import_module(f"{__name__}.{kind}")
    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module_name = f"{package.__name__}.{info.name}"
        module = importlib.import_module(module_name)
        found.append(f"{module_name}:{getattr(module, 'SUBJECT', 'gradients')}")
    return found

"""Hypothesis profiles: ``dev`` (quick), ``ci`` (derandomized, bounded), ``thorough`` (≥ 2,000 cases).

Chosen by ``HYPOTHESIS_PROFILE``; without it, ``ci`` when the ``CI`` variable is set, else ``dev``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Cases run torch and numeric oracles: wall time varies on shared machines, so no deadline.
_BASE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)

settings.register_profile("dev", _BASE, max_examples=60)
settings.register_profile("ci", _BASE, max_examples=150, derandomize=True)
settings.register_profile("thorough", _BASE, max_examples=2500)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")


def load() -> str:
    settings.load_profile(PROFILE)
    return PROFILE

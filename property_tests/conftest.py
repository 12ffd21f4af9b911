from __future__ import annotations

import pytest

from property_tests import profiles

ACTIVE_PROFILE = profiles.load()


def pytest_report_header(config: pytest.Config) -> str:
    return f"hypothesis profile: {ACTIVE_PROFILE}"

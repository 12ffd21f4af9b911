"""pytest plugin (entry point ``pytest11``): inert unless ``--backprop-subject MODULE:ATTR`` is given."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("backprop-check")
    group.addoption(
        "--backprop-subject",
        action="store",
        default=None,
        metavar="MODULE:ATTR",
        help="run the backprop-check property suite against this gradients function",
    )

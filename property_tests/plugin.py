"""pytest plugin (entry point ``pytest11``): inert unless ``--backprop-subject MODULE:ATTR`` is given.

With the option, the session gains one test item per loss the subject supports, each running the
property suite (:func:`property_tests.check.check_subject`) against that subject, and the
``backprop_subject`` fixture returns the loaded :class:`~oracles.subjects.Subject` for tests of
one's own.  Without it, the fixture skips and nothing is added.
"""

from __future__ import annotations

from typing import Any

import pytest

OPTION = "--backprop-subject"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("backprop-check")
    group.addoption(
        OPTION,
        action="store",
        default=None,
        metavar="MODULE:ATTR",
        help=(
            "run the backprop-check property suite against this gradients function "
            "(MODULE is imported from the current directory first, like python -m)"
        ),
    )
    group.addoption(
        "--backprop-examples",
        action="store",
        type=int,
        default=None,
        metavar="N",
        help="Hypothesis examples per loss for --backprop-subject (default: the active profile's)",
    )
    group.addoption(
        "--backprop-stress",
        action="store",
        type=float,
        default=None,
        metavar="SHARE",
        help="share of stress cases (saturated layers, logits near ±1000) for --backprop-subject (default 1 in 5)",
    )
    group.addoption(
        "--backprop-strict",
        action="store_true",
        default=False,
        help="precision findings (right but less precise than float64 allows) fail too",
    )
    group.addoption(
        "--backprop-timeout",
        action="store",
        type=float,
        default=None,
        metavar="S",
        help="seconds per call of --backprop-subject before its worker process is killed (default 30)",
    )


def _target(config: pytest.Config) -> str | None:
    value = config.getoption(OPTION, default=None)
    return str(value) if value else None


@pytest.fixture(scope="session")
def backprop_subject(request: pytest.FixtureRequest) -> Any:
    """The subject named by ``--backprop-subject`` (skips when none was given)."""
    target = _target(request.config)
    if target is None:
        pytest.skip(f"no {OPTION} given")
    from oracles.subjects import load_subject

    return load_subject(target, timeout=request.config.getoption("--backprop-timeout", default=None))


class SubjectPropertyItem(pytest.Item):
    """The property suite for one loss, against the subject given on the command line."""

    def __init__(self, *, target: str, loss: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.loss = loss

    def runtest(self) -> None:
        from oracles.subjects import load_subject, subject_supports
        from property_tests.check import check_subject
        from reference_impl.stress import STRESS_SHARE

        subject = load_subject(self.target, timeout=self.config.getoption("--backprop-timeout", default=None))
        examples = self.config.getoption("--backprop-examples", default=None)
        stress = self.config.getoption("--backprop-stress", default=None)
        check_subject(
            subject,
            supports=subject_supports(self.target),
            losses=[self.loss],
            max_examples=examples,
            stress=STRESS_SHARE if stress is None else float(stress),
            strict=bool(self.config.getoption("--backprop-strict", default=False)),
        )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from property_tests.check import SubjectCheckFailed

        if isinstance(excinfo.value, SubjectCheckFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return self.target, None, f"backprop-subject {self.target} [{self.loss}]"


class SubjectCollector(pytest.Collector):
    """The subject's property items, collected like any test file's (so "collected N items" counts them)."""

    def __init__(self, *, target: str, losses: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.losses = losses

    def collect(self) -> list[pytest.Item]:
        return [
            SubjectPropertyItem.from_parent(self, name=f"[{loss}]", target=self.target, loss=loss)
            for loss in self.losses
        ]


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselection, so those select our items too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    target = _target(config)
    if target is None:
        return
    from oracles.diagnosis.family import Family
    from oracles.subjects import SubjectLoadError, load_subject, subject_supports

    try:
        load_subject(target)
        family = Family.from_supports(subject_supports(target))
    except (SubjectLoadError, ValueError) as exc:
        raise pytest.UsageError(f"{OPTION} {target}: {exc}") from None
    name = f"backprop_subject[{target}]"
    collector = SubjectCollector.from_parent(
        session, name=name, nodeid=name, target=target, losses=tuple(family.usable_losses)
    )
    # Through the collection hooks, as a test file is: the terminal's "collected N items" then counts them.
    report = collector.ihook.pytest_make_collect_report(collector=collector)
    session.ihook.pytest_collectreport(report=report)
    items.extend(node for node in report.result if isinstance(node, pytest.Item))

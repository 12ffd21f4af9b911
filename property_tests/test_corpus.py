"""The held-out corpus: correct implementations in many styles are never flagged; numerically unstable
ones are reported ``unstable`` (exit 1) at the default ``verify --examples``, on every seed tried.

The full measurement (≥ 5 seeds × 300 examples per correct implementation) is
``python -m benchmarks.bench_corpus``; these are its quick, always-run slices.
"""

from __future__ import annotations

import pytest

from oracles.diagnosis.family import Family, family_cases
from oracles.subjects import load_subject
from property_tests.check import check_subject
from property_tests.corpus import targets
from reports.cli.app import main
from reports.cli.verify import verify_subject


def test_the_corpus_has_six_styles_of_each_kind() -> None:
    assert len(targets("correct")) >= 6 and len(targets("unstable")) >= 6


@pytest.mark.parametrize("target", targets("correct"))
def test_a_correct_implementation_is_never_flagged(target: str) -> None:
    result = verify_subject(load_subject(target), family_cases(Family(), 11, 40))
    assert not result.failing_cases, [r.summary() for r in result.records if r.failed][:3]


@pytest.mark.parametrize("target", targets("correct")[:2])
def test_check_subject_passes_correct_textbook_code(target: str) -> None:
    check_subject(load_subject(target), max_examples=25)


@pytest.mark.parametrize("target", targets("unstable"))
@pytest.mark.parametrize("seed", [0, 1])
def test_an_unstable_implementation_is_reported_unstable(
    capsys: pytest.CaptureFixture[str], target: str, seed: int
) -> None:
    assert main(["verify", target, "--seed", str(seed)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("diagnosis: unstable (layer"), lines[0]
    assert any(line.startswith("protocol [unstable]") for line in lines)

"""The pytest plugin and ``check_subject``, run by pytester on a tiny user project."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ["pytester"]

USER_SUBJECTS = """
from property_tests.mutation.catalogue import MUTANTS
from reference_impl import gradients as right

SUPPORTS = {"activations": ["tanh", "identity"], "losses": ["mse"], "max_depth": 2}


def bug(spec, params, X, Y):
    return MUTANTS["transpose_W"].gradients(spec, params, X, Y)
"""

USER_TESTS = """
def test_own_property(backprop_subject):
    assert backprop_subject.gradients is not None


def test_unrelated():
    assert True
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(user_subjects=USER_SUBJECTS, test_user=USER_TESTS)
    pytester.syspathinsert()
    return pytester


def test_the_plugin_is_inert_without_the_option(project: pytest.Pytester) -> None:
    # In-process is safe here: nothing new is imported when the option is absent.
    result = project.runpytest("-q")
    result.assert_outcomes(passed=1, skipped=1)


def test_a_right_subject_passes_and_check_subject_is_one_line(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_mine="""
import user_subjects
from property_tests.check import check_subject, subject_test

test_right = subject_test(user_subjects.right, supports=user_subjects.SUPPORTS, max_examples=15)


def test_bug():
    check_subject(user_subjects.bug, supports=user_subjects.SUPPORTS, max_examples=40)
"""
    )
    # One subprocess for both (each pays for importing torch): the plugin's item for the right
    # subject, the fixture, and a user's own one-line checks of a right and a buggy function.
    result = project.runpytest_subprocess(
        "-q", "--backprop-subject", "user_subjects:right", "--backprop-examples", "15"
    )
    result.assert_outcomes(passed=4, failed=1)
    output = result.stdout.str()
    assert "FAILED test_mine.py::test_bug" in output
    assert "SubjectCheckFailed" in output
    assert "bug is wrong on widths" in output and "diagnosis: transpose" in output


def test_a_buggy_subject_fails_with_the_shrunk_case_and_the_diagnosis(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-q", "--backprop-subject", "user_subjects:bug", "--backprop-examples", "40")
    result.assert_outcomes(passed=2, failed=1)
    output = result.stdout.str()
    assert "user_subjects:bug is wrong on widths" in output
    assert "reproduce: Case(spec=Spec(" in output
    assert "diagnosis: transpose" in output
    found = re.search(r"is wrong on widths \[([\d, ]+)\]", output)
    assert found is not None
    widths = [int(w) for w in found.group(1).split(",")]
    # Shrunk: the smallest net where a transposed W cannot even be multiplied is two layers of width ≤ 2.
    assert len(widths) == 3 and max(widths) <= 2


def test_an_unloadable_subject_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("-q", "--backprop-subject", "no_such_user_module:f")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--backprop-subject no_such_user_module:f*cannot import*"])

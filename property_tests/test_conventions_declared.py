"""Conventions declared per loss: on the command line, in check_subject and in SUPPORTS; the first line
of ``verify`` names a defect before any convention and agrees with the exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from oracles.diagnosis import conventions
from property_tests.check import SubjectCheckFailed, check_subject
from reference_impl import Spec, gradients
from reports.cli.app import main

BOOK = "property_tests.corpus.unseen:book_model"


def _verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["verify", *args])
    return code, capsys.readouterr().out.splitlines()


def test_parse_declaration_reads_one_name_or_one_per_loss() -> None:
    assert conventions.parse_declaration("half_sse") == {"*": "half_sse"}
    assert conventions.parse_declaration("mse=mean_elements, bce=mean_elements") == {
        "mse": "mean_elements",
        "bce": "mean_elements",
    }
    assert conventions.parse_declaration({"cce": "sum"}) == {"cce": "sum"}
    spec = Spec((2, 3), ("sigmoid",), "bce")
    assert conventions.declared_factor({"mse": "mean_elements"}, spec, 4) == 1.0  # bce left as the suite's
    assert conventions.declared_factor({"*": "mean_elements"}, spec, 4) == pytest.approx(1 / 3)
    # A bare name applies only where it makes sense: no ½ in front of a cross-entropy.
    assert conventions.declared_name({"*": "half_mse"}, "bce") is None


@pytest.mark.parametrize("text", ["mse=cubic", "foo=mean_elements", "mse=", "bce=half_sse", "mse:mean"])
def test_a_malformed_declaration_is_an_error(text: str) -> None:
    with pytest.raises(conventions.DeclarationError):
        conventions.parse_declaration(text)


def test_the_book_model_heads_with_its_defect_exits_1_and_passes_where_the_declaration_covers_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Conventions and the target defect are the point here; stress cases would add the book's unstable
    # σ division on top (its own test below), so they are switched off.
    code, lines = _verify(capsys, BOOK, "--examples", "12", "--seed", "3", "--stress", "0")
    assert code == 1
    assert lines[0].startswith("diagnosis: target_handling (output layer"), lines[0]
    assert any("--convention mse=mean_elements,bce=mean_elements" in line for line in lines)
    # Following the advice for mse and bce passes them …
    code, lines = _verify(
        capsys,
        BOOK,
        "--examples",
        "12",
        "--losses",
        "mse",
        "bce",
        "--convention",
        "mse=mean_elements,bce=mean_elements",
        "--stress",
        "0",
    )
    assert code == 0, lines
    # … and leaves cce's cases judged by the suite's own convention (its defect still found).
    code, lines = _verify(
        capsys,
        BOOK,
        *("--examples", "12", "--losses", "cce", "mse", "--convention", "mse=mean_elements"),
        *("--seed", "3", "--stress", "0"),
    )
    assert code == 1 and lines[0].startswith("diagnosis: target_handling")


def test_the_book_model_is_also_unstable_under_the_default_stress_share(capsys: pytest.CaptureFixture[str]) -> None:
    # Declared conventions pass its mse/bce gradients on ordinary cases; stress cases expose its σ division.
    code, lines = _verify(
        capsys,
        BOOK,
        "--examples",
        "12",
        "--losses",
        "mse",
        "bce",
        "--convention",
        "mse=mean_elements,bce=mean_elements",
    )
    assert code == 1
    assert lines[0].startswith("diagnosis: unstable"), lines[0]


def test_a_convention_alone_says_on_its_first_line_why_the_exit_code_is_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conv_subject_q.py").write_text(
        "from reference_impl import gradients\n"
        "def mean(spec, params, X, Y):\n"
        "    return {k: v / Y.shape[0] for k, v in gradients(spec, params, X, Y).items()}\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    code, lines = _verify(capsys, "conv_subject_q:mean", "--examples", "6", "--losses", "mse", "bce")
    assert code == 1
    assert lines[0].startswith("diagnosis: convention:mean_elements")
    assert "not a bug, but undeclared" in lines[0] and "--convention mean_elements" in lines[0]


@pytest.mark.parametrize(
    "declaration",
    ["mse=cubic", "foo=mean_elements", "bce=mean_elements"],  # the last applies to none of --losses mse
)
def test_bad_per_loss_declarations_are_usage_errors(capsys: pytest.CaptureFixture[str], declaration: str) -> None:
    code = main(["verify", "reference_impl:gradients", "--losses", "mse", "--convention", declaration])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("backprop-check: error[usage]:")


def _mean_elements_for_squared(spec: dict[str, Any], params: Any, X: np.ndarray, Y: np.ndarray) -> Any:
    grads = gradients(spec, params, X, Y)
    if spec["loss"] != "mse":
        return grads
    return {k: v / Y.shape[0] for k, v in grads.items()}


def test_check_subject_takes_a_per_loss_declaration() -> None:
    options: dict[str, Any] = {"supports": {"losses": ["mse", "bce"]}, "max_examples": 15}
    with pytest.raises(SubjectCheckFailed):  # undeclared: any mse case with two outputs or more fails
        check_subject(_mean_elements_for_squared, supports={"losses": ["mse"]}, max_examples=60)
    check_subject(_mean_elements_for_squared, convention="mse=mean_elements", **options)
    check_subject(_mean_elements_for_squared, convention={"mse": "mean_elements"}, **options)


def test_supports_can_declare_the_convention() -> None:
    class Library:
        SUPPORTS: ClassVar[dict[str, Any]] = {"losses": ["mse", "bce"], "convention": {"mse": "mean_elements"}}

        def gradients(self, spec: dict[str, Any], params: Any, X: np.ndarray, Y: np.ndarray) -> Any:
            return _mean_elements_for_squared(spec, params, X, Y)

    check_subject(Library(), max_examples=15)

"""``backprop-check mutants``: figure, files, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from property_tests.mutation import catalogue as mutants
from property_tests.mutation.catalogue import Mutant
from reports.cli.app import main

FAST = ["--examples", "0", "--shrink-examples", "0", "--no-diagnosis", "--quiet"]


def test_the_matrix_is_printed_and_written_with_the_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mut"
    code = main(
        [
            "mutants",
            *FAST,
            "--shrink-examples",
            "20",
            "--mutants",
            "scale_layer1,relu_prime_at_zero_one,mutates_inputs",
            "--oracles",
            "torch_autograd",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "killed 2/2 bug mutants (100.0 %); 1/1 kink mutants classified as kinks" in printed
    data = json.loads((out / "mutants.json").read_text(encoding="utf-8"))
    assert data["summary"] == {
        "bug_total": 2,
        "bug_killed": 2,
        "kink_total": 1,
        "kink_classified": 1,
        "diagnosed": 0,
        "diagnosed_correctly": 0,
        "ok": True,
    }
    assert data["columns"] == ["torch_autograd", "delta", "protocol", "input_mutation", "repeatability"]
    by_name = {m["name"]: m for m in data["mutants"]}
    assert by_name["mutates_inputs"]["killers"] == ["input_mutation"]
    assert by_name["scale_layer1"]["smallest"]["spec"]["widths"] == [1, 1]
    page = (out / "mutants.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and "killed 2/2 bug mutants" in page


def test_a_surviving_mutant_exits_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    survivor = Mutant("no_op_copy", "an unmutated copy: nothing can kill it", "none")
    monkeypatch.setitem(mutants.MUTANTS, survivor.name, survivor)
    assert main(["mutants", *FAST, "--mutants", "no_op_copy", "--oracles", "torch_autograd"]) == 1
    assert "killed 0/1 bug mutants (0.0 %)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "category"),
    [
        (["--examples", "-1"], "usage"),
        (["--shrink-examples", "-3"], "usage"),
        (["--mutants", "no_such_bug"], "usage"),
        (["--oracles", "no_such_oracle"], "usage"),
        (["--examples", "many"], None),
    ],
)
def test_bad_input_is_one_categorised_line_and_exit_2(
    argv: list[str], category: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mutants", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    if category is not None:
        assert len(err) == 1 and err[0].startswith(f"backprop-check: error[{category}]:")
    else:  # argparse's own usage message, no traceback
        assert "Traceback" not in "\n".join(err)


def test_an_output_path_that_is_a_file_is_an_io_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    assert main(["mutants", *FAST, "--out", str(target)]) == 2
    assert capsys.readouterr().err.startswith("backprop-check: error[io]:")

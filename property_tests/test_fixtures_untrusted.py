"""``fixtures check`` treats both directories as untrusted input: no path escapes, no pickles, and one broken
case never stops the others from getting their verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reports.cli.app import main
from reports.fixtures import check_results, export_fixtures, read_index

COUNT = 4


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fixtures-pristine")
    export_fixtures(directory, COUNT, seed=5)
    return directory


@pytest.fixture
def setup(pristine: Path, tmp_path: Path) -> tuple[Path, Path, list[dict]]:
    """A private copy of the fixtures and right answers for every case (the reference's expected values)."""
    fixtures, answers = tmp_path / "fixtures", tmp_path / "answers"
    fixtures.mkdir()
    answers.mkdir()
    for path in pristine.iterdir():
        (fixtures / path.name).write_bytes(path.read_bytes())
    entries = read_index(fixtures)["cases"]
    for entry in entries:
        with np.load(fixtures / entry["file"]) as data:
            np.savez(answers / entry["file"], **{k: data[k] for k in data.files if k.startswith("grad_")})
    return fixtures, answers, entries


def _rewrite_index(fixtures: Path, change: dict[int, dict]) -> None:
    index = json.loads((fixtures / "index.json").read_text())
    for number, fields in change.items():
        index["cases"][number].update(fields)
    (fixtures / "index.json").write_text(json.dumps(index))


def _check(capsys: pytest.CaptureFixture[str], fixtures: Path, answers: Path) -> tuple[int, list[str], str]:
    code = main(["fixtures", "check", str(fixtures), str(answers)])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_right_answers_pass(setup: tuple[Path, Path, list[dict]], capsys: pytest.CaptureFixture[str]) -> None:
    fixtures, answers, _ = setup
    code, out, err = _check(capsys, fixtures, answers)
    assert code == 0 and out[-1].startswith(f"PASS: {COUNT} of {COUNT} cases right") and err == ""


@pytest.mark.parametrize(
    "escape",
    [
        "../outside.npz",
        "sub/../../outside.npz",
        "ABSOLUTE",  # replaced by an absolute path to a file that exists (the answer itself)
        "..",
        "",
    ],
)
def test_a_file_path_leaving_the_fixture_directory_is_refused_for_that_case_only(
    setup: tuple[Path, Path, list[dict]], capsys: pytest.CaptureFixture[str], escape: str
) -> None:
    fixtures, answers, entries = setup
    outside = fixtures.parent / "outside.npz"
    outside.write_bytes((fixtures / entries[0]["file"]).read_bytes())  # a valid-looking file out there
    if escape == "ABSOLUTE":
        # With an absolute path the expected and the answer would be the same file: it must not pass.
        escape = str((answers / entries[0]["file"]).resolve())
    _rewrite_index(fixtures, {0: {"file": escape}})
    code, out, err = _check(capsys, fixtures, answers)
    assert code == 2
    assert out[0].startswith(f"FAIL {entries[0]['id']} [path]: file "), out
    assert out[-1].startswith(f"FAIL: {COUNT - 1} of {COUNT} cases right"), out  # the others still judged
    assert err.startswith("backprop-check: error[input]: 1 fixture case(s) could not be checked")
    assert len(err.strip().splitlines()) == 1


def test_a_symbolic_link_out_of_the_directory_is_refused(
    setup: tuple[Path, Path, list[dict]], capsys: pytest.CaptureFixture[str]
) -> None:
    fixtures, answers, entries = setup
    target = fixtures / entries[1]["file"]
    kept = fixtures.parent / "elsewhere.npz"
    kept.write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(kept)
    code, out, _ = _check(capsys, fixtures, answers)
    assert code == 2 and any(line.startswith(f"FAIL {entries[1]['id']} [path]") for line in out), out


@pytest.mark.parametrize("bad_id", ["../x", "a/b", "a\\b", "", 7, "fixture-5-0001"])
def test_ids_are_plain_names_and_unique(
    setup: tuple[Path, Path, list[dict]], capsys: pytest.CaptureFixture[str], bad_id: object
) -> None:
    fixtures, answers, _ = setup
    _rewrite_index(fixtures, {2: {"id": bad_id}})  # "fixture-5-0001" duplicates case 1's id
    code, out, _ = _check(capsys, fixtures, answers)
    assert code == 2
    assert any("[id]" in line for line in out), out
    assert out[-1].startswith("FAIL: "), out
    findings = check_results(fixtures, answers)
    assert sum(1 for f in findings if f.passed) >= (COUNT - 1) * 2  # every other case's blocks still judged


def test_a_missing_or_changed_fixture_is_one_categorised_line(
    setup: tuple[Path, Path, list[dict]], capsys: pytest.CaptureFixture[str]
) -> None:
    fixtures, answers, entries = setup
    (fixtures / entries[0]["file"]).unlink()
    changed = fixtures / entries[1]["file"]
    content = bytearray(changed.read_bytes())
    content[len(content) // 2] ^= 0xFF  # one flipped byte: the SHA-256 no longer matches
    changed.write_bytes(bytes(content))
    code, out, err = _check(capsys, fixtures, answers)
    assert code == 2
    assert any(line.startswith(f"FAIL {entries[0]['id']} [fixture-missing]:") for line in out), out
    assert any(line.startswith(f"FAIL {entries[1]['id']} [fixture-changed]:") for line in out), out
    assert "Errno" not in "\n".join(out) + err
    assert out[-1].startswith(f"FAIL: {COUNT - 2} of {COUNT} cases right")


def _object_array_npz(path: Path, marker: Path) -> None:
    """An .npz whose grad_W1 is an object array that would create ``marker`` if it were ever unpickled."""

    class Trap:
        def __reduce__(self) -> tuple[object, tuple[str, str]]:
            return (Path.write_text, (str(marker), "unpickled!"))

    data = np.empty((1,), dtype=object)
    data[0] = Trap()
    with path.open("wb") as handle:
        np.savez(handle, grad_W1=data)
    assert b"write_text" in path.read_bytes()  # the payload really is a pickle that would run


@pytest.mark.parametrize("damage", ["empty", "npy", "object", "not_zip", "truncated_zip"])
def test_a_broken_answer_fails_its_case_with_a_reason_and_the_rest_are_judged(
    setup: tuple[Path, Path, list[dict]], capsys: pytest.CaptureFixture[str], tmp_path: Path, damage: str
) -> None:
    fixtures, answers, entries = setup
    broken = answers / entries[1]["file"]
    marker = tmp_path / "pickle-ran"
    if damage == "empty":
        broken.write_bytes(b"")
    elif damage == "npy":
        with broken.open("wb") as handle:
            np.save(handle, np.zeros((2, 2)))
    elif damage == "object":
        _object_array_npz(broken, marker)
    elif damage == "not_zip":
        broken.write_text("these are not the gradients you are looking for")
    else:
        broken.write_bytes(broken.read_bytes()[:40])
    code, out, err = _check(capsys, fixtures, answers)
    assert code == 1, (out, err)
    assert out[0].startswith(f"FAIL {entries[1]['id']} [unreadable]: "), out
    assert out[-1].startswith(f"FAIL: {COUNT - 1} of {COUNT} cases right"), out
    assert err == "" and not marker.exists()
    assert "allow_pickle" not in "\n".join(out)


@pytest.mark.parametrize("rtol", ["-1", "0", "nan", "inf"])
def test_rtol_must_be_a_positive_number(
    setup: tuple[Path, Path, list[dict]], capsys: pytest.CaptureFixture[str], rtol: str
) -> None:
    fixtures, answers, _ = setup
    assert main(["fixtures", "check", str(fixtures), str(answers), "--rtol", rtol]) == 2
    err = capsys.readouterr().err
    assert err.startswith("backprop-check: error[usage]: --rtol must be a positive number")


def test_an_index_without_cases_is_an_input_error(
    setup: tuple[Path, Path, list[dict]], capsys: pytest.CaptureFixture[str]
) -> None:
    fixtures, answers, _ = setup
    index = json.loads((fixtures / "index.json").read_text())
    (fixtures / "index.json").write_text(json.dumps({**index, "cases": []}))
    assert main(["fixtures", "check", str(fixtures), str(answers)]) == 2
    assert "lists no cases" in capsys.readouterr().err

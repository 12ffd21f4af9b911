"""Golden fixtures for implementations that cannot be imported (C++, Rust, JavaScript, GPU kernels).

``export_fixtures`` writes, per case, ``<id>.npz`` with ``X`` ``(n_0, m)``, ``Y`` ``(n_L, m)``,
``W1``/``b1``/… (the parameters), ``grad_W1``/``grad_b1``/… (∂L/∂θ) and ``loss`` (0-d), computed by the
reference and confirmed by an independent oracle, plus ``index.json`` (schema name and version, the
layout and loss definitions, one entry per case with its spec and a SHA-256 of its file).

An external program answers by writing ``RESULTS/<id>.npz`` holding ``grad_W1``, ``grad_b1``, … (and
optionally ``loss``) in the same layout; ``check_results`` compares them entry by entry.

Both directories come from outside and are treated as untrusted: a ``file`` in the index must be a plain
name inside the fixture directory (no separators, no ``..``, not absolute, no symlink out), ids are plain
names too, nothing is ever unpickled, and whatever is wrong with one case (a missing or changed fixture,
an empty, non-``.npz`` or object-array answer) is a categorised finding for that case alone: the other
cases still get their verdicts.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from oracles.diagnosis.family import Family, family_cases
from oracles.registry import get_oracle
from oracles.verdicts.blocks import compare_block
from oracles.verdicts.compare import compare_to_oracle
from oracles.verdicts.tolerances import Tolerance
from reference_impl import mlp

SCHEMA = "backprop-check/fixtures"
SCHEMA_VERSION = 1
INDEX_FILE = "index.json"
LAYOUT = (
    "column per example: X (n_0, m), Y (n_L, m); W{l} (n_l, n_{l-1}), b{l} (n_l, 1); float64; "
    "gradients as grad_<name>, the loss as a 0-d 'loss'"
)
LOSS_DEFINITIONS = {
    "mse": "(1/m) Σ_i ‖y_i − ŷ_i‖² (sum over output units, mean over the batch)",
    "half_sse": "½ Σ (y − ŷ)² over every entry, no 1/m",
    "bce": "−(1/m) Σ [y log ŷ + (1 − y) log(1 − ŷ)] (sigmoid output)",
    "cce": "−(1/m) Σ y log ŷ (softmax output over units, per example)",
}
DEFAULT_RTOL = 1e-10  # another language's float64 sums in another order: ~1e-15, with room for depth


class FixtureError(Exception):
    """A fixture directory or results directory that cannot be read as this schema (category: input)."""


# Findings about the fixture side (the check could not be made: bad input) rather than about the answer.
FIXTURE_CATEGORIES = frozenset({"index", "id", "path", "fixture-missing", "fixture-changed", "fixture-unreadable"})
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


@dataclass(frozen=True)
class Finding:
    """One comparison of a result block with its fixture; ``passed`` False names what is wrong.

    ``category`` (when failed): ``mismatch``, ``shape``, ``dtype``, ``nonfinite``, ``missing``, ``unreadable``
    for the answer; one of :data:`FIXTURE_CATEGORIES` when the fixture itself could not be used.
    """

    case_id: str
    parameter: str | None
    passed: bool
    message: str
    category: str = ""

    @property
    def fixture_problem(self) -> bool:
        return not self.passed and self.category in FIXTURE_CATEGORIES

    def line(self) -> str:
        where = f"{self.case_id} {self.parameter}" if self.parameter else self.case_id
        tag = f" [{self.category}]" if self.category and not self.passed else ""
        return f"{'PASS' if self.passed else 'FAIL'} {where}{tag}: {self.message}"


class _CaseProblem(Exception):
    """One case cannot be compared; ``category`` says why (the other cases go on)."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fixture_id(seed: int, number: int) -> str:
    """The id (and file stem) of the ``number``-th fixture exported with ``seed``."""
    return f"fixture-{seed}-{number:04d}"


def export_files(seed: int, count: int) -> list[str]:
    """Every file name ``export_fixtures(..., count, seed=seed)`` writes (to refuse overwriting any)."""
    return [INDEX_FILE, *(f"{fixture_id(seed, number)}.npz" for number in range(count))]


def export_fixtures(
    directory: str | Path, count: int, *, seed: int = 0, family: Family | None = None, oracle: str = "torch_autograd"
) -> dict[str, Any]:
    """Write ``count`` cases and ``index.json`` to ``directory``; returns the index."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    confirm = get_oracle(oracle)
    entries: list[dict[str, Any]] = []
    for number, drawn in enumerate(family_cases(family or Family(), seed, count, stress_share=0.0)):
        case = replace(drawn, label=fixture_id(seed, number))
        params, X, Y = case.arrays()
        _, backward, loss = mlp.run(case.spec, params, X, Y)
        records = compare_to_oracle(case, "reference", backward.grads, confirm)
        if any(r.failed for r in records):
            raise FixtureError(f"{case.id}: the reference and {oracle} disagree ({records[0].summary()})")
        arrays = {"X": X, "Y": Y, "loss": np.asarray(loss)}
        arrays.update(params)
        arrays.update({f"grad_{name}": grad for name, grad in backward.grads.items()})
        path = target / f"{case.id}.npz"
        np.savez(path, **arrays)  # type: ignore[arg-type]
        entries.append(
            {
                "id": case.id,
                "file": path.name,
                "sha256": _sha256(path),
                "spec": case.spec.to_dict(),
                "batch": case.batch,
                "parameters": list(case.spec.parameter_names),
                "loss": loss,
                "confirmed_by": oracle,
                "case": repr(case),
            }
        )
    index = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "layout": LAYOUT,
        "losses": LOSS_DEFINITIONS,
        "answer": "write RESULTS/<file> (.npz) with grad_<name> for every parameter, optionally loss",
        "cases": entries,
    }
    (target / INDEX_FILE).write_text(json.dumps(index, indent=2, ensure_ascii=False), encoding="utf-8")
    return index


def read_index(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no fixture index (run 'backprop-check fixtures export' first)")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FixtureError(f"{path}: not JSON ({exc})") from None
    if not isinstance(index, dict) or index.get("schema") != SCHEMA:
        raise FixtureError(f"{path}: not a {SCHEMA} index")
    if index.get("schema_version") != SCHEMA_VERSION:
        raise FixtureError(
            f"{path}: schema version {index.get('schema_version')!r}, this backprop-check reads {SCHEMA_VERSION}"
        )
    return index


def _load_npz(path: Path, category: str = "unreadable") -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, or :class:`_CaseProblem` saying in one line why it is not one.

    Never unpickles: an object array is refused, not loaded.
    """
    try:
        size = path.stat().st_size
        if size == 0:
            raise _CaseProblem(category, f"{path.name} is empty (0 bytes)")
        with path.open("rb") as handle:
            head = handle.read(6)
        if head == b"\x93NUMPY":
            raise _CaseProblem(category, f"{path.name} is a single .npy array, not an .npz archive (use numpy.savez)")
        if not zipfile.is_zipfile(path):
            raise _CaseProblem(category, f"{path.name} is not an .npz archive (a zip of .npy arrays)")
        with np.load(path, allow_pickle=False) as data:
            arrays: dict[str, np.ndarray] = {}
            for key in data.files:
                try:
                    arrays[key] = np.asarray(data[key])
                except ValueError as exc:
                    if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                        raise _CaseProblem(
                            category, f"{path.name}: {key} is an object array (pickled data is never loaded)"
                        ) from None
                    raise
            return arrays
    except _CaseProblem:
        raise
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise _CaseProblem(category, f"{path.name} is unreadable: {type(exc).__name__}: {exc}") from None


def _inside(directory: Path, name: Any, what: str) -> Path:
    """``directory / name`` when ``name`` is a plain file name that stays inside ``directory``."""
    if not isinstance(name, str) or not name or not _PLAIN_NAME.fullmatch(name) or name in (".", ".."):
        raise _CaseProblem("path", f"{what} {name!r} is not a plain file name inside the directory")
    path = directory / name
    try:
        resolved = path.resolve()
    except OSError as exc:
        raise _CaseProblem("path", f"{what} {name!r} cannot be resolved: {exc}") from None
    if resolved.parent != directory.resolve():
        raise _CaseProblem("path", f"{what} {name!r} leads outside {directory} (a symbolic link?)")
    return path


def _compare(case_id: str, name: str, got: np.ndarray, expected: np.ndarray, rtol: float) -> Finding:
    if got.shape != expected.shape:
        return Finding(case_id, name, False, f"shape {got.shape}, expected {expected.shape}", "shape")
    if not np.issubdtype(got.dtype, np.number) or np.iscomplexobj(got):
        return Finding(case_id, name, False, f"dtype {got.dtype}, expected real floats", "dtype")
    got64 = got.astype(np.float64)
    if not np.all(np.isfinite(got64)):
        return Finding(case_id, name, False, "contains NaN or inf", "nonfinite")
    block, _ = compare_block(name, got64, expected, Tolerance(rtol, 1e-300))
    where = "[" + ",".join(str(i) for i in block.index) + "]"
    detail = (
        f"worst at {where}: got {block.subject_value!r}, expected {block.oracle_value!r} "
        f"(abs err {block.abs_err:.3g}, rel err {block.rel_err:.3g}, tolerance {block.tolerance:.3g})"
    )
    return Finding(case_id, name, block.passed, detail, "" if block.passed else "mismatch")


def _entry_fields(entry: Any, seen: set[str]) -> tuple[str, Any, list[str], str]:
    """``(id, file, parameters, sha256)`` of one index entry, validated; :class:`_CaseProblem` otherwise."""
    if not isinstance(entry, dict):
        raise _CaseProblem("index", f"index entry is {type(entry).__name__}, expected an object")
    case_id = entry.get("id")
    if not isinstance(case_id, str) or not _PLAIN_NAME.fullmatch(case_id):
        raise _CaseProblem("id", f"id {case_id!r} is not a plain name (letters, digits, '_', '.', '-', '+')")
    if case_id in seen:
        raise _CaseProblem("id", f"id {case_id!r} appears twice in the index")
    parameters, sha = entry.get("parameters"), entry.get("sha256")
    if not isinstance(parameters, list) or not all(isinstance(p, str) and _PLAIN_NAME.fullmatch(p) for p in parameters):
        raise _CaseProblem("index", "'parameters' must be a list of parameter names")
    if not isinstance(sha, str):
        raise _CaseProblem("index", "'sha256' is missing")
    return case_id, entry.get("file"), parameters, sha


def _check_case(
    fixtures: Path, results: Path, case_id: str, file: Any, parameters: list[str], sha: str, rtol: float
) -> list[Finding]:
    fixture_path = _inside(fixtures, file, "file")
    try:
        content = fixture_path.read_bytes()
    except FileNotFoundError:
        raise _CaseProblem("fixture-missing", f"fixture {fixture_path.name} is missing from {fixtures}") from None
    except OSError as exc:
        raise _CaseProblem("fixture-unreadable", f"fixture {fixture_path.name}: {exc.strerror or exc}") from None
    if hashlib.sha256(content).hexdigest() != sha:
        raise _CaseProblem("fixture-changed", f"fixture {fixture_path.name} changed since export (SHA-256 differs)")
    expected = _load_npz(fixture_path, "fixture-unreadable")
    answer_path = _inside(results, fixture_path.name, "answer")
    if not answer_path.is_file():
        return [Finding(case_id, None, False, f"no results file {answer_path.name}", "missing")]
    answer = _load_npz(answer_path)
    findings: list[Finding] = []
    for name in parameters:
        key = f"grad_{name}"
        if key not in expected:
            raise _CaseProblem("fixture-unreadable", f"fixture {fixture_path.name} has no {key}")
        if key not in answer:
            findings.append(Finding(case_id, name, False, f"{key} missing from {answer_path.name}", "missing"))
            continue
        findings.append(_compare(case_id, name, answer[key], expected[key], rtol))
    if "loss" in answer and "loss" in expected:
        findings.append(_compare(case_id, "loss", answer["loss"], expected["loss"], rtol))
    return findings


def check_results(fixtures: str | Path, results: str | Path, *, rtol: float = DEFAULT_RTOL) -> list[Finding]:
    """Compare every ``RESULTS/<file>`` with its fixture; one finding per parameter (and loss).

    A case that cannot be compared gets one failed finding with its category; the rest still run.
    """
    index = read_index(fixtures)
    fixtures_dir, results_dir = Path(fixtures), Path(results)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: results directory not found")
    entries = index.get("cases")
    if not isinstance(entries, list):
        raise FixtureError(f"{fixtures_dir / INDEX_FILE}: 'cases' must be a list")
    findings: list[Finding] = []
    seen: set[str] = set()
    for number, entry in enumerate(entries):
        label = f"entry {number}"
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and _PLAIN_NAME.fullmatch(entry["id"]):
            label = entry["id"]
        try:
            case_id, file, parameters, sha = _entry_fields(entry, seen)
            seen.add(case_id)
            label = case_id
            findings.extend(_check_case(fixtures_dir, results_dir, case_id, file, parameters, sha, rtol))
        except _CaseProblem as problem:
            findings.append(Finding(label, None, False, str(problem), problem.category))
    return findings

"""Golden fixtures for implementations that cannot be imported (C++, Rust, JavaScript, GPU kernels).

``export_fixtures`` writes, per case, ``<id>.npz`` with ``X`` ``(n_0, m)``, ``Y`` ``(n_L, m)``,
``W1``/``b1``/… (the parameters), ``grad_W1``/``grad_b1``/… (∂L/∂θ) and ``loss`` (0-d), computed by the
reference and confirmed by an independent oracle, plus ``index.json`` (schema name and version, the
layout and loss definitions, one entry per case with its spec and a SHA-256 of its file).

An external program answers by writing ``RESULTS/<id>.npz`` holding ``grad_W1``, ``grad_b1``, … (and
optionally ``loss``) in the same layout; ``check_results`` compares them entry by entry.
"""

from __future__ import annotations

import hashlib
import json
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


@dataclass(frozen=True)
class Finding:
    """One comparison of a result block with its fixture; ``passed`` False names what is wrong."""

    case_id: str
    parameter: str | None
    passed: bool
    message: str

    def line(self) -> str:
        where = f"{self.case_id} {self.parameter}" if self.parameter else self.case_id
        return f"{'PASS' if self.passed else 'FAIL'} {where}: {self.message}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_fixtures(
    directory: str | Path, count: int, *, seed: int = 0, family: Family | None = None, oracle: str = "torch_autograd"
) -> dict[str, Any]:
    """Write ``count`` cases and ``index.json`` to ``directory``; returns the index."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    confirm = get_oracle(oracle)
    entries: list[dict[str, Any]] = []
    for number, drawn in enumerate(family_cases(family or Family(), seed, count, stress_share=0.0)):
        case = replace(drawn, label=f"fixture-{seed}-{number:04d}")
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


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: np.asarray(data[key]) for key in data.files}
    except (OSError, ValueError) as exc:
        raise FixtureError(f"{path}: unreadable .npz ({exc})") from None


def _compare(case_id: str, name: str, got: np.ndarray, expected: np.ndarray, rtol: float) -> Finding:
    if got.shape != expected.shape:
        return Finding(case_id, name, False, f"shape {got.shape}, expected {expected.shape}")
    if not np.issubdtype(got.dtype, np.number) or np.iscomplexobj(got):
        return Finding(case_id, name, False, f"dtype {got.dtype}, expected real floats")
    got64 = got.astype(np.float64)
    if not np.all(np.isfinite(got64)):
        return Finding(case_id, name, False, "contains NaN or inf")
    block, _ = compare_block(name, got64, expected, Tolerance(rtol, 1e-300))
    where = "[" + ",".join(str(i) for i in block.index) + "]"
    detail = (
        f"worst at {where}: got {block.subject_value!r}, expected {block.oracle_value!r} "
        f"(abs err {block.abs_err:.3g}, rel err {block.rel_err:.3g}, tolerance {block.tolerance:.3g})"
    )
    return Finding(case_id, name, block.passed, detail)


def check_results(fixtures: str | Path, results: str | Path, *, rtol: float = DEFAULT_RTOL) -> list[Finding]:
    """Compare every ``RESULTS/<file>`` with its fixture; one finding per parameter (and loss)."""
    index = read_index(fixtures)
    results_dir = Path(results)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: results directory not found")
    findings: list[Finding] = []
    for entry in index["cases"]:
        fixture_path = Path(fixtures) / entry["file"]
        if _sha256(fixture_path) != entry["sha256"]:
            raise FixtureError(f"{fixture_path}: changed since export (SHA-256 differs from the index)")
        expected = _load_npz(fixture_path)
        answer_path = results_dir / entry["file"]
        if not answer_path.is_file():
            findings.append(Finding(entry["id"], None, False, f"no results file {answer_path.name}"))
            continue
        answer = _load_npz(answer_path)
        for name in entry["parameters"]:
            key = f"grad_{name}"
            if key not in answer:
                findings.append(Finding(entry["id"], name, False, f"{key} missing from {answer_path.name}"))
                continue
            findings.append(_compare(entry["id"], name, answer[key], expected[key], rtol))
        if "loss" in answer:
            findings.append(_compare(entry["id"], "loss", answer["loss"], expected["loss"], rtol))
    return findings

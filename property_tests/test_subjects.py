"""Hostile subjects: every way a gradients function can misbehave gets its category, never a crash."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from oracles.subjects import (
    Subject,
    SubjectLoadError,
    call_subject,
    invoke,
    load_subject,
    reference_subject,
    subject_supports,
)
from reference_impl import Case, Spec, gradients

CASE = Case(Spec((3, 4, 2), ("tanh", "sigmoid"), "mse"), batch=5, seed=3)


def _raises(spec: Any, params: Any, X: Any, Y: Any) -> Any:
    raise ZeroDivisionError("my backprop divided by zero")


def _exits(spec: Any, params: Any, X: Any, Y: Any) -> Any:
    sys.exit(3)


def _nan(spec: Any, params: Any, X: Any, Y: Any) -> Any:
    grads = gradients(spec, params, X, Y)
    grads["W2"][0, 0] = np.nan
    return grads


def _inf(spec: Any, params: Any, X: Any, Y: Any) -> Any:
    grads = gradients(spec, params, X, Y)
    grads["b1"][1, 0] = np.inf
    return grads


def _extra_key(spec: Any, params: Any, X: Any, Y: Any) -> Any:
    return {**gradients(spec, params, X, Y), "W3": np.zeros((1, 1))}


def _missing_key(spec: Any, params: Any, X: Any, Y: Any) -> Any:
    return {k: v for k, v in gradients(spec, params, X, Y).items() if k != "W2"}


def _transposed(spec: Any, params: Any, X: Any, Y: Any) -> Any:
    grads = gradients(spec, params, X, Y)
    return {**grads, "W1": grads["W1"].T}


def _strings(spec: Any, params: Any, X: Any, Y: Any) -> Any:
    return {k: v.astype(str) for k, v in gradients(spec, params, X, Y).items()}


def _scalar_bias(spec: Any, params: Any, X: Any, Y: Any) -> Any:
    grads = gradients(spec, params, X, Y)
    return {**grads, "b1": float(grads["b1"].sum())}


def _not_a_dict(spec: Any, params: Any, X: Any, Y: Any) -> Any:
    return [gradients(spec, params, X, Y)]


def _mutates(spec: Any, params: Any, X: Any, Y: Any) -> Any:
    grads = gradients(spec, params, X, Y)
    params["W1"] -= 0.1 * grads["W1"]  # a training step fused into the call
    return grads


def _mutates_X(spec: Any, params: Any, X: Any, Y: Any) -> Any:
    X *= 2.0
    return gradients(spec, params, X / 2.0, Y)


def _hangs(spec: Any, params: Any, X: Any, Y: Any) -> Any:
    while True:
        time.sleep(0.01)


def _dies(spec: Any, params: Any, X: Any, Y: Any) -> Any:
    os._exit(7)


class _Accumulates:
    """Gradient buffers never zeroed: the second identical call returns twice the first."""

    def __init__(self) -> None:
        self.total: dict[str, np.ndarray] | None = None

    def gradients(self, spec: Any, params: Any, X: Any, Y: Any) -> Any:
        grads = gradients(spec, params, X, Y)
        self.total = grads if self.total is None else {k: self.total[k] + grads[k] for k in grads}
        return {k: v.copy() for k, v in self.total.items()}


@pytest.mark.parametrize(
    ("fn", "category", "fragment"),
    [
        (_raises, "exception", "ZeroDivisionError: my backprop divided by zero"),
        (_exits, "exception", "SystemExit"),
        (_nan, "nonfinite", "W2"),
        (_inf, "nonfinite", "b1"),
        (_extra_key, "missing", "unexpected keys ['W3']"),
        (_missing_key, "missing", "W2"),
        (_transposed, "shape", "W1 has shape (3, 4), expected (4, 3)"),
        (_strings, "dtype", "expected real floats"),
        (_scalar_bias, "shape", "b1 is a scalar"),
        (_not_a_dict, "shape", "returned list"),
        (_mutates, "mutation", "['W1']"),
        (_mutates_X, "mutation", "['X']"),
    ],
)
def test_each_hostile_subject_gets_its_category(fn: Any, category: str, fragment: str) -> None:
    call = call_subject(Subject(fn.__name__, fn), CASE)
    assert call.grads is None
    assert call.failure is not None
    assert call.failure.category == category
    assert fragment in call.failure.message


def test_the_callers_arrays_survive_a_mutating_subject() -> None:
    before = CASE.params["W1"].copy()
    call_subject(Subject("mutates", _mutates), CASE)
    np.testing.assert_array_equal(CASE.params["W1"], before)


def test_two_identical_calls_that_differ_are_nondeterministic() -> None:
    subject = _Accumulates()
    call = call_subject(Subject("accumulates", subject.gradients), CASE, repeat=True)
    assert call.failure is not None and call.failure.category == "nondeterminism"
    # Without the repeat, the first call alone looks right: the check is what catches it.
    assert call_subject(Subject("fresh", _Accumulates().gradients), CASE).failure is None


def test_reduction_order_noise_is_not_nondeterminism() -> None:
    rng = np.random.default_rng(0)

    def noisy(spec: Any, params: Any, X: Any, Y: Any) -> Any:
        return {k: v * (1.0 + 1e-15 * rng.standard_normal()) for k, v in gradients(spec, params, X, Y).items()}

    assert call_subject(Subject("noisy", noisy), CASE, repeat=True).failure is None


def test_a_hanging_subject_times_out_and_its_process_is_killed() -> None:
    start = time.perf_counter()
    call = call_subject(Subject("hangs", _hangs), CASE, timeout=0.5)
    assert call.failure is not None and call.failure.category == "timeout"
    assert time.perf_counter() - start < 30  # generous: only proves the call was abandoned, not how fast
    assert not multiprocessing.active_children()


def test_a_worker_that_dies_is_a_crash_not_a_hang() -> None:
    call = call_subject(Subject("dies", _dies), CASE, timeout=30)
    assert call.failure is not None and call.failure.category == "crash"
    assert "exited with status 7" in call.failure.message


def test_a_right_closure_runs_in_the_worker_unchanged() -> None:
    scale = 1.0  # a closure: not picklable by reference, fine under fork

    def closure(spec: Any, params: Any, X: Any, Y: Any) -> Any:
        return {k: scale * v for k, v in gradients(spec, params, X, Y).items()}

    call = call_subject(Subject("closure", closure), CASE, timeout=30, repeat=True)
    assert call.failure is None and call.grads is not None
    params, X, Y = CASE.arrays()
    for name, value in gradients(CASE.spec, params, X, Y).items():
        np.testing.assert_array_equal(call.grads[name], value)


def test_protocol_faults_are_found_inside_the_worker_too() -> None:
    mutated = call_subject(Subject("m", _mutates), CASE, timeout=30).failure
    assert mutated is not None and mutated.category == "mutation"
    raw = invoke(Subject("raises", _raises), CASE.spec, *CASE.arrays(), timeout=30)
    assert raw.failure is not None and "ZeroDivisionError" in raw.failure.message


def test_the_reference_passes_every_guard() -> None:
    call = call_subject(reference_subject(), CASE, repeat=True)
    assert call.failure is None


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> str:
    (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_load_subject_reports_every_import_problem_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = _module(tmp_path, monkeypatch, "broken_subject_mod", "raise RuntimeError('import-time crash')\n")
    plain = _module(tmp_path, monkeypatch, "plain_subject_mod", "value = 3\n")
    for target, fragment in [
        ("no_colon", "MODULE:ATTR"),
        ("no_such_module_xyz:f", "cannot import"),
        (f"{broken}:f", "RuntimeError: import-time crash"),
        (f"{plain}:missing", "has no attribute"),
        (f"{plain}:value", "neither callable"),
    ]:
        with pytest.raises(SubjectLoadError, match=fragment) as info:
            load_subject(target)
        assert "\n" not in str(info.value)


def test_supports_is_read_from_the_object_first_then_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = (
        "SUPPORTS = {'losses': ['mse']}\n"
        "def gradients(spec, params, X, Y):\n    return {}\n"
        "class Obj:\n    SUPPORTS = {'losses': ['bce']}\n    def gradients(self, *a):\n        return {}\n"
        "obj = Obj()\n"
    )
    name = _module(tmp_path, monkeypatch, "supports_subject_mod", source)
    assert subject_supports(f"{name}:gradients") == {"losses": ["mse"]}
    assert subject_supports(f"{name}:obj") == {"losses": ["bce"]}

"""A case checked in two parts (the main process's light oracles, then a worker's) has the records of a
case checked in one: the same records, order, loss judge, entry values and faults; and the light part
imports neither torch nor SymPy."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from oracles.registry import LIGHT_ORACLES, all_oracles
from oracles.subjects import Subject
from property_tests.mutation import planted
from reference_impl import mlp
from reports import casework
from reports.casework import CampaignConfig, early_part, planned_case

from .test_campaign import comparable


def _deltas(spec: Any, params: Any, X: Any, Y: Any) -> tuple[Any, ...]:
    return tuple(mlp.run(spec, params, X, Y)[1].deltas)


def _wrong_shape(spec: Any, params: Any, X: Any, Y: Any) -> dict[str, Any]:
    grads = mlp.gradients(spec, params, X, Y)
    grads["W1"] = grads["W1"].T.copy() if grads["W1"].shape[0] != grads["W1"].shape[1] else grads["W1"][:1]
    return grads


SUBJECTS: dict[str, Callable[[], Subject]] = {
    "correct, with δ and a loss companion": lambda: Subject("with-loss", mlp.gradients, mlp.loss, _deltas),
    "a planted bug (failing cases: entry values)": lambda: Subject("planted", planted.scale_layer1, mlp.loss),
    "a protocol fault (wrong shape)": lambda: Subject("shape", _wrong_shape),
    "a wrong loss companion": lambda: Subject("bad-loss", mlp.gradients, lambda *a: 2 * mlp.loss(*a)),
}


# Every registered oracle (light ones first, by name), and a user's order with heavy ones first.
ORACLE_ORDERS = (None, ("torch_autograd", "complex_step", "sympy_exact", "finite_diff"))


@pytest.mark.parametrize("oracles", ORACLE_ORDERS)
@pytest.mark.parametrize("kind", sorted(SUBJECTS))
def test_two_parts_give_the_records_of_one(
    kind: str, oracles: tuple[str, ...] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(casework._SUBJECTS, ("under-test", None), SUBJECTS[kind]())
    config = CampaignConfig.create(
        seed=3, examples=40, subject="under-test", oracles=oracles, subsample={"sympy_exact": 5}
    )
    split = 0
    for index in range(config.examples):
        whole, skipped = planned_case(config, index)
        early = early_part(config, index)
        split += early is not None
        parts, skipped_parts = planned_case(config, index, early=early)
        assert [(r.oracle, r.check) for r in parts] == [(r.oracle, r.check) for r in whole], index
        assert comparable(parts) == comparable(whole), index
        assert skipped_parts == skipped
    assert split > 30  # the light oracles support nearly every case: the two-part route was exercised


def test_the_two_part_route_reaches_failures_and_loss_records(monkeypatch: pytest.MonkeyPatch) -> None:
    # The comparison above would pass vacuously if no record failed or no loss check ran: make sure.
    monkeypatch.setitem(casework._SUBJECTS, ("under-test", None), SUBJECTS["a wrong loss companion"]())
    config = CampaignConfig.create(seed=3, examples=6, subject="under-test")
    records = [r for i in range(6) for r in planned_case(config, i, early=early_part(config, i))[0]]
    assert any(r.check == "loss" and r.failed for r in records)
    planted_bug = SUBJECTS["a planted bug (failing cases: entry values)"]()
    monkeypatch.setitem(casework._SUBJECTS, ("under-test", None), planted_bug)
    records = [r for i in range(6) for r in planned_case(config, i, early=early_part(config, i))[0]]
    entry = next(r.extra["entry_values"] for r in records if r.failed and "entry_values" in r.extra)
    assert {"torch_autograd", "complex_step"} <= set(entry["oracles"])  # both parts' oracles at the worst entry


def test_an_early_part_that_disagrees_with_the_plan_is_not_trusted() -> None:
    # A light oracle the worker's plan does not ask (another policy) is computed as the plan says.
    config = CampaignConfig.create(seed=2, examples=3)
    early = early_part(config, 0)
    assert early is not None
    narrower = CampaignConfig.create(seed=2, examples=3, oracles=("torch_autograd", "finite_diff"))
    records, _ = planned_case(narrower, 0, early=early)
    assert [r.oracle for r in records] == ["torch_autograd"] * 2 + ["finite_diff"]  # the plan's order
    assert comparable(records) == comparable(planned_case(narrower, 0)[0])


def test_light_oracles_are_registered_and_import_neither_torch_nor_sympy() -> None:
    assert set(LIGHT_ORACLES) <= set(all_oracles())
    script = (
        "import sys\n"
        "from reports.casework import CampaignConfig, early_part\n"
        "config = CampaignConfig.create(seed=1, examples=30)\n"
        "parts = [early_part(config, i) for i in range(30)]\n"
        "assert sum(p is not None for p in parts) > 20\n"
        "heavy = sorted(m for m in ('torch', 'sympy', 'symengine', 'mpmath') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"the light part imported {done.stdout.strip()}"


def test_an_early_part_survives_pickling_for_the_trip_to_a_worker() -> None:
    import pickle

    config = CampaignConfig.create(seed=1, examples=2)
    early = early_part(config, 1)
    assert early is not None
    again = pickle.loads(pickle.dumps(early))
    assert again.oracles == early.oracles and len(again.records) == len(early.records)
    for name, output in early.outputs.items():
        for key, value in output.grads.items():
            np.testing.assert_array_equal(again.outputs[name].grads[key], value)

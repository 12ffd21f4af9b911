"""Every activation and loss is covered by every oracle, or explicitly declared unsupported."""

from __future__ import annotations

import pytest

from oracles import all_oracles
from oracles.subjects import reference_subject
from oracles.verdicts.compare import check_case
from reference_impl import Case, Spec
from reference_impl.spec import ACTIVATION_NAMES, LOSS_NAMES, LOSS_OUTPUT_ACTIVATION

ORACLES = sorted(all_oracles())


def _small_spec_using(name: str) -> Spec:
    if name in LOSS_NAMES:
        output = LOSS_OUTPUT_ACTIVATION[name] or "tanh"
        return Spec((2, 3, 2), ("tanh", output), name)
    if name == "softmax":
        return Spec((2, 3, 3), ("tanh", "softmax"), "cce")
    return Spec((2, 3, 2), (name, "identity"), "mse")


def test_registry_has_the_autograd_oracle() -> None:
    assert "torch_autograd" in ORACLES


@pytest.mark.parametrize("oracle_name", ORACLES)
@pytest.mark.parametrize("name", ACTIVATION_NAMES + LOSS_NAMES)
def test_every_name_is_covered_or_declared(oracle_name: str, name: str) -> None:
    oracle = all_oracles()[oracle_name]
    if name in oracle.unsupported:
        assert oracle.unsupported[name], "an unsupported name needs a reason"
        assert not oracle.supports(_small_spec_using(name))
        return
    case = Case(_small_spec_using(name), batch=3, seed=11)
    assert oracle.supports(case.spec), oracle.why_unsupported(case.spec)
    records = check_case(case, reference_subject(), [oracle_name])
    assert records and not any(r.failed for r in records), "\n".join(r.explain() for r in records)


@pytest.mark.parametrize("oracle_name", ORACLES)
def test_oracles_follow_the_subject_protocol(oracle_name: str) -> None:
    case = Case(Spec((3, 2, 4), ("sigmoid", "identity"), "mse"), batch=2, seed=5)
    params, X, Y = case.arrays()
    grads = all_oracles()[oracle_name].gradients(case.spec.to_dict(), params, X, Y)
    assert {k: v.shape for k, v in grads.items()} == {k: v.shape for k, v in params.items()}

"""The instruction tape (oracles.exact_tape) gives the bits of the printed-source route, and agrees with torch."""

from __future__ import annotations

import pytest
import symengine as se
from mpmath import libmp

from oracles import sympy_exact, torch_autograd
from oracles.exact_tape import build_tape
from oracles.verdicts.compare import records_from_output
from oracles.verdicts.tolerances import tolerance_for
from reference_impl.case import Case
from reference_impl.generate import case_from_index
from reference_impl.spec import Spec

SMALL = 1500  # forward-mode size: keeps the slow printed route to a few seconds in all


def _inputs(case: Case, k: int) -> list[tuple[object, ...]]:
    params, X, Y = case.arrays()
    theta = [v for name in case.spec.parameter_names for v in sympy_exact._exact(params[name])]
    zeros = [libmp.fzero] * sum(case.spec.widths[1:])
    return theta + sympy_exact._exact(X[:, k]) + sympy_exact._exact(Y[:, k]) + zeros


def _small_cases(seed: int, count: int) -> list[Case]:
    found: list[Case] = []
    index = 0
    while len(found) < count:
        case = case_from_index(seed, index)
        if sympy_exact.ORACLE.supports(case.spec) and sympy_exact.forward_mode_size(case.spec) <= SMALL:
            found.append(case)
        index += 1
    return found


KINKED = [
    Case(Spec((2, 3, 2), ("relu", "leaky_relu"), "mse"), batch=3, seed=5, kinks=True),
    Case(Spec((3, 3, 3), ("leaky_relu", "softmax"), "cce"), batch=2, seed=6, kinks=True),
    Case(Spec((2, 2, 1), ("softplus", "sigmoid"), "bce"), batch=4, seed=7, data_scale=3.0, param_scale=2.0),
    Case(Spec((2, 3, 2), ("tanh", "identity"), "half_sse"), batch=2, seed=8, param_scale=2.0),
]


@pytest.mark.parametrize("case", _small_cases(21, 12) + KINKED, ids=lambda c: c.id)
def test_the_tape_gives_the_same_bits_as_the_printed_source(case: Case) -> None:
    source = sympy_exact.compile_architecture(case.spec, 1, route="source")
    tape = sympy_exact.compile_architecture(case.spec, 1, route="tape")
    assert tape.tape is not None and tape.n_inputs == source.n_inputs
    for k in range(case.batch):
        assert tape.function(_inputs(case, k)) == source.function(_inputs(case, k))


def test_the_oracle_through_the_tape_agrees_with_torch_on_many_campaign_cases() -> None:
    # torch as the subject, the exact oracle as the oracle: the suite's own comparer and tolerance.
    tolerance = tolerance_for("sympy_exact")
    for case in _small_cases(22, 40):
        params, X, Y = case.arrays()
        exact = sympy_exact.evaluate(case.spec, params, X, Y)
        torch = torch_autograd.evaluate(case.spec, params, X, Y)
        records = records_from_output(
            case, "torch_autograd", torch.grads, "sympy_exact", exact, tolerance, subject_deltas=torch.deltas
        )
        assert [r.check for r in records] == ["gradient", "delta"]
        assert not any(r.failed for r in records), [r.summary() for r in records if r.failed]


def test_a_batch_runs_every_example_in_one_pass_and_keeps_branches_per_example() -> None:
    z, y = se.Symbol("z"), se.Symbol("y")
    relu = se.Piecewise((z, z > 0), (0, True))
    loss = (relu - y) ** 2 / 2
    tape = build_tape([se.diff(loss, z), loss], [z, y], 200, libmp.round_nearest)
    zs = [libmp.from_float(v) for v in (-1.5, 0.0, 2.0)]
    ys = [libmp.from_float(v) for v in (1.0, 1.0, 0.5)]
    grads, losses = tape.run([zs, ys])
    # relu'(0) = 0 by the Piecewise's own branch: z = 0 is exactly 0 at 200 bits.
    assert [libmp.to_float(g) for g in grads] == [0.0, 0.0, 1.5]
    assert [libmp.to_float(v) for v in losses] == [0.5, 0.5, 1.125]
    with pytest.raises(ValueError, match="inputs"):
        tape.run([zs])


def test_unknown_symbols_and_inexact_constants_are_refused() -> None:
    x, w = se.Symbol("x"), se.Symbol("w")
    with pytest.raises(ValueError, match="not an input"):
        build_tape([x * w], [x], 200, libmp.round_nearest)
    with pytest.raises(NotImplementedError, match="inexact"):
        build_tape([x * se.RealDouble(0.1)], [x], 200, libmp.round_nearest)

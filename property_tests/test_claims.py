"""Each claim's encoding: the verdicts mathematics predicts, and verdicts that flip with the encoding.

The expected verdicts below are worked out by hand (and stated with the reason); the audit itself never
sees them.  The flip tests rebuild a claim around a different formula — a correct one where the article
is wrong, a wrong one where it is right — and check that the computed verdict follows the formula.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import pytest

from oracles.adapters import article
from reports.audit.catalogue import all_claims
from reports.audit.core import AMBIGUOUS, CONDITIONS, HOLDS, WRONG, Claim, ClaimResult, evaluate_claim
from reports.audit.layerwise import claim_4_1, claim_4_3
from reports.audit.listings import (
    LISTING_5_1,
    LISTING_5_2,
    claim_5_2_db,
    claim_5_2_runs,
    completed_listing_5_2,
    printed_numbers,
    run_listing,
)
from reports.audit.recursion import recursion_4_3, recursion_no_transpose
from reports.audit.single_neuron import claim_3_2, claim_3_3, claim_3_4
from reports.audit.symbolic import recursion_rule, scalar_output_rule

EXAMPLES = 3  # per setting: the grids are what find the conditions; a few instances each suffice here


@pytest.fixture(scope="module")
def audit() -> dict[str, ClaimResult]:
    return {claim.key: evaluate_claim(claim, EXAMPLES, shrink_budget=100) for claim in all_claims()}


# key -> (verdict, condition of the claim or None when the verdict carries none), with the reason.
EXPECTED: dict[str, tuple[str, str | None]] = {
    "§3.1": (HOLDS, None),  # a definition the oracles share
    "§3.2": (CONDITIONS, "n ∈ {2}"),  # ½Σ equals the mean (1/n)Σ only for n = 2 terms
    "§3.3": (CONDITIONS, "pairing ∈ {identity+half_sse, identity+mse}"),  # ∂L/∂a = ∂L/∂ŷ, so f' must be 1
    "§3.4": (AMBIGUOUS, None),  # scalar and row-vector readings hold, column readings do not
    "§4.1": (HOLDS, None),
    "§4.2": (AMBIGUOUS, None),  # ‖·‖² per sample vs np.mean vs per-unit: agree only for n_L = 1
    "§4.3": (HOLDS, None),
    "§3.2 vs §4.2": (CONDITIONS, "m ∈ {2}"),  # ½Σ = (1/m)Σ iff m = 2
    "§3.4 vs §4.3": (AMBIGUOUS, None),
    "§5.1": (HOLDS, None),
    "§5.2 (run)": (WRONG, None),  # the listing ends at `dW,`: NameError
    "§5.2 dz": (CONDITIONS, "pairing ∈ {identity+half_sse, sigmoid+bce, softmax+cce}"),  # canonical pairings
    "§5.2 dW": (CONDITIONS, "loss ∈ {bce}"),  # the listing hard-codes sigmoid; only bce cancels σ'
    "§5.2 db": (WRONG, None),  # a scalar where ∂L/∂b is (n_L, 1)
    "§3.3 vs §5.2": (CONDITIONS, "pairing ∈ {identity+half_sse, sigmoid+bce}"),  # softmax's f' is no diagonal
    "§5.2 vs §3.2": (CONDITIONS, "(output, m) ∈ {(identity, 1)}"),  # f' = 1 and no 1/m to disagree
}


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_each_claim_gets_the_verdict_mathematics_predicts(audit: dict[str, ClaimResult], key: str) -> None:
    verdict, condition = EXPECTED[key]
    result = audit[key]
    assert result.verdict == verdict, [(r.name, r.verdict, r.condition) for r in result.readings]
    if condition is not None:
        assert result.condition == condition
    for reading in result.readings:
        assert (reading.counterexample is None) == (reading.verdict == HOLDS), reading.name
    assert (result.correction == "") == (verdict == HOLDS)


def test_the_descent_claims_hold_for_small_steps_only(audit: dict[str, ClaimResult]) -> None:
    for key in ("§3.5", "§4.4"):
        result = audit[key]
        assert result.verdict == CONDITIONS
        (reading,) = result.readings
        assert all(f"eta=0.001, loss={loss}" in reading.holds_in for loss in ("mse", "half_sse", "bce", "cce"))
        assert any(p.startswith("eta=10.0") for p in reading.fails_in)


def test_the_bias_gradient_value_is_right_only_for_one_output_unit(audit: dict[str, ClaimResult]) -> None:
    as_returned, broadcast = audit["§5.2 db"].readings
    assert as_returned.verdict == WRONG and "shape ()" in as_returned.counterexample["note"]  # type: ignore[index]
    assert broadcast.verdict == CONDITIONS and broadcast.condition == "n_L ∈ {1}"
    assert broadcast.counterexample is not None and len(broadcast.counterexample["Y"]) == 2  # n_L = 2 is minimal


def test_the_readings_of_the_ambiguous_recursion(audit: dict[str, ClaimResult]) -> None:
    readings = {r.name.split(":")[0].split(",")[0]: r for r in audit["§3.4"].readings}
    assert readings["scalars"].verdict == HOLDS
    assert readings["row vectors (one example per row)"].verdict == HOLDS
    column = [r for r in audit["§3.4"].readings if r.name.startswith("column")]
    assert [r.verdict for r in column] == [CONDITIONS, CONDITIONS]
    assert column[1].condition == "shape ∈ {scalar}"  # W δ without a transpose: right only for 1×1


def test_every_article_section_with_a_formula_or_listing_has_a_claim(audit: dict[str, ClaimResult]) -> None:
    sections = {key.split()[0] for key in audit}
    assert {"§3.1", "§3.2", "§3.3", "§3.4", "§3.5", "§4.1", "§4.2", "§4.3", "§4.4", "§5.1", "§5.2"} <= sections
    assert len({key for key in audit if " vs " in key}) >= 4


# --- flips: the verdict follows the encoding ---------------------------------------------------------


def _verdict(claim: Claim) -> ClaimResult:
    return evaluate_claim(claim, examples=2, shrink_budget=50)


def _correct_db(X: np.ndarray, Y: np.ndarray, W: np.ndarray, b: np.ndarray, a: np.ndarray) -> tuple[object, object]:
    m = X.shape[1]
    dz = a - Y
    return np.dot(dz, X.T) / m, np.sum(dz, axis=1, keepdims=True) / m


FLIPS: list[tuple[str, Callable[[], Claim], str, str]] = [
    # (claim key, the claim around a swapped encoding, verdict with the article's encoding, verdict after the swap)
    ("§4.3", lambda: claim_4_3(recursion=recursion_no_transpose), HOLDS, CONDITIONS),
    ("§4.1", lambda: claim_4_1(pre_activation=lambda W, a, b: W.T @ a + b), HOLDS, WRONG),
    ("§3.2", lambda: claim_3_2(loss=lambda y, yh: float(np.mean((y - yh) ** 2))), CONDITIONS, HOLDS),
    ("§5.2 (run)", lambda: claim_5_2_runs(listing=completed_listing_5_2()), WRONG, HOLDS),
    ("§5.2 db", lambda: claim_5_2_db(backward=_correct_db), WRONG, HOLDS),
]


@pytest.mark.parametrize(("key", "swapped", "before", "after"), FLIPS, ids=[f[0] for f in FLIPS])
def test_swapping_the_encoding_flips_the_verdict(
    audit: dict[str, ClaimResult], key: str, swapped: Callable[[], Claim], before: str, after: str
) -> None:
    assert audit[key].verdict == before
    assert _verdict(swapped()).verdict == after


def test_a_column_reading_of_section_3_4_with_the_transpose_holds_everywhere() -> None:
    result = _verdict(claim_3_4(no_transpose=recursion_4_3))
    assert result.readings[3].verdict == HOLDS
    assert result.verdict == AMBIGUOUS  # the written-order reading still fails


def test_naming_delta_instead_of_dl_da_changes_where_section_3_3_holds() -> None:
    result = _verdict(claim_3_3(names="delta"))
    assert result.verdict == CONDITIONS and result.condition == "pairing ∉ {softmax+cce}"


# --- symbolic identities and the listings ------------------------------------------------------------


def test_sympy_confirms_4_3_and_refutes_the_untransposed_recursion() -> None:
    transpose = recursion_rule(lambda W, d, gp: (W.T * d).multiply_elementwise(gp))
    assert transpose.holds and transpose.residual == "0"
    untransposed = recursion_rule(lambda W, d, gp: (W * d).multiply_elementwise(gp))
    assert not untransposed.holds and "not evaluable" in untransposed.residual
    square = recursion_rule(lambda W, d, gp: (W * d).multiply_elementwise(gp), n_prev=2, n=2)
    assert not square.holds and square.residual != "0"


def test_sympy_distinguishes_dl_da_from_delta() -> None:
    assert scalar_output_rule(names_dl_da=False).holds
    literal = scalar_output_rule(names_dl_da=True)
    assert not literal.holds and "1 - Derivative(f(z), z)" in literal.residual


def test_quoted_listings_define_exactly_the_adapter_functions() -> None:
    for function in (article.sigmoid, article.forward_propagation, article.sigmoid_derivative):
        assert inspect.getsource(function) in LISTING_5_1 + LISTING_5_2
    assert inspect.getsource(article.backward_propagation) in LISTING_5_2


def test_the_forward_listing_prints_sigmoid_of_the_example() -> None:
    printed, error = run_listing(LISTING_5_1)
    assert error is None
    z = article.EXAMPLE_W @ article.EXAMPLE_X + article.EXAMPLE_B
    np.testing.assert_allclose(printed_numbers(printed), (1 / (1 + np.exp(-z))).ravel(), atol=5e-9)

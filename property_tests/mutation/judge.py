"""Whether a generated mutant's diagnosis is right, judged from the mutant's label alone.

The rule, fixed before any measurement and never adjusted per mutant:

- A mutant's *role* (``# role:`` marker of the mutated line) says which part of backprop it changed.
  Each role admits the defect names that describe a change there (:data:`ROLE_KEYS`): the output's δ
  (output_derivative, loss_gradient, softmax_jacobian, target_handling, a convention), an activation's
  derivative (activation_derivative, leaky_slope, derivative_of_a, hidden_derivative, output_derivative,
  kink), the recursion (transpose, off_by_one, wrong_layer_delta, hidden_derivative, derivative_of_a,
  activation_derivative, leaky_slope), the weight gradient (transpose, off_by_one, wrong_layer_delta,
  batch, regularisation, float32, never_computed), the bias gradient (bias_axis, batch, never_computed),
  plumbing — the control flow that decides which steps run, in which order (off_by_one,
  wrong_layer_delta, transpose, never_computed, batch, and a skipped step: hidden_derivative,
  output_derivative).  Any role except the
  forward pass also admits the value findings sign, scale, normalisation, batch_normalisation, clipped.
  A mutated forward pass changes the function being differentiated: no backward-pass defect describes
  it, so every specific name there is wrong.
- The finding must also point at the right blocks: a weight-gradient mutant's finding must be about
  ∂L/∂W, a bias mutant's about ∂L/∂b; a mutant of δ (output, derivative, recursion) moves W and b
  together, so a finding about one of them alone is wrong.
- Only *specific* findings (``defect``, ``convention``, ``kink``) are judged; a protocol fault (an
  observation: it raised, or returned a wrong shape) and an honest ``unexplained`` are counted apart.
"""

from __future__ import annotations

from collections.abc import Sequence

from oracles.diagnosis.wording import Diagnosis
from property_tests.mutation.generator import Site

VALUE_KEYS = frozenset({"sign", "scale", "normalisation", "batch_normalisation", "clipped"})
ROLE_KEYS: dict[str, frozenset[str]] = {
    "forward": frozenset(),
    "output": frozenset({"output_derivative", "loss_gradient", "softmax_jacobian", "target_handling", "convention"})
    | VALUE_KEYS,
    "derivative": frozenset(
        {"activation_derivative", "leaky_slope", "derivative_of_a", "hidden_derivative", "output_derivative", "kink"}
    )
    | VALUE_KEYS,
    "recursion": frozenset(
        {
            "transpose",
            "off_by_one",
            "wrong_layer_delta",
            "hidden_derivative",
            "derivative_of_a",
            "activation_derivative",
            "leaky_slope",
        }
    )
    | VALUE_KEYS,
    "weight": frozenset(
        {"transpose", "off_by_one", "wrong_layer_delta", "batch", "regularisation", "float32", "never_computed"}
    )
    | VALUE_KEYS,
    "bias": frozenset({"bias_axis", "batch", "never_computed"}) | VALUE_KEYS,
    # Control flow decides which steps run and in which order: a step skipped or repeated is plumbing's.
    "plumbing": frozenset(
        {
            "off_by_one",
            "wrong_layer_delta",
            "transpose",
            "never_computed",
            "batch",
            "hidden_derivative",
            "output_derivative",
        }
    )
    | VALUE_KEYS,
}
SPECIFIC = ("defect", "convention", "kink")
DELTA_ROLES = ("output", "derivative", "recursion")


def _blocks(finding: Diagnosis) -> set[str]:
    """Which parameter blocks a finding's formula is about ("W", "b"), when it names them at all."""
    text = finding.formula
    return {kind for kind in ("W", "b") if f"∂L/∂{kind}" in text}


def verdict(site: Site, findings: Sequence[Diagnosis]) -> str:
    """``right``, ``wrong``, ``protocol``, ``unexplained`` or ``none`` for the first finding."""
    if not findings:
        return "none"
    first = findings[0]
    if first.kind == "protocol":
        return "protocol"
    if first.kind not in SPECIFIC:
        return "unexplained"
    key = first.key.split(":", 1)[0]
    if key not in ROLE_KEYS[site.role]:
        return "wrong"
    blocks = _blocks(first)
    if site.role == "weight" and blocks and "W" not in blocks:
        return "wrong"
    if site.role == "bias" and blocks and "b" not in blocks:
        return "wrong"
    if site.role in DELTA_ROLES and len(blocks) == 1 and "δ" not in first.formula:
        return "wrong"
    return "right"

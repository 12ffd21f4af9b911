"""The words of a diagnosis: the :class:`Diagnosis` record, the right formulas in the article's notation,
and the sentence each structural defect model is reported with."""

from __future__ import annotations

from dataclasses import dataclass, replace

from oracles.diagnosis.signatures import OUTPUT_KINDS, Variant

KINDS = ("protocol", "defect", "unexplained", "convention", "kink")  # headline order


@dataclass(frozen=True)
class Diagnosis:
    """One finding; ``formula`` is the right formula that the subject breaks.

    ``kind``: ``protocol`` (a fault of the call itself), ``defect`` (a named model that reproduces the
    subject on every fault-free probe), ``unexplained`` (wrong, localised, no model fits), ``convention``
    or ``kink`` (right up to a constant or a slope at a kink: not a bug).  ``evidence`` says how much of
    what was seen the finding explains.
    """

    key: str
    layer: int | None
    formula: str
    message: str
    confidence: float
    losses: tuple[str, ...] = ()
    kind: str = "defect"
    evidence: str = ""
    where: str = ""  # overrides "layer l" / "all layers" in the line (e.g. "output layer")

    def line(self) -> str:
        if self.kind in ("defect", "unexplained"):
            where = f" (layer {self.layer})" if self.layer is not None else " (all layers)"
            where = f" ({self.where})" if self.where else where
        else:
            where = ""
        losses = f" [{', '.join(self.losses)}]" if self.losses else ""
        evidence = f" ({self.evidence})" if self.evidence else ""
        formula = f" Right formula: {self.formula}" if self.formula else ""
        return f"{self.key}{where}{losses}: {self.message}{evidence}{formula}"

    @property
    def is_bug(self) -> bool:
        return self.kind in ("protocol", "defect", "unexplained")

    def with_(self, **changes: object) -> Diagnosis:
        return replace(self, **changes)  # type: ignore[arg-type]


def formula_W(layer: int | str) -> str:
    prev = f"{layer}-1" if isinstance(layer, str) else str(layer - 1)
    return f"∂L/∂W^[{layer}] = δ^[{layer}] (a^[{prev}])ᵀ"


def formula_b(layer: int | str) -> str:
    return f"∂L/∂b^[{layer}] = Σ_i δ^[{layer}]_(:,i)  (a sum over the batch, axis=1)"


def formula_recursion(layer: int | str) -> str:
    """The δ recursion that carries δ^[layer] back to layer − 1."""
    prev = f"{layer}-1" if isinstance(layer, str) else str(layer - 1)
    return f"δ^[{prev}] = (W^[{layer}])ᵀ δ^[{layer}] ⊙ g'(z^[{prev}])"


def formula_block(name: str) -> str:
    layer = int(name[1:])
    return formula_W(layer) if name.startswith("W") else formula_b(layer)


_VARIANT_TEXT: dict[str, tuple[str, str]] = {
    "transpose": (
        "transpose",
        "The δ recursion multiplies by W^[{l}] where its transpose (W^[{l}])ᵀ belongs{every}: it only runs when "
        "layers {lm1} and {l} have the same width, and gives wrong values there.",
    ),
    "weight_off_by_one": (
        "off_by_one",
        "The δ recursion into layer {lm1} uses (W^[{lm1}])ᵀ instead of (W^[{l}])ᵀ{every}: the weight is one layer off.",
    ),
    "derivative_off_by_one": (
        "off_by_one",
        "The δ recursion into layer {lm1} uses layer {l}'s activation derivative instead of layer {lm1}'s{every}: "
        "the activation is one layer off.",
    ),
    "derivative_of_a": (
        "derivative_of_a",
        "g'(a^[{h}]) is used where g'(z^[{h}]) belongs{every}: the activation's derivative is evaluated at its "
        "output instead of its pre-activation.",
    ),
    "hidden_derivative_missing": (
        "hidden_derivative",
        "The δ recursion into layer {lm1} forgets the ⊙ g'(z^[{lm1}]) factor{every}.",
    ),
    "delta_off_by_one": (
        "wrong_layer_delta",
        "Layer {l}'s gradients use δ^[{lm1}] instead of δ^[{l}]{every}: δ is updated before it is used "
        "(one layer off).",
    ),
    "activation_off_by_one": (
        "off_by_one",
        "∂L/∂W^[{l}] uses a^[{l}], the layer's own output, instead of its input a^[{lm1}]{every} (one layer off).",
    ),
    "bias_axis0": (
        "bias_axis",
        "∂L/∂b^[{l}] sums δ^[{l}] over units (axis 0) instead of over the examples (axis 1){every}; it only "
        "has the right shape when m = n_l.",
    ),
    "bias_axis0_row": (
        "bias_axis",
        "∂L/∂b^[{l}] sums δ^[{l}] over units (axis 0) instead of over the examples (axis 1){every}: a row of "
        "shape (1, m) instead of a column of shape (n_l, 1).",
    ),
    "bias_scalar": (
        "bias_axis",
        "∂L/∂b^[{l}] sums δ^[{l}] over every entry to one scalar (a sum without an axis){every}, instead of one "
        "sum over the batch per unit.",
    ),
    "output_missing": (
        "output_derivative",
        "δ^[L] is ∂L/∂a^[L] alone: the output activation's derivative g'(z^[L]) is missing (L = {l}).",
    ),
    "output_double": (
        "output_derivative",
        "The output activation's derivative g'(z^[L]) is applied twice: δ^[L] already contains it and is "
        "multiplied by it again (L = {l}).",
    ),
    "shortcut_delta": (
        "loss_gradient",
        "δ^[L] is (a^[L] − y)/m, the cross-entropy shortcut, which is not the derivative of this loss (L = {l}).",
    ),
    "transpose_if_square": (
        "transpose",
        "The δ recursion multiplies by W^[{l}] instead of (W^[{l}])ᵀ wherever W^[{l}] happens to be square{every} "
        "(the orientation is guessed from the shapes); non-square layers are right.",
    ),
    "buffer_transposed": (
        "transpose",
        "∂L/∂W^[{l}] is written into a buffer shaped like (W^[{l}])ᵀ{every}: right while W^[{l}] is square, and "
        "it raises wherever it is not.",
    ),
    "target_argmax": (
        "target_handling",
        "δ^[L] is computed from one-hot(argmax y) instead of y: right for one-hot targets, wrong for soft "
        "(probability) targets (L = {l}).",
    ),
    "target_round": (
        "target_handling",
        "δ^[L] is computed from round(y) instead of y: right for 0/1 targets, wrong for soft targets (L = {l}).",
    ),
    "softmax_diagonal": (
        "softmax_jacobian",
        "The softmax Jacobian is taken as diag(a ⊙ (1 − a)): its off-diagonal −a_i a_j terms are missing (L = {l}).",
    ),
}


def _variant_formula(kind: str, layer: int) -> str:
    if kind == "derivative_of_a":
        return f"δ^[{layer}] = (W^[{layer + 1}])ᵀ δ^[{layer + 1}] ⊙ g'(z^[{layer}])"
    if kind in ("output_missing", "output_double", "shortcut_delta"):
        return "δ^[L] = ∂L/∂a^[L] ⊙ g'(z^[L])"
    if kind in ("target_argmax", "target_round"):
        return "δ^[L] = ∂L/∂z^[L] with the targets y as given (soft targets included)"
    if kind == "buffer_transposed":
        return formula_W(layer)
    if kind == "softmax_diagonal":
        return "δ^[L] = J_softmax(z^[L])ᵀ ∂L/∂a^[L],  J = diag(a) − a aᵀ"
    if kind in ("bias_axis0", "bias_axis0_row", "bias_scalar"):
        return formula_b(layer)
    if kind == "activation_off_by_one":
        return formula_W(layer)
    if kind == "delta_off_by_one":
        return f"{formula_W(layer)}; {formula_b(layer)}"
    return formula_recursion(layer)


def variant_diagnoses(variant: Variant, depth: int, losses: tuple[str, ...], confidence: float) -> list[Diagnosis]:
    key, template = _VARIANT_TEXT[variant.kind]
    every = variant.layers is None
    if variant.kind == "derivative_of_a":
        layer = depth - 1 if every else min(variant.layers or {depth - 1})
    else:
        layer = depth if every else max(variant.layers or {depth})
    text = template.format(l=layer, h=layer, lm1=layer - 1, every=" (at every layer)" if every else "")
    output = variant.kind in OUTPUT_KINDS
    found = [
        Diagnosis(
            key,
            layer,
            _variant_formula(variant.kind, layer),
            text,
            confidence,
            losses,
            where=f"output layer, L = {layer}" if output else "",
        )
    ]
    if variant.bias is not None:
        found += variant_diagnoses(Variant(variant.bias, None), depth, losses, confidence)
    return found

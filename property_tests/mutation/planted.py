"""Each planted bug of :data:`property_tests.mutation.catalogue.MUTANTS` as an importable subject.

``backprop-check run --subject property_tests.mutation.planted:scale_layer1`` points a campaign at the mutant
named ``scale_layer1``; every mutant name is a module attribute holding its gradients function.
"""

from __future__ import annotations

from property_tests.mutation.catalogue import MUTANTS, GradientsFn

SUBJECTS: dict[str, GradientsFn] = {name: mutant.gradients for name, mutant in MUTANTS.items()}

globals().update(SUBJECTS)


def __getattr__(name: str) -> GradientsFn:
    # For type checkers and linters, which cannot see the globals() update above.
    if name in SUBJECTS:
        return SUBJECTS[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}; planted subjects: {sorted(SUBJECTS)}")

"""Hypothesis strategies for architectures and cases: public, importable by users.

>>> from hypothesis import given
>>> from property_tests.strategies import cases, subject_settings
>>> @subject_settings
... @given(cases())
... def test_mine(case): ...

A test that runs a subject and the oracles needs :func:`subject_settings` (or its two settings): Hypothesis'
default 200 ms deadline fails correct code, because the first example imports torch and compiles the
exact oracle, and later ones are fast (``DeadlineExceeded``, then ``FlakyFailure``).

Widths are drawn as a list (not one width per network), so non-square layers are the common case:
a transposed weight in the δ recursion is only visible there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from reference_impl.case import Case
from reference_impl.spec import ACTIVATION_NAMES, LOSS_NAMES, LOSS_OUTPUT_ACTIVATION, Spec
from reference_impl.stress import STRESS_BATCHES, check_share

TestFunction = TypeVar("TestFunction", bound=Callable[..., object])

HIDDEN_ACTIVATIONS: tuple[str, ...] = tuple(a for a in ACTIVATION_NAMES if a != "softmax")
PARAM_SCALES: tuple[float, ...] = (0.1, 0.5, 1.0, 1.0, 2.0, 5.0)  # 5.0 saturates sigmoid/tanh units
DATA_SCALES: tuple[float, ...] = (0.5, 1.0, 1.0, 3.0)
MAX_DENOMINATOR = 20  # stress shares are drawn to the nearest 1/20


@st.composite
def specs(
    draw: st.DrawFn,
    *,
    min_depth: int = 1,
    max_depth: int = 5,
    min_width: int = 1,
    max_width: int = 8,
    activations: Sequence[str] = ACTIVATION_NAMES,
    losses: Sequence[str] = LOSS_NAMES,
    square: bool = False,
) -> Spec:
    """An architecture using only the given activations and losses (the output pairing is respected).

    ``square=True`` forces every width equal: only for demonstrating what square layers hide.
    """
    hidden = [a for a in activations if a in HIDDEN_ACTIVATIONS]
    usable_losses = [
        loss
        for loss in losses
        if (LOSS_OUTPUT_ACTIVATION[loss] in activations if LOSS_OUTPUT_ACTIVATION[loss] else hidden)
    ]
    if not usable_losses:
        raise ValueError(f"no loss in {list(losses)} can be paired with activations {list(activations)}")
    depth = draw(st.integers(min_depth, max_depth))
    if depth > 1 and not hidden:
        depth = 1
    if square:
        widths = [draw(st.integers(min_width, max_width))] * (depth + 1)
    else:
        widths = draw(st.lists(st.integers(min_width, max_width), min_size=depth + 1, max_size=depth + 1))
    loss = draw(st.sampled_from(usable_losses))
    required = LOSS_OUTPUT_ACTIVATION[loss]
    output = required if required is not None else draw(st.sampled_from(hidden))
    layers = [draw(st.sampled_from(hidden)) for _ in range(depth - 1)]
    return Spec(tuple(widths), (*layers, output), loss)


@st.composite
def cases(
    draw: st.DrawFn,
    spec_strategy: st.SearchStrategy[Spec] | None = None,
    *,
    min_batch: int = 1,
    max_batch: int = 8,
    param_scales: Sequence[float] = PARAM_SCALES,
    data_scales: Sequence[float] = DATA_SCALES,
    kinks: bool | None = None,
    stress: float = 0.0,
) -> Case:
    """A reproducible :class:`Case`; ``kinks=None`` sometimes puts relu pre-activations exactly on 0.

    ``stress``: the share of stress cases (:mod:`reference_impl.stress`: saturated layers, logits near
    ±1000, a larger batch); shrinking moves towards ordinary cases.
    """
    share = Fraction(check_share(stress)).limit_denominator(MAX_DENOMINATOR)
    # A short list keeps the share honest (Hypothesis draws wide integer ranges far from uniformly) and
    # shrinks towards its first element, an ordinary case.
    stressed = share > 0 and draw(
        st.sampled_from([False] * (share.denominator - share.numerator) + [True] * share.numerator)
    )
    spec = draw(spec_strategy if spec_strategy is not None else specs())
    if stressed:
        return Case(
            spec=spec,
            batch=draw(st.sampled_from(STRESS_BATCHES)),
            seed=draw(st.integers(0, 2**31 - 1)),
            stress=True,
        )
    return Case(
        spec=spec,
        batch=draw(st.integers(min_batch, max_batch)),
        seed=draw(st.integers(0, 2**31 - 1)),
        param_scale=draw(st.sampled_from(list(param_scales))),
        data_scale=draw(st.sampled_from(list(data_scales))),
        kinks=draw(st.booleans()) if kinks is None else kinks,
    )


def subject_settings(test: TestFunction) -> TestFunction:
    """Decorate a ``@given`` test that calls subjects and oracles: no deadline, no too-slow health check.

    Everything else (``max_examples``, derandomisation, …) comes from the Hypothesis profile loaded when
    the test is decorated, so ``HYPOTHESIS_PROFILE`` and ``settings.load_profile`` still apply.
    """
    return settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])(test)

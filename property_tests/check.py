"""``check_subject(my_gradients)``: the whole property suite against your function, in one line.

>>> from property_tests.check import check_subject, subject_test
>>> def test_my_backprop():
...     check_subject(my_gradients)            # or, at module level:  test_mine = subject_test(my_gradients)

Hypothesis draws architectures inside what the subject ``SUPPORTS``; a failure is shrunk to the
smallest failing architecture and the message shows its record (``Record.explain()``: spec, worst
entry, pasteable ``Case``) followed by the diagnosis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from oracles.diagnosis import conventions
from oracles.diagnosis.family import Family
from oracles.diagnosis.instability import explain_instability
from oracles.registry import get_oracle
from oracles.subjects import Subject, call_subject
from oracles.verdicts.compare import compare_to_oracle, protocol_record, with_call_notes
from oracles.verdicts.precision import apply_strict
from oracles.verdicts.records import Record
from property_tests.strategies import cases, specs
from reference_impl.case import Case
from reference_impl.spec import Spec
from reference_impl.stress import STRESS_SHARE


class SubjectCheckFailed(AssertionError):
    """The subject disagreed with the oracle (or broke the protocol) on ``case``."""

    def __init__(self, message: str, case: Case, record: Record) -> None:
        super().__init__(message)
        self.case = case
        self.record = record


def as_subject(target: Subject | Callable[..., Any] | Any, name: str | None = None) -> Subject:
    """A :class:`Subject` from a function, an object with ``.gradients``, or a Subject."""
    if isinstance(target, Subject):
        return target
    fn = target.gradients if hasattr(target, "gradients") else target
    if not callable(fn):
        raise TypeError(f"{target!r} is neither a gradients function nor has one")
    return Subject(name or str(getattr(fn, "__qualname__", repr(fn))), fn)


def family_of(target: Any, supports: Mapping[str, Any] | None) -> Family:
    if supports is None:
        supports = getattr(target, "SUPPORTS", None)
    return Family.from_supports(supports)


def family_specs(family: Family) -> st.SearchStrategy[Spec]:
    names = sorted(set(family.hidden) | set(family.outputs))
    return specs(
        min_depth=family.min_depth,
        max_depth=min(family.deepest, 4),
        activations=names,
        losses=list(family.usable_losses),
    ).filter(family.allows)


def case_records(
    subject: Subject, case: Case, oracle_name: str = "torch_autograd", *, strict: bool = False
) -> list[Record]:
    """Records for one case: protocol faults (incl. mutation and nondeterminism) or the oracle comparison;
    ``strict``: precision findings fail."""
    oracle = get_oracle(oracle_name)
    call = call_subject(subject, case, repeat=True)
    if call.failure is not None or call.grads is None:
        failure = call.failure
        assert failure is not None
        record = protocol_record(case, subject.name, oracle.name, failure.category, failure.message, failure.parameter)
        return with_call_notes([record], call)
    records = with_call_notes(compare_to_oracle(case, subject.name, call.grads, oracle), call)
    return apply_strict(records) if strict else records


def declaration_of(
    target: Any, supports: Mapping[str, Any] | None, convention: str | Mapping[str, str] | None
) -> dict[str, str]:
    """The subject's declared convention(s): the argument, else ``SUPPORTS["convention"]``."""
    if convention is None:
        convention = (supports if supports is not None else getattr(target, "SUPPORTS", None) or {}).get("convention")
    return conventions.parse_declaration(convention)


def _diagnosis_lines(subject: Subject, case: Case, family: Family, record: Record) -> list[str]:
    from oracles.diagnosis.diagnose import diagnose_subject

    if record.category == "precision":
        return []  # the record's message already says which digits are lost, and where
    if record.category == "unstable":
        try:
            return [f"  diagnosis: {i.line()}" for i in explain_instability(subject, case, family)]
        except Exception as exc:  # a courtesy, as below
            return [f"  diagnosis unavailable: {type(exc).__name__}: {exc}"]
    try:
        found = diagnose_subject(subject, [case], supports=family)
    except Exception as exc:  # the diagnosis is a courtesy; the failure itself must still be reported
        return [f"  diagnosis unavailable: {type(exc).__name__}: {exc}"]
    if not found:
        return ["  diagnosis: no known defect or convention explains it"]
    return [f"  diagnosis: {d.line()}" for d in found[:3]]


def check_subject(
    target: Subject | Callable[..., Any] | Any,
    *,
    supports: Mapping[str, Any] | None = None,
    max_examples: int | None = None,
    oracle: str = "torch_autograd",
    name: str | None = None,
    losses: list[str] | None = None,
    stress: float = STRESS_SHARE,
    strict: bool = False,
    convention: str | Mapping[str, str] | None = None,
) -> None:
    """Raise :class:`SubjectCheckFailed` (an AssertionError) unless ``target`` is right on every drawn case.

    ``stress``: the share of stress cases (saturated layers, logits near ±1000; NaN/inf there is
    ``unstable``); ``strict``: a result right within the tolerance but less precise than float64 allows
    (``precision``) fails too; ``convention`` (or ``SUPPORTS["convention"]``) declares the subject's loss
    convention, for every loss (``"half_mse"``) or per loss (``"mse=mean_elements,bce=mean_elements"`` or
    a dict).
    """
    subject = conventions.declared_subject(as_subject(target, name), declaration_of(target, supports, convention))
    family = family_of(target, supports)
    if losses:
        family = family.restricted(losses=losses)
    strategy = cases(family_specs(family), kinks=False, stress=stress)

    def agrees_with_oracle(case: Case) -> None:
        failed = [r for r in case_records(subject, case, oracle, strict=strict) if r.failed]
        if failed:
            spec = case.spec
            head = (
                f"{subject.name} is wrong on widths {list(spec.widths)}, activations {list(spec.activations)}, "
                f"loss {spec.loss!r}, batch {case.batch}"
            )
            raise SubjectCheckFailed(head + "\n" + failed[0].explain(), case, failed[0])

    # No deadline: the first example pays for importing the oracle, and shared machines are noisy.
    chosen = settings(deadline=None) if max_examples is None else settings(deadline=None, max_examples=max_examples)
    test = chosen(given(strategy)(agrees_with_oracle))
    try:
        test()
    except SubjectCheckFailed as failure:
        # Hypothesis re-raised the error of the *shrunk* case: diagnose that one, once.
        lines = [str(failure), *_diagnosis_lines(subject, failure.case, family, failure.record)]
        raise SubjectCheckFailed("\n".join(lines), failure.case, failure.record) from None


def subject_test(target: Subject | Callable[..., Any] | Any, **options: Any) -> Callable[[], None]:
    """A ready-made test function: ``test_mine = subject_test(my_gradients)`` at module level."""

    def test_subject() -> None:
        check_subject(target, **options)

    return test_subject

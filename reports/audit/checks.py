"""Building blocks the claims' checks share: f' read elementwise, several outcomes as one, a setting's value."""

from __future__ import annotations

from collections.abc import Callable

from reference_impl.activations import get_activation
from reference_impl.spec import Array
from reports.audit.core import Outcome, Setting

Derivative = Callable[[Array], Array]


def elementwise_derivative(name: str) -> Derivative:
    """f'(z) read elementwise; for softmax that is the Jacobian's diagonal ∂a_i/∂z_i = a_i(1 − a_i)."""
    derivative = get_activation(name).derivative
    if derivative is not None:
        return derivative
    softmax = get_activation(name).function
    return lambda z: softmax(z) * (1.0 - softmax(z))


def both(*outcomes: Outcome) -> Outcome:
    """Several quantities of one claim: it holds only if every one does."""
    notes = "; ".join(o.note for o in outcomes if o.note)
    return Outcome(all(o.holds for o in outcomes), [o.claimed for o in outcomes], [o.expected for o in outcomes], notes)


def setting_value(point: Setting, name: str) -> str:
    """The value of dimension ``name`` at ``point`` of a search grid."""
    return dict(point)[name]

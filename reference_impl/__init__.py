"""Pure-NumPy reference implementation of the article's backpropagation formulas.

``reference_impl.gradients`` and ``reference_impl.loss`` follow the subject protocol (see README).
"""

from reference_impl.activations import ACTIVATIONS, Activation, get_activation
from reference_impl.case import Case, Problem, make_problem
from reference_impl.generate import case_from_index, random_spec
from reference_impl.losses import LOSSES, Loss, get_loss
from reference_impl.mlp import (
    Backward,
    Tape,
    backward,
    backward_from_delta,
    forward,
    gradient_descent_step,
    gradients,
    loss,
    run,
    vjp,
)
from reference_impl.spec import ACTIVATION_NAMES, LOSS_NAMES, Array, Params, Spec, SpecError, as_spec

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_NAMES",
    "LOSSES",
    "LOSS_NAMES",
    "Activation",
    "Array",
    "Backward",
    "Case",
    "Loss",
    "Params",
    "Problem",
    "Spec",
    "SpecError",
    "Tape",
    "as_spec",
    "backward",
    "backward_from_delta",
    "case_from_index",
    "forward",
    "get_activation",
    "get_loss",
    "gradient_descent_step",
    "gradients",
    "loss",
    "make_problem",
    "random_spec",
    "run",
    "vjp",
]

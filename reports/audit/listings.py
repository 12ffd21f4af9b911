"""The article's §5 code listings as claims: run as written, against what the surrounding text says.

The listings' functions are the verbatim copies in :mod:`oracles.adapters.article`; the quoted text below
is the listing as printed (the §5.2 listing ends mid-statement at ``dW,``), used only to run the listings
*as a reader would*, top to bottom, and to show the quote.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st

from oracles.adapters import article
from oracles.registry import all_oracles
from reference_impl.spec import Array, Spec
from reports.audit.checks import both, elementwise_derivative
from reports.audit.core import Claim, Instance, Outcome, Reading, Setting, compare, setting
from reports.audit.instances import BATCHES, PAIRINGS, networks, pairing_label, parse_pairing
from reports.audit.truth import batch_normaliser

LISTING_5_1 = """\
import numpy as np

def sigmoid(z):
    return 1 / (1 + np.exp(-z))

def forward_propagation(X, W, b):
    z = np.dot(W, X) + b
    a = sigmoid(z)
    return a

# 示例数据
X = np.array([[0.5], [0.1]])
W = np.array([[0.2, 0.4], [0.3, 0.7]])
b = np.array([[0.1], [0.2]])

# 前向传播
a = forward_propagation(X, W, b)
print(a)
"""

LISTING_5_2 = """\
def sigmoid_derivative(z):
    return sigmoid(z) * (1 - sigmoid(z))

def backward_propagation(X, Y, W, b, a):
    m = X.shape[1]
    dz = a - Y
    dW = np.dot(dz, X.T) / m
    db = np.sum(dz) / m
    return dW, db

# 示例数据
Y = np.array([[1], [0]])

# 反向传播
dW,
"""

# The one-line completion a reader would supply: the call the truncated last line begins.
COMPLETION_5_2 = "dW, db = backward_propagation(X, Y, W, b, a)\nprint(dW)\nprint(db)\n"
PRINT_RESOLUTION = 5e-9  # numpy prints 8 decimals: a printed value is within half a unit of the 8th
GRADIENT_ORACLES: tuple[str, ...] = ("torch_autograd", "complex_step")


def completed_listing_5_2() -> str:
    """§5.2 with its truncated last line (``dW,``) replaced by the call it begins."""
    return LISTING_5_2.rsplit("dW,", 1)[0] + COMPLETION_5_2


def run_listing(source: str) -> tuple[str, BaseException | None]:
    """Execute listing text in a fresh namespace; returns (stdout, the exception it raised or None)."""
    out = io.StringIO()
    namespace: dict[str, Any] = {"__name__": "article_listing"}
    with contextlib.redirect_stdout(out):
        try:
            exec(compile(source, "<article listing>", "exec"), namespace)
        except Exception as exc:
            return out.getvalue(), exc
    return out.getvalue(), None


def printed_numbers(text: str) -> Array:
    return np.asarray([float(v) for v in re.findall(r"-?\d+\.\d*(?:e[-+]?\d+)?", text)], dtype=np.float64)


def article_example(point: Setting, loss: str = "bce") -> Instance:
    """The listings' own example data as an instance: one sigmoid layer, 2 → 2, m = 1."""
    spec = Spec((2, 2), ("sigmoid",), loss)
    params = {"W1": article.EXAMPLE_W.astype(np.float64), "b1": article.EXAMPLE_B.astype(np.float64)}
    Y = article.EXAMPLE_Y.astype(np.float64)
    return Instance(point, spec, params, article.EXAMPLE_X.astype(np.float64), Y, label="the article's example data")


def _example_or_generated(loss: str) -> Callable[[Setting], st.SearchStrategy[Instance]]:
    def instances(point: Setting) -> st.SearchStrategy[Instance]:
        values = dict(point)
        if values.get("data") == "article example":
            return st.just(article_example(point, loss))
        chosen = values.get("loss", loss)
        n_out = {"1": st.just(1), ">1": st.integers(2, 3)}.get(values.get("n_L", ""))
        return networks(
            point,
            activations=st.just(("sigmoid",)),
            loss=chosen,
            shape=values.get("shape", "any"),
            batch=values.get("m", ">1"),
            n_out=n_out,
        )

    return instances


# --- §5.1 ----------------------------------------------------------------------------------------------

ForwardListing = Callable[[Array, Array, Array], Array]


def claim_5_1(forward: ForwardListing = article.forward_propagation, listing: str = LISTING_5_1) -> Claim:
    def check_function(instance: Instance) -> Outcome:
        a = forward(instance.X, instance.params["W1"], instance.params["b1"])
        return compare(a, instance.truth.a[1])

    def check_printed(instance: Instance) -> Outcome:
        printed, error = run_listing(listing)
        if error is not None:
            return Outcome(False, printed, None, f"the listing raised {type(error).__name__}: {error}")
        values = printed_numbers(printed).reshape(-1, 1)
        expected = instance.truth.a[1]
        if values.shape != expected.shape:
            return Outcome(False, printed, expected, f"printed {values.size} numbers, expected {expected.size}")
        close = bool(np.all(np.abs(values - expected) <= PRINT_RESOLUTION))
        return Outcome(close, values, expected, f"prints {printed.strip()!r}")

    printed, error = run_listing(listing)
    note = f"Run as written, the listing prints {printed.strip()!r}" + (f" and raises {error!r}" if error else "")
    points = (
        setting(data="article example", shape="square", m="1"),
        *(setting(data="generated", shape=s, m=b) for s in ("square", "non-square") for b in BATCHES),
    )
    return Claim(
        key="§5.1",
        title="the forward-propagation listing (and what it prints)",
        quote="以下是一个简单的前向传播代码示例，使用Python和NumPy实现：\n```python\n" + LISTING_5_1 + "```",
        gloss="A simple forward-propagation example in Python/NumPy: one sigmoid layer, run on the example data.",
        kind="listing",
        settings=points,
        instances=_example_or_generated("bce"),
        readings=(
            Reading(
                "forward_propagation(X, W, b) is §4.1's a = σ(W X + b)",
                "a = forward_propagation(X, W, b)",
                check_function,
            ),
            Reading(
                "the printed output is σ(W X + b) of the example data",
                "exec(listing) → stdout",
                check_printed,
                applies=lambda p: dict(p)["data"] == "article example",
            ),
        ),
        correction="",
        note=note,
    )


# --- §5.2 runs as written ------------------------------------------------------------------------------


def claim_5_2_runs(listing: str = LISTING_5_2) -> Claim:
    def check(instance: Instance) -> Outcome:
        printed, error = run_listing(LISTING_5_1 + listing)
        if error is not None:
            return Outcome(False, printed, None, f"{type(error).__name__}: {error}")
        return Outcome(True, printed, None, "ran")

    completed, completed_error = run_listing(LISTING_5_1 + completed_listing_5_2())
    point = setting(data="article example")
    return Claim(
        key="§5.2 (run)",
        title="the backward-propagation listing runs as printed",
        quote="以下是一个简单的反向传播代码示例，使用Python和NumPy实现：\n```python\n" + LISTING_5_2 + "```",
        gloss="A simple back-propagation example; run after §5.1's listing, in the same session, as printed.",
        kind="listing",
        settings=(point,),
        instances=lambda p: st.just(article_example(p)),
        readings=(Reading("§5.1 then §5.2, executed top to bottom", "exec(listing_5_1 + listing_5_2)", check),),
        correction=(
            "The listing is cut off at `dW,`; complete it as `dW, db = backward_propagation(X, Y, W, b, a)`. "
            f"Completed, it prints {completed.strip()!r}"
            + (f" (and raises {completed_error!r})" if completed_error else "")
            + " — see §5.2 dW/db for what those numbers are."
        ),
    )


# --- §5.2 dz -------------------------------------------------------------------------------------------

OutputError = Callable[[Array, Array], Array]  # (a, Y) -> dz


def listing_dz(a: Array, Y: Array) -> Array:
    return a - Y


def claim_5_2_dz(dz: OutputError = listing_dz) -> Claim:
    def instances(point: Setting) -> st.SearchStrategy[Instance]:
        act, loss = parse_pairing(dict(point)["pairing"])
        return networks(point, activations=st.just((act,)), loss=loss, batch=dict(point)["m"])

    def check(instance: Instance) -> Outcome:
        # dW = dz·Xᵀ/m makes dz the per-example error ∂(Σ_i ℓ_i)/∂z: δ before the loss's 1/m.
        return compare(dz(instance.truth.a[-1], instance.Y), instance.truth.per_example_delta)

    return Claim(
        key="§5.2 dz",
        title="dz = a − Y is the output error δ",
        quote="    dz = a - Y",
        gloss="The listing takes the output error (∂loss/∂z per example, divided by m later) to be a − Y.",
        kind="listing",
        settings=tuple(setting(pairing=pairing_label(a, loss), m=b) for a, loss in PAIRINGS for b in BATCHES),
        instances=instances,
        readings=(Reading("a − Y equals ∂(Σ_i ℓ_i)/∂z^[L] (the 1/m is applied in dW)", "dz = a - Y", check),),
        correction=(
            "a − Y is ∂ℓ/∂z only where the loss is matched to the output activation; in general "
            "dz = ∂ℓ/∂ŷ ⊙ f'(z) (§3.3, read as δ), e.g. (a − Y) ⊙ σ'(z) for a sigmoid output with ½(y − ŷ)²."
        ),
    )


# --- §5.2 dW and db ------------------------------------------------------------------------------------

BackwardListing = Callable[[Array, Array, Array, Array, Array], tuple[Any, Any]]


def _oracle_gradients(spec: Spec, instance: Instance) -> dict[str, Mapping[str, Array]]:
    """W1/b1 gradients from every registered gradient oracle among GRADIENT_ORACLES."""
    available = all_oracles()
    return {
        name: available[name].evaluate(spec, instance.params, instance.X, instance.Y).grads
        for name in GRADIENT_ORACLES
        if name in available and available[name].supports(spec)
    }


def _listing_gradients(backward: BackwardListing, instance: Instance) -> tuple[Any, Any]:
    a = article.forward_propagation(instance.X, instance.params["W1"], instance.params["b1"])
    return backward(instance.X, instance.Y, instance.params["W1"], instance.params["b1"], a)


def claim_5_2_dw(backward: BackwardListing = article.backward_propagation) -> Claim:
    def check(instance: Instance) -> Outcome:
        dW, _ = _listing_gradients(backward, instance)
        outcomes = [
            compare(dW, grads["W1"], oracle=name, note=name)
            for name, grads in _oracle_gradients(instance.spec, instance).items()
        ]
        return both(*outcomes)

    return Claim(
        key="§5.2 dW",
        title="dW = dz·Xᵀ/m is ∂L/∂W",
        quote="    dW = np.dot(dz, X.T) / m",
        gloss="The listing's weight gradient: dz times the inputs transposed, averaged over the m examples.",
        kind="listing",
        settings=tuple(
            setting(loss=loss, shape=s, m=b)
            for loss in ("bce", "mse", "half_sse")
            for s in ("square", "non-square")
            for b in BATCHES
        ),
        instances=_example_or_generated("bce"),
        readings=(
            Reading(
                "backward_propagation(...)[0] equals the oracles' ∂L/∂W (sigmoid output)",
                "dW = np.dot(a - Y, X.T) / m",
                check,
            ),
        ),
        correction="dW = dz·Xᵀ/m is ∂L/∂W only for the mean binary cross-entropy with a sigmoid output; for a squared "
        "error use dz = ∂ℓ/∂ŷ ⊙ σ'(z) and divide by m only if the loss has a 1/m.",
        oracle=" + ".join(n for n in GRADIENT_ORACLES if n in all_oracles()),
    )


def claim_5_2_db(backward: BackwardListing = article.backward_propagation) -> Claim:
    def torch_b_gradient(instance: Instance) -> Array:
        return instance.truth.grads["b1"]

    def check_as_returned(instance: Instance) -> Outcome:
        _, db = _listing_gradients(backward, instance)
        return compare(db, torch_b_gradient(instance), note=f"db has shape {np.shape(db)}")

    def check_broadcast(instance: Instance) -> Outcome:
        _, db = _listing_gradients(backward, instance)
        expected = torch_b_gradient(instance)
        return compare(np.broadcast_to(db, expected.shape), expected)

    return Claim(
        key="§5.2 db",
        title="db = np.sum(dz)/m is ∂L/∂b",
        quote="    db = np.sum(dz) / m",
        gloss="The listing's bias gradient: the sum of dz, averaged over the m examples.",
        kind="listing",
        # Only where dz itself is right (sigmoid + bce, see §5.2 dz): what fails here is db's own doing.
        settings=tuple(setting(loss="bce", n_L=n, m=b) for n in ("1", ">1") for b in BATCHES),
        instances=_example_or_generated("bce"),
        readings=(
            Reading("db as returned equals ∂L/∂b (shape (n_L, 1))", "db = np.sum(a - Y) / m", check_as_returned),
            Reading(
                "db broadcast to b's shape, as `b - eta * db` uses it",
                "b - eta * (np.sum(a - Y) / m)",
                check_broadcast,
                literal=False,
            ),
        ),
        correction="db = np.sum(dz, axis=1, keepdims=True) / m: np.sum without an axis also sums over the output "
        "units, giving one scalar — the wrong shape, and the wrong value whenever n_L > 1.",
    )


# --- consistency with the listing ----------------------------------------------------------------------


def consistency_3_3_vs_5_2(dz: OutputError = listing_dz) -> Claim:
    def instances(point: Setting) -> st.SearchStrategy[Instance]:
        act, loss = parse_pairing(dict(point)["pairing"])
        return networks(point, activations=st.just((act,)), loss=loss, batch=dict(point)["m"])

    def check(instance: Instance) -> Outcome:
        t = instance.truth
        # §3.3's right-hand side for the per-example loss Σ_i ℓ_i: ∂(Σℓ)/∂ŷ · f'(z).
        per_example_dl_dyhat = t.grad_a[-1] * batch_normaliser(instance.spec.loss, instance.m)
        article_3_3 = per_example_dl_dyhat * elementwise_derivative(instance.spec.activations[-1])(t.z[-1])
        return compare(dz(t.a[-1], instance.Y), article_3_3)

    return Claim(
        key="§3.3 vs §5.2",
        title="§5.2's dz = a − Y is §3.3's ∂L/∂ŷ · f'(z)",
        quote="$$\\frac{\\partial L}{\\partial a} = \\frac{\\partial L}{\\partial \\hat{y}} \\cdot f'(z)$$  vs  "
        "dz = a - Y",
        gloss="§3.3 multiplies by f'(z); the listing's dz has no f'(z). Do they give the same output error?",
        kind="consistency",
        settings=tuple(setting(pairing=pairing_label(a, loss), m=b) for a, loss in PAIRINGS for b in BATCHES),
        instances=instances,
        readings=(Reading("a − Y == ∂ℓ/∂ŷ ⊙ f'(z)", "a - Y == dl_dyhat * f_prime(z)", check),),
        correction="The listing drops f'(z): that is right only where f'(z) cancels against ∂ℓ/∂ŷ (sigmoid with "
        "cross-entropy) or is 1 (identity with ½ squared error); elsewhere follow §3.3.",
    )


def consistency_5_2_vs_3_2(backward: BackwardListing = article.backward_propagation) -> Claim:
    def instances(point: Setting) -> st.SearchStrategy[Instance]:
        output = dict(point)["output"]
        return networks(point, activations=st.just((output,)), loss="half_sse", batch=dict(point)["m"])

    def check(instance: Instance) -> Outcome:
        W, b = instance.params["W1"], instance.params["b1"]
        act = instance.spec.activations[0]
        a = instance.truth.a[1] if act != "sigmoid" else article.forward_propagation(instance.X, W, b)
        dW, _ = backward(instance.X, instance.Y, W, b, a)
        return compare(dW, instance.truth.grads["W1"])

    return Claim(
        key="§5.2 vs §3.2",
        title="the listing's dW is the gradient of §3.2's loss ½Σ(y − ŷ)²",
        quote="$$L = \\frac{1}{2} \\sum_{i=1}^{n} (y_i - \\hat{y}_i)^2$$  vs  dW = np.dot(dz, X.T) / m",
        gloss="The only loss the article writes before the listing is §3.2's ½Σ (no 1/m); is the listing its gradient?",
        kind="consistency",
        settings=tuple(setting(output=o, m=b) for o in ("identity", "sigmoid") for b in BATCHES),
        instances=instances,
        readings=(
            Reading(
                "backward_propagation(X, Y, W, b, a)[0] == ∂(½Σ(y − ŷ)²)/∂W", "np.dot(a - Y, X.T) / m == dL/dW", check
            ),
        ),
        correction="For §3.2's loss, ∂L/∂W = ((a − Y) ⊙ f'(z)) Xᵀ with no 1/m; the listing's 1/m belongs to a mean "
        "loss (§4.2) and its missing f'(z) to the sigmoid/cross-entropy pairing.",
    )


def listing_claims() -> list[Claim]:
    return [
        claim_5_1(),
        claim_5_2_runs(),
        claim_5_2_dz(),
        claim_5_2_dw(),
        claim_5_2_db(),
        consistency_3_3_vs_5_2(),
        consistency_5_2_vs_3_2(),
    ]

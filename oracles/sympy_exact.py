"""Exact-derivative oracle: the loss as one symbolic scalar, differentiated symbolically, evaluated at 60 digits.

The derivation shares nothing with the δ recursion.  For an architecture, the loss is written as a single
SymEngine expression in *symbols* for every parameter and every data entry (from the exact twins of
:mod:`oracles.symbolic`), and ``symengine.diff`` differentiates it with respect to each parameter.
Per-layer δ^[l] = ∂L/∂z^[l] come from the same expression: each pre-activation carries a shift symbol
s^[l]_{ik} (evaluated at exactly 0), and δ^[l]_{ik} = ∂L/∂s^[l]_{ik}.

Every loss of the suite is c · Σ_k ℓ(θ; x_k, y_k) with c = 1/m or 1 (proved per loss in the tests), so the
expression compiled is that of one example, with the example's data as symbols: one compilation per
architecture serves every batch size and every case.  (:func:`compile_architecture` also builds the
whole-batch expression; the tests show both routes agree to 180 bits.)

The derivatives are shared as one DAG (every repeated subexpression computed once) and turned into an
instruction tape (:mod:`oracles.exact_tape`) over ``mpmath.libmp`` numbers at :data:`PRECISION_BITS` bits
(≈ 60 significant digits), run for every example of the batch at once.
Float64 inputs convert exactly, products of two float64 numbers are exact at that precision and sums are
rounded once, so a pre-activation placed exactly on a relu kink evaluates to exactly 0 and takes the
convention's branch.  Results are rounded once, to nearest, to float64.

Compiled architectures are cached (:func:`compiled`): a second case costs one run of the tape.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
import symengine as se
from mpmath import libmp

from oracles import symbolic
from oracles.exact_tape import Tape, build_tape
from oracles.registry import Oracle, OracleOutput, register
from reference_impl.spec import KINKED_ACTIVATIONS, Array, Params, Spec, as_spec, check_arrays

# 200 bits ≈ 60 decimal digits: float64 products (106 bits) and their sums stay exact; the exact twins'
# derivatives have no cancellation, so every result keeps its relative accuracy far past float64's.
PRECISION_BITS = 200
ROUNDING = libmp.round_nearest
# Tractability: symbolic differentiation is forward mode, so one example's derivative grows with the
# parameters times the layers after them, and deep expressions also make SymEngine's structural
# equality (every dictionary lookup while sharing subtrees) grow with depth: measured cold, 552
# parameters at depth 3 take ≈ 3 s and 576 at depth 8 ≈ 30 s, while 280 parameters at depth 14 take
# minutes.  The batch only costs a linear number of evaluations of the one compiled example
# (see benchmarks/bench_sympy.py).
MAX_PARAMETERS = 600
MAX_DEPTH = 8
# relu/leaky_relu are Piecewise: their derivatives nest a Piecewise per layer, and past five layers the
# cost explodes well inside the limits above (measured cold: 550 parameters at depth 5 ≈ 15 s, 540 at
# depth 6 ≈ 54 s, 336 at depth 8 over 100 s, 576 at depth 8 over 300 s; but 160 at depth 8 ≈ 4 s).
# Deeper piecewise networks are taken only while their forward-mode size is small.
MAX_PIECEWISE_DEPTH = 5
MAX_DEEP_PIECEWISE_SIZE = 10_000
CACHE_SIZE = 32

MpfTuple = tuple[Any, ...]  # mpmath's raw (sign, mantissa, exponent, bitcount) number
CompiledFn = Callable[[Sequence[MpfTuple]], tuple[MpfTuple, ...]]


# ---- the symbolic problem ------------------------------------------------------------------------


@dataclass(frozen=True)
class SymbolicProblem:
    """Symbols of one shape and the loss written in them.

    ``parameters[name]`` is a nested list ``(rows, cols)`` of symbols shaped like the array;
    ``X``/``Y`` are ``(n_0, m)``/``(n_L, m)``; ``shifts[l-1]`` is ``(n_l, m)``, the symbols added to z^[l].
    """

    spec: Spec
    batch: int
    parameters: dict[str, list[list[Any]]]
    X: list[list[Any]]
    Y: list[list[Any]]
    shifts: list[list[list[Any]]]
    loss: Any


def _symbol_matrix(prefix: str, rows: int, cols: int) -> list[list[Any]]:
    return [[se.Symbol(f"{prefix}_{i}_{j}") for j in range(cols)] for i in range(rows)]


def _flat(matrix: list[list[Any]]) -> list[Any]:
    return [entry for row in matrix for entry in row]


def build_problem(spec: Spec, batch: int) -> SymbolicProblem:
    """The loss as one scalar expression: forward pass and loss written out symbol by symbol."""
    parameters = {name: _symbol_matrix(name, *spec.parameter_shape(name)) for name in spec.parameter_names}
    X = _symbol_matrix("X", spec.widths[0], batch)
    Y = _symbol_matrix("Y", spec.widths[-1], batch)
    shifts = [_symbol_matrix(f"s{layer}", spec.widths[layer], batch) for layer in range(1, spec.depth + 1)]
    A = X
    Z: list[list[Any]] = []
    for layer, name in enumerate(spec.activations, start=1):
        W, b, shift = parameters[f"W{layer}"], parameters[f"b{layer}"], shifts[layer - 1]
        Z = [
            [se.Add(*(W[i][j] * A[j][k] for j in range(len(A))), b[i][0], shift[i][k]) for k in range(batch)]
            for i in range(len(W))
        ]
        A = _activate(name, Z)
    loss = symbolic.LOSSES[spec.loss].oracle_value(Z, A, Y, se)
    return SymbolicProblem(spec, batch, parameters, X, Y, shifts, loss)


def _activate(name: str, Z: list[list[Any]]) -> list[list[Any]]:
    twin = symbolic.ACTIVATIONS[name]
    if twin.exact is not None:
        g = twin.exact
        return [[g(z, se) for z in row] for row in Z]
    assert twin.exact_vector is not None
    n, m = len(Z), len(Z[0])
    columns = [twin.exact_vector([Z[i][k] for i in range(n)], se) for k in range(m)]
    return [[columns[k][i] for k in range(m)] for i in range(n)]


# ---- compilation to high-precision Python ---------------------------------------------------------


class _Printer:
    """Prints SymEngine expressions as Python over ``mpmath.libmp`` numbers at a fixed precision."""

    def __init__(self, names: dict[Any, str]) -> None:
        self.names = names
        self.constants: dict[str, MpfTuple] = {}
        self.tail = f", {PRECISION_BITS}, {ROUNDING!r})"

    def constant(self, numerator: int, denominator: int = 1) -> str:
        name = f"k{'m' if numerator < 0 else ''}{abs(numerator)}_{denominator}"
        if name not in self.constants:
            self.constants[name] = libmp.from_rational(numerator, denominator, PRECISION_BITS, ROUNDING)
        return name

    def expr(self, e: Any) -> str:
        if e in self.names:
            return self.names[e]
        if e.is_Number:
            return self._number(e)
        kind = type(e).__name__
        method = getattr(self, f"_{kind}", None)
        if method is None:
            raise NotImplementedError(f"no high-precision rule for {kind}: {e}")
        return str(method(e))

    def _number(self, e: Any) -> str:
        # Only exact numbers: a float constant in the expression would be a rounding we did not ask for.
        if e.is_Integer:
            return self.constant(int(e))
        if e.is_Rational:
            p, q = e.get_num_den()
            return self.constant(int(p), int(q))
        raise NotImplementedError(f"inexact constant {e} in the symbolic derivative")

    def _Add(self, e: Any) -> str:
        terms = ", ".join(self.expr(a) for a in e.args)
        return f"mpf_sum(({terms},){self.tail}"

    def _Mul(self, e: Any) -> str:
        numerator: list[str] = []
        denominator: list[str] = []
        negate = False
        for factor in e.args:
            if factor == -1:
                negate = not negate
            elif type(factor).__name__ == "Pow" and factor.args[1].is_Integer and int(factor.args[1]) < 0:
                denominator.append(self._power(factor.args[0], -int(factor.args[1])))
            else:
                numerator.append(self.expr(factor))
        top = self._product(numerator) if numerator else self.constant(1)
        out = f"mpf_div({top}, {self._product(denominator)}{self.tail}" if denominator else top
        return f"mpf_neg({out})" if negate else out

    def _product(self, factors: list[str]) -> str:
        out = factors[0]
        for factor in factors[1:]:
            out = f"mpf_mul({out}, {factor}{self.tail}"
        return out

    def _power(self, base: Any, exponent: int) -> str:
        b = self.expr(base)
        if exponent == 1:
            return b
        if exponent == 2:
            return f"mpf_mul({b}, {b}{self.tail}"
        return f"mpf_pow_int({b}, {exponent}{self.tail}"

    def _Pow(self, e: Any) -> str:
        base, exponent = e.args
        if base == se.E:
            return f"mpf_exp({self.expr(exponent)}{self.tail}"
        if not exponent.is_Integer:
            raise NotImplementedError(f"non-integer power {e}")
        k = int(exponent)
        if k >= 0:
            return self._power(base, k)
        return f"mpf_div({self.constant(1)}, {self._power(base, -k)}{self.tail}"

    def _log(self, e: Any) -> str:
        argument = e.args[0]
        if argument.is_Add:
            # log(1 + u) with u = e^{−600}: a rounded 1 + u would lose u entirely, so sum exactly
            # (precision 0) and let the logarithm round once.
            terms = ", ".join(self.expr(a) for a in argument.args)
            return f"mpf_log(mpf_sum(({terms},), 0){self.tail}"
        return f"mpf_log({self.expr(argument)}{self.tail}"

    def _tanh(self, e: Any) -> str:
        return f"mpf_tanh({self.expr(e.args[0])}{self.tail}"

    def _cosh(self, e: Any) -> str:
        return f"mpf_cosh({self.expr(e.args[0])}{self.tail}"

    def _sinh(self, e: Any) -> str:
        return f"mpf_sinh({self.expr(e.args[0])}{self.tail}"

    def _Piecewise(self, e: Any) -> str:
        args = list(e.args)
        out = "None"
        for value, condition in reversed(list(zip(args[::2], args[1::2], strict=True))):
            test = self.expr(condition)
            out = self.expr(value) if test == "True" else f"({self.expr(value)} if {test} else {out})"
        return out

    def _BooleanTrue(self, e: Any) -> str:
        return "True"

    def _StrictLessThan(self, e: Any) -> str:
        return f"mpf_lt({self.expr(e.args[0])}, {self.expr(e.args[1])})"

    def _LessThan(self, e: Any) -> str:
        return f"mpf_le({self.expr(e.args[0])}, {self.expr(e.args[1])})"


_RUNTIME_NAMES = "mpf_sum mpf_mul mpf_div mpf_neg mpf_pow_int mpf_exp mpf_log mpf_tanh mpf_cosh mpf_sinh mpf_lt mpf_le"
_RUNTIME: dict[str, Any] = {name: getattr(libmp, name) for name in _RUNTIME_NAMES.split()}


@dataclass(frozen=True)
class CompiledArchitecture:
    """One shape's compiled derivative.

    Inputs, in order: every parameter entry (``spec.parameter_names`` order, row-major), X and Y
    (row-major), then the shift symbols (always 0).  Outputs: every parameter's gradient entry in the
    same order, then δ^[1..L] (row-major each), then L itself.
    """

    spec: Spec
    batch: int
    function: CompiledFn
    n_inputs: int
    n_operations: int  # distinct operations (instructions or assignments) in the compiled function
    seconds: dict[str, float]  # build, diff, tape (or dag, compile)
    source: str  # the printed Python ("source" route only)
    tape: Tape | None = None  # the instruction tape ("tape" route), run for every example at once


def _is_leaf(e: Any) -> bool:
    return bool(e.is_Symbol or e.is_Number or not e.args or e == se.E)


def _inlined(e: Any) -> bool:
    # 1/b^k is printed inside the product that uses it (one division instead of an inverse and a product).
    return bool(e.is_Pow and e.args[1].is_Integer and int(e.args[1]) < 0)


def _shared_nodes(outputs: Sequence[Any]) -> list[Any]:
    """Every distinct operation in ``outputs``, children before parents (a post-order of the DAG).

    SymEngine keeps equal subexpressions equal and hashable, so a dictionary finds every repeated
    subtree in linear time; ``symengine.cse`` also searches argument subsets of long sums and products,
    which costs minutes on a few hundred parameters and saves little here.
    """
    order: list[Any] = []
    seen: set[Any] = set()
    stack: list[tuple[Any, bool]] = [(e, False) for e in reversed(outputs)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if node in seen or _is_leaf(node):
            continue
        seen.add(node)
        if not _inlined(node):
            stack.append((node, True))
        stack.extend((child, False) for child in reversed(node.args) if child not in seen)
    return order


def compile_architecture(spec: Spec, batch: int, route: str = "tape") -> CompiledArchitecture:
    """Build L symbolically, differentiate it for every parameter and shift, share subtrees, compile.

    ``route="tape"`` (the oracle's) turns the shared DAG into an instruction tape
    (:mod:`oracles.exact_tape`); ``route="source"`` prints it as Python and compiles that, the older
    and slower route with the same arithmetic, kept so the tests can hold the two to the same bits.
    """
    if route not in ("tape", "source"):
        raise ValueError(f"route must be 'tape' or 'source', got {route!r}")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    problem = build_problem(spec, batch)
    parameter_symbols = list(itertools.chain.from_iterable(_flat(problem.parameters[n]) for n in spec.parameter_names))
    shift_symbols = list(itertools.chain.from_iterable(_flat(s) for s in problem.shifts))
    data_symbols = _flat(problem.X) + _flat(problem.Y)
    seconds["build"] = time.perf_counter() - start

    start = time.perf_counter()
    outputs = [se.diff(problem.loss, symbol) for symbol in parameter_symbols + shift_symbols]
    outputs.append(problem.loss)
    seconds["diff"] = time.perf_counter() - start
    inputs = parameter_symbols + data_symbols + shift_symbols

    if route == "tape":
        start = time.perf_counter()
        tape = build_tape(outputs, inputs, PRECISION_BITS, ROUNDING)
        seconds["tape"] = time.perf_counter() - start

        def per_example(values: Sequence[MpfTuple]) -> tuple[MpfTuple, ...]:
            return tuple(column[0] for column in tape.run([[v] for v in values]))

        return CompiledArchitecture(spec, batch, per_example, len(inputs), tape.n_operations, seconds, "", tape)

    start = time.perf_counter()
    nodes = _shared_nodes(outputs)
    seconds["dag"] = time.perf_counter() - start

    start = time.perf_counter()
    names: dict[Any, str] = {symbol: f"v[{n}]" for n, symbol in enumerate(inputs)}
    printer = _Printer(names)
    # Values live in two lists, not in thousands of local variables: CPython 3.11 allocates frames in
    # 16 KiB chunks, and a frame that fills most of one makes every callee frame (each mpf_mul)
    # allocate and free a fresh chunk, ten times slower depending only on the caller's stack depth.
    lines = ["def evaluate(v):", f"    t = [None] * {len(nodes)}"]
    for n, node in enumerate(nodes):
        lines.append(f"    t[{n}] = {printer.expr(node)}")
        names[node] = f"t[{n}]"
    lines.append(f"    return ({', '.join(printer.expr(e) for e in outputs)},)")
    source = "\n".join(lines) + "\n"
    namespace: dict[str, Any] = dict(_RUNTIME) | printer.constants
    exec(compile(source, f"<sympy_exact {spec.to_dict()} m={batch}>", "exec"), namespace)
    seconds["compile"] = time.perf_counter() - start
    return CompiledArchitecture(spec, batch, namespace["evaluate"], len(inputs), len(nodes), seconds, source)


_CACHE: OrderedDict[tuple[Spec, int], CompiledArchitecture] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def compiled(spec: Spec, batch: int = 1) -> CompiledArchitecture:
    """The compiled derivative of a shape, built on first use and kept (least recently used evicted)."""
    key = (spec, batch)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        # Built under the lock: two threads asking for one new shape must not both pay seconds for it.
        entry = compile_architecture(spec, batch)
        _CACHE[key] = entry
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
        return entry


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


# ---- evaluation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HighPrecisionResult:
    """Unrounded results (``mpmath.mpf`` at :data:`PRECISION_BITS` bits), shaped like the arrays.

    ``grads[name]`` ``(rows, cols)``; ``deltas[l-1]`` ``(n_l, m)``; ``loss`` a scalar.
    """

    grads: dict[str, list[list[mpmath.mpf]]]
    deltas: list[list[list[mpmath.mpf]]]
    loss: mpmath.mpf


@dataclass(frozen=True)
class _Raw:
    """Raw mpf tuples: ``grads`` flat in parameter order, ``deltas[l-1]`` ``(n_l, m)``, ``loss``."""

    grads: list[MpfTuple]
    deltas: list[list[list[MpfTuple]]]
    loss: MpfTuple


def _exact(values: Array) -> list[MpfTuple]:
    return [libmp.from_float(float(v)) for v in np.asarray(values, dtype=np.float64).ravel()]


def _raw_outputs(spec: Spec, params: Mapping[str, Array], X: Array, Y: Array, *, per_example: bool = True) -> _Raw:
    """Evaluate the compiled derivative.

    ``per_example=True`` (the oracle): every loss is a sum over examples, L = c · Σ_k ℓ(θ; x_k, y_k)
    with c = 1/m or 1 (``SymbolicLoss.mean_over_batch``), so one expression ℓ of a single example is
    compiled per architecture and evaluated column by column; the m contributions are summed and
    scaled before the one rounding.  ``per_example=False`` compiles L over the whole batch at once
    (slower to build; kept to show both routes agree).
    """
    params64 = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    X64, Y64 = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    check_arrays(spec, params64, X64, Y64)
    m = int(X64.shape[1])
    theta = [value for name in spec.parameter_names for value in _exact(params64[name])]
    n_theta, widths = len(theta), spec.widths[1:]
    if not per_example:
        entry = compiled(spec, m)
        inputs = theta + _exact(X64) + _exact(Y64)
        out = entry.function(inputs + [libmp.fzero] * (entry.n_inputs - len(inputs)))
        flat_deltas = iter(out[n_theta:-1])
        batch_deltas = [[[next(flat_deltas) for _ in range(m)] for _ in range(w)] for w in widths]
        return _Raw(list(out[:n_theta]), batch_deltas, out[-1])
    entry = compiled(spec, 1)
    if entry.tape is not None:
        # Every example through the tape at once: θ is shared, each data input has one value per example.
        data = [_exact(row) for row in (*X64, *Y64)]
        outs = entry.tape.run([[v] * m for v in theta] + data + [[libmp.fzero] * m] * sum(widths))
        columns: list[Sequence[MpfTuple]] = [[out[k] for out in outs] for k in range(m)]
    else:
        zeros = [libmp.fzero] * sum(widths)
        columns = [entry.function(theta + _exact(X64[:, k]) + _exact(Y64[:, k]) + zeros) for k in range(m)]
    divisor = libmp.from_int(m if symbolic.LOSSES[spec.loss].mean_over_batch else 1)

    def combine(values: Sequence[MpfTuple]) -> MpfTuple:
        # Exact sum, then one division: a single rounding at 200 bits before the final one to float64.
        return libmp.mpf_div(libmp.mpf_sum(values), divisor, PRECISION_BITS, ROUNDING)

    grads = [combine([column[n] for column in columns]) for n in range(n_theta)]
    deltas: list[list[list[MpfTuple]]] = []
    offset = n_theta
    for width in widths:
        deltas.append(
            [
                [libmp.mpf_div(columns[k][offset + i], divisor, PRECISION_BITS, ROUNDING) for k in range(m)]
                for i in range(width)
            ]
        )
        offset += width
    return _Raw(grads, deltas, combine([column[-1] for column in columns]))


def _blocks(spec: Spec, flat: Sequence[Any]) -> dict[str, list[list[Any]]]:
    values = iter(flat)
    blocks = {}
    for name in spec.parameter_names:
        rows, cols = spec.parameter_shape(name)
        blocks[name] = [[next(values) for _ in range(cols)] for _ in range(rows)]
    return blocks


def evaluate_high_precision(
    spec: Spec | Mapping[str, Any], params: Mapping[str, Array], X: Array, Y: Array, *, per_example: bool = True
) -> HighPrecisionResult:
    """Gradients, δ and loss before the final rounding (for checking the precision claim itself)."""
    spec = as_spec(spec)
    raw = _raw_outputs(spec, params, X, Y, per_example=per_example)
    mpf = mpmath.mpf
    # mpf() rounds to the context's precision: build the numbers at ours, or they come back as doubles.
    with mpmath.workprec(PRECISION_BITS):
        return HighPrecisionResult(
            grads=_blocks(spec, [mpf(v) for v in raw.grads]),
            deltas=[[[mpf(v) for v in row] for row in delta] for delta in raw.deltas],
            loss=mpf(raw.loss),
        )


def _round(raw: MpfTuple) -> float:
    return float(libmp.to_float(raw, rnd=ROUNDING))


def evaluate(spec: Spec, params: Params, X: Array, Y: Array) -> OracleOutput:
    start = time.perf_counter()
    spec = as_spec(spec)
    raw = _raw_outputs(spec, params, X, Y)
    grads = _blocks(spec, [_round(v) for v in raw.grads])
    return OracleOutput(
        grads={name: np.array(block, dtype=np.float64) for name, block in grads.items()},
        loss=_round(raw.loss),
        deltas=tuple(np.array([[_round(v) for v in row] for row in delta], dtype=np.float64) for delta in raw.deltas),
        elapsed=time.perf_counter() - start,
        extra={"precision_bits": PRECISION_BITS},
    )


def forward_mode_size(spec: Spec) -> int:
    """Operations of one example's symbolic derivatives, roughly: each parameter of layer l carries its
    derivative through layer l and every product after it, Σ_l P_l·(n_l + Σ_{k>l} n_k·n_{k−1})."""
    widths = spec.widths
    size = 0
    for layer in range(1, spec.depth + 1):
        downstream = widths[layer] + sum(widths[k] * widths[k - 1] for k in range(layer + 1, spec.depth + 1))
        size += widths[layer] * (widths[layer - 1] + 1) * downstream
    return size


def why_unsupported(spec: Spec) -> str | None:
    """Tractability limit by parameter count, depth and piecewise depth; the batch only multiplies the
    evaluation time."""
    if spec.n_parameters > MAX_PARAMETERS:
        return f"sympy_exact compiles at most {MAX_PARAMETERS} parameters symbolically, got {spec.n_parameters}"
    if spec.depth > MAX_DEPTH:
        return f"sympy_exact compiles at most {MAX_DEPTH} layers symbolically, got {spec.depth}"
    piecewise = any(name in KINKED_ACTIVATIONS for name in spec.activations)
    if piecewise and spec.depth > MAX_PIECEWISE_DEPTH and forward_mode_size(spec) > MAX_DEEP_PIECEWISE_SIZE:
        return (
            f"sympy_exact compiles relu/leaky_relu networks deeper than {MAX_PIECEWISE_DEPTH} layers only up to a "
            f"forward-mode size of {MAX_DEEP_PIECEWISE_SIZE:,}, got {forward_mode_size(spec):,}"
        )
    return None


def gradients(spec: Mapping[str, Any] | Spec, params: Mapping[str, Array], X: Array, Y: Array) -> Params:
    """The subject protocol."""
    return ORACLE.gradients(spec, params, X, Y)


def loss(spec: Mapping[str, Any] | Spec, params: Mapping[str, Array], X: Array, Y: Array) -> float:
    output = evaluate(as_spec(spec), dict(params), np.asarray(X, np.float64), np.asarray(Y, np.float64))
    assert output.loss is not None
    return output.loss


ORACLE = register(
    Oracle(
        name="sympy_exact",
        evaluate=evaluate,
        kind="exact",
        supports_fn=why_unsupported,
        description="loss as one SymEngine expression, symbolic ∂L/∂θ and δ, 200-bit evaluation, one rounding",
    )
)

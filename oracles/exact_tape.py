"""A shared SymEngine DAG turned into an instruction tape and run at high precision over a batch of examples.

This is how :mod:`oracles.sympy_exact` evaluates its symbolic derivatives.  Printing the DAG as Python
source and compiling it cost ≈ 70 % of a new architecture's time (CPython's compiler on ~60 KB of
nested calls); a tape is built in one walk over the DAG and needs no compiler.  Each instruction runs
for every example at once, so the interpreter's dispatch is paid once per operation, not once per
operation and example.

The arithmetic is exactly that of the printed route: the same ``mpmath.libmp`` function for each node,
the same operand order, precision and rounding (products left to right, sums in one ``mpf_sum``, ``1/bᵏ``
folded into the product that divides by it, the argument of a ``log`` of a sum summed exactly), so both
routes give the same bits; the tests compare them on many architectures.  Every node is evaluated,
including both branches of a ``Piecewise`` (as the printed route does): mpmath has no overflow, so an
unused branch costs time but never raises.

Values are ``mpmath.libmp`` raw tuples; slot ``s`` holds one value per example, ``values[s][k]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import symengine as se
from mpmath import libmp

MpfTuple = tuple[Any, ...]
Column = list[Any]  # one slot's value for every example: MpfTuple, or bool for a condition
Op = Callable[[list[Column], tuple[int, ...]], Column]


@dataclass(frozen=True)
class Tape:
    """Instructions over numbered slots.

    Slots ``0 .. n_inputs-1`` are the inputs in the order given to :func:`build_tape`; ``constants`` maps
    further slots to values shared by every example; ``code`` is ``(op, out_slot, operand_slots)`` in
    evaluation order; ``outputs`` are the slots of the requested expressions.
    """

    n_inputs: int
    n_slots: int
    constants: tuple[tuple[int, Any], ...]
    code: tuple[tuple[Op, int, tuple[int, ...]], ...]
    outputs: tuple[int, ...]

    @property
    def n_operations(self) -> int:
        return len(self.code)

    def run(self, inputs: Sequence[Column]) -> list[Column]:
        """``inputs[i]`` is input ``i`` for each of the m examples; returns ``[output][example]``."""
        if len(inputs) != self.n_inputs:
            raise ValueError(f"the tape takes {self.n_inputs} inputs, got {len(inputs)}")
        m = len(inputs[0]) if inputs else 1
        values: list[Column] = [[]] * self.n_slots
        values[: self.n_inputs] = [list(column) for column in inputs]
        for slot, value in self.constants:
            values[slot] = [value] * m
        for op, out, args in self.code:
            values[out] = op(values, args)
        return [values[slot] for slot in self.outputs]


class _Ops:
    """The instruction set at one precision and rounding (each a function of the slot list)."""

    def __init__(self, precision: int, rounding: str) -> None:
        p, r = precision, rounding
        add, mul, div, neg = libmp.mpf_sum, libmp.mpf_mul, libmp.mpf_div, libmp.mpf_neg
        pow_int, exp, log = libmp.mpf_pow_int, libmp.mpf_exp, libmp.mpf_log
        tanh, cosh, sinh, lt, le = libmp.mpf_tanh, libmp.mpf_cosh, libmp.mpf_sinh, libmp.mpf_lt, libmp.mpf_le

        def op_sum(v: list[Column], a: tuple[int, ...]) -> Column:
            return [add(terms, p, r) for terms in zip(*(v[i] for i in a), strict=True)]

        def op_mul(v: list[Column], a: tuple[int, ...]) -> Column:
            return [mul(x, y, p, r) for x, y in zip(v[a[0]], v[a[1]], strict=True)]

        def op_div(v: list[Column], a: tuple[int, ...]) -> Column:
            return [div(x, y, p, r) for x, y in zip(v[a[0]], v[a[1]], strict=True)]

        def op_neg(v: list[Column], a: tuple[int, ...]) -> Column:
            return [neg(x) for x in v[a[0]]]

        def op_pow(v: list[Column], a: tuple[int, ...]) -> Column:
            k = a[1]
            return [pow_int(x, k, p, r) for x in v[a[0]]]

        def op_exp(v: list[Column], a: tuple[int, ...]) -> Column:
            return [exp(x, p, r) for x in v[a[0]]]

        def op_log(v: list[Column], a: tuple[int, ...]) -> Column:
            return [log(x, p, r) for x in v[a[0]]]

        def op_log_exact_sum(v: list[Column], a: tuple[int, ...]) -> Column:
            # log(1 + u) with u = e^{−600}: a rounded 1 + u would lose u, so the sum is exact (precision 0).
            return [log(add(terms, 0), p, r) for terms in zip(*(v[i] for i in a), strict=True)]

        def op_tanh(v: list[Column], a: tuple[int, ...]) -> Column:
            return [tanh(x, p, r) for x in v[a[0]]]

        def op_cosh(v: list[Column], a: tuple[int, ...]) -> Column:
            return [cosh(x, p, r) for x in v[a[0]]]

        def op_sinh(v: list[Column], a: tuple[int, ...]) -> Column:
            return [sinh(x, p, r) for x in v[a[0]]]

        def op_lt(v: list[Column], a: tuple[int, ...]) -> Column:
            return [lt(x, y) for x, y in zip(v[a[0]], v[a[1]], strict=True)]

        def op_le(v: list[Column], a: tuple[int, ...]) -> Column:
            return [le(x, y) for x, y in zip(v[a[0]], v[a[1]], strict=True)]

        def op_select(v: list[Column], a: tuple[int, ...]) -> Column:
            return [x if c else y for c, x, y in zip(v[a[0]], v[a[1]], v[a[2]], strict=True)]

        self.sum, self.mul, self.div, self.neg, self.pow = op_sum, op_mul, op_div, op_neg, op_pow
        self.exp, self.log, self.log_exact_sum = op_exp, op_log, op_log_exact_sum
        self.tanh, self.cosh, self.sinh = op_tanh, op_cosh, op_sinh
        self.lt, self.le, self.select = op_lt, op_le, op_select
        self.precision, self.rounding = p, r


_OPS: dict[tuple[int, str], _Ops] = {}


def _ops(precision: int, rounding: str) -> _Ops:
    key = (precision, rounding)
    if key not in _OPS:
        _OPS[key] = _Ops(precision, rounding)
    return _OPS[key]


_x, _y = se.Symbol("x"), se.Symbol("y")
_MUL, _POW = type(_x * _y), type(_x**_y)


def _negative_exponent(power: Any) -> int:
    """k when ``power`` is b^(−k) with a positive integer k (computed as a division by bᵏ), else 0."""
    exponent = power.args[1]
    return -int(exponent) if exponent.is_Integer and int(exponent) < 0 else 0


class _Builder:
    """One walk over the DAG (children first), emitting an instruction per operation."""

    def __init__(self, inputs: Sequence[Any], precision: int, rounding: str) -> None:
        self.ops = _ops(precision, rounding)
        self.slots: dict[Any, int] = {symbol: n for n, symbol in enumerate(inputs)}
        self.n_inputs = len(inputs)
        self.n_slots = len(inputs)
        self.constants: list[tuple[int, Any]] = []
        self.constant_slots: dict[Any, int] = {}
        self.code: list[tuple[Op, int, tuple[int, ...]]] = []
        self.powers: dict[tuple[int, int], int] = {}
        self.handlers: dict[str, Callable[[Any, tuple[Any, ...]], int]] = {
            "Add": self._add,
            "Mul": self._mul,
            "Pow": self._pow,
            "log": self._log,
            "tanh": lambda e, args: self._unary(self.ops.tanh, args[0]),
            "cosh": lambda e, args: self._unary(self.ops.cosh, args[0]),
            "sinh": lambda e, args: self._unary(self.ops.sinh, args[0]),
            "Piecewise": self._piecewise,
            "StrictLessThan": lambda e, args: self._emit(self.ops.lt, self.slots[args[0]], self.slots[args[1]]),
            "LessThan": lambda e, args: self._emit(self.ops.le, self.slots[args[0]], self.slots[args[1]]),
        }

    # -- slots --------------------------------------------------------------------------------------

    def _new_slot(self) -> int:
        self.n_slots += 1
        return self.n_slots - 1

    def _constant(self, key: Any, value: Any) -> int:
        if key not in self.constant_slots:
            slot = self._new_slot()
            self.constant_slots[key] = slot
            self.constants.append((slot, value))
        return self.constant_slots[key]

    def rational(self, numerator: int, denominator: int = 1) -> int:
        value = libmp.from_rational(numerator, denominator, self.ops.precision, self.ops.rounding)
        return self._constant((numerator, denominator), value)

    def _emit(self, op: Op, *args: int) -> int:
        out = self._new_slot()
        self.code.append((op, out, args))
        return out

    def _unary(self, op: Op, argument: Any) -> int:
        return self._emit(op, self.slots[argument])

    def slot(self, e: Any) -> int:
        """The slot holding ``e``, emitting the instructions for it (and its children) on first sight."""
        found = self.slots.get(e)
        if found is not None:
            return found
        # Children first, iteratively: derivative DAGs are deep enough to exhaust Python's recursion.
        slots = self.slots
        stack: list[tuple[Any, tuple[Any, ...] | None]] = [(e, None)]
        while stack:
            node, args = stack.pop()
            if node in slots:
                continue
            if args is None:
                args = tuple(node.args)
                if not args:
                    slots[node] = self._leaf(node)
                    continue
                stack.append((node, args))
                # Pushed unchecked: a child already done is skipped when popped (one lookup, not two;
                # each lookup of a fresh wrapper costs a structural comparison in SymEngine).
                stack.extend([(child, None) for child in self._operands(node, args)])
                continue
            # Every operand has its slot by now: the handlers look them up in ``slots`` directly.
            handler = self.handlers.get(type(node).__name__)
            if handler is None:
                raise NotImplementedError(f"no high-precision rule for {type(node).__name__}: {node}")
            slots[node] = handler(node, args)
        return slots[e]

    def _operands(self, e: Any, args: tuple[Any, ...]) -> list[Any]:
        """The children an operation computes first: a product folds its 1/bᵏ factors into one division
        (only b is computed), and e^x needs only x."""
        kind = type(e)
        if kind is _MUL:
            return [c.args[0] if type(c) is _POW and _negative_exponent(c) else c for c in args]
        if kind is _POW and args[0] == se.E:
            return [args[1]]
        return list(args)

    def _leaf(self, e: Any) -> int:
        if e.is_Number:
            if e.is_Integer:
                return self.rational(int(e))
            if e.is_Rational:
                p, q = e.get_num_den()
                return self.rational(int(p), int(q))
            raise NotImplementedError(f"inexact constant {e} in the symbolic derivative")
        kind = type(e).__name__
        if kind == "BooleanTrue":
            return self._constant(True, True)
        if e.is_Symbol:
            raise ValueError(f"symbol {e} is not an input of the tape")
        raise NotImplementedError(f"no high-precision rule for {kind}: {e}")

    # -- operations ---------------------------------------------------------------------------------

    def _add(self, e: Any, args: tuple[Any, ...]) -> int:
        slots = self.slots
        return self._emit(self.ops.sum, *[slots[a] for a in args])

    def _product(self, slots: list[int]) -> int:
        out = slots[0]
        for factor in slots[1:]:
            out = self._emit(self.ops.mul, out, factor)
        return out

    def _power(self, base: Any, exponent: int) -> int:
        b = self.slots[base]
        if exponent == 1:
            return b
        if (b, exponent) not in self.powers:
            op = self.ops.mul if exponent == 2 else self.ops.pow
            self.powers[b, exponent] = self._emit(op, b, b if exponent == 2 else exponent)
        return self.powers[b, exponent]

    def _mul(self, e: Any, args: tuple[Any, ...]) -> int:
        numerator: list[int] = []
        denominator: list[int] = []
        negate = False
        for factor in args:
            if factor.is_Integer and int(factor) == -1:
                negate = not negate
                continue
            k = _negative_exponent(factor) if type(factor) is _POW else 0
            if k:
                denominator.append(self._power(factor.args[0], k))
            else:
                numerator.append(self.slots[factor])
        top = self._product(numerator) if numerator else self.rational(1)
        out = self._emit(self.ops.div, top, self._product(denominator)) if denominator else top
        return self._emit(self.ops.neg, out) if negate else out

    def _pow(self, e: Any, args: tuple[Any, ...]) -> int:
        base, exponent = args
        if base == se.E:
            return self._emit(self.ops.exp, self.slots[exponent])
        if not exponent.is_Integer:
            raise NotImplementedError(f"non-integer power {e}")
        k = int(exponent)
        if k >= 0:
            return self._power(base, k)
        return self._emit(self.ops.div, self.rational(1), self._power(base, -k))

    def _log(self, e: Any, args: tuple[Any, ...]) -> int:
        argument = args[0]
        if argument.is_Add:
            return self._emit(self.ops.log_exact_sum, *[self.slots[a] for a in argument.args])
        return self._emit(self.ops.log, self.slots[argument])

    def _piecewise(self, e: Any, args: tuple[Any, ...]) -> int:
        out = self._constant(None, None)
        for value, condition in reversed(list(zip(args[::2], args[1::2], strict=True))):
            if type(condition).__name__ == "BooleanTrue":
                out = self.slots[value]
            else:
                out = self._emit(self.ops.select, self.slots[condition], self.slots[value], out)
        return out


def build_tape(outputs: Sequence[Any], inputs: Sequence[Any], precision: int, rounding: str) -> Tape:
    """The tape computing ``outputs`` (SymEngine expressions) from ``inputs`` (SymEngine symbols)."""
    builder = _Builder(inputs, precision, rounding)
    output_slots = tuple(builder.slot(e) for e in outputs)
    return Tape(
        n_inputs=builder.n_inputs,
        n_slots=builder.n_slots,
        constants=tuple(builder.constants),
        code=tuple(builder.code),
        outputs=output_slots,
    )

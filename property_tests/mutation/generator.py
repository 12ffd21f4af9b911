"""Mutants made by machine: AST mutation operators applied to correct implementations.

Each operator changes one node of a base implementation's syntax tree (``property_tests/corpus/correct/
g_*.py``): arithmetic operator and sign swaps, added or removed transposes, axis and keepdims changes,
numeric constants, off-by-one indices, dropped terms, swapped arguments, flipped comparisons.  Every
mutant is labelled by its operator and its location — base, line, column, enclosing function, and the
*role* of that code in backprop, read from the ``# role: …`` markers of the base (forward, derivative,
output, recursion, weight, bias, plumbing).  Mutants whose source comes out identical to another's are
dropped; nothing here knows how the diagnoser names defects.
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib.util
import re
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "correct"
BASES: tuple[str, ...] = ("g_loop", "g_class", "g_einsum", "g_rows", "g_functional")
ROLES = ("forward", "derivative", "output", "recursion", "weight", "bias", "plumbing")
ROLE_MARK = re.compile(r"#\s*role:\s*(\w+)")

Edit = Callable[[ast.AST], ast.AST | None]  # the node's replacement (None: leave as is)


@dataclass(frozen=True)
class Site:
    """Where and how one mutant differs from its base."""

    base: str
    operator: str
    detail: str
    line: int
    col: int
    function: str
    role: str

    @property
    def label(self) -> str:
        return f"{self.base}:{self.line}:{self.col} {self.operator} ({self.detail}) in {self.function} [{self.role}]"


@dataclass(frozen=True)
class GeneratedMutant:
    site: Site
    source: str

    @property
    def name(self) -> str:
        return f"{self.site.base}@{self.site.line}:{self.site.col}/{self.site.operator}/{self.site.detail}"

    def load(self) -> Callable[..., Any]:
        """The mutant's ``gradients`` (compiling and running the mutated module in a fresh namespace)."""
        module = types.ModuleType(f"mutant_{self.site.base}_{self.site.line}_{self.site.col}")
        code = compile(self.source, f"<mutant {self.site.label}>", "exec")
        exec(code, module.__dict__)  # the code is our own base with one node changed
        gradients: Callable[..., Any] = module.__dict__["gradients"]
        return gradients


# --- the operators ------------------------------------------------------------------------------------

_BINOP_SWAPS: dict[type[ast.operator], tuple[type[ast.operator], ...]] = {
    ast.Add: (ast.Sub,),
    ast.Sub: (ast.Add,),
    ast.Mult: (ast.Div,),
    ast.Div: (ast.Mult,),
    ast.MatMult: (ast.Mult,),
    ast.Pow: (ast.Mult,),
}
_COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.MatMult: "@", ast.Pow: "**"}
_CMP = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!="}


def _number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _new_values(value: float) -> list[float]:
    if isinstance(value, int):
        return [value + 1, value - 1]
    if value == 0.0:
        return [1.0]
    return [0.0, 2.0 * value]


def operator_edits(node: ast.AST, parent: ast.AST | None, in_index: bool = False) -> Iterator[tuple[str, str, Edit]]:
    """(operator, detail, edit) for every mutation that applies to ``node`` (``in_index``: inside a subscript)."""
    if isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _BINOP_SWAPS:
        for new in _BINOP_SWAPS[type(node.op)]:
            yield "binop", f"{_SYMBOL[type(node.op)]} → {_SYMBOL[new]}", _set_op(new)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
        yield "drop_term", "keep left operand", lambda n: n.left  # type: ignore[attr-defined]
        if isinstance(node.op, ast.Add | ast.Mult):
            yield "drop_term", "keep right operand", lambda n: n.right  # type: ignore[attr-defined]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub | ast.Div | ast.MatMult | ast.Pow):
        yield "swap_args", f"operands of {_SYMBOL[type(node.op)]}", _swap_operands
    if isinstance(node, ast.Call) and len(node.args) >= 2 and not all(_number(a) for a in node.args[:2]):
        yield "swap_args", "first two arguments", _swap_call_args
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield "sign", "remove unary minus", lambda n: n.operand  # type: ignore[attr-defined]
    if isinstance(parent, ast.Assign | ast.Return) and node is parent.value and isinstance(node, ast.BinOp | ast.Call):
        yield "sign", "negate value", _negate
    if isinstance(node, ast.Attribute) and node.attr == "T":
        yield "transpose", "remove .T", lambda n: n.value  # type: ignore[attr-defined]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        if not (isinstance(node.left, ast.Attribute) and node.left.attr == "T"):
            yield "transpose", "add .T to left operand", _transpose_side("left")
        if not (isinstance(node.right, ast.Attribute) and node.right.attr == "T"):
            yield "transpose", "add .T to right operand", _transpose_side("right")
    if isinstance(node, ast.keyword) and node.arg == "axis" and _number(node.value):
        value = node.value.value  # type: ignore[attr-defined]
        yield (
            "axis",
            f"axis={value} → axis={1 - value if value in (0, 1) else 0}",
            _set_keyword(1 - value if value in (0, 1) else 0),
        )
        yield "axis", f"axis={value} → no axis", _drop_keyword
    if isinstance(node, ast.keyword) and node.arg == "keepdims":
        yield "keepdims", "keepdims removed", _drop_keyword
    if _number(node) and not isinstance(parent, ast.keyword):
        value = node.value  # type: ignore[attr-defined]
        kind = "index" if in_index else "constant"
        for replacement in _new_values(value):
            yield kind, f"{value!r} → {replacement!r}", _set_constant(replacement)
    if isinstance(parent, ast.Subscript) and node is parent.slice and isinstance(node, ast.Name):
        for delta, op in ((1, ast.Add()), (1, ast.Sub())):
            sign = "+" if isinstance(op, ast.Add) else "-"
            yield "index", f"[{node.id}] → [{node.id} {sign} {delta}]", _shift_index(op, delta)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE_SWAPS:
        old = type(node.ops[0])
        new_cmp = _COMPARE_SWAPS[old]
        yield "compare", f"{_CMP[old]} → {_CMP[new_cmp]}", _set_compare(new_cmp)


def _set_op(new: type[ast.operator]) -> Edit:
    def edit(node: ast.AST) -> ast.AST:
        node.op = new()  # type: ignore[attr-defined]
        return node

    return edit


def _set_compare(new: type[ast.cmpop]) -> Edit:
    def edit(node: ast.AST) -> ast.AST:
        node.ops = [new()]  # type: ignore[attr-defined]
        return node

    return edit


def _swap_operands(node: ast.AST) -> ast.AST:
    node.left, node.right = node.right, node.left  # type: ignore[attr-defined]
    return node


def _swap_call_args(node: ast.AST) -> ast.AST:
    node.args[0], node.args[1] = node.args[1], node.args[0]  # type: ignore[attr-defined]
    return node


def _transpose_side(side: str) -> Edit:
    def edit(node: ast.AST) -> ast.AST:
        setattr(node, side, ast.Attribute(value=getattr(node, side), attr="T", ctx=ast.Load()))
        return node

    return edit


def _set_keyword(value: int) -> Edit:
    def edit(node: ast.AST) -> ast.AST:
        node.value = ast.Constant(value=value)  # type: ignore[attr-defined]
        return node

    return edit


def _drop_keyword(node: ast.AST) -> ast.AST | None:
    return None  # handled by the caller: the keyword is removed from its call


def _set_constant(value: float) -> Edit:
    def edit(node: ast.AST) -> ast.AST:
        if value < 0:
            return ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=-value))
        return ast.Constant(value=value)

    return edit


def _negate(node: ast.AST) -> ast.AST:
    assert isinstance(node, ast.expr)
    return ast.UnaryOp(op=ast.USub(), operand=node)


def _shift_index(op: ast.operator, delta: int) -> Edit:
    def edit(node: ast.AST) -> ast.AST:
        assert isinstance(node, ast.expr)
        return ast.BinOp(left=node, op=op, right=ast.Constant(value=delta))

    return edit


# --- walking a base ----------------------------------------------------------------------------------------


def _skipped(tree: ast.AST) -> set[int]:
    """Nodes never mutated: annotations, docstrings, imports, decorators, string-only code."""
    skip: set[int] = set()

    def mark(sub: ast.AST | None) -> None:
        if sub is not None:
            skip.update(id(n) for n in ast.walk(sub))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            mark(node)
        if isinstance(node, ast.arg):
            mark(node.annotation)
        if isinstance(node, ast.FunctionDef):
            mark(node.returns)
            for decorator in node.decorator_list:
                mark(decorator)
        if isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                mark(first)
        if isinstance(node, ast.JoinedStr):
            mark(node)
    return skip


def _markers(source: str) -> list[tuple[int, str]]:
    """(line, role) of every ``# role: …`` marker."""
    found: list[tuple[int, str]] = []
    for number, text in enumerate(source.splitlines(), start=1):
        match = ROLE_MARK.search(text)
        if match:
            if match.group(1) not in ROLES:
                raise ValueError(f"unknown role {match.group(1)!r} on line {number}")
            found.append((number, match.group(1)))
    return found


def _role(markers: list[tuple[int, str]], spans: list[tuple[int, int, str]], line: int) -> str:
    """The last marker above ``line`` in the same innermost function (module level counts as one); else plumbing."""
    here = _enclosing(spans, line)
    above = [(number, role) for number, role in markers if number <= line and _enclosing(spans, number) == here]
    return max(above)[1] if above else "plumbing"


def _functions(tree: ast.AST) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if isinstance(child, ast.FunctionDef):
                    spans.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return spans


def _enclosing(spans: list[tuple[int, int, str]], line: int) -> str:
    inside = [(end - start, name) for start, end, name in spans if start <= line <= end]
    return min(inside)[1] if inside else "<module>"


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def mutants_of(base: str, source: str | None = None) -> list[GeneratedMutant]:
    """Every mutant of one base, in a fixed order (walk order of its syntax tree)."""
    text = source if source is not None else (CORPUS / f"{base}.py").read_text(encoding="utf-8")
    return list(_mutants(base, text))


@functools.lru_cache(maxsize=16)
def _mutants(base: str, text: str) -> tuple[GeneratedMutant, ...]:
    tree = ast.parse(text)
    original = ast.unparse(tree)
    skip = _skipped(tree)
    markers = _markers(text)
    spans = _functions(tree)
    parents = _parents(tree)
    nodes = list(ast.walk(tree))
    indexing = {id(n) for node in nodes if isinstance(node, ast.Subscript) for n in ast.walk(node.slice)}
    found: list[GeneratedMutant] = []
    seen: set[str] = {original}
    for index, node in enumerate(nodes):
        if id(node) in skip or not hasattr(node, "lineno"):
            continue
        parent = parents.get(id(node))
        for operator, detail, edit in operator_edits(node, parent, id(node) in indexing):
            mutated = _apply(tree, index, edit, operator)
            if mutated is None or mutated in seen:
                continue
            seen.add(mutated)
            line = node.lineno
            role = _role(markers, spans, line)
            column = int(getattr(node, "col_offset", 0))
            site = Site(base, operator, detail, line, column, _enclosing(spans, line), role)
            found.append(GeneratedMutant(site, mutated))
    return tuple(found)


def _apply(tree: ast.AST, index: int, edit: Edit, operator: str) -> str | None:
    """The source with node ``index`` (walk order) edited, or None when the edit does not compile."""
    copied = copy.deepcopy(tree)
    nodes = list(ast.walk(copied))
    target = nodes[index]
    parents = _parents(copied)
    parent = parents[id(target)]
    if isinstance(target, ast.keyword) and edit is _drop_keyword:
        parent.keywords = [k for k in parent.keywords if k is not target]  # type: ignore[attr-defined]
    else:
        replacement = edit(target)
        if replacement is None:
            return None
        if replacement is not target:
            _replace(parent, target, replacement)
    ast.fix_missing_locations(copied)
    try:
        source = ast.unparse(copied)
        compile(source, "<mutant>", "exec")
    except (SyntaxError, ValueError):
        return None
    return source


def _replace(parent: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for field, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, field, new)
            return
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is old:
                    value[i] = new
                    return


def all_mutants(bases: tuple[str, ...] = BASES) -> list[GeneratedMutant]:
    return [mutant for base in bases for mutant in mutants_of(base)]


def base_gradients(base: str) -> Callable[..., Any]:
    """The unmutated base's ``gradients`` (loaded from its file, not as a package module)."""
    spec = importlib.util.spec_from_file_location(f"base_{base}", CORPUS / f"{base}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    gradients: Callable[..., Any] = module.__dict__["gradients"]
    return gradients

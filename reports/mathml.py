"""The article's LaTeX as MathML, so the browser typesets it with no script and no network.

Covers what the article writes: ``\\frac``, ``\\sum`` with limits, ``\\hat``, Greek letters, ``\\partial``,
``\\cdot``/``\\odot``, sub- and superscripts (``W^{[l]}``, ``y_i``, ``g'^{[l-1]}``), primes, brackets.  An
unknown command is shown as its name in the formula rather than failing: a page with a slightly odd symbol
beats a page that does not render.  Everything that is not a formula is escaped text.

>>> str(math_text("a $x^2$ b"))
'a <math><msup><mi>x</mi><mn>2</mn></msup></math> b'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markupsafe import Markup, escape

GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε", "zeta": "ζ",
    "eta": "η", "theta": "θ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ",
    "sigma": "σ", "tau": "τ", "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
    "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}  # fmt: skip
SYMBOLS = {"partial": ("mi", "∂"), "nabla": ("mi", "∇"), "infty": ("mi", "∞"), "ell": ("mi", "ℓ")}
OPERATORS = {
    "cdot": "⋅", "odot": "⊙", "times": "×", "circ": "∘", "pm": "±", "le": "≤", "leq": "≤", "ge": "≥",
    "geq": "≥", "ne": "≠", "neq": "≠", "approx": "≈", "to": "→", "rightarrow": "→", "leftarrow": "←",
    "in": "∈", "ldots": "…", "cdots": "⋯", "mid": "∣", "top": "⊤",
}  # fmt: skip
BIG_OPERATORS = {"sum": "∑", "prod": "∏", "int": "∫"}
SPACES = {",": "0.17em", ";": "0.28em", "quad": "1em", "qquad": "2em", " ": "0.25em"}
ACCENTS = {"hat": "^", "bar": "¯", "tilde": "~", "vec": "→", "dot": "˙"}
IGNORED = {"left", "right", "displaystyle", "limits", "big", "Big", "bigg", "Bigg"}
_TOKEN = re.compile(r"\\([A-Za-z]+|.)|(\d+(?:\.\d+)?)|(\s+)|(.)", re.DOTALL)
_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.DOTALL)


@dataclass
class _Parser:
    tokens: list[tuple[str, str]]  # (kind, text): command, number, space, char
    position: int = 0

    def peek(self) -> tuple[str, str] | None:
        while self.position < len(self.tokens) and self.tokens[self.position][0] == "space":
            self.position += 1
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        assert token is not None
        self.position += 1
        return token

    def sequence(self, closing: str | None = None) -> str:
        parts: list[str] = []
        while (token := self.peek()) is not None:
            if token == ("char", "}") or (closing is not None and token == ("char", closing)):
                break
            parts.append(self.scripted())
        return "".join(parts)

    def group(self) -> str:
        """``{…}`` or a single atom, as one MathML element."""
        token = self.peek()
        if token == ("char", "{"):
            self.take()
            inner = self.sequence()
            if self.peek() == ("char", "}"):
                self.take()
            return f"<mrow>{inner}</mrow>"
        if token is None:
            return "<mrow></mrow>"
        return self.atom()

    def scripted(self) -> str:
        token = self.peek()
        big = token is not None and token[0] == "command" and token[1] in BIG_OPERATORS
        base = self.atom()
        primes = ""
        while self.peek() == ("char", "'"):
            self.take()
            primes += "<mo>′</mo>"
        sub = sup = None
        while (token := self.peek()) in (("char", "_"), ("char", "^")):
            self.take()
            if token == ("char", "_"):
                sub = self.group()
            else:
                sup = self.group()
        if primes:
            sup = f"<mrow>{primes}{sup or ''}</mrow>"
        under, over = ("munder", "mover") if big else ("msub", "msup")
        if sub is not None and sup is not None:
            return f"<{'munderover' if big else 'msubsup'}>{base}{sub}{sup}</{'munderover' if big else 'msubsup'}>"
        if sub is not None:
            return f"<{under}>{base}{sub}</{under}>"
        if sup is not None:
            return f"<{over}>{base}{sup}</{over}>"
        return base

    def atom(self) -> str:
        kind, text = self.take()
        if kind == "number":
            return f"<mn>{escape(text)}</mn>"
        if kind == "command":
            return self.command(text)
        if text == "{":
            inner = self.sequence()
            if self.peek() == ("char", "}"):
                self.take()
            return f"<mrow>{inner}</mrow>"
        if text.isalpha():
            return f"<mi>{escape(text)}</mi>"
        if text == "-":
            return "<mo>−</mo>"
        return f"<mo>{escape(text)}</mo>"

    def command(self, name: str) -> str:
        if name == "frac":
            return f"<mfrac>{self.group()}{self.group()}</mfrac>"
        if name == "sqrt":
            return f"<msqrt>{self.group()}</msqrt>"
        if name in ACCENTS:
            return f'<mover accent="true">{self.group()}<mo>{ACCENTS[name]}</mo></mover>'
        if name in ("text", "mathrm", "operatorname"):
            inner = self.raw_group()
            return (
                f"<mtext>{escape(inner)}</mtext>"
                if name == "text"
                else f'<mi mathvariant="normal">{escape(inner)}</mi>'
            )
        if name in GREEK:
            return f"<mi>{GREEK[name]}</mi>"
        if name in SYMBOLS:
            tag, symbol = SYMBOLS[name]
            return f"<{tag}>{symbol}</{tag}>"
        if name in OPERATORS:
            return f"<mo>{OPERATORS[name]}</mo>"
        if name in BIG_OPERATORS:
            return f'<mo largeop="true">{BIG_OPERATORS[name]}</mo>'
        if name in SPACES:
            return f'<mspace width="{SPACES[name]}"/>'
        if name in IGNORED:
            return ""
        if name in ("{", "}", "_", "%", "$", "&", "#"):
            return f"<mo>{escape(name)}</mo>"
        return f'<mi mathvariant="normal">\\{escape(name)}</mi>'  # unknown: shown, not fatal

    def raw_group(self) -> str:
        if self.peek() != ("char", "{"):
            return self.take()[1]
        self.take()
        depth, text = 1, []
        while self.position < len(self.tokens):
            kind, value = self.tokens[self.position]
            self.position += 1
            if (kind, value) == ("char", "{"):
                depth += 1
            elif (kind, value) == ("char", "}"):
                depth -= 1
                if depth == 0:
                    break
            text.append(("\\" + value) if kind == "command" else value)
        return "".join(text)


def _tokens(latex: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(latex):
        command, number, space, char = match.groups()
        if command is not None:
            tokens.append(("command", command))
        elif number is not None:
            tokens.append(("number", number))
        elif space is not None:
            tokens.append(("space", space))
        else:
            tokens.append(("char", char))
    return tokens


def to_mathml(latex: str, *, display: bool = False) -> Markup:
    """One formula as a ``<math>`` element (``display="block"`` for ``$$…$$``)."""
    parser = _Parser(_tokens(latex))
    parts: list[str] = []
    while parser.peek() is not None:
        parts.append(parser.sequence())
        if parser.peek() == ("char", "}"):  # an unbalanced brace: show it and go on
            parser.take()
            parts.append("<mo>}</mo>")
    body = "".join(parts)
    attributes = ' display="block"' if display else ""
    return Markup(f"<math{attributes}>{body}</math>")


def math_text(text: str) -> Markup:
    """``text`` escaped, with each ``$$…$$`` (block) and ``$…$`` (inline) formula turned into MathML."""
    pieces: list[str] = []
    last = 0
    for match in _MATH.finditer(text):
        pieces.append(str(escape(text[last : match.start()])))
        block, inline = match.groups()
        pieces.append(str(to_mathml(block if block is not None else inline, display=block is not None)))
        last = match.end()
    pieces.append(str(escape(text[last:])))
    return Markup("".join(pieces))

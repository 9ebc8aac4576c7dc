"""Text to graph: the tokenizer and an operator-precedence (shunting-yard) parser.

One node per operation, one node per variable name however often it is used, one node per
numeric constant. The parser is a loop over the tokens with explicit operand and operator stacks,
never recursion, so expressions nested thousands of levels deep parse.

Grammar: numbers, names, ``+ - * /``, powers ``**`` or ``^`` (right-associative, binding tighter
than unary minus, as in Python: ``-x**2 == -(x**2)``), unary ``-``/``+``, parentheses, and the
functions of ``ops.FUNCTIONS``. ``×``, ``·``, ``÷`` and ``−`` are read as ``*``, ``*``, ``/``, ``-``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gradverify.errors import SpecError
from gradverify.graph.ops import FUNCTIONS, OPS

__all__ = ["Node", "Graph", "parse", "tokenize", "excerpt"]


@dataclass(frozen=True)
class Node:
    """One node: an input (``op == "input"``), a constant (``"const"``) or an operation."""

    id: int
    op: str
    inputs: tuple[int, ...]
    label: str  # the variable name, the constant's text, "f" for the output, else "n<k>"
    const: float | None = None


@dataclass(frozen=True)
class Graph:
    """A parsed expression. Node ids are a topological order: every input precedes its users."""

    source: str
    nodes: tuple[Node, ...]
    output: int
    expand_sigmoid: bool = False

    @property
    def input_names(self) -> tuple[str, ...]:
        """The variable names, in order of first appearance."""
        return tuple(n.label for n in self.nodes if n.op == "input")

    def text(self, node: Node) -> str:
        """How ``node`` reads in terms of its inputs' labels, e.g. ``"n1 * z"``."""
        if node.op == "input":
            return "input"
        if node.op == "const":
            return "constant"
        return OPS[node.op].text.format(*(self.nodes[i].label for i in node.inputs))

    def __repr__(self) -> str:
        flag = ", expand_sigmoid=True" if self.expand_sigmoid else ""
        return f"parse({excerpt(self.source)}{flag})  # {len(self.nodes)} nodes"


# ---- tokens ---------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<op>\*\*|[-+*/^(),×·÷−]))"
)
_ALIASES = {"×": "*", "·": "*", "÷": "/", "−": "-", "^": "**"}
_BINARY = {"+": ("add", 1), "-": ("sub", 1), "*": ("mul", 2), "/": ("div", 2), "**": ("pow", 4)}
_NEG_PRECEDENCE = 3  # unary minus: tighter than * and /, looser than ** (as in Python)
_GRAMMAR = ("numbers, names, + - * / ** ^, unary minus, parentheses and the functions "
            "exp(a), log(a), sigmoid(a), tanh(a), max(a, b)")


def tokenize(source: str) -> list[tuple[str, str, int]]:
    """Split into (kind, text, column) tokens; kind is "num", "name" or "op"."""
    tokens, pos = [], 0
    while True:
        while pos < len(source) and source[pos].isspace():
            pos += 1
        if pos >= len(source):
            return tokens
        m = _TOKEN.match(source, pos)
        if not m:
            raise _syntax_error(source, pos, f"unexpected character {source[pos]!r}",
                                "remove it or write the operation with + - * / ** ^")
        kind = m.lastgroup
        text = m.group(kind)
        tokens.append((kind, _ALIASES.get(text, text), m.start(kind)))
        pos = m.end()


def excerpt(source: str, pos: int | None = None, width: int = 30) -> str:
    """The source, or the part of it around ``pos`` with the position marked by ' >>> '."""
    if pos is None:
        return repr(source if len(source) <= 2 * width else source[:2 * width] + "...")
    left = source[max(0, pos - width):pos]
    right = source[pos:pos + width]
    return repr(("..." if pos > width else "") + left + " >>> " + right
                + ("..." if pos + width < len(source) else ""))


def _syntax_error(source: str, pos: int, problem: str, fix: str) -> SpecError:
    return SpecError(
        f"Cannot parse the expression {excerpt(source)}: {problem} at column {pos + 1}",
        expected=_GRAMMAR,
        received=(excerpt(source, pos) + " (' >>> ' marks the place)") if source.strip()
        else "an empty string",
        fix=fix,
    )


# ---- building the graph -----------------------------------------------------------------------

class _Builder:
    """Collects nodes while parsing; variables are shared, every constant is its own node."""

    def __init__(self, expand_sigmoid: bool):
        self.expand_sigmoid = expand_sigmoid
        self.nodes: list[list] = []  # [op, inputs, label, const]
        self.names: dict[str, int] = {}

    def add(self, op: str, inputs: tuple[int, ...] = (), label: str = "", const: float | None = None) -> int:
        self.nodes.append([op, inputs, label, const])
        return len(self.nodes) - 1

    def variable(self, name: str) -> int:
        if name not in self.names:
            self.names[name] = self.add("input", label=name)
        return self.names[name]

    def apply(self, op: str, args: tuple[int, ...]) -> int:
        if op == "neg" and self.nodes[args[0]][0] == "const":
            node = self.nodes[args[0]]  # fold "-2" into one constant (it was created just now)
            node[3] = -node[3]
            node[2] = node[2][1:] if node[2].startswith("-") else "-" + node[2]
            return args[0]
        if op == "sigmoid" and self.expand_sigmoid:  # σ(a) = 1 / (1 + exp(-a))
            e = self.add("exp", (self.add("neg", args),))
            return self.add("div", (self.add("const", label="1", const=1.0),
                                    self.add("add", (self.add("const", label="1", const=1.0), e))))
        return self.add(op, args)

    def graph(self, source: str, output: int) -> Graph:
        """The finished graph: operations labelled n1, n2, … and the output f, skipping labels
        that are variable names."""
        nodes, counter, taken = [], 0, set(self.names)
        for i, (op, inputs, label, const) in enumerate(self.nodes):
            if op not in ("input", "const"):
                if i == output and "f" not in taken:
                    label = "f"
                else:
                    counter += 1
                    while f"n{counter}" in taken:
                        counter += 1
                    label = f"n{counter}"
            nodes.append(Node(i, op, tuple(inputs), label, const))
        return Graph(source, tuple(nodes), output, self.expand_sigmoid)


class _Parser:
    """Shunting-yard over the tokens. Operator stack entries: ``["bin", op, prec, pos]``,
    ``["neg", pos]``, ``["(", pos]`` or ``["call", fn, pos, nargs]``."""

    def __init__(self, expr: str, expand_sigmoid: bool):
        self.expr = expr
        self.tokens = tokenize(expr)
        self.b = _Builder(expand_sigmoid)
        self.out: list[int] = []        # operand stack (node ids)
        self.ops: list[list] = []
        self.expect_operand = True
        self.k = 0                      # the next token

    def run(self) -> Graph:
        if not self.tokens:
            raise _syntax_error(self.expr, 0, "the expression is empty", "write an expression such as '(x + y) * z'")
        while self.k < len(self.tokens):
            kind, text, pos = self.tokens[self.k]
            self.k += 1
            if self.expect_operand:
                self._operand(kind, text, pos)
            elif text in _BINARY:
                self._binary(text, pos)
            elif text == ")":
                self._close_paren(pos)
            elif text == ",":
                self._comma(pos)
            else:
                raise _syntax_error(self.expr, pos, f"{text!r} where an operator or ')' belongs",
                                    "write every operation, e.g. 2*x instead of 2x, x*(y) instead of x(y)")
        return self._finish()

    # -- one token each ------------------------------------------------------------------------

    def _operand(self, kind: str, text: str, pos: int) -> None:
        """A token where a number, a name, a function call, '(' or a unary sign belongs."""
        if kind == "num":
            if not math.isfinite(float(text)):
                raise _syntax_error(self.expr, pos, f"the number {text} overflows float64", "use a number below 1.8e308")
            self.out.append(self.b.add("const", label=text, const=float(text)))
            self.expect_operand = False
        elif kind == "name" and self.k < len(self.tokens) and self.tokens[self.k][1] == "(":
            self._call(text, pos)
        elif kind == "name":
            if text in FUNCTIONS:
                raise _syntax_error(self.expr, pos, f"the function {text!r} is used without parentheses",
                                    f"write {text}(...); function names cannot be variables")
            self.out.append(self.b.variable(text))
            self.expect_operand = False
        elif text == "(":
            self.ops.append(["(", pos])
        elif text == "-":
            self.ops.append(["neg", pos])
        elif text != "+":  # unary plus changes nothing
            after = repr(self.tokens[self.k - 2][1]) if self.k > 1 else "the start"
            raise _syntax_error(self.expr, pos, f"{text!r} where a number, a name or '(' belongs (after {after})",
                                "complete the expression, e.g. 'x + 1' or 'max(a, b)'")

    def _call(self, fn: str, pos: int) -> None:
        if fn not in FUNCTIONS:
            raise SpecError(f"Unknown function {fn!r} in {excerpt(self.expr)}",
                            expected="one of " + ", ".join(FUNCTIONS),
                            received=f"{fn}(...) at column {pos + 1}",
                            fix="use one of those functions, or write '*' for a product, e.g. a*(b+c)")
        self.ops.append(["call", fn, pos, 1])
        self.k += 1  # the "(" belongs to the call

    def _binary(self, text: str, pos: int) -> None:
        op, prec = _BINARY[text]
        while self.ops and self.ops[-1][0] in ("bin", "neg"):
            top_prec = self.ops[-1][2] if self.ops[-1][0] == "bin" else _NEG_PRECEDENCE
            # pop tighter operators, and equal ones unless right-associative (**)
            if top_prec > prec or (top_prec == prec and op != "pow"):
                self._reduce_top()
            else:
                break
        self.ops.append(["bin", op, prec, pos])
        self.expect_operand = True

    def _close_paren(self, pos: int) -> None:
        top = self._close(pos, ")")
        self.ops.pop()
        if top[0] == "call":
            fn, nargs = top[1], top[3]
            if nargs != FUNCTIONS[fn]:
                raise _syntax_error(self.expr, top[2], f"{fn} takes {FUNCTIONS[fn]} argument(s), got {nargs}",
                                    "max(a, b) takes two arguments; exp, log, sigmoid, tanh take one")
            args = tuple(self.out[-nargs:])
            del self.out[-nargs:]
            self.out.append(self.b.apply(fn, args))

    def _comma(self, pos: int) -> None:
        top = self._close(pos, ",")
        if top[0] != "call":
            raise _syntax_error(self.expr, pos, "a ',' outside a function call",
                                "',' only separates the arguments of max(a, b)")
        top[3] += 1
        self.expect_operand = True

    # -- stack work ----------------------------------------------------------------------------

    def _reduce_top(self) -> None:
        entry = self.ops.pop()
        if entry[0] == "neg":
            self.out.append(self.b.apply("neg", (self.out.pop(),)))
        else:
            rhs, lhs = self.out.pop(), self.out.pop()
            self.out.append(self.b.apply(entry[1], (lhs, rhs)))

    def _close(self, pos: int, closing: str) -> list:
        """Reduce down to the innermost '(' or call, and return that entry (left on the stack)."""
        while self.ops and self.ops[-1][0] in ("bin", "neg"):
            self._reduce_top()
        if not self.ops:
            what = "a ')' without a matching '('" if closing == ")" else "a ',' outside a function call"
            raise _syntax_error(self.expr, pos, what, "balance the parentheses; ',' only separates max(a, b)")
        return self.ops[-1]

    def _finish(self) -> Graph:
        if self.expect_operand:
            raise _syntax_error(self.expr, len(self.expr), "the expression ends where an operand belongs",
                                "complete the expression, e.g. 'x + 1'")
        while self.ops:
            top = self.ops[-1]
            if top[0] in ("(", "call"):
                raise _syntax_error(self.expr, top[2] if top[0] == "call" else top[1],
                                    "a '(' that is never closed", "add the missing ')'")
            self._reduce_top()
        (output,) = self.out
        return self.b.graph(self.expr, output)


def parse(expr: str, *, expand_sigmoid: bool = False) -> Graph:
    """Parse a scalar expression into a computational graph.

    Args:
        expr: e.g. ``"(x + y) * z"`` or ``"sigmoid(w0*x0 + w1*x1 + w2)"``; see the module docstring.
        expand_sigmoid: build every ``sigmoid(a)`` from elementary gates ``1 / (1 + exp(-a))``
            instead of one gate with local gradient σ(1 − σ). The numbers are the same.

    Returns:
        The graph; node ids follow the order of evaluation.

    Raises:
        SpecError: the text is not an expression of the grammar, or names an unknown function.
    """
    if not isinstance(expr, str):
        raise SpecError("The expression must be text", expected="a string such as '(x + y) * z'",
                        received=f"{type(expr).__name__} {expr!r}", fix="pass the expression as a string")
    return _Parser(expr, expand_sigmoid).run()

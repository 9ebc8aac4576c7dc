"""Scalar computational graphs of the lecture: forward values and backward gradients on every node.

``parse`` turns an expression such as ``"(x + y) * z"`` into a :class:`Graph` (one node per
operation, one node per variable name however often it is used, one node per numeric constant).
``evaluate`` runs the forward pass and then the backward pass exactly as the lecture teaches it:
walking from the output back to the inputs, every node multiplies its *upstream* gradient
∂f/∂node by its *local* gradients ∂node/∂input and sends the products down; where a value is used
more than once (a branch), the gradients arriving from its consumers add. Both passes, the parser
and the renderers are loops over an explicit order, never recursion, so graphs thousands of nodes
deep work.

``check_with_sympy`` checks every node against SymPy without using any derivative rule of this
module: for each node it rebuilds the output with that node replaced by a fresh symbol ``t``,
lets ``sympy.diff`` differentiate with respect to ``t`` and evaluates at 30 digits. It also lets
SymPy parse the expression text itself, as a check on this module's parser.

Grammar: numbers, names, ``+ - * /``, powers ``**`` or ``^`` (right-associative, binding tighter
than unary minus, as in Python: ``-x**2 == -(x**2)``), unary ``-``/``+``, parentheses, and the
functions ``exp log sigmoid tanh`` (one argument) and ``max`` (two arguments). ``×``, ``·``, ``÷``
and ``−`` are accepted as ``*``, ``*``, ``/`` and ``-``.

``max(a, b)`` at a tie (a == b) is not differentiable; by convention the whole gradient goes to
the first argument (a valid subgradient choice). Ties are flagged on the node (``NodeRow.note``,
``GraphResult.ties``) and the SymPy check reports the nodes whose gradient depends on that choice
as ``"kink"`` instead of comparing them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import escape as _xml_escape

from gradverify.errors import InputError, SpecError

__all__ = [
    "EXAMPLES",
    "RTOL",
    "Example",
    "Graph",
    "GraphResult",
    "Node",
    "NodeCheck",
    "NodeRow",
    "SympyCheck",
    "check_with_sympy",
    "evaluate",
    "parse",
    "to_dot",
    "to_svg",
]

#: The one tolerance of this module. A node agrees with SymPy when ``|graph − exact| ≤ RTOL · ν``
#: for its value and ``≤ RTOL · γ`` for its gradient, where ν and γ are first-order error bounds
#: in units of the rounding unit (see ``_magnitudes``): they grow with the size of the terms that
#: are added (cancellation where gradients add at branches is budgeted for) and with forward
#: errors that reach a local gradient. float64 needs a few ulps per operation; 1e-9 leaves room
#: for deep graphs and still catches any wrong rule by orders of magnitude. Both budgets also get
#: an absolute floor of 1e-300: below float64's normal range (2.2e-308) rounding is absolute.
RTOL = 1e-9
_ATOL = 1e-300

_FUNCTIONS = {"exp": 1, "log": 1, "sigmoid": 1, "tanh": 1, "max": 2}


# ---------------------------------------------------------------------------------------------
# Op table: forward function and local gradients side by side (micrograd style).
# ``local(*args, out)`` returns ∂out/∂arg_i for every argument; ``out`` is the forward value,
# reused where the derivative is simplest written with it (exp, sigmoid, tanh).
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Op:
    arity: int
    text: str  # how a node reads, with its inputs' labels: "{0} * {1}"
    symbol: str  # short name for pictures
    forward: Callable[..., float]
    local: Callable[..., tuple[float, ...]]
    domain: str = ""  # what the arguments must satisfy, for error messages


def _sigmoid(a: float) -> float:
    if a >= 0:  # the two forms avoid exp overflow on either side
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


def _sech2(a: float) -> float:
    e = math.exp(-2.0 * abs(a))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))


def _pow_local(a: float, b: float, out: float) -> tuple[float, float]:
    # ∂(a**b)/∂a = b * a**(b-1); ∂(a**b)/∂b = a**b * ln a, real only for a > 0 (limit 0 at a = 0).
    try:
        d_base = 0.0 if b == 0 else b * math.pow(a, b - 1.0)
    except (ValueError, ZeroDivisionError, OverflowError):
        d_base = math.nan
    if a > 0:
        d_exp = out * math.log(a)
    elif a == 0 and b > 0:
        d_exp = 0.0
    else:
        d_exp = math.nan
    return d_base, d_exp


_OPS: dict[str, _Op] = {
    "add": _Op(2, "{0} + {1}", "+", lambda a, b: a + b, lambda a, b, out: (1.0, 1.0)),
    "sub": _Op(2, "{0} - {1}", "-", lambda a, b: a - b, lambda a, b, out: (1.0, -1.0)),
    "mul": _Op(2, "{0} * {1}", "*", lambda a, b: a * b, lambda a, b, out: (b, a)),
    "div": _Op(2, "{0} / {1}", "/", lambda a, b: a / b, lambda a, b, out: (1.0 / b, -a / (b * b)),
               "a nonzero denominator"),
    "pow": _Op(2, "{0} ** {1}", "**", math.pow, _pow_local,
               "a positive base, or an integer exponent (and no 0 to a negative power)"),
    "neg": _Op(1, "-{0}", "neg", lambda a: -a, lambda a, out: (-1.0,)),
    "exp": _Op(1, "exp({0})", "exp", math.exp, lambda a, out: (out,),
               "an argument below about 709.78 (exp overflows float64 above)"),
    "log": _Op(1, "log({0})", "log", math.log, lambda a, out: (1.0 / a,), "a positive argument"),
    # σ' = σ(1 − σ), with 1 − σ(a) computed as σ(−a): it must not round to 0 for large a
    "sigmoid": _Op(1, "sigmoid({0})", "σ", _sigmoid, lambda a, out: (out * _sigmoid(-a),)),
    # tanh' = 1 − tanh² = 4e/(1 + e)² with e = exp(−2|a|), which does not round to 0 for large |a|
    "tanh": _Op(1, "tanh({0})", "tanh", math.tanh, lambda a, out: (_sech2(a),)),
    # a >= b: the tie goes to the first argument (see the module docstring).
    "max": _Op(2, "max({0}, {1})", "max", max, lambda a, b, out: (1.0, 0.0) if a >= b else (0.0, 1.0)),
}


# ---------------------------------------------------------------------------------------------
# Graph and parsing
# ---------------------------------------------------------------------------------------------


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
        return _OPS[node.op].text.format(*(self.nodes[i].label for i in node.inputs))

    def __repr__(self) -> str:
        flag = ", expand_sigmoid=True" if self.expand_sigmoid else ""
        return f"parse({_excerpt(self.source)}{flag})  # {len(self.nodes)} nodes"


_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<op>\*\*|[-+*/^(),×·÷−]))"
)
_ALIASES = {"×": "*", "·": "*", "÷": "/", "−": "-", "^": "**"}
_BINARY = {"+": ("add", 1), "-": ("sub", 1), "*": ("mul", 2), "/": ("div", 2), "**": ("pow", 4)}
_NEG_PRECEDENCE = 3  # unary minus: tighter than * and /, looser than ** (as in Python)
_GRAMMAR = ("numbers, names, + - * / ** ^, unary minus, parentheses and the functions "
            "exp(a), log(a), sigmoid(a), tanh(a), max(a, b)")


def _tokenize(source: str) -> list[tuple[str, str, int]]:
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


def _excerpt(source: str, pos: int | None = None, width: int = 30) -> str:
    """The source, or the part of it around ``pos`` with the position marked by ' >>> '."""
    if pos is None:
        return repr(source if len(source) <= 2 * width else source[:2 * width] + "...")
    left = source[max(0, pos - width):pos]
    right = source[pos:pos + width]
    return repr(("..." if pos > width else "") + left + " >>> " + right
                + ("..." if pos + width < len(source) else ""))


def _syntax_error(source: str, pos: int, problem: str, fix: str) -> SpecError:
    return SpecError(
        f"Cannot parse the expression {_excerpt(source)}: {problem} at column {pos + 1}",
        expected=_GRAMMAR,
        received=(_excerpt(source, pos) + " (' >>> ' marks the place)") if source.strip()
        else "an empty string",
        fix=fix,
    )


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
    tokens = _tokenize(expr)
    b = _Builder(expand_sigmoid)
    out: list[int] = []  # operand stack (node ids)
    # operator stack entries: ("bin", op, prec, pos) | ("neg", pos) | ("(", pos) | ("call", fn, pos, nargs)
    ops: list[list] = []

    def reduce_top() -> None:
        entry = ops.pop()
        if entry[0] == "neg":
            out.append(b.apply("neg", (out.pop(),)))
        else:
            rhs, lhs = out.pop(), out.pop()
            out.append(b.apply(entry[1], (lhs, rhs)))

    def close(pos: int, closing: str) -> list:
        while ops and ops[-1][0] in ("bin", "neg"):
            reduce_top()
        if not ops:
            what = "a ')' without a matching '('" if closing == ")" else "a ',' outside a function call"
            raise _syntax_error(expr, pos, what, "balance the parentheses; ',' only separates max(a, b)")
        return ops[-1]

    expect_operand = True
    k = 0
    while k < len(tokens):
        kind, text, pos = tokens[k]
        k += 1
        if expect_operand:
            if kind == "num":
                if not math.isfinite(float(text)):
                    raise _syntax_error(expr, pos, f"the number {text} overflows float64",
                                        "use a number below 1.8e308")
                out.append(b.add("const", label=text, const=float(text)))
                expect_operand = False
            elif kind == "name" and k < len(tokens) and tokens[k][1] == "(":
                if text not in _FUNCTIONS:
                    raise SpecError(f"Unknown function {text!r} in {_excerpt(expr)}",
                                    expected="one of " + ", ".join(_FUNCTIONS),
                                    received=f"{text}(...) at column {pos + 1}",
                                    fix="use one of those functions, or write '*' for a product, "
                                    "e.g. a*(b+c)")
                ops.append(["call", text, pos, 1])
                k += 1  # the "(" belongs to the call
            elif kind == "name":
                if text in _FUNCTIONS:
                    raise _syntax_error(expr, pos, f"the function {text!r} is used without parentheses",
                                        f"write {text}(...); function names cannot be variables")
                out.append(b.variable(text))
                expect_operand = False
            elif text == "(":
                ops.append(["(", pos])
            elif text == "-":
                ops.append(["neg", pos])
            elif text != "+":  # unary plus changes nothing
                after = repr(tokens[k - 2][1]) if k > 1 else "the start"
                raise _syntax_error(expr, pos,
                                    f"{text!r} where a number, a name or '(' belongs (after {after})",
                                    "complete the expression, e.g. 'x + 1' or 'max(a, b)'")
        elif text in _BINARY:
            op, prec = _BINARY[text]
            while ops and ops[-1][0] in ("bin", "neg"):
                top_prec = ops[-1][2] if ops[-1][0] == "bin" else _NEG_PRECEDENCE
                # pop tighter operators, and equal ones unless right-associative (**)
                if top_prec > prec or (top_prec == prec and op != "pow"):
                    reduce_top()
                else:
                    break
            ops.append(["bin", op, prec, pos])
            expect_operand = True
        elif text == ")":
            top = close(pos, ")")
            ops.pop()
            if top[0] == "call":
                fn, nargs = top[1], top[3]
                if nargs != _FUNCTIONS[fn]:
                    raise _syntax_error(expr, top[2], f"{fn} takes {_FUNCTIONS[fn]} argument(s), got {nargs}",
                                        "max(a, b) takes two arguments; exp, log, sigmoid, tanh take one")
                args = tuple(out[-nargs:])
                del out[-nargs:]
                out.append(b.apply(fn, args))
        elif text == ",":
            top = close(pos, ",")
            if top[0] != "call":
                raise _syntax_error(expr, pos, "a ',' outside a function call",
                                    "',' only separates the arguments of max(a, b)")
            top[3] += 1
            expect_operand = True
        else:
            raise _syntax_error(expr, pos, f"{text!r} where an operator or ')' belongs",
                                "write every operation, e.g. 2*x instead of 2x, x*(y) instead of x(y)")
    if not tokens:
        raise _syntax_error(expr, 0, "the expression is empty", "write an expression such as '(x + y) * z'")
    if expect_operand:
        raise _syntax_error(expr, len(expr), "the expression ends where an operand belongs",
                            "complete the expression, e.g. 'x + 1'")
    while ops:
        if ops[-1][0] in ("(", "call"):
            raise _syntax_error(expr, ops[-1][2] if ops[-1][0] == "call" else ops[-1][1],
                                "a '(' that is never closed", "add the missing ')'")
        reduce_top()
    (output,) = out

    # operations are labelled n1, n2, ... and the output f, skipping labels that are variable names
    nodes, counter, taken = [], 0, set(b.names)
    for i, (op, inputs, label, const) in enumerate(b.nodes):
        if op not in ("input", "const"):
            if i == output and "f" not in taken:
                label = "f"
            else:
                counter += 1
                while f"n{counter}" in taken:
                    counter += 1
                label = f"n{counter}"
        nodes.append(Node(i, op, tuple(inputs), label, const))
    return Graph(expr, tuple(nodes), output, expand_sigmoid)


# ---------------------------------------------------------------------------------------------
# Forward and backward pass
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeRow:
    """Everything the lecture's staged table shows for one node.

    ``local[i]`` is ∂node/∂input_i; ``upstream`` holds the gradient arriving from each use of the
    node (one entry per consumer edge, in consumer order; ``(1.0,)`` at the output); ``grad`` is
    their sum ∂f/∂node; ``downstream[i] = grad * local[i]`` is what is sent to input i (0 when
    grad is 0, even if ``local[i]`` is undefined).
    """

    id: int
    op: str
    label: str
    text: str
    inputs: tuple[int, ...]
    stage: int
    value: float
    local: tuple[float, ...]
    upstream: tuple[float, ...]
    grad: float
    downstream: tuple[float, ...]
    note: str = ""


@dataclass(frozen=True)
class GraphResult:
    """A graph evaluated at given input values: one row per node, in node-id order."""

    graph: Graph
    values: dict[str, float]
    rows: tuple[NodeRow, ...]

    @property
    def value(self) -> float:
        """The output f."""
        return self.rows[self.graph.output].value

    @property
    def gradients(self) -> dict[str, float]:
        """∂f/∂name for every input name."""
        return {r.label: r.grad for r in self.rows if r.op == "input"}

    @property
    def ties(self) -> tuple[int, ...]:
        """Ids of max nodes evaluated at a tie (gradient sent to the first argument)."""
        return tuple(r.id for r in self.rows if r.op == "max" and r.note.startswith("tie"))

    def __repr__(self) -> str:
        grads = ", ".join(f"{k}={v:.6g}" for k, v in self.gradients.items())
        if len(grads) > 200:
            grads = grads[:197] + "..."
        return f"<GraphResult {_excerpt(self.graph.source)}: f={self.value:.6g}; grad {grads}>"


def _stages(graph: Graph) -> list[int]:
    """Layer of every node: inputs 0, an op one right of its furthest input, constants just left
    of their (only) consumer."""
    depth = [0] * len(graph.nodes)
    consumer: dict[int, int] = {}
    for n in graph.nodes:
        for i in n.inputs:
            consumer.setdefault(i, n.id)
        if n.inputs:
            depth[n.id] = 1 + max((depth[i] for i in n.inputs if graph.nodes[i].op != "const"), default=0)
    for n in reversed(graph.nodes):
        if n.op == "const" and n.id in consumer:
            depth[n.id] = depth[consumer[n.id]] - 1
    low = min(depth)
    return [d - low for d in depth]


def _fmt(v: float) -> str:
    return f"{v + 0.0:.6g}"


def evaluate(graph: Graph, values: Mapping[str, float]) -> GraphResult:
    """Forward pass, then backward pass (upstream × local, adding at branches), iteratively.

    Args:
        graph: from :func:`parse`.
        values: a finite number for every input name of the graph, and nothing else.

    Returns:
        A :class:`GraphResult` with value, local gradients and gradient of every node.

    Raises:
        InputError: a name without value, a value for a name not in the expression, a value that
            is not a finite number, or an operation undefined at these values (log of a
            non-positive number, division by zero, overflow).
    """
    if not isinstance(graph, Graph):
        raise InputError("evaluate needs a parsed graph", expected="the result of parse(expr)",
                         received=type(graph).__name__, fix="call evaluate(parse(expr), values)")
    names = graph.input_names
    given = dict(values)
    missing = [n for n in names if n not in given]
    extra = [n for n in given if n not in names]
    if missing or extra:
        sample = ",".join(f"{n}=1.5" for n in names[:3])
        raise InputError(
            f"The values do not match the names of {_excerpt(graph.source)}"
            + (f": no value for {', '.join(missing)}" if missing else "")
            + (f"{';' if missing else ':'} {', '.join(extra)} not in the expression" if extra else ""),
            expected="one value for each of " + (", ".join(names) or "(none: the expression is constant)"),
            received="values for " + (", ".join(given) or "nothing"),
            fix=f"give exactly those names, e.g. {sample} (on the command line: --at {sample})" if names
            else "give no values",
        )
    clean: dict[str, float] = {}
    for name in names:
        try:
            v = float(given[name])
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v):
            raise InputError(f"The value of {name!r} is not a finite number", expected="a finite float",
                             received=repr(given[name]), fix=f"give {name} a finite number such as 1.5")
        clean[name] = v

    nodes = graph.nodes
    value = [0.0] * len(nodes)
    local: list[tuple[float, ...]] = [()] * len(nodes)
    notes = [""] * len(nodes)
    for n in nodes:  # forward, in topological order
        if n.op == "input":
            value[n.id] = clean[n.label]
            continue
        if n.op == "const":
            value[n.id] = float(n.const)
            continue
        op, args = _OPS[n.op], [value[i] for i in n.inputs]
        try:
            out = op.forward(*args)
            if not math.isfinite(out):
                raise OverflowError
        except (ValueError, ZeroDivisionError, OverflowError):
            shown = ", ".join(f"{nodes[i].label} = {_fmt(a)}" for i, a in zip(n.inputs, args))
            raise InputError(
                f"{graph.text(n)} (node {n.label}) is undefined or overflows at {shown}",
                expected=op.domain or "values where every node stays a finite float64",
                received=", ".join(f"{k}={_fmt(v)}" for k, v in clean.items()),
                fix="choose input values inside the domain of every operation",
            ) from None
        value[n.id] = out
        local[n.id] = tuple(float(g) for g in op.local(*args, out))
        if n.op == "max" and args[0] == args[1]:
            notes[n.id] = (f"tie: max({_fmt(args[0])}, {_fmt(args[1])}) is not differentiable here; "
                           "the gradient goes to the first argument (a subgradient choice)")
        elif not all(math.isfinite(g) for g in local[n.id]):
            bad = [nodes[i].label for i, g in zip(n.inputs, local[n.id]) if not math.isfinite(g)]
            notes[n.id] = f"local gradient with respect to {', '.join(bad)} is undefined here"

    # backward, in reverse topological order: each node's gradient is complete when it is reached,
    # because every consumer has a larger id.
    arriving: list[list[tuple[int, float]]] = [[] for _ in nodes]
    arriving[graph.output].append((len(nodes), 1.0))
    grad = [0.0] * len(nodes)
    downstream: list[tuple[float, ...]] = [()] * len(nodes)
    for n in reversed(nodes):
        parts = sorted(arriving[n.id], key=lambda p: p[0])
        g = 0.0
        for _, part in parts:
            g += part  # gradients add at branches
        grad[n.id] = g
        # nothing flows back through a zero gradient, even where a local gradient is undefined
        # (0 * nan would be nan, but f does not depend on these inputs through this node there)
        downstream[n.id] = tuple(g * lg if g else 0.0 for lg in local[n.id])
        for i, d in zip(n.inputs, downstream[n.id]):
            arriving[i].append((n.id, d))

    stages = _stages(graph)
    rows = tuple(
        NodeRow(n.id, n.op, n.label, graph.text(n), n.inputs, stages[n.id], value[n.id], local[n.id],
                tuple(p for _, p in sorted(arriving[n.id], key=lambda p: p[0])), grad[n.id],
                downstream[n.id], notes[n.id])
        for n in nodes
    )
    return GraphResult(graph, clean, rows)


# ---------------------------------------------------------------------------------------------
# SymPy check: forward definitions only; every derivative comes from sympy.diff
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeCheck:
    """One node compared with SymPy.

    ``status`` is ``"ok"`` (value and gradient within budget), ``"mismatch"``, ``"kink"`` (the
    gradient depends on the max-tie convention, so it is not compared) or ``"undefined"`` (the
    exact gradient is not a real number here, e.g. ∂(a**b)/∂b at a < 0 or ∂√a/∂a at a = 0, so
    it is not compared; the graph's number is still shown). The value is always compared. The errors and
    ``ratio`` (error / budget, ≤ 1 passes) are for the gradient; ``value_ratio`` for the value.
    Relative error is |graph − exact| / max(|graph|, |exact|, 1e-300).
    """

    id: int
    label: str
    text: str
    value: float
    exact_value: float | None
    value_ratio: float
    grad: float
    exact_grad: float | None
    abs_error: float
    rel_error: float
    budget: float
    ratio: float
    status: str

    def describe(self) -> str:
        """One line naming the node, both values, the errors and the budget ratio."""
        return (f"node {self.label} ({self.text}): gradient {self.grad:.10g} vs SymPy "
                f"{_opt(self.exact_grad)}, abs err {self.abs_error:.3g}, rel err {self.rel_error:.3g}, "
                f"{self.ratio:.3g} x budget; value {self.value:.10g} vs SymPy {_opt(self.exact_value)} "
                f"({self.value_ratio:.3g} x budget) [{self.status}]")


def _opt(v: float | None) -> str:
    return "undefined" if v is None else f"{v:.10g}"


@dataclass(frozen=True)
class SympyCheck:
    """Every node checked against SymPy, plus f and ∂f/∂input from SymPy's own parse of the text.

    ``source`` rows have ids −1 (f) and −2, −3, … (the inputs, in order).
    """

    nodes: tuple[NodeCheck, ...]
    source: tuple[NodeCheck, ...]
    rtol: float

    @property
    def mismatches(self) -> tuple[NodeCheck, ...]:
        return tuple(c for c in self.nodes + self.source if c.status == "mismatch")

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def worst_ratio(self) -> float:
        ratios = [max(c.ratio, c.value_ratio) for c in self.nodes + self.source if c.status == "ok"]
        return max(ratios, default=0.0)

    def summary(self) -> str:
        """One line: the verdict, with the first mismatch named."""
        count = {k: sum(c.status == k for c in self.nodes) for k in ("ok", "kink", "undefined")}
        notes = ""
        if count["kink"]:
            notes += (f"; {count['kink']} node(s) feeding a max tie not compared "
                      "(the tie convention decides them)")
        if count["undefined"]:
            notes += (f"; {count['undefined']} gradient(s) not compared: the exact derivative is not a "
                      "real number at this point")
        if self.ok:
            return (f"SymPy check: {count['ok']} of {len(self.nodes)} nodes agree in value and gradient "
                    f"(worst {self.worst_ratio:.2g} x budget, rtol {self.rtol:g}){notes}")
        bad = self.mismatches
        return f"SymPy check: {len(bad)} DISAGREEMENT(S){notes}; first: {bad[0].describe()}"


def _sympy_forward():
    """SymPy forward definitions of the ops (no derivatives here: SymPy differentiates)."""
    import sympy

    return {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "pow": lambda a, b: a**b,
        "neg": lambda a: -a,
        "exp": sympy.exp,
        "log": sympy.log,
        "sigmoid": lambda a: 1 / (1 + sympy.exp(-a)),
        "tanh": sympy.tanh,
        "max": sympy.Max,
    }


_DPS = 30


def _exact(expr, subs) -> float | None:
    """Evaluate to 30 correct digits; None when the result is not a finite real number.

    ``strict=True`` makes SymPy raise instead of returning noise when cancellation eats the
    digits (1 − tanh(512)² is 5e-441, not the 1e-138 a plain evalf reports); it is retried
    with more working precision, and a result still indistinguishable from zero at about 1200
    digits is zero as far as float64 is concerned.
    """
    import sympy
    from sympy.core.evalf import PrecisionExhausted

    e = expr.xreplace(subs)
    for maxn in (120, 4000):
        try:
            v = e.evalf(_DPS, strict=True, maxn=maxn)
            break
        except PrecisionExhausted:
            continue
    else:
        return 0.0
    if not v.is_number or v.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
        return None
    re, im = v.as_real_imag()
    if im != 0:  # judged in SymPy: a Python complex would round 1e-592j to 0j
        return None
    r = float(re)
    return r if math.isfinite(r) else None


def _ratio(err: float, budget: float) -> float:
    if err == 0:
        return 0.0
    return err / budget if budget > 0 else math.inf


def check_with_sympy(result: GraphResult, *, rtol: float = RTOL, max_nodes: int = 200) -> SympyCheck:
    """Check the value and the gradient ∂f/∂node of every node against SymPy.

    For node n, the output is rebuilt with n replaced by a fresh symbol t; ``sympy.diff`` gives
    ∂f/∂t, which is evaluated at t = n's exact expression and the input values (taken exactly, as
    the binary fractions the floats are) with 30 digits. None of this module's derivative rules is
    used. Separately, SymPy parses the expression text itself, and f and ∂f/∂input from that parse
    are compared too (a check on the parser). Budgets: see :data:`RTOL`.

    Args:
        result: from :func:`evaluate`.
        rtol: relative tolerance on the condition-aware magnitude (see :data:`RTOL`).
        max_nodes: refuse bigger graphs; the check costs O(nodes²) SymPy operations.

    Returns:
        A :class:`SympyCheck` record, one :class:`NodeCheck` per node.

    Raises:
        InputError: the graph has more than ``max_nodes`` nodes.
    """
    import sympy

    graph, rows = result.graph, result.rows
    if len(rows) > max_nodes:
        raise InputError(f"The graph of {_excerpt(graph.source)} is too big for the SymPy check",
                         expected=f"at most max_nodes={max_nodes} nodes (the check costs O(n²) SymPy steps)",
                         received=f"{len(rows)} nodes",
                         fix="check a smaller graph, or pass a larger max_nodes and wait")
    fwd = _sympy_forward()
    symbols = {name: sympy.Symbol(name, real=True) for name in graph.input_names}
    subs = {symbols[k]: sympy.Rational(v) for k, v in result.values.items()}

    def build(replace: int | None, t=None) -> list:
        exprs: list = []
        for n in graph.nodes:
            if n.id == replace:
                exprs.append(t)
            elif n.op == "input":
                exprs.append(symbols[n.label])
            elif n.op == "const":
                exprs.append(sympy.Rational(n.const))
            else:
                exprs.append(fwd[n.op](*(exprs[i] for i in n.inputs)))
        return exprs

    exact = build(None)
    fmag, gmag = _magnitudes(result)
    kinked = _kink_cone(result, fmag, rtol)
    t = sympy.Dummy("t", real=True)
    checks = []
    for n, row in zip(graph.nodes, rows):
        ev = _exact(exact[n.id], subs)
        vratio = math.inf if ev is None else _ratio(abs(row.value - ev), rtol * fmag[n.id] + _ATOL)
        if n.id in kinked:
            eg = None
            status = "kink"
        else:
            df = sympy.diff(build(n.id, t)[graph.output], t)
            eg = _exact(df.xreplace({t: exact[n.id]}), subs)
            status = ""
        checks.append(_node_check(n.id, row.label, row.text, row.value, ev, vratio, row.grad, eg,
                                  rtol * gmag[n.id] + _ATOL, status))
    return SympyCheck(tuple(checks), _source_checks(result, fmag, gmag, kinked, rtol), rtol)


def _node_check(id_, label, text, value, ev, vratio, grad, eg, budget, status) -> NodeCheck:
    """Classify one node; ``status`` is preset to "kink" for nodes decided by a max tie."""
    if status == "kink" or eg is None:
        # no real exact gradient (or one that depends on the tie convention): nothing to compare
        abs_err = rel_err = ratio = math.nan
        status = status or "undefined"
    elif not math.isfinite(grad):
        abs_err = rel_err = ratio = math.inf
        status = "mismatch"
    else:
        abs_err = abs(grad - eg)
        rel_err = abs_err / max(abs(grad), abs(eg), 1e-300)
        ratio = _ratio(abs_err, budget)
        status = "ok" if ratio <= 1 else "mismatch"
    if not vratio <= 1:
        status = "mismatch"
    return NodeCheck(id_, label, text, value, ev, vratio, grad, eg, abs_err, rel_err, budget, ratio, status)


def _magnitudes(result: GraphResult) -> tuple[list[float], list[float]]:
    """Condition-aware sizes ν (values) and γ (gradients); the budgets are RTOL·ν and RTOL·γ.

    First-order error propagation in units of the rounding unit: ν = 0 for inputs and constants
    (exact), ν(n) = |v_n| + Σ_k |∂v_n/∂in_k|·ν(in_k) for an operation. A gradient is a sum of
    products of local gradients, each computed from forward values with their own errors, so
    γ(n) = Σ_consumers c [(γ(c) + |g_c|)·|∂c/∂n| + |g_c|·Σ_m |∂(∂c/∂n)/∂in_m|·ν(in_m)].
    The last factor (how fast a local gradient changes with its arguments) is taken by central
    differences of the op's local-gradient function; it only sizes the budget, never the answer.
    """
    rows = result.rows
    fmag = [0.0] * len(rows)  # inputs and constants are exact: SymPy takes the very same floats
    for r in rows:
        if r.inputs:
            fmag[r.id] = abs(r.value) + sum(abs(lg) * fmag[i] for i, lg in zip(r.inputs, r.local)
                                        if math.isfinite(lg))
    gmag = [0.0] * len(rows)
    for r in reversed(rows):
        if not r.inputs:
            continue
        args = [rows[i].value for i in r.inputs]
        slopes = _local_slopes(r.op, args)
        for k, (i, lg) in enumerate(zip(r.inputs, r.local)):
            if not math.isfinite(lg):
                continue
            drift = sum(slopes[k][m] * fmag[j] for m, j in enumerate(r.inputs) if slopes[k][m] and fmag[j])
            # (skip 0 * inf: a zero gradient or an exact argument adds nothing)
            gmag[i] += (gmag[r.id] + abs(r.grad)) * abs(lg) + (abs(r.grad) * drift if r.grad and drift else 0.0)
    return fmag, gmag


def _local_slopes(op_name: str, args: list[float]) -> list[list[float]]:
    """|∂(local gradient k)/∂arg m| by central differences (inf where that fails); max: 0."""
    op = _OPS[op_name]
    n = len(args)
    slopes = [[0.0] * n for _ in range(n)]
    if op_name in ("add", "sub", "neg", "max"):  # constant local gradients (max: away from ties)
        return slopes
    for m in range(n):
        h = 1e-6 * max(abs(args[m]), 1e-3)
        try:
            up, down = list(args), list(args)
            up[m] += h
            down[m] -= h
            lu = op.local(*up, op.forward(*up))
            ld = op.local(*down, op.forward(*down))
            for k in range(n):
                d = abs(lu[k] - ld[k]) / (2 * h)
                slopes[k][m] = d if math.isfinite(d) else math.inf
        except (ValueError, ZeroDivisionError, OverflowError):
            for k in range(n):
                slopes[k][m] = math.inf
    return slopes


def _kink_cone(result: GraphResult, fmag: list[float], rtol: float) -> set[int]:
    """Nodes whose gradient depends on the max-tie convention: everything feeding a max whose
    arguments are equal, or equal within their rounding budget."""
    rows, cone = result.rows, set()
    for r in reversed(rows):
        if r.op == "max":
            a, b = r.inputs
            if abs(rows[a].value - rows[b].value) <= rtol * (fmag[a] + fmag[b]) + _ATOL:
                cone.update(r.inputs)
        if r.id in cone:
            cone.update(r.inputs)
    return cone


def _source_checks(result, fmag, gmag, kinked, rtol) -> tuple[NodeCheck, ...]:
    """f and ∂f/∂input from SymPy's own parse of the expression text (Python's precedence rules)."""
    import sympy
    from sympy.parsing.sympy_parser import parse_expr

    graph = result.graph
    fwd = _sympy_forward()
    local: dict = {}
    pieces = []
    for kind, text, _ in _tokenize(graph.source):
        if kind == "num":
            key = f"_c{len(local)}"
            local[key] = sympy.Rational(float(text))
        elif kind == "name" and text in _FUNCTIONS:
            key = f"_f_{text}"
            local[key] = fwd[text]
        elif kind == "name":
            key = f"_v_{text}"
            local[key] = sympy.Symbol(text, real=True)
        else:
            key = text
        pieces.append(key)
    f = parse_expr(" ".join(pieces), local_dict=local, global_dict={}, transformations=())
    subs = {sympy.Symbol(k, real=True): sympy.Rational(v) for k, v in result.values.items()}
    ev = _exact(f, subs)
    vratio = math.inf if ev is None else _ratio(abs(result.value - ev), rtol * fmag[graph.output] + _ATOL)
    # f's own gradient is 1 on both sides; this row is about the value
    checks = [_node_check(-1, "f", graph.source, result.value, ev, vratio, 1.0, 1.0, 0.0, "")]
    for k, name in enumerate(graph.input_names):
        row = next(r for r in result.rows if r.op == "input" and r.label == name)
        if row.id in kinked:
            checks.append(_node_check(-2 - k, name, "input", row.value, row.value, 0.0, row.grad, None, 0.0,
                                      "kink"))
            continue
        eg = _exact(sympy.diff(f, sympy.Symbol(name, real=True)), subs)
        checks.append(_node_check(-2 - k, name, "input", row.value, float(row.value), 0.0, row.grad, eg,
                                  rtol * gmag[row.id] + _ATOL, ""))
    return tuple(checks)


# ---------------------------------------------------------------------------------------------
# Pictures: DOT text and a self-made SVG (layered left to right, like the lecture's figures)
# ---------------------------------------------------------------------------------------------

_GREEN, _RED = "#1a7f37", "#cf222e"


def _pic(v: float) -> str:
    return "undefined" if not math.isfinite(v) else f"{v + 0.0:.3g}"


def _box_title(n: Node) -> str:
    if n.op == "input":
        return n.label
    if n.op == "const":
        return "const"
    return _OPS[n.op].symbol


def _edges(result: GraphResult):
    """(source id, target id, input index, forward value, gradient on that edge)."""
    for r in result.rows:
        for k, (i, d) in enumerate(zip(r.inputs, r.downstream)):
            yield i, r.id, k, result.rows[i].value, d


def to_dot(result: GraphResult) -> str:
    """Graphviz DOT text of the evaluated graph: forward values (green) and gradients (red) on edges.

    Render with e.g. ``dot -Tsvg graph.dot > graph.svg`` (graphviz is not needed by gradverify).
    """
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        "digraph gradverify {",
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        f"  label={q(result.graph.source)}; labelloc=t;",
    ]
    for r in result.rows:
        n = result.graph.nodes[r.id]
        title = _box_title(n)
        sub = _pic(r.value) if n.op in ("input", "const") else f"{r.label} = {_pic(r.value)}"
        lines.append(f'  n{r.id} [label={q(title)[:-1]}\\n{q(sub)[1:]}];')  # \n: a centred line break
    for i, j, _, v, d in _edges(result):
        lines.append(f'  n{i} -> n{j} [label=<<font color="{_GREEN}">{_pic(v)}</font><br/>'
                     f'<font color="{_RED}">{_pic(d)}</font>>];')
    out = result.rows[result.graph.output]
    lines.append('  out [shape=none, label=""];')
    lines.append(f'  n{out.id} -> out [label=<<font color="{_GREEN}">{_pic(out.value)}</font><br/>'
                 f'<font color="{_RED}">{_pic(out.grad)}</font>>];')
    lines.append("}")
    return "\n".join(lines) + "\n"


_MAX_DUMMIES = 20_000  # above this many column slots for long edges, draw long edges directly


def _layout(result: GraphResult) -> tuple[dict, dict[tuple[int, int, int], list], int]:
    """Column and row of every node, plus the slots long edges pass through (Sugiyama-style).

    Returns ``(place, waypoints, rows_used)``: ``place[key] = (column, row)`` for node ids and for
    waypoint keys ``("w", edge, column)``; ``waypoints[(i, j, k)]`` lists the waypoint keys of edge
    ``i -> j`` (input index k), left to right. An edge spanning several columns reserves one slot in
    every column it crosses, so it never runs through a box.
    """
    rows = result.rows
    edges = [(i, j, k) for j, r in enumerate(rows) for k, i in enumerate(r.inputs)]
    span = sum(rows[j].stage - rows[i].stage - 1 for i, j, _ in edges)
    columns: dict[int, list] = {}
    preds: dict = {}
    for r in rows:
        columns.setdefault(r.stage, []).append(r.id)
        preds[r.id] = list(r.inputs)
    waypoints: dict[tuple[int, int, int], list] = {}
    for i, j, k in edges:
        keys, prev = [], i
        if span <= _MAX_DUMMIES:
            for col in range(rows[i].stage + 1, rows[j].stage):
                key = ("w", (i, j, k), col)
                columns[col].append(key)
                preds[key] = [prev]
                keys.append(key)
                prev = key
        waypoints[(i, j, k)] = keys
        preds[j] = [prev if p == i and n == k else p for n, p in enumerate(preds[j])]
    # one left-to-right sweep: order each column by the mean row of its predecessors
    row: dict = {}
    for col in sorted(columns):
        entries = columns[col]
        keys = {}
        for n, e in enumerate(entries):
            ps = [row[p] for p in preds[e] if p in row]
            keys[e] = (sum(ps) / len(ps) if ps else n, n)
        entries.sort(key=keys.__getitem__)
        for n, e in enumerate(entries):
            row[e] = n
    tallest = max(len(v) for v in columns.values())
    place = {}
    for col, entries in columns.items():
        offset = (tallest - len(entries)) / 2
        for e in entries:
            place[e] = (col, row[e] + offset)
    return place, waypoints, tallest


def _bezier_at_x(p0, p1, p2, p3, x: float) -> float:
    """y of a cubic Bézier (monotone in x) at the given x, by bisection."""
    lo, hi = 0.0, 1.0
    for _ in range(40):
        t = (lo + hi) / 2
        bx = (1 - t) ** 3 * p0[0] + 3 * (1 - t) ** 2 * t * p1[0] + 3 * (1 - t) * t**2 * p2[0] + t**3 * p3[0]
        lo, hi = (t, hi) if bx < x else (lo, t)
    t = (lo + hi) / 2
    return (1 - t) ** 3 * p0[1] + 3 * (1 - t) ** 2 * t * p1[1] + 3 * (1 - t) * t**2 * p2[1] + t**3 * p3[1]


def to_svg(result: GraphResult) -> str:
    """A standalone SVG picture in the lecture's style, drawn without graphviz.

    Inputs at the left, the output at the right, one column per stage; each box shows the
    operation and the node's value; each edge carries the forward value (green, above) and the
    gradient flowing back along it (red, below). Edges that skip columns are routed through free
    slots of the columns they cross.
    """
    graph, rows = result.graph, result.rows
    box_w, box_h, col_w, row_h, margin, top = 100, 44, 230, 70, 30, 60
    place, waypoints, tallest = _layout(result)

    def at(key) -> tuple[float, float]:
        col, r = place[key]
        return margin + col * col_w, top + r * row_h

    width = 2 * margin + max(c for c, _ in place.values()) * col_w + box_w + 100
    height = top + tallest * row_h + 30

    def text(x, y, s, **attrs) -> str:
        extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
        return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{_xml_escape(s)}</text>'

    def edge_label(x, y, v, d) -> list[str]:
        return [text(x, y - 5, _pic(v), fill=_GREEN, text_anchor="middle"),
                text(x, y + 14, _pic(d), fill=_RED, text_anchor="middle")]

    title = graph.source + "   at " + ", ".join(f"{k} = {_pic(v)}" for k, v in result.values.items())
    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
         f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="12">'),
        ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
         'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#57606a"/></marker></defs>'),
        '<rect width="100%" height="100%" fill="white"/>',
        text(margin, 24, title if len(title) < 200 else title[:197] + "...", font_size="14",
             font_weight="bold"),
        text(margin, 42, "green: forward value (above each edge)   red: gradient ∂f/∂· (below)",
             fill="#57606a"),
    ]
    for i, j, k, v, d in _edges(result):
        x0, y0 = at(i)
        points = [(x0 + box_w, y0 + box_h / 2)]
        for key in waypoints[(i, j, k)]:
            wx, wy = at(key)
            points += [(wx, wy + box_h / 2), (wx + box_w, wy + box_h / 2)]
        x1, y1 = at(j)
        nin = len(rows[j].inputs)
        points.append((x1, y1 + box_h / 2 + (k - (nin - 1) / 2) * 14))
        path = [f"M {points[0][0]:.1f} {points[0][1]:.1f}"]
        for n, ((ax, ay), (bx, by)) in enumerate(zip(points[0::2], points[1::2])):
            if n:  # straight through the reserved slot, then a curve across the gap
                path.append(f"L {ax:.1f} {ay:.1f}")
            cx = (ax + bx) / 2
            path.append(f"C {cx:.1f} {ay:.1f}, {cx:.1f} {by:.1f}, {bx:.1f} {by:.1f}")
        parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="#57606a" marker-end="url(#arrow)"/>')
        # labels on the last stretch, input k a little further from the box than input k-1
        (ax, ay), (bx, by) = points[-2], points[-1]
        cx = (ax + bx) / 2
        lx = max(bx - 32 - 48 * k, ax + 20)
        parts += edge_label(lx, _bezier_at_x((ax, ay), (cx, ay), (cx, by), (bx, by), lx), v, d)
    for r in rows:
        x, y = at(r.id)
        n = graph.nodes[r.id]
        fill = "#ddf4ff" if n.op == "input" else "#f6f8fa" if n.op == "const" else "#fff8c5"
        parts.append(f'<g><rect x="{x:.1f}" y="{y:.1f}" width="{box_w}" height="{box_h}" rx="8" '
                     f'fill="{fill}" stroke="{_RED if r.note else "#57606a"}"/>')
        if r.note:
            parts.append(f"<title>{_xml_escape(r.note)}</title>")
        parts.append(text(x + box_w / 2, y + 18, _box_title(n), text_anchor="middle",
                          font_weight="bold"))
        sub = _pic(r.value) if n.op in ("input", "const") else f"{r.label} = {_pic(r.value)}"
        parts.append(text(x + box_w / 2, y + 35, sub, text_anchor="middle") + "</g>")
    out = rows[graph.output]
    x, y = at(out.id)
    x0, y0 = x + box_w, y + box_h / 2
    parts.append(f'<path d="M {x0:.1f} {y0:.1f} L {x0 + 80:.1f} {y0:.1f}" stroke="#57606a" '
                 f'marker-end="url(#arrow)"/>')
    parts += edge_label(x0 + 40, y0, out.value, out.grad)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------
# The lecture's examples
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """A built-in example: an expression and the values the lecture evaluates it at."""

    expression: str
    values: dict[str, float] = field(default_factory=dict)
    description: str = ""


EXAMPLES: dict[str, Example] = {
    "add-mul": Example("(x + y) * z", {"x": -2.0, "y": 5.0, "z": -4.0},
                       "f(x, y, z) = (x + y) z; f = -12, gradients -4, -4, 3"),
    "sigmoid-neuron": Example("sigmoid(w0*x0 + w1*x1 + w2)",
                              {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0},
                              "a sigmoid neuron; f ≈ 0.73"),
}

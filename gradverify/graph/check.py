"""The SymPy check: every node's value and gradient against SymPy, with no derivative rule of ours.

For each node n, the output is rebuilt with n replaced by a fresh symbol t; ``sympy.diff`` gives
∂f/∂t, evaluated at t = n's exact expression and the input values at 30 digits. Separately,
SymPy parses the expression text itself (Python's precedence rules), and f and ∂f/∂input from that
parse are compared too: a check on this package's parser.

SymPy recurses once (or a few times) per level of an expression. Deep graphs are checked in a
worker thread with a large stack and a recursion limit sized to the graph's depth
(``_with_room``); a text nested deeper than Python's parser allows is read with redundant
parentheses and signs removed, and if that is still too deep, SymPy's own parse is skipped with a
note. A RecursionError never escapes: it becomes an ``InputError`` that says what to do.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass

from gradverify.errors import InputError
from gradverify.graph.budget import ATOL, RTOL, kink_cone, magnitudes
from gradverify.graph.ops import FUNCTIONS
from gradverify.graph.parser import excerpt, tokenize
from gradverify.graph.passes import GraphResult

__all__ = ["NodeCheck", "SympyCheck", "check_with_sympy"]


@dataclass(frozen=True)
class NodeCheck:
    """One node compared with SymPy.

    ``status`` is ``"ok"`` (value and gradient within budget), ``"mismatch"``, ``"kink"`` (the
    gradient depends on the max-tie convention, so it is not compared), ``"unchecked"`` (the
    check's time limit ran out before this node: nothing compared) or ``"undefined"`` (the
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

    ``source`` rows have ids −1 (f) and −2, −3, … (the inputs, in order); empty when Python's
    parser cannot read the text even with redundant parentheses and signs removed (``notes`` says so).
    """

    nodes: tuple[NodeCheck, ...]
    source: tuple[NodeCheck, ...]
    rtol: float
    notes: tuple[str, ...] = ()

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
        count = {k: sum(c.status == k for c in self.nodes) for k in ("ok", "kink", "undefined", "unchecked")}
        notes = ""
        if count["kink"]:
            notes += (f"; {count['kink']} node(s) feeding a max tie not compared "
                      "(the tie convention decides them)")
        if count["undefined"]:
            notes += (f"; {count['undefined']} gradient(s) not compared: the exact derivative is not a "
                      "real number at this point")
        if count["unchecked"]:
            notes += f"; {count['unchecked']} node(s) NOT checked: the time limit ran out first"
        for note in self.notes:
            notes += f"; {note}"
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

# ---- room for SymPy's recursion -------------------------------------------------------------

_STACK_BYTES = 512 << 20     # virtual: a thread's stack is only committed as it is used
_FRAMES_PER_LEVEL = 50       # measured: about 7 Python frames per level of nested tanh; room for worse ops


def _depth(result: GraphResult) -> int:
    """The longest chain of operations from an input to the output."""
    depth = [0] * len(result.rows)
    for r in result.rows:
        if r.inputs:
            depth[r.id] = 1 + max(depth[i] for i in r.inputs)
    return max(depth, default=0)


def _with_room(work, levels: int):
    """Run ``work()`` with room for ``levels`` levels of SymPy recursion.

    Shallow graphs run directly. Deeper ones run in a worker thread with a large stack while the
    interpreter's recursion limit is raised for the duration (it is process-wide; restored after).

    Raises:
        InputError: the recursion is still too deep (e.g. an interpreter with a fixed C limit).
    """
    need = 200 + _FRAMES_PER_LEVEL * levels
    old_limit = sys.getrecursionlimit()
    try:
        if need <= old_limit // 2:
            return work()
        box: dict = {}

        def target() -> None:
            try:
                box["value"] = work()
            except BaseException as exc:  # handed to the caller's thread below
                box["error"] = exc

        old_stack = threading.stack_size()
        try:
            threading.stack_size(_STACK_BYTES)
            sys.setrecursionlimit(max(old_limit, need))
            worker = threading.Thread(target=target, name="gradverify-sympy-check", daemon=True)
            worker.start()
            worker.join()
        finally:
            threading.stack_size(old_stack)
            sys.setrecursionlimit(old_limit)
        if "error" in box:
            raise box["error"]
        return box["value"]
    except RecursionError:
        raise InputError("The graph is too deep for SymPy on this interpreter",
                         expected="a graph SymPy can differentiate without exhausting Python's recursion limit",
                         received=f"a chain of {levels} operations",
                         fix="check a shallower graph (the forward and backward passes work at any depth)") from None


# ---- the check --------------------------------------------------------------------------------

def check_with_sympy(result: GraphResult, *, rtol: float = RTOL, max_nodes: int = 200,
                     time_limit: float | None = None) -> SympyCheck:
    """Check the value and the gradient ∂f/∂node of every node against SymPy.

    For node n, the output is rebuilt with n replaced by a fresh symbol t; ``sympy.diff`` gives
    ∂f/∂t, which is evaluated at t = n's exact expression and the input values (taken exactly, as
    the binary fractions the floats are) with 30 digits. None of this package's derivative rules is
    used. Separately, SymPy parses the expression text itself, and f and ∂f/∂input from that parse
    are compared too (a check on the parser). Budgets: see :data:`RTOL`.

    Args:
        result: from :func:`evaluate`.
        rtol: relative tolerance on the condition-aware magnitude (see :data:`RTOL`).
        max_nodes: refuse bigger graphs; the check costs O(nodes²) SymPy operations.
        time_limit: seconds after which no further node is started (the rest are ``"unchecked"``
            and the summary says so); None: no limit. A long chain of nested functions costs
            about nodes³ SymPy steps (tanh nested 40 deep: minutes).

    Returns:
        A :class:`SympyCheck` record, one :class:`NodeCheck` per node.

    Raises:
        InputError: the graph has more than ``max_nodes`` nodes, or is too deep for SymPy's
            recursion on this interpreter.
    """
    graph, rows = result.graph, result.rows
    if len(rows) > max_nodes:
        raise InputError(f"The graph of {excerpt(graph.source)} is too big for the SymPy check",
                         expected=f"at most max_nodes={max_nodes} nodes (the check costs O(n²) SymPy steps)",
                         received=f"{len(rows)} nodes",
                         fix="check a smaller graph, or pass a larger max_nodes and wait")
    if time_limit is not None and not time_limit > 0:
        raise InputError("time_limit must be a positive number of seconds", received=repr(time_limit),
                         fix="pass e.g. time_limit=30, or None for no limit")
    deadline = math.inf if time_limit is None else time.monotonic() + time_limit
    return _with_room(lambda: _check(result, rtol, deadline), _depth(result))


def _check(result: GraphResult, rtol: float, deadline: float) -> SympyCheck:
    """Every node, from the output down (the cheap ones first: a node's check costs about the size
    of the graph below it), then SymPy's own parse; nothing new is started after ``deadline``."""
    import sympy

    graph, rows = result.graph, result.rows
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
    fmag, gmag = magnitudes(result)
    kinked = kink_cone(result, fmag, rtol)
    t = sympy.Dummy("t", real=True)
    by_id: dict[int, NodeCheck] = {}
    for n, row in zip(reversed(graph.nodes), reversed(rows)):
        if time.monotonic() > deadline:
            by_id[n.id] = NodeCheck(n.id, row.label, row.text, row.value, None, math.nan, row.grad, None,
                                    math.nan, math.nan, math.nan, math.nan, "unchecked")
            continue
        ev = _exact(exact[n.id], subs)
        vratio = math.inf if ev is None else _ratio(abs(row.value - ev), rtol * fmag[n.id] + ATOL)
        if n.id in kinked:
            eg = None
            status = "kink"
        else:
            df = sympy.diff(build(n.id, t)[graph.output], t)
            eg = _exact(df.xreplace({t: exact[n.id]}), subs)
            status = ""
        by_id[n.id] = _node_check(n.id, row.label, row.text, row.value, ev, vratio, row.grad, eg,
                                  rtol * gmag[n.id] + ATOL, status)
    checks = [by_id[n.id] for n in graph.nodes]
    if time.monotonic() > deadline:
        return SympyCheck(tuple(checks), (), rtol, ("SymPy's own parse of the text not checked: the time limit ran out",))
    source, notes = _source_checks(result, fmag, gmag, kinked, rtol)
    return SympyCheck(tuple(checks), source, rtol, notes)


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


# ---- SymPy's own reading of the text ----------------------------------------------------------

def _python_text(tokens: list[tuple[str, str, int]], local: dict) -> str:
    """The expression as Python text over names bound in ``local`` (constants as exact rationals)."""
    import sympy

    fwd = _sympy_forward()
    pieces = []
    for kind, text, _ in tokens:
        if kind == "num":
            key = f"_c{len(local)}"
            local[key] = sympy.Rational(float(text))
        elif kind == "name" and text in FUNCTIONS:
            key = f"_f_{text}"
            local[key] = fwd[text]
        elif kind == "name":
            key = f"_v_{text}"
            local[key] = sympy.Symbol(text, real=True)
        else:
            key = text
        pieces.append(key)
    return " ".join(pieces)


def _flattened(tokens: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """The same expression under Python's grammar with redundant nesting removed, for texts nested
    deeper than Python's parser allows: a group in parentheses directly inside another pair
    (``((e))`` → ``(e)``, ``f((e))`` → ``f(e)``) or around the whole text loses its pair, and a run
    of unary signs becomes one ``-`` or nothing by the parity of its minus signs (a run always
    applies to the same operand, so ``- - x**2`` is ``x**2``)."""
    match, stack = {}, []
    for i, (_, text, _) in enumerate(tokens):
        if text == "(":
            stack.append(i)
        elif text == ")":
            match[stack.pop()] = i
    drop = set()
    for i, j in match.items():
        is_group = i == 0 or tokens[i - 1][0] != "name"
        inside = i > 0 and tokens[i - 1][1] == "(" and match.get(i - 1) == j + 1
        if is_group and (inside or (i == 0 and j == len(tokens) - 1)):
            drop.update((i, j))
    out: list[tuple[str, str, int]] = []
    minus = None                                      # parity of the current run of unary signs
    for i, tok in enumerate(tokens):
        if i in drop:
            continue
        unary = tok[1] in "+-" and (not out or (out[-1][0] == "op" and out[-1][1] != ")"))
        if unary:
            minus = (minus or False) ^ (tok[1] == "-")
            continue
        if minus:
            out.append(("op", "-", tok[2]))
        minus = None
        out.append(tok)
    return out


def _parse_text(source: str):
    """SymPy's parse of ``source`` and a note: literal first, flattened if Python cannot nest that
    deep; (None, note) when even that is too deep."""
    from sympy.parsing.sympy_parser import parse_expr

    tokens = tokenize(source)
    for attempt, toks in enumerate((tokens, None)):
        if toks is None:
            toks = _flattened(tokens)
        local: dict = {}
        try:
            expr = parse_expr(_python_text(toks, local), local_dict=local, global_dict={}, transformations=())
        except (SyntaxError, RecursionError, MemoryError):
            continue
        return expr, ("" if attempt == 0 else "SymPy read the text with redundant parentheses and signs removed "
                      "(Python's parser cannot nest it as written)")
    return None, ("SymPy's own parse of the text skipped: it is nested deeper than Python's parser allows "
                  "even without redundant parentheses")


def _source_checks(result, fmag, gmag, kinked, rtol) -> tuple[tuple[NodeCheck, ...], tuple[str, ...]]:
    """f and ∂f/∂input from SymPy's own parse of the expression text (Python's precedence rules),
    and the notes about how it was read."""
    import sympy

    graph = result.graph
    f, note = _parse_text(graph.source)
    notes = (note,) if note else ()
    if f is None:
        return (), notes
    subs = {sympy.Symbol(k, real=True): sympy.Rational(v) for k, v in result.values.items()}
    ev = _exact(f, subs)
    vratio = math.inf if ev is None else _ratio(abs(result.value - ev), rtol * fmag[graph.output] + ATOL)
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
                                  rtol * gmag[row.id] + ATOL, ""))
    return tuple(checks), notes

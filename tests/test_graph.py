"""Tests of gradverify.graph and `gradverify graph`: the lecture's numbers, branches, deep graphs,
SymPy agreement on random expressions, planted bugs, errors, and the pictures."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET

import pytest
import sympy
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sympy.parsing.sympy_parser import parse_expr, standard_transformations

import gradverify.graph as gm
from gradverify.graph import ops, parser, render
from gradverify.cli import main
from gradverify.errors import InputError, SpecError
from gradverify.graph import EXAMPLES, check_with_sympy, evaluate, parse, to_dot, to_svg

SVG = "{http://www.w3.org/2000/svg}"


def run(expr, **values):
    return evaluate(parse(expr), values)


def row(result, label):
    (r,) = [r for r in result.rows if r.label == label]
    return r


def sympy_reference(expr: str, values: dict[str, float]) -> tuple[float, dict[str, float]]:
    """f and ∂f/∂name straight from SymPy's own parse of the text: nothing of gradverify.graph."""
    syms = {n: sympy.Symbol(n, real=True) for n in values}
    local = dict(syms, sigmoid=lambda a: 1 / (1 + sympy.exp(-a)), max=sympy.Max,
                 exp=sympy.exp, log=sympy.log, tanh=sympy.tanh)
    f = parse_expr(expr.replace("^", "**"), local_dict=local, transformations=standard_transformations)
    subs = {syms[n]: sympy.Rational(v) for n, v in values.items()}
    value = float(f.xreplace(subs).evalf(30))
    return value, {n: float(sympy.diff(f, syms[n]).xreplace(subs).evalf(30)) for n in values}


# ---------------------------------------------------------------------------------------------
# The lecture's numbers
# ---------------------------------------------------------------------------------------------


def test_add_mul_gives_the_lecture_numbers():
    ex = EXAMPLES["add-mul"]
    result = evaluate(parse(ex.expression), ex.values)
    assert result.value == -12
    assert result.gradients == {"x": -4, "y": -4, "z": 3}
    q = row(result, "n1")  # q = x + y
    assert (q.value, q.local, q.grad, q.downstream) == (3, (1, 1), -4, (-4, -4))
    f = row(result, "f")
    assert (f.local, f.upstream, f.downstream) == ((-4, 3), (1,), (-4, 3))


@pytest.mark.parametrize("expand", [False, True], ids=["single-gate", "expanded"])
def test_sigmoid_neuron_gives_the_lecture_numbers_in_both_forms(expand):
    ex = EXAMPLES["sigmoid-neuron"]
    result = evaluate(parse(ex.expression, expand_sigmoid=expand), ex.values)
    g = result.gradients
    assert round(result.value, 2) == 0.73
    assert [round(g[k], 2) for k in ("w0", "w1", "w2")] == [-0.20, -0.39, 0.20]
    assert [round(g[k], 2) for k in ("x0", "x1")] == [0.39, -0.59]
    assert ("sigmoid" in {r.op for r in result.rows}) is not expand


def test_single_sigmoid_gate_has_local_gradient_sigma_times_one_minus_sigma():
    ex = EXAMPLES["sigmoid-neuron"]
    gate = row(evaluate(parse(ex.expression), ex.values), "f")
    s = gate.value
    assert gate.local == (pytest.approx(s * (1 - s), rel=1e-15),)


def test_expanded_sigmoid_shows_the_lecture_intermediate_gradients():
    ex = EXAMPLES["sigmoid-neuron"]
    result = evaluate(parse(ex.expression, expand_sigmoid=True), ex.values)
    by_op = {r.op: r for r in result.rows if r.op in ("neg", "exp", "div")}
    plus_one = next(r for r in result.rows if r.op == "add" and r.inputs[1] == by_op["exp"].id)
    assert round(by_op["neg"].value, 2) == -1.00 and round(by_op["neg"].grad, 2) == -0.20
    assert round(by_op["exp"].value, 2) == 0.37 and round(by_op["exp"].grad, 2) == -0.53
    assert round(plus_one.value, 2) == 1.37 and round(plus_one.grad, 2) == -0.53
    assert round(by_op["div"].value, 2) == 0.73


@pytest.mark.parametrize("expand", [False, True], ids=["single-gate", "expanded"])
def test_sigmoid_derivative_matches_the_lecture_table(expand):
    graph = parse("sigmoid(x)", expand_sigmoid=expand)
    got = [round(evaluate(graph, {"x": x}).gradients["x"], 6) for x in (-1, -0.5, 0, 0.5, 1)]
    assert got == [0.196612, 0.235004, 0.25, 0.235004, 0.196612]


# ---------------------------------------------------------------------------------------------
# The backward pass
# ---------------------------------------------------------------------------------------------


def test_gradients_add_at_branches():
    result = run("x*x + x", x=3.0)
    x = row(result, "x")
    assert x.upstream == (3.0, 3.0, 1.0)  # two from x*x, one from + x
    assert x.grad == 7.0  # d/dx (x² + x) = 2x + 1


def test_a_variable_is_one_node_however_often_it_is_used():
    graph = parse("(x + y) * (x - y) + x")
    assert [n.label for n in graph.nodes if n.op == "input"] == ["x", "y"]
    result = evaluate(graph, {"x": 2.0, "y": 0.5})
    assert result.gradients == {"x": 2 * 2.0 + 1, "y": -2 * 0.5}


def test_max_sends_the_gradient_to_the_larger_argument():
    assert run("max(x, y) * 3", x=2.0, y=1.0).gradients == {"x": 3.0, "y": 0.0}
    assert run("max(x, y) * 3", x=1.0, y=2.0).gradients == {"x": 0.0, "y": 3.0}


def test_max_at_a_tie_sends_the_gradient_to_the_first_argument_and_is_flagged():
    result = run("max(x, y) * 3", x=1.0, y=1.0)
    assert result.gradients == {"x": 3.0, "y": 0.0}
    assert result.ties == (row(result, "n1").id,)
    assert "first argument" in row(result, "n1").note
    check = check_with_sympy(result)
    assert check.ok
    assert {c.label for c in check.nodes if c.status == "kink"} == {"x", "y"}


def test_no_ties_are_reported_away_from_ties():
    assert run("max(x, y)", x=1.0, y=2.0).ties == ()


def test_undefined_local_gradient_is_reported_not_hidden():
    result = run("x ** y", x=-2.0, y=2.0)
    assert result.value == 4.0 and result.gradients["x"] == -4.0
    assert math.isnan(result.gradients["y"])  # ∂(x^y)/∂y = x^y ln x is not real for x < 0
    assert "undefined" in row(result, "f").note
    check = check_with_sympy(result)
    assert check.ok and [c.label for c in check.nodes if c.status == "undefined"] == ["y"]


@pytest.mark.parametrize(
    "expr",
    ["-x**2", "2**-x", "x^y^z", "x**y**z", "x-y-z", "x/y/z", "-x*y", "x*-y", "x - -y", "-(x+y)*z",
     "x + y*z - x/y", "(x)", "+x", "- - x", "-2**2", "(-2)**2", "2*-3+x", "x*y**2", "1e-1*x + .5", "x/2/y"],
)
def test_precedence_and_associativity_follow_python(expr):
    values = {"x": 1.5, "y": 0.75, "z": 1.25}
    graph = parse(expr)
    used = {k: v for k, v in values.items() if k in graph.input_names}
    python = eval(expr.replace("^", "**"), {}, dict(used))  # Python's own precedence rules
    assert evaluate(graph, used).value == pytest.approx(python, rel=1e-15)


def test_unicode_operators_are_accepted():
    assert run("x × y − z ÷ 2", x=2.0, y=3.0, z=4.0).value == 4.0


def test_generated_labels_never_collide_with_variable_names():
    graph = parse("n1 * f + n2")
    labels = [n.label for n in graph.nodes]
    assert len(set(labels)) == len(labels)
    assert labels[graph.output] not in {"n1", "f", "n2"}


def test_negative_number_literals_become_one_constant_node():
    graph = parse("-2 * x")
    assert [(n.op, n.const) for n in graph.nodes if n.op == "const"] == [("const", -2.0)]
    assert len(graph.nodes) == 3


# ---------------------------------------------------------------------------------------------
# Deep graphs: iterative parse, passes and pictures
# ---------------------------------------------------------------------------------------------

DEPTH = 5000


@pytest.mark.parametrize(
    "expr, value, grad",
    [
        ("+".join(["x"] * DEPTH), DEPTH * 0.5, DEPTH),
        ("(" * DEPTH + "x" + "+1)" * DEPTH, 0.5 + DEPTH, 1.0),
        ("1+(" * DEPTH + "x" + ")" * DEPTH, 0.5 + DEPTH, 1.0),
        ("-" * (DEPTH + 1) + "x", -0.5, -1.0),
        ("x" + "**1" * DEPTH, 0.5, 1.0),
    ],
    ids=["chain", "nested-left", "nested-right", "unary-minus", "right-assoc-power"],
)
def test_deep_graphs_do_not_hit_the_recursion_limit(expr, value, grad):
    result = run(expr, x=0.5)
    assert len(result.rows) >= DEPTH
    assert result.value == pytest.approx(value) and result.gradients["x"] == pytest.approx(grad)


def test_deep_nested_functions_match_the_chain_rule_done_by_hand():
    result = run("tanh(" * DEPTH + "x" + ")" * DEPTH, x=0.5)
    v, d = 0.5, 1.0
    for _ in range(DEPTH):
        v = math.tanh(v)
        d *= 1 - v * v
    assert result.value == pytest.approx(v, rel=1e-12)
    assert result.gradients["x"] == pytest.approx(d, rel=1e-9)


def test_pictures_of_a_deep_graph_are_drawn_without_recursion():
    result = run("(" * DEPTH + "x" + "*1)" * DEPTH, x=0.5)
    ET.fromstring(to_svg(result))
    assert to_dot(result).count("->") == DEPTH * 2 + 1


# Nested deeper than Python's parser (200 parentheses) and recursion limit allow: never a RecursionError

DEEP_TEXTS = {
    "parentheses": "(" * DEPTH + "x*y + 1" + ")" * DEPTH,
    "redundant-call-parentheses": "tanh(" + "(" * DEPTH + "x" + ")" * DEPTH + ") * y",
    "unary-minus": "-" * DEPTH + "2 * x * y",
    "unary-plus": "+" * DEPTH + "x - y",
    "mixed-signs": "x * " + "-+" * DEPTH + "-2 * y",
}


@pytest.mark.parametrize("expr", list(DEEP_TEXTS.values()), ids=list(DEEP_TEXTS))
def test_the_sympy_check_reads_texts_nested_beyond_pythons_parser(expr):
    result = run(expr, x=0.75, y=-1.25)
    check = check_with_sympy(result)
    assert check.ok and {c.status for c in check.nodes} == {"ok"}
    # SymPy's own parse of the text ran (on the text without its redundant nesting) and agrees
    assert [c.label for c in check.source] == ["f", "x", "y"] and all(c.status == "ok" for c in check.source)
    assert "redundant parentheses and signs removed" in check.summary()


@pytest.mark.parametrize("expr", list(DEEP_TEXTS.values())
                         + ["tanh(" * DEPTH + "x" + ")" * DEPTH + " * y", "(" * DEPTH + "x" + "+y)" * DEPTH],
                         ids=list(DEEP_TEXTS) + ["nested-functions", "nested-sums"])
def test_cli_graph_nested_5000_deep_never_raises_recursion_error(expr, tmp_path, capsys):
    svg, dot = tmp_path / "g.svg", tmp_path / "g.dot"
    code = main(["graph", "--at", "x=0.75,y=-1.25", "--svg", str(svg), "--dot", str(dot), "--", expr])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in out + err and "RecursionError" not in out + err
    assert re.search(r"SymPy check: (\d+) of \1 nodes agree|SymPy check: skipped \(\d+ nodes", out)
    ET.parse(svg)
    assert dot.read_text().startswith("digraph")


def test_the_sympy_check_makes_room_for_recursion_a_low_limit_would_refuse():
    """SymPy recurses a few frames per level: a caller's low recursion limit must not matter."""
    import inspect
    import sys

    from gradverify.graph import check as check_module

    result = run("tanh(" * 12 + "x" + ")" * 12, x=0.5)
    here = len(inspect.stack(0))
    old = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(here + 60)        # room for the test's own calls, not for 12 levels of SymPy
        try:
            check_module._check(result, gm.RTOL, math.inf)   # without the room: SymPy runs out
            bare = "passed"
        except RecursionError:
            bare = "RecursionError"
        check = check_with_sympy(result)                     # with it: checked in full
    finally:
        sys.setrecursionlimit(old)
    assert bare == "RecursionError"
    assert check.ok and len(check.nodes) == 13 and all(c.status == "ok" for c in check.nodes + check.source)


def test_a_graph_too_deep_for_sympys_recursion_is_refused_with_a_clear_error(monkeypatch, capsys):
    """Where no room can be made (e.g. an interpreter with a fixed C recursion limit): InputError
    from the API, a skipped check with the reason in the CLI; never a RecursionError."""
    import sys

    from gradverify.graph import check as check_module

    monkeypatch.setattr(check_module, "_FRAMES_PER_LEVEL", 0)    # pretend no room can be made
    expr = "tanh(" * 60 + "x" + ")" * 60
    old = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(220)
        with pytest.raises(InputError, match="too deep for SymPy") as info:
            check_with_sympy(run(expr, x=0.5))
        code = main(["graph", "--at", "x=0.5", "--", expr])
    finally:
        sys.setrecursionlimit(old)
    assert "Fix:" in str(info.value)
    out = capsys.readouterr().out
    assert code == 0 and "SymPy check: skipped (The graph is too deep for SymPy" in out


def test_the_sympy_check_stops_at_its_time_limit_and_says_so():
    result = run("tanh(" * 30 + "x" + ")" * 30, x=0.5)
    check = check_with_sympy(result, time_limit=1e-9)
    assert {c.status for c in check.nodes} == {"unchecked"} and check.source == ()
    assert "31 node(s) NOT checked: the time limit ran out" in check.summary()
    assert "not checked: the time limit ran out" in check.summary()
    with pytest.raises(InputError, match="time_limit"):
        check_with_sympy(result, time_limit=0)


# ---------------------------------------------------------------------------------------------
# SymPy agreement on random expressions (Hypothesis)
# ---------------------------------------------------------------------------------------------

NAMES = ("x", "y", "z")
# constants are exact binary fractions, so SymPy's decimal parse reads the same numbers
_leaves = st.one_of(st.sampled_from(NAMES), st.sampled_from(["2", "0.5", "3", "1.5"]))
_FORMS = [  # (arity, template); every template keeps its operation inside its domain
    (2, "({0} + {1})"),
    (2, "({0} - {1})"),
    (2, "({0} * {1})"),
    (2, "({0}) / (1.5 + tanh({1}))"),  # denominator in (0.5, 2.5)
    (2, "max({0}, {1})"),
    (2, "(1 + ({0})^2) ** tanh({1})"),  # positive base, bounded exponent
    (1, "-({0})"),
    (1, "exp(tanh({0}))"),
    (1, "log(1 + ({0})**2)"),  # log of something >= 1
    (1, "sigmoid({0})"),
    (1, "tanh({0})"),
    (1, "({0})^3"),
]


@st.composite
def expressions(draw, depth: int = 3) -> str:
    """Random expression text over x, y, z: a tree at most ``depth`` operations deep."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(_leaves)
    arity, template = draw(st.sampled_from(_FORMS))
    return template.format(*(draw(expressions(depth - 1)) for _ in range(arity)))


input_values = st.fixed_dictionaries({n: st.floats(-2, 2) for n in NAMES})


def _evaluate_away_from_ties(expr, values):
    graph = parse(expr)
    result = evaluate(graph, {n: values[n] for n in graph.input_names})
    for r in result.rows:  # at (or within rounding of) a max tie the derivative does not exist
        if r.op == "max":
            a, b = (result.rows[i].value for i in r.inputs)
            assume(abs(a - b) > 1e-9 * (1 + abs(a) + abs(b)))
    return result


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions(), values=input_values)
@example(expr="sigmoid(x*y + z)", values={"x": 2.0, "y": -1.0, "z": -3.0})
@example(expr="((x + y) - x) * z", values={"x": 2.0, "y": 1e-300, "z": 1.0})
def test_every_input_gradient_matches_sympy_on_random_expressions(expr, values):
    result = _evaluate_away_from_ties(expr, values)
    exact_f, exact_grads = sympy_reference(expr, result.values)
    check = check_with_sympy(result)  # only for the budget of each input (its error bar)
    budget = {c.label: c.budget for c in check.nodes}
    assert result.value == pytest.approx(exact_f, rel=1e-9, abs=1e-12)
    for name, exact in exact_grads.items():
        got = result.gradients[name]
        assert math.isfinite(budget[name])
        assert abs(got - exact) <= budget[name] + 1e-12 * abs(exact), (name, got, exact, budget[name])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions(), values=input_values)
def test_every_node_of_random_expressions_agrees_with_sympy(expr, values):
    result = _evaluate_away_from_ties(expr, values)
    check = check_with_sympy(result)
    assert check.ok, check.summary()
    assert {c.status for c in check.nodes} <= {"ok", "undefined"}


@settings(max_examples=60, deadline=None)
@given(expr=expressions(), values=input_values)
def test_expanding_sigmoid_gives_the_same_numbers(expr, values):
    single, expanded = parse(expr), parse(expr, expand_sigmoid=True)
    used = {n: values[n] for n in single.input_names}
    a, b = evaluate(single, used), evaluate(expanded, used)
    assert b.value == pytest.approx(a.value, rel=1e-12, abs=1e-15)
    for name in used:
        assert b.gradients[name] == pytest.approx(a.gradients[name], rel=1e-9, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# The checker catches planted bugs
# ---------------------------------------------------------------------------------------------


def test_check_catches_a_wrong_local_gradient(monkeypatch):
    wrong = ops.Op(1, "tanh({0})", "tanh", math.tanh, lambda a, out: (1.0 - out,))  # should be 1 − out²
    monkeypatch.setitem(ops.OPS, "tanh", wrong)
    check = check_with_sympy(run("tanh(x * y) + y", x=0.7, y=1.3))
    assert not check.ok
    assert {c.label for c in check.mismatches} >= {"n1", "x", "y"}  # below the tanh gate
    assert "f" not in {c.label for c in check.nodes if c.status == "mismatch"}  # above it is right
    assert "DISAGREEMENT" in check.summary() and "node x (input): gradient" in check.summary()
    (n1,) = [c for c in check.mismatches if c.label == "n1"]
    assert "node n1 (x * y): gradient" in n1.describe() and n1.ratio > 1e6


def test_check_catches_swapped_product_rule(monkeypatch):
    wrong = ops.Op(2, "{0} * {1}", "*", lambda a, b: a * b, lambda a, b, out: (a, b))
    monkeypatch.setitem(ops.OPS, "mul", wrong)
    assert not check_with_sympy(run("x * y", x=2.0, y=5.0)).ok


def test_check_catches_a_parser_precedence_bug_through_sympys_own_parse(monkeypatch):
    monkeypatch.setattr(parser, "_NEG_PRECEDENCE", 5)  # would read -x**2 as (-x)**2
    check = check_with_sympy(run("-x**2", x=1.5))
    assert not [c for c in check.nodes if c.status == "mismatch"]  # the graph is self-consistent...
    assert [c.label for c in check.mismatches] == ["f", "x"]  # ...but not what SymPy reads in the text


def test_check_refuses_graphs_too_big_for_sympy():
    with pytest.raises(InputError, match="too big"):
        check_with_sympy(run("+".join(["x"] * 50), x=1.0), max_nodes=20)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, match",
    [
        ("", "empty"),
        ("x +", "ends where an operand belongs"),
        ("(x + 1", "never closed"),
        ("x + 1)", "without a matching"),
        ("2x", "where an operator"),
        ("x $ y", "unexpected character"),
        ("foo(x)", "Unknown function 'foo'"),
        ("max(x)", "max takes 2"),
        ("exp(x, y)", "exp takes 1"),
        ("exp + 1", "without parentheses"),
        ("x, y", "outside a function call"),
        ("()", "where a number"),
        ("* x", "where a number"),
        ("1e999 * x", "overflows float64"),
    ],
)
def test_unparsable_expressions_raise_spec_error_saying_what_and_how_to_fix(expr, match):
    with pytest.raises(SpecError, match=match) as info:
        parse(expr)
    assert "Expected" in str(info.value) and "Fix:" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "values, match",
    [
        ({"x": 1.0}, "no value for y"),
        ({"x": 1.0, "y": 2.0, "w": 3.0}, "w not in the expression"),
        ({"x": float("nan"), "y": 1.0}, "not a finite number"),
        ({"x": "one", "y": 1.0}, "not a finite number"),
    ],
)
def test_bad_values_raise_input_error(values, match):
    with pytest.raises(InputError, match=match):
        evaluate(parse("x * y"), values)


@pytest.mark.parametrize(
    "expr, values, match",
    [
        ("log(x)", {"x": -1.0}, "positive argument"),
        ("1 / x", {"x": 0.0}, "nonzero denominator"),
        ("exp(x)", {"x": 1000.0}, "overflows"),
        ("x ** 0.5", {"x": -4.0}, "positive base"),
    ],
)
def test_operations_outside_their_domain_raise_input_error_naming_the_node(expr, values, match):
    with pytest.raises(InputError, match=match) as info:
        evaluate(parse(expr), values)
    assert "node f" in str(info.value)


# ---------------------------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------------------------


def test_svg_is_well_formed_and_shows_values_and_gradients():
    result = run("(x + y) * z", x=-2.0, y=5.0, z=-4.0)
    root = ET.fromstring(to_svg(result))
    assert root.tag == SVG + "svg"
    texts = [t.text for t in root.iter(SVG + "text")]
    green = [t.text for t in root.iter(SVG + "text") if t.get("fill") == render.GREEN]
    red = [t.text for t in root.iter(SVG + "text") if t.get("fill") == render.RED]
    assert sorted(green) == sorted(["-2", "5", "-4", "3", "-12"])  # forward value on every edge
    assert sorted(red) == sorted(["-4", "-4", "3", "-4", "1"])  # gradient on every edge
    assert "f = -12" in texts and "n1 = 3" in texts
    boxes = [r for g in root.iter(SVG + "g") for r in g.iter(SVG + "rect")]
    assert len(boxes) == len(result.rows)


def test_svg_places_inputs_left_and_the_output_right():
    result = run("sigmoid(w*x + b)", w=2.0, x=-1.0, b=0.5)
    root = ET.fromstring(to_svg(result))
    xs = {}
    for g in root.iter(SVG + "g"):
        label = g.findall(SVG + "text")[0].text
        xs.setdefault(label, []).append(float(g.find(SVG + "rect").get("x")))
    assert max(xs["w"] + xs["x"] + xs["b"]) < min(xs["*"]) < min(xs["+"]) < min(xs["σ"])


def test_svg_escapes_text_and_marks_ties():
    result = run("max(x, y) * 2 / 3", x=1.0, y=1.0)
    root = ET.fromstring(to_svg(result))
    assert any("first argument" in (t.text or "") for t in root.iter(SVG + "title"))


def test_dot_text_has_one_edge_per_input_and_lecture_colours():
    result = run("(x + y) * z", x=-2.0, y=5.0, z=-4.0)
    dot = to_dot(result)
    assert dot.startswith("digraph gradverify {") and dot.rstrip().endswith("}")
    assert "rankdir=LR;" in dot
    assert dot.count("->") == sum(len(r.inputs) for r in result.rows) + 1  # + the output edge
    assert '  n0 -> n2 [label=<<font color="#1a7f37">-2</font><br/><font color="#cf222e">-4</font>>];' in dot
    assert 'n4 [label="*\\nf = -12"];' in dot


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def test_cli_add_mul_prints_the_staged_table_and_sympy_verdict(capsys):
    assert main(["graph", "add-mul"]) == 0
    out = capsys.readouterr().out
    assert "f = -12;  ∂f/∂x = -4, ∂f/∂y = -4, ∂f/∂z = 3" in out
    assert "local gradients" in out and "upstream" in out
    assert "n1 * z" in out and "SymPy check: 5 of 5 nodes agree" in out


def test_cli_sigmoid_neuron_shows_single_gate_and_expanded_with_same_numbers(capsys):
    assert main(["graph", "sigmoid-neuron"]) == 0
    out = capsys.readouterr().out
    assert "single sigmoid gate" in out and "expanded into elementary gates" in out
    assert out.count("f = 0.731059;") == 2
    assert out.count("∂f/∂w0 = -0.196612") == 2 and out.count("∂f/∂x1 = -0.589836") == 2
    assert "Both forms give the same numbers" in out


def test_cli_expression_with_values_and_files(tmp_path, capsys):
    svg, dot = tmp_path / "g.svg", tmp_path / "g.dot"
    code = main(["graph", "x*x + x", "--at", "x=3", "--svg", str(svg), "--dot", str(dot)])
    out = capsys.readouterr().out
    assert code == 0
    assert "3 + 3 + 1" in out and "∂f/∂x = 7" in out
    ET.parse(svg)
    assert dot.read_text().startswith("digraph")


@pytest.mark.parametrize("flag", ["--dot", "--svg"])
def test_cli_writes_only_the_picture_to_stdout_with_dash_and_the_tables_to_stderr(flag, capsys):
    assert main(["graph", "add-mul", flag, "-"]) == 0
    out, err = capsys.readouterr()
    ex = EXAMPLES["add-mul"]
    picture = (to_dot if flag == "--dot" else to_svg)(evaluate(parse(ex.expression), ex.values))
    assert out == picture  # nothing else: the picture can be piped straight into dot or a file
    assert "SymPy check: 5 of 5 nodes agree" in err and "f = -12" in err


def test_cli_with_a_picture_on_stdout_notes_other_files_on_stderr(tmp_path, capsys):
    svg = tmp_path / "g.svg"
    assert main(["graph", "add-mul", "--dot", "-", "--svg", str(svg)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("digraph gradverify {") and out.rstrip().endswith("}")
    assert f"wrote {svg}" in err
    ET.parse(svg)


@pytest.mark.parametrize("argv", [["--svg", "-", "--dot", "-"], ["--json", "--dot", "-"], ["--svg", "-", "--json"]])
def test_cli_refuses_two_claims_on_stdout(argv, capsys):
    assert main(["graph", "add-mul", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "both write to stdout" in err and "Fix:" in err


def test_cli_json_is_machine_readable(capsys):
    assert main(["graph", "sigmoid-neuron", "--json", "--at", "w2=-2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "gradverify.graph/1" and doc["ok"] is True
    single, expanded = doc["graphs"]
    assert (single["form"], expanded["form"]) == ("single", "expanded")
    assert single["values"]["w2"] == -2
    assert single["f"] == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert single["gradients"] == pytest.approx(expanded["gradients"])
    assert single["sympy_check"]["ok"]


def test_cli_expand_sigmoid_flag_expands_the_gate(capsys):
    assert main(["graph", "sigmoid(x)", "--at", "x=0", "--expand-sigmoid"]) == 0
    out = capsys.readouterr().out
    assert "exp(n1)" in out and "1 / n3" in out and "sigmoid(" not in out.split("\n", 1)[1]


def test_cli_takes_an_expression_starting_with_minus_after_double_dash(capsys):
    assert main(["graph", "--at", "x=2", "--", "-x*x"]) == 0
    assert "-2 + -2" in capsys.readouterr().out  # x is used twice: two upstream gradients add


def test_cli_reports_ties(capsys):
    assert main(["graph", "max(x, y)", "--at", "x=1,y=1"]) == 0
    assert "gradient goes to the first argument" in capsys.readouterr().out


def test_cli_skips_the_sympy_check_on_big_graphs(capsys):
    assert main(["graph", "+".join(["x"] * 300), "--at", "x=1"]) == 0
    assert "SymPy check: skipped (300 nodes" in capsys.readouterr().out


def test_cli_exits_1_when_a_rule_is_wrong(monkeypatch, capsys):
    monkeypatch.setitem(ops.OPS, "tanh", ops.Op(1, "tanh({0})", "tanh", math.tanh, lambda a, out: (1.0,)))
    assert main(["graph", "tanh(x)", "--at", "x=0.5"]) == 1
    assert "DISAGREEMENT" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["graph", "(x + y", "--at", "x=1,y=2"], "never closed"),
        (["graph", "foo(x)", "--at", "x=1"], "Unknown function 'foo'"),
        (["graph", "x * y", "--at", "x=1"], "no value for y"),
        (["graph", "x * y", "--at", "x=1,y=two"], "Cannot read the input value 'y=two'"),
        (["graph", "x * y", "--at", "x"], "NAME=NUMBER"),
        (["graph", "log(x)", "--at", "x=-1"], "positive argument"),
        (["graph", "add-mul", "--at", "w=1"], "w not in the expression"),
    ],
)
def test_cli_bad_input_exits_2_with_a_helpful_message(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradverify graph: error:") and match in err and "Fix:" in err


# ---------------------------------------------------------------------------------------------
# Public surface
# ---------------------------------------------------------------------------------------------


def test_all_is_exactly_the_public_api():
    import inspect

    assert set(gm.__all__) == {
        "RTOL", "EXAMPLES", "Example", "Node", "Graph", "NodeRow", "GraphResult", "NodeCheck",
        "SympyCheck", "parse", "evaluate", "check_with_sympy", "to_dot", "to_svg",
    }
    public = {n for n, v in vars(gm).items() if not n.startswith("_") and not inspect.ismodule(v) and n != "annotations"}
    assert public == set(gm.__all__)


def test_reprs_are_readable():
    graph = parse("(x + y) * z")
    assert repr(graph) == "parse('(x + y) * z')  # 5 nodes"
    assert repr(evaluate(graph, EXAMPLES["add-mul"].values)) == (
        "<GraphResult '(x + y) * z': f=-12; grad x=-4, y=-4, z=3>")

"""``gradverify graph``: the lecture's computational graphs, staged forward and backward.

    gradverify graph "(x+y)*z" --at x=-2,y=5,z=-4 [--svg FILE] [--dot FILE] [--expand-sigmoid] [--json]
    gradverify graph add-mul            # the lecture's (x+y)z example, at its values
    gradverify graph sigmoid-neuron     # σ(w0x0 + w1x1 + w2): as one gate, then expanded

Exit code 0 when every node agrees with SymPy, 1 when one does not, 2 for bad input.
stdout holds one thing: the picture with ``--svg -``/``--dot -`` (the tables go to stderr), else
the JSON document with ``--json``, else the tables; two claims on it are an error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from gradverify import graph as g
from gradverify.cli._common import table, write_atomic
from gradverify.errors import InputError

#: Graphs above this many nodes are not checked with SymPy here (the check is O(nodes²)).
_CHECK_LIMIT = 200
#: No node's SymPy check is started after this many seconds (deep chains of functions cost ~nodes³).
_CHECK_SECONDS = 30.0


def register(subparsers) -> None:
    examples = ", ".join(f"{k} ({v.expression})" for k, v in g.EXAMPLES.items())
    parser = subparsers.add_parser(
        "graph",
        help="forward values and backward gradients on a scalar computational graph",
        description="Parse a scalar expression into the lecture's computational graph, run the "
        "forward pass and the backward pass (upstream gradient x local gradient, adding at "
        "branches), print every node, and check every node against SymPy. "
        f"Built-in examples: {examples}.",
        epilog="An expression that starts with '-' must follow '--': gradverify graph --at x=1 -- '-x*x'.",
    )
    parser.add_argument("expr", metavar="EXPR",
                        help="an expression such as '(x+y)*z' (+ - * / ** ^ exp log sigmoid tanh max), "
                        "or a built-in example name: " + ", ".join(g.EXAMPLES))
    parser.add_argument("--at", action="append", default=[], metavar="NAME=VALUE,...",
                        help="input values, e.g. x=-2,y=5,z=-4 (repeatable; for an example they "
                        "replace its values)")
    parser.add_argument("--svg", metavar="FILE", help="write an SVG picture of the graph ('-': stdout, which "
                        "then holds only the picture; the tables go to stderr)")
    parser.add_argument("--dot", metavar="FILE", help="write Graphviz DOT text of the graph ('-': stdout, which "
                        "then holds only the DOT text; the tables go to stderr)")
    parser.add_argument("--expand-sigmoid", action="store_true",
                        help="build sigmoid(a) from elementary gates 1/(1+exp(-a)); for the "
                        "sigmoid-neuron example (which shows both forms) this picks the form written "
                        "to --svg/--dot")
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of tables")
    parser.set_defaults(handler=run)


_STDOUT = ("-", "/dev/stdout")


def _write(path: str, text: str) -> str:
    """Write a picture: '-' (or /dev/stdout) is stdout; an existing device or pipe is written in
    place, never replaced; a regular file is written atomically."""
    if path in _STDOUT:
        sys.stdout.write(text)
        return ""
    try:
        if os.path.exists(path) and not os.path.isfile(path):
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            return f"wrote {path}"
        return f"wrote {write_atomic(path, text)}"
    except OSError as exc:
        raise InputError(f"Cannot write the picture to {path!r}", expected="a writable file path",
                         received=f"{type(exc).__name__}: {exc.strerror or exc}",
                         fix="choose a path in a writable directory, or '-' for stdout") from None


def _stdout_owner(args: argparse.Namespace) -> str:
    """What stdout carries: "picture" (--svg - or --dot -), "json" or "report"; two of them at once
    is a conflict the user must resolve (stdout cannot hold both)."""
    pictures = [flag for flag, path in (("--svg", args.svg), ("--dot", args.dot)) if path in _STDOUT]
    if len(pictures) == 2 or (pictures and args.json):
        claims = pictures + (["--json"] if args.json else [])
        raise InputError(f"{' and '.join(claims)} both write to stdout",
                         expected="at most one of --svg -, --dot - and --json on stdout",
                         received=" ".join(f"{c} -" if c != "--json" else c for c in claims),
                         fix="write the other one to a file, e.g. --svg graph.svg")
    return "picture" if pictures else "json" if args.json else "report"


def _parse_at(items: list[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            name, sep, text = part.partition("=")
            name = name.strip()
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not sep or not name.isidentifier() or not math.isfinite(value):
                raise InputError(f"Cannot read the input value {part.strip()!r}",
                                 expected="NAME=NUMBER pairs separated by commas, e.g. x=-2,y=5,z=-4",
                                 received=repr(item), fix="write --at x=-2,y=5,z=-4")
            values[name] = value
    return values


def _num(v: float) -> str:
    return "undefined" if not math.isfinite(v) else f"{v + 0.0:.6g}"


def _rows(result: g.GraphResult) -> list[list[str]]:
    rows = []
    for r in sorted(result.rows, key=lambda r: (r.stage, r.id)):
        names = [result.rows[i].label for i in r.inputs]
        local = ", ".join(f"{n}: {_num(v)}" for n, v in zip(names, r.local))
        upstream = " + ".join(_num(u) for u in r.upstream)
        rows.append([str(r.stage), r.label, r.text, _num(r.value), local, upstream, _num(r.grad)])
    return rows


def _text_report(title: str, result: g.GraphResult, check: g.SympyCheck | None, skipped: str) -> str:
    values = ", ".join(f"{k} = {_num(v)}" for k, v in result.values.items())
    lines = [f"{title}: {result.graph.source}" + (f"   at {values}" if values else ""), ""]
    lines.append(table(["stage", "node", "operation", "value", "local gradients ∂node/∂input",
                        "upstream", "gradient ∂f/∂node"], _rows(result), align="rllrlrr"))
    lines.append("")
    grads = ", ".join(f"∂f/∂{k} = {_num(v)}" for k, v in result.gradients.items())
    lines.append(f"f = {_num(result.value)}" + (f";  {grads}" if grads else ""))
    for r in result.rows:
        if r.note:
            lines.append(f"note: node {r.label} ({r.text}): {r.note}")
    lines.append(check.summary() if check else f"SymPy check: skipped ({skipped})")
    return "\n".join(lines)


def _json_form(form: str, result: g.GraphResult, check: g.SympyCheck | None, skipped: str) -> dict:
    def num(v):
        return v if v is None or math.isfinite(v) else None

    return {
        "form": form,
        "expression": result.graph.source,
        "expand_sigmoid": result.graph.expand_sigmoid,
        "values": result.values,
        "f": result.value,
        "gradients": {k: num(v) for k, v in result.gradients.items()},
        "nodes": [
            {"id": r.id, "label": r.label, "op": r.op, "text": r.text, "inputs": list(r.inputs),
             "stage": r.stage, "value": num(r.value), "local": [num(v) for v in r.local],
             "upstream": [num(v) for v in r.upstream], "grad": num(r.grad),
             "downstream": [num(v) for v in r.downstream], "note": r.note}
            for r in result.rows
        ],
        "sympy_check": None if check is None else {
            "ok": check.ok, "rtol": check.rtol, "summary": check.summary(),
            "nodes": [{"label": c.label, "status": c.status, "exact_value": num(c.exact_value),
                       "exact_grad": num(c.exact_grad), "abs_error": num(c.abs_error),
                       "rel_error": num(c.rel_error), "ratio": num(c.ratio)} for c in check.nodes],
        },
        "sympy_check_skipped": skipped or None,
    }


def _same_numbers(a: g.GraphResult, b: g.GraphResult) -> tuple[bool, float]:
    """Do two forms of one function give the same f and input gradients (to float64 rounding)?"""
    pairs = [(a.value, b.value)] + [(a.gradients[k], b.gradients[k]) for k in a.gradients]
    worst = max(abs(x - y) for x, y in pairs)
    return all(math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-15) for x, y in pairs), worst


def run(args: argparse.Namespace) -> int:
    example = g.EXAMPLES.get(args.expr)
    values = dict(example.values) if example else {}
    values.update(_parse_at(args.at))
    expr = example.expression if example else args.expr
    if args.expr == "sigmoid-neuron":
        forms = [("single sigmoid gate, local gradient σ(1 − σ)", False),
                 ("expanded into elementary gates σ(a) = 1 / (1 + exp(-a))", True)]
    else:
        forms = [("expanded sigmoid" if args.expand_sigmoid else "graph", args.expand_sigmoid)]

    owner = _stdout_owner(args)
    results, reports, documents, ok = [], [], [], True
    for title, expand in forms:
        result = g.evaluate(g.parse(expr, expand_sigmoid=expand), values)
        check, skipped = _check(result)
        ok = ok and (check is None or check.ok)
        results.append(result)
        reports.append(_text_report(title, result, check, skipped))
        documents.append(_json_form("expanded" if expand else "single", result, check, skipped))

    same_line = ""
    if len(results) == 2:
        same, worst = _same_numbers(*results)
        ok = ok and same
        same_line = (f"Both forms give the same numbers: f and every ∂f/∂input agree (largest difference "
                     f"{worst:.2g})." if same else
                     f"The two forms DISAGREE: largest difference in f or a gradient {worst:.3g}.")

    # stdout holds one thing: the picture when it goes there (the tables then go to stderr), else
    # the JSON document or the tables
    report_stream = sys.stderr if owner == "picture" else sys.stdout
    if args.json:
        doc = {"schema": "gradverify.graph/1", "ok": ok, "graphs": documents}
        print(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False))
    else:
        print("\n\n".join(reports), file=report_stream)
        if same_line:
            print("\n" + same_line, file=report_stream)
    picked = next((r for r in results if r.graph.expand_sigmoid == args.expand_sigmoid), results[0])
    for path, render in ((args.svg, g.to_svg), (args.dot, g.to_dot)):
        if path:
            note = _write(path, render(picked))
            if note:
                print(note, file=sys.stdout if owner == "report" else sys.stderr)
    return 0 if ok else 1


def _check(result: g.GraphResult) -> tuple[g.SympyCheck | None, str]:
    """The SymPy check, or None and why it was skipped (too many nodes, or too deep for SymPy)."""
    if len(result.rows) > _CHECK_LIMIT:
        return None, f"{len(result.rows)} nodes; the check is for lecture-sized graphs up to {_CHECK_LIMIT}"
    try:
        return g.check_with_sympy(result, time_limit=_CHECK_SECONDS), ""
    except InputError as exc:  # deeper than SymPy's recursion allows on this interpreter
        return None, exc.what

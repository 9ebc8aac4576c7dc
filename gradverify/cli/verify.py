"""``gradverify verify``: every gradient source on one problem, per parameter, with a verdict."""

from __future__ import annotations

import json

import numpy as np

from gradverify.cli._common import Progress, table
from gradverify.cli._problem import add_candidate_options, add_problem_options, candidate_from_args, problem_from_args, profile_from_args
from gradverify.compare import SOURCE_NAMES, Comparison, compare
from gradverify.errors import InputError
from gradverify.params import scalar_names

HELP = "compare the exact, backprop and finite-difference gradients (and your candidate) on one problem"


def register(sub) -> None:
    p = sub.add_parser("verify", help=HELP, description=HELP + ". With no arguments: the lecture's debug network 3-5-3, m = 5, λ = 3. "
                       "Exit code 0 = all agree, 1 = a discrepancy, 2 = bad usage or input.")
    add_problem_options(p)
    add_candidate_options(p)
    p.add_argument("--sources", default=",".join(SOURCE_NAMES), help=f"which sources to run, comma-separated (default {','.join(SOURCE_NAMES)}); "
                   "with exact, the exact values are the referee")
    p.add_argument("--digits", type=int, default=30, help="significant digits of the exact evaluation (default 30, at least 20)")
    p.add_argument("--mode", choices=("auto", "full", "scalable"), default="auto", help="exact oracle mode (default auto: full when small)")
    p.add_argument("--fd-method", choices=("auto", "complex-step", "richardson", "central"), default="auto",
                   help="finite-difference estimator (default auto: complex step where the network is analytic, else central)")
    p.add_argument("--partial", metavar="NAME", help="also print the exact expression of one partial, e.g. b2[0] (SymPy's diff of the "
                   "whole cost; small networks and batches only), with its value")
    p.add_argument("--latex", action="store_true", help="print --partial as LaTeX instead of a pretty 2-D formula")
    p.add_argument("--rows", type=int, default=40, metavar="N", help="show at most N parameter rows, worst first when cut (default 40)")
    p.add_argument("--json", action="store_true", help="print a machine-readable result on stdout instead of the table")
    p.add_argument("--report", metavar="DIR", nargs="?", const="", default=None,
                   help="also write report.json, report.md and report.html (default DIR: reports/verify-<spec>)")
    p.set_defaults(handler=run)


def _sources(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InputError("--sources names no source", expected="a comma-separated subset of " + ", ".join(SOURCE_NAMES), received=repr(text))
    return names  # unknown names are refused by compare.gather, before anything is computed


def run(args) -> int:
    problem, is_default = problem_from_args(args)
    sources = _sources(args.sources)
    if args.digits < 20:
        raise InputError("--digits is too low for an exact referee", expected="at least 20 significant digits", received=str(args.digits))
    if args.partial and args.partial not in scalar_names(problem.network):
        names = scalar_names(problem.network)
        raise InputError(f"--partial {args.partial!r} is not a parameter of {problem.network.compact}",
                         expected=f"a scalar name such as {names[0]!r} or {names[-1]!r}", received=repr(args.partial),
                         fix="indices are 0-based; weights are Wk[row,col] with Wk of shape (n_k, n_k-1)")
    cand = candidate_from_args(args, *profile_from_args(args))
    candidates = {cand.label: cand.fn} if cand else None
    bars: dict[str, Progress] = {}

    def progress(source: str, done: int, total: int) -> None:
        bar = bars.setdefault(source, Progress(f"{source:>8}"))
        bar(done, total)
        if done >= total:
            bar.close()

    options = {"exact": {"digits": args.digits, "mode": args.mode}, "numeric": {"method": args.fd_method}}
    comp = compare(problem, sources, candidates=candidates, progress=progress, options=options)
    for bar in bars.values():
        bar.close()
    if args.json:
        doc = comp.to_dict()
        doc["sources_run"] = list(comp.sources)
        print(json.dumps(doc, indent=1, default=_json_default))
    else:
        print(render(comp, rows=args.rows, is_default=is_default))
    if args.partial:
        print("\n" + _partial(problem, args.partial, latex=args.latex, comp=comp))
    if args.report is not None:
        from gradverify.cli.report import write_comparison_report

        paths = write_comparison_report(comp, args.report, command=args.command_line)
        if not args.json:
            print("report: " + ", ".join(str(p) for p in paths))
    return 0 if comp.verdict == "pass" else 1


def _partial(problem, name: str, *, latex: bool, comp: Comparison) -> str:
    """The exact ∂J/∂name as a formula over the parameters (data entered as exact rationals)."""
    import sympy

    from gradverify.symbolic import partial_expression

    expr = partial_expression(problem, name)
    text = sympy.latex(expr) if latex else sympy.pretty(expr, use_unicode=True)
    if len(text) > 20_000:
        text = text[:20_000] + f"\n… ({len(text):,} characters; fewer examples (-m 1) or a smaller network give a readable formula)"
    value = ""
    if name in comp.names and "exact" in comp.sources:
        value = f" = {comp.sources['exact'].grad[comp.names.index(name)]:.15g} at these parameters"
    return f"∂J/∂{name} (SymPy's derivative of the whole cost; the data are exact rationals){value}:\n{text}"


def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _fmt(x: float) -> str:
    return f"{x: .12e}" if x != 0 else " 0"


def render(comp: Comparison, *, rows: int = 40, is_default: bool = False) -> str:
    """The terminal table: problem, sources, per-parameter values and ratios, verdict."""
    p = comp.problem
    lines = [f"network  {p.network.describe()}", f"problem  m = {p.m}" + (f", {p.origin}" if p.origin else "")
             + ("  (the built-in example: the lecture's debug network)" if is_default else "")]
    for name, s in comp.sources.items():
        lines.append(f"source   {name:<9} {s.detail} ({s.seconds * 1e3:.1f} ms)")
    if comp.referee == "exact":
        lines.append("referee  exact; ratio = |source − exact| / budget, ≤ 1 passes (budget: the source's own error bound, see README)")
    else:
        lines.append("referee  none (no exact source): sources compared pairwise")
    judged = list(comp.verdicts)
    header = ["parameter", *comp.sources, *[f"{n} rel.err" for n in judged], *[f"{n} ratio" for n in judged]]
    n = len(comp.names)
    worst = np.max(np.stack([np.where(v.status == "kink", 0, v.ratio) for v in comp.verdicts.values()]), axis=0) if judged else np.zeros(n)
    order = np.arange(n) if n <= rows else np.sort(np.argsort(-worst, kind="stable")[:rows])
    body = []
    for i in order:
        row = [comp.names[i], *[_fmt(s.grad[i]) for s in comp.sources.values()]]
        row += [f"{comp.verdicts[j].rel_err[i]:.1e}" for j in judged]
        row += [("kink" if comp.verdicts[j].status[i] == "kink" else f"{comp.verdicts[j].ratio[i]:.2g}") + ("  <-- off" if comp.verdicts[j].status[i] == "off" else "")
                for j in judged]
        body.append(row)
    costs = [s.cost for s in comp.sources.values()]
    if any(c is not None for c in costs):
        cost_row = ["cost J", *[(_fmt(c) if c is not None else "—") for c in costs]]
        cost_row += [f"{v.cost_abs_err:.1e}" if v.cost_abs_err is not None else "—" for v in comp.verdicts.values()]
        cost_row += [("ok" if v.cost_ok else "off") if v.cost_ok is not None else "—" for v in comp.verdicts.values()]
        body.append(cost_row)
    lines += ["", table(header, body, align="l")]
    if n > rows:
        lines.append(f"… {n - rows} more parameters not shown (the {rows} worst are; --rows N shows more, --json all)")
    lines.append("")
    for name, ds in comp.diagnoses.items():
        for d in ds[:3]:
            lines.append(f"diagnosis ({name}, confidence {d.confidence:.2f}): {d.message}")
    for note in comp.notes:
        lines.append(f"note: {note}")
    lines.append(comp.summary())
    return "\n".join(lines)

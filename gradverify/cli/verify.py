"""``gradverify verify``: every gradient source on one problem, per parameter, with a verdict.

The run is sized before anything is allocated (``sizing``): a run over the machine's memory is
refused with what to use instead, and a long one says how long it will take and reports
progress. The candidate runs in its own process (``candidate_process``); what it prints is shown
apart on stderr, never mixed into the table or the JSON.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from gradverify.cli._args import DIGITS, integer, out_dir, out_file
from gradverify.cli._common import Heartbeat, Progress, emit, findings, fitted_table, json_default, terminal_width
from gradverify.cli._problem import (add_candidate_options, add_problem_options, candidate_for, problem_from_args,
                                     profile_from_args)
from gradverify.compare import SOURCE_NAMES, Comparison, compare
from gradverify.errors import InputError
from gradverify.params import scalar_names

HELP = "compare the exact, backprop and finite-difference gradients (and your candidate) on one problem"


def _source_list(text: str) -> list[str]:
    import argparse

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SOURCE_NAMES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(InputError(
            "--sources names no source" if not names else f"Unknown gradient source(s): {', '.join(unknown)}",
            expected="a comma-separated subset of " + ", ".join(SOURCE_NAMES), received=repr(text),
            fix="pick from exact, backprop, numeric, e.g. --sources backprop,numeric").args[0])
    return list(dict.fromkeys(names))


def register(sub) -> None:
    p = sub.add_parser("verify", help=HELP, description=HELP + ". With no arguments: the lecture's debug network 3-5-3, m = 5, λ = 3. "
                       "Exit code 0 = all agree, 1 = a discrepancy (or a candidate that failed), 2 = bad usage or input, "
                       "3 = an internal error.")
    add_problem_options(p)
    add_candidate_options(p)
    p.add_argument("--precision", choices=("float64", "float32"), default="float64",
                   help="the precision your candidate computes in, which sets its error budget (default float64)")
    p.add_argument("--sources", type=_source_list, default=list(SOURCE_NAMES),
                   help=f"which sources to run, comma-separated (default {','.join(SOURCE_NAMES)}); with exact, the exact values are the referee")
    p.add_argument("--digits", type=integer("--digits", lo=DIGITS[0], hi=DIGITS[1], fix="30 (the default) is far beyond float64's 16 digits"),
                   default=30,
                   help=f"significant digits of the exact evaluation, {DIGITS[0]} to {DIGITS[1]:,} (default 30)")
    p.add_argument("--mode", choices=("auto", "full", "scalable", "batched"), default="auto",
                   help="exact oracle mode (default auto: full when small, else batched)")
    p.add_argument("--fd", choices=("auto", "full", "sample"), default="auto",
                   help="finite differences of every partial (full) or of a random sample of them with the whole gradient "
                   "checked by signed random probes (sample); auto: full unless that would take long (default)")
    p.add_argument("--fd-sample", type=integer("--fd-sample", lo=1), default=None, metavar="N",
                   help="how many partials --fd sample computes (default: what fits in about 10 s)")
    p.add_argument("--fd-method", choices=("auto", "complex-step", "richardson", "central"), default="auto",
                   help="finite-difference estimator (default auto: complex step where the network is analytic, else central)")
    p.add_argument("--partial", metavar="NAME", help="also print the exact expression of one partial, e.g. b2[0] (SymPy's diff of the "
                   "whole cost; small networks and batches only), with its value")
    p.add_argument("--latex", action="store_true", help="print --partial as LaTeX instead of a pretty 2-D formula")
    p.add_argument("--rows", type=integer("--rows", lo=1), default=40, metavar="N",
                   help="show at most N parameter rows, worst first when cut (default 40)")
    p.add_argument("--wide", action="store_true", help="show every column even when the table is wider than the terminal")
    p.add_argument("--json", metavar="FILE", nargs="?", const="-", default=None, type=out_file("--json"),
                   help="the machine-readable result: on stdout instead of the table (--json or --json -), or into FILE")
    p.add_argument("--values", metavar="FILE.npz", type=out_file("--values", dash=False),
                   help="write every per-parameter value, budget, ratio and status to a compressed .npz (the JSON and "
                   "the report list them in full only for small problems)")
    p.add_argument("--report", metavar="DIR", nargs="?", const="", default=None, type=out_dir("--report"),
                   help="also write report.json, report.md and report.html (default DIR: reports/verify-<spec>)")
    p.set_defaults(handler=run)


def _check_option_combinations(args) -> None:
    if args.candidate is None:
        given = [o for o, v in (("--profile", args.profile != "native"), ("--set", bool(args.settings)), ("--timeout", args.timeout is not None),
                                ("--precision", args.precision != "float64")) if v]
        if given:
            raise InputError(f"{', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} only to a --candidate", expected="--candidate FILE.py:FUNCTION with them",
                             received=" ".join(given) + " without --candidate", fix="add --candidate, or drop " + ", ".join(given))
    if "numeric" not in args.sources and (args.fd != "auto" or args.fd_sample is not None or args.fd_method != "auto"):
        raise InputError("--fd, --fd-sample and --fd-method choose how the numeric source runs, but it is not among --sources",
                         expected="numeric in --sources", received=",".join(args.sources), fix="add numeric to --sources or drop the --fd options")
    if args.fd_sample is not None and args.fd == "full":
        raise InputError("--fd-sample sets the size of a sample, but --fd full computes every partial", expected="--fd sample (or auto) with --fd-sample",
                         received="--fd full --fd-sample", fix="drop one of them")
    if args.latex and not args.partial:
        raise InputError("--latex formats --partial, which is not given", expected="--partial NAME --latex", received="--latex alone",
                         fix="add --partial NAME")


def run(args) -> int:
    from gradverify import sizing

    _check_option_combinations(args)
    sources = args.sources
    profile, settings = profile_from_args(args)
    fd = "sample" if args.fd_sample is not None and args.fd == "auto" else args.fd
    sized: list = []

    def guard(net, m):
        est = sizing.estimate(net, m, sources, candidates=1 if args.candidate else 0, fd=fd, fd_method=args.fd_method,
                              fd_sample=args.fd_sample, digits=args.digits, exact_mode=args.mode)
        est.check()
        sized.append(est)
        if est.seconds > 15:
            print(f"gradverify verify: {est.describe()}", file=sys.stderr, flush=True)

    problem, is_default = problem_from_args(args, guard=guard)
    est = sized[0]
    if args.partial and args.partial not in scalar_names(problem.network):
        names = scalar_names(problem.network)
        raise InputError(f"--partial {args.partial!r} is not a parameter of {problem.network.compact}",
                         expected=f"a scalar name such as {names[0]!r} or {names[-1]!r}", received=repr(args.partial),
                         fix="indices are 0-based; weights are Wk[row,col] with Wk of shape (n_k, n_k-1)")
    bars: dict[str, Progress] = {}

    def progress(source: str, done: int, total: int) -> None:
        bar = bars.setdefault(source, Progress(f"{source:>8}", unit="partials" if source == "numeric" else "steps"))
        bar(done, total)
        if done >= total:
            bar.close()

    cand_bar = Progress("candidate", delay=2.0)
    timeout = args.timeout if args.timeout is not None else _default_timeout(est)
    cand = candidate_for(args, profile, settings, timeout=timeout, tick=cand_bar.tick)  # read and detected as `grade` does
    if cand:
        _show_reading(cand)
    options = {"exact": {"digits": args.digits, "mode": args.mode},
               "numeric": {"method": args.fd_method, "plan": est.fd}}
    try:
        with Heartbeat("verify", estimate=est.seconds if est.seconds > 5 else None):
            comp = compare(problem, sources, candidates={cand.label: cand.fn} if cand else None, progress=progress,
                           options=options, precision=args.precision)
            probes = _probes(comp)
    finally:
        for bar in (*bars.values(), cand_bar):
            bar.close()
        if cand:
            cand.close()
            _show_output(cand)
    ok = comp.verdict == "pass" and all(p.passed for p in probes.values())
    values_path = None
    if args.values:
        from gradverify.report.values import write_values

        values_path = write_values(comp, args.values)
    if args.json is not None:
        doc = _json_document(comp, probes, values_path)
        text = json.dumps(doc, indent=1, default=json_default, allow_nan=False)
        if args.json == "-":
            emit(text)
        else:
            from gradverify.cli._common import write_atomic

            write_atomic(args.json, text + "\n")
    if args.json != "-":
        emit(render(comp, rows=args.rows, is_default=is_default, width=None if args.wide else terminal_width(), probes=probes))
        if args.json:
            emit(f"json: {args.json}")
        if values_path:
            emit(f"values: {values_path}")
    if args.partial:
        emit("\n" + _partial(problem, args.partial, latex=args.latex, comp=comp))
    if args.report is not None:
        from gradverify.cli.report import write_comparison_report

        paths = write_comparison_report(comp, args.report, command=args.command_line, probes=probes,
                                        values_file=str(values_path) if values_path else None)
        (emit if args.json != "-" else lambda text: print(text, file=sys.stderr))("report: " + ", ".join(str(p) for p in paths))
    return 0 if ok else 1


def _default_timeout(est) -> float:
    """60 s, or more when the problem is big: 20 times what backprop is estimated to take."""
    from gradverify.candidate_process import DEFAULT_TIMEOUT

    backprop = est.costs.get("candidates")
    return max(DEFAULT_TIMEOUT, 20 * backprop.seconds) if backprop else DEFAULT_TIMEOUT


def _show_reading(cand) -> None:
    """How the candidate's file was read and called (what `grade` would tell its author), on stderr."""
    for line in (*cand.read_notes, cand.note):
        if line:
            print(f"candidate: {line}", file=sys.stderr, flush=True)


def _show_output(cand) -> None:
    """What the candidate printed, on stderr and apart from our output."""
    for out in cand.process.outputs:
        when = "while loading" if out.call == 0 else f"during call {out.call}"
        for stream, text in (("stdout", out.stdout), ("stderr", out.stderr)):
            if text:
                lines = text.rstrip("\n").splitlines()
                shown = lines[:40]
                print(f"--- the candidate {cand.label} printed ({stream}, {when}) ---", file=sys.stderr)
                print("\n".join(shown), file=sys.stderr)
                more = len(lines) - len(shown)
                if more or out.dropped:
                    print(f"--- … {more} more line(s)" + (f", {out.dropped:,} more characters" if out.dropped else "") + " ---", file=sys.stderr)
    if cand.process.outputs:
        print(f"--- end of what the candidate {cand.label} printed ---", file=sys.stderr, flush=True)


def _probes(comp: Comparison) -> dict:
    """When finite differences checked only a sample of the partials: signed random probes of every
    judged float64 source over all of them, with bisection to the entries that are wrong."""
    num = comp.sources.get("numeric")
    if num is None or num.checked is None:
        return {}
    from gradverify.sampling import probe_sources

    return probe_sources(comp)


def _json_document(comp: Comparison, probes: dict, values_path) -> dict:
    """The --json document: strict JSON (NaN and ±inf as the strings "NaN", "Infinity", as in report.json)."""
    from gradverify.report.document import jsonable
    from gradverify.report.values import proportional_section

    doc = proportional_section(comp, values_file=str(values_path) if values_path else None)
    doc["sources_run"] = list(comp.sources)
    if probes:
        doc["probes"] = {name: p.to_dict() for name, p in probes.items()}
        failed = [p for p in probes.values() if not p.passed]
        if failed and doc["verdict"] == "pass":
            doc["verdict"] = "fail"
            doc["summary"] = f"FAIL: {failed[0].source} fails the random probes of the whole gradient ({failed[0].describe()})."
    return jsonable(doc)


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


def _fmt(x: float) -> str:
    if x != x:
        return "—"  # not computed (a sampled source)
    return f"{x: .12e}" if x != 0 else " 0"


def _status_text(v, i: int) -> str:
    status = v.status[i]
    if status == "kink":
        return "kink"
    if status == "unchecked":
        return "—"
    return f"{v.ratio[i]:.2g}" + ("  <-- off" if status == "off" else "")


def render(comp: Comparison, *, rows: int = 40, is_default: bool = False, width: int | None = None, probes: dict | None = None) -> str:
    """The terminal table: problem, sources, per-parameter values and ratios, verdict.

    ``width``: the table drops its least important columns (relative errors first, then the
    values of the estimates) until it fits, and says which; None keeps them all.
    """
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
    estimates = {"backprop", "numeric"}
    priority = [3, *[2 if s not in estimates else 1 for s in comp.sources], *[0] * len(judged), *[3] * len(judged)]
    n = len(comp.names)
    if judged:
        ranked = [np.where(np.isin(v.status, ("kink", "unchecked")), 0, np.nan_to_num(v.ratio, nan=np.inf)) for v in comp.verdicts.values()]
        worst = np.max(np.stack(ranked), axis=0)
    else:
        worst = np.zeros(n)
    order = np.arange(n) if n <= rows else np.sort(np.argsort(-worst, kind="stable")[:rows])
    body = []
    for i in order:
        row = [comp.names[i], *[_fmt(s.grad[i]) for s in comp.sources.values()]]
        row += [("—" if comp.verdicts[j].status[i] == "unchecked" else f"{comp.verdicts[j].rel_err[i]:.1e}") for j in judged]
        row += [_status_text(comp.verdicts[j], i) for j in judged]
        body.append(row)
    costs = [s.cost for s in comp.sources.values()]
    if any(c is not None for c in costs):
        cost_row = ["cost J", *[(_fmt(c) if c is not None else "—") for c in costs]]
        cost_row += [f"{v.cost_abs_err:.1e}" if v.cost_abs_err is not None else "—" for v in comp.verdicts.values()]
        cost_row += [("ok" if v.cost_ok else "off") if v.cost_ok is not None else "—" for v in comp.verdicts.values()]
        body.append(cost_row)
    text, dropped = fitted_table(header, body, align="l", priority=priority, width=width)
    lines += ["", text]
    if dropped:
        lines.append(f"(hidden to fit {width} columns: {', '.join(dropped)}; --wide shows every column, --json every value)")
    if n > rows:
        lines.append(f"… {n - rows} more parameters not shown (the {rows} worst are; --rows N shows more, --json all)")
    lines.append("")
    lines += findings(comp)
    summary = comp.summary()
    for name, pr in (probes or {}).items():
        lines.append(f"probes   {name}: {pr.describe()}")
        if not pr.passed and summary.startswith("PASS"):
            summary = f"FAIL: {name} fails the random probes of the whole gradient ({pr.describe()}); the sampled partials alone agreed."
    lines.append(summary)
    return "\n".join(lines)

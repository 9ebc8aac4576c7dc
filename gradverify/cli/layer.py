"""``gradverify layer``: the exact, backprop and finite-difference partials of one CS231n-style layer.

    gradverify layer --list
    gradverify layer conv --shape N=2,C=3,H=8,W=8 --set stride=2 --seed 3
    gradverify layer batchnorm --candidate layers.py:batchnorm_backward_alt
    gradverify layer lstm_step --suite --examples 50

Exit codes as ``verify``: 0 = every source agrees, 1 = a discrepancy (or a candidate that crashed
or returned the wrong form), 2 = bad usage or input.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gradverify.cli._args import integer, number, out_dir, seed
from gradverify.cli._common import Heartbeat, Progress, findings, json_default, table
from gradverify.errors import CandidateError, InputError

HELP = "check one layer (affine, conv, batchnorm, lstm_step …): exact vs backprop vs finite differences, and your forward/backward pair"
_SOURCES = ("exact", "backprop", "numeric")


def register(sub) -> None:
    p = sub.add_parser("layer", help=HELP, description=HELP + ". J = Σ dout ⊙ out with a random upstream gradient dout (the loss itself "
                       "for loss layers); every partial of every input is compared. Exit code 0 = all agree, 1 = a discrepancy, 2 = bad input.")
    p.add_argument("name", nargs="?", metavar="NAME", help="the layer (gradverify layer --list shows the catalogue)")
    p.add_argument("--list", action="store_true", help="list the layers, their CS231n functions, dimensions and settings")
    p.add_argument("--shape", action="append", default=[], metavar="N=2,D=5", help="dimensions, e.g. N=2,C=3,H=8,W=8 (repeatable)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="a layer setting, e.g. stride=2, pad=0, mode=test, eps=1e-3, p=0.8 (repeatable)")
    p.add_argument("--seed", type=seed(), default=0, help="seed of the random inputs and upstream gradient (default 0)")
    p.add_argument("--scale", type=number("--scale", lo=0, lo_open=True, hi=1e6), default=1.0, help="standard deviation of the inputs (default 1; 10 or more saturates units)")
    p.add_argument("--integers", action="store_true", help="round the inputs to whole numbers: ReLU zeros, pooling ties and hinge margins "
                   "at 0 (the layers' kinks) become common")
    p.add_argument("--candidate", metavar="FILE.py[:FUNCTION]",
                   help="your layer functions (trusted code, run in-process): FUNCTION is the forward, the backward or the loss; "
                   "default the CS231n names of NAME (e.g. conv_forward_naive / conv_backward_naive)")
    p.add_argument("--sources", default=",".join(_SOURCES), help="which sources to run (default exact,backprop,numeric)")
    p.add_argument("--digits", type=integer("--digits", lo=20, hi=2000, fix="30 (the default) is far beyond float64's 16 digits"),
                   default=30, help="significant digits of the exact evaluation, 20 to 2,000 (default 30)")
    p.add_argument("--fd-method", choices=("auto", "complex-step", "central"), default="auto",
                   help="finite-difference estimator (default auto: complex step for analytic layers, else central)")
    p.add_argument("--rows", type=integer("--rows", lo=1), default=40, metavar="N", help="show at most N partials, worst first when cut (default 40)")
    p.add_argument("--json", action="store_true", help="print a machine-readable result instead of the table")
    p.add_argument("--report", metavar="DIR", nargs="?", const="", default=None, type=out_dir("--report"),
                   help="also write report.json, report.md and report.html (default DIR: reports/layer-NAME); with --suite, "
                   "of the smallest failing case")
    p.add_argument("--suite", action="store_true", help="instead of one case: Hypothesis-drawn shapes, settings and values, shrunk on failure")
    p.add_argument("--examples", type=integer("--examples", lo=1, hi=100_000), default=30, metavar="N", help="cases for --suite (default 30)")
    p.set_defaults(handler=run)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise InputError(f"Cannot read {what} {part!r}", expected="KEY=VALUE, e.g. N=2", received=part)
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def _catalogue() -> str:
    from gradverify.layers import LAYERS

    rows = []
    for spec in LAYERS.values():
        api = " / ".join(n for n in spec.api if n)
        dims = ",".join(f"{k}={v}" for k, v in spec.dims.items())
        sets = ", ".join(f"{k}={v}" for k, v in spec.settings.items() if v != "") or "—"
        rows.append([spec.name, api, dims, sets, spec.title])
    return table(["layer", "CS231n functions", "default shape", "settings", "what"], rows, align="lllll")


def load_candidate(text: str, layer: str):
    from gradverify.cli._problem import load_module
    from gradverify.layers import resolve_pair

    path_text, _, func = text.rpartition(":") if text.rpartition(":")[0].endswith(".py") else (text, "", "")
    namespace = load_module(Path(path_text))
    return resolve_pair(namespace, layer, func or None, label=Path(path_text).stem), text


def run(args) -> int:
    if args.list:
        print(_catalogue())
        return 0
    if not args.name:
        raise InputError("No layer given", expected="gradverify layer NAME (or --list)", fix="gradverify layer --list shows the catalogue")
    from gradverify.layers import get_layer

    spec = get_layer(args.name)
    dims, settings = _pairs(args.shape, "--shape"), _pairs(args.settings, "--set")
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    cand = load_candidate(args.candidate, spec.name) if args.candidate else None
    if args.suite:
        return run_suite_of_layer(args, spec.name, dims, settings, cand)
    from gradverify.layers import compare_layer, random_case

    case = random_case(spec, dims=dims, settings=settings, seed=args.seed, scale=args.scale, integers=args.integers)
    bars: dict[str, Progress] = {}

    def progress(source: str, done: int, total: int) -> None:
        bars.setdefault(source, Progress(f"{source:>8}"))(done, total)

    options = {"exact": {"digits": args.digits}, "numeric": {"method": args.fd_method}}
    try:
        with Heartbeat(f"layer {spec.name} ({sum(a.size for a in case.arrays.values()):,} scalars)"):  # a sign of life between passes
            comp = compare_layer(case, sources, candidates={cand[0].label: cand[0]} if cand else None, progress=progress,
                                 options=options)
    except CandidateError as exc:  # the candidate's failure: a failed check, not bad input
        print(f"FAIL: {exc}")
        return 1
    finally:
        for bar in bars.values():
            bar.close()
    if args.json:
        print(json.dumps(comp.to_dict(), indent=1, default=json_default))
    else:
        print(render(comp, rows=args.rows))
    if args.report is not None:
        paths = _write_report(comp, args, cand)
        if not args.json:
            print("report: " + ", ".join(str(p) for p in paths))
    return 0 if comp.verdict == "pass" else 1


def _write_report(comp, args, cand) -> list[Path]:
    """report.json/.md/.html of one comparison, under --report DIR (default reports/layer-NAME)."""
    from gradverify._io import write_atomic
    from gradverify.layers.report import layer_document, render_document
    from gradverify.layers.suite import reproduce_layer_command

    reproduce = reproduce_layer_command(comp.case) + (f" --candidate {cand[1]}" if cand else "")
    doc = layer_document(comp, command=args.command_line, reproduce=reproduce)
    out = Path(args.report or Path("reports") / f"layer-{comp.case.name}")
    texts = {f"report.{fmt}": render_document(doc, fmt) for fmt in ("json", "md", "html")}
    return [write_atomic(out / name, text) for name, text in texts.items()]


def run_suite_of_layer(args, layer: str, dims: dict, settings: dict, cand) -> int:
    from gradverify.layers import run_layer_suite

    if args.examples < 1:
        raise InputError("--examples must be at least 1", received=str(args.examples))
    bar = Progress("suite", delay=0.5)
    res = run_layer_suite(layer, cand[0] if cand else None, examples=args.examples, seed=args.seed, dims=dims or None,
                          settings=settings or None, progress=bar)
    bar.close()
    what = f"candidate {cand[1]}" if cand else "gradverify's backprop and finite differences"
    print(f"suite    {layer}: {what} against the exact oracle; seed {args.seed}")
    print(f"tried    {len(res.records)} cases in {res.seconds:.1f} s")
    if res.records:
        worst = max(res.records, key=lambda r: (r.verdict != "pass", r.worst_ratio))
        print(f"worst    {worst.case} ({worst.verdict}, worst ratio {worst.worst_ratio:.2g})")
    print()
    if res.failure is not None:
        print("smallest failing case (shrunk):")
        print(render(res.failure, rows=20))
        print(f"\nreproduce: {res.reproduce}" + (f" --candidate {cand[1]}" if cand else ""))
    elif res.failure_error:
        print(f"FAIL: {res.failure_error}")
    else:
        print(f"PASS: all {len(res.records)} cases agree with the exact oracle.")
    if args.report is not None:
        if res.failure is not None:
            print("report (the smallest failing case): " + ", ".join(str(p) for p in _write_report(res.failure, args, cand)))
        else:
            print("report: none written (no failing case to report)")
    return 0 if res.ok else 1


def _fmt(x: float) -> str:
    return f"{x: .12e}" if x != 0 else " 0"


def render(comp, *, rows: int = 40) -> str:
    """The terminal table: case, sources, per-partial values and ratios, diagnoses, verdict."""
    case = comp.case
    lines = [f"layer    {case.describe()}", f"case     {case.origin}; J = " + ("the loss" if case.layer.is_loss else
             " + ".join(f"Σ {case.layer.upstream_name(o)} ⊙ {o}" for o in case.layer.outputs))]
    for name, s in comp.sources.items():
        lines.append(f"source   {name:<9} {s.detail} ({s.seconds * 1e3:.1f} ms)")
    lines.append("referee  exact; ratio = |source − exact| / budget, ≤ 1 passes" if comp.referee == "exact"
                 else "referee  none (no exact source): sources compared pairwise")
    judged = list(comp.verdicts)
    n = len(comp.names)
    worst = np.max(np.stack([np.where(v.status == "kink", 0, v.ratio) for v in comp.verdicts.values()]), axis=0) if judged else np.zeros(n)
    order = np.arange(n) if n <= rows else np.sort(np.argsort(-worst, kind="stable")[:rows])
    body = []
    for i in order:
        row = [comp.names[i], *[_fmt(s.grad[i]) for s in comp.sources.values()]]
        row += [f"{comp.verdicts[j].rel_err[i]:.1e}" for j in judged]
        row += [("kink" if comp.verdicts[j].status[i] == "kink" else f"{comp.verdicts[j].ratio[i]:.2g}")
                + ("  <-- off" if comp.verdicts[j].status[i] == "off" else "") for j in judged]
        body.append(row)
    if any(s.cost is not None for s in comp.sources.values()):
        row = ["J", *[(_fmt(s.cost) if s.cost is not None else "—") for s in comp.sources.values()]]
        row += [f"{v.cost_abs_err:.1e}" if v.cost_abs_err is not None else "—" for v in comp.verdicts.values()]
        row += [("ok" if v.cost_ok else "off") if v.cost_ok is not None else "—" for v in comp.verdicts.values()]
        body.append(row)
    header = ["partial", *comp.sources, *[f"{j} rel.err" for j in judged], *[f"{j} ratio" for j in judged]]
    lines += ["", table(header, body, align="l")]
    if n > rows:
        lines.append(f"… {n - rows} more partials not shown (the {rows} worst are; --rows N shows more, --json all)")
    lines.append("")
    lines += findings(comp)
    lines.append(comp.summary())
    return "\n".join(lines)

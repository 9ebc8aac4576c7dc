"""``gradverify suite``: the three-way check over random architectures, or a user's candidate.

The family drawn from can be narrowed (activations, outputs, regularization convention, bias
regularization, saturation, sizes) so that an engine that implements only the lecture's network
is not failed for what it never claimed to do. A candidate runs in its own process, as in verify.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from gradverify.cli._args import integer, out_dir, seed
from gradverify.cli._cluster import add_scheduler_option, open_cluster
from gradverify.cli._common import Progress, emit, table, terminal_width
from gradverify.cli._problem import add_candidate_options, candidate_for, profile_from_args
from gradverify.cli.verify import _show_output, render
from gradverify.errors import InputError
from gradverify.spec import ACTIVATIONS, OUTPUTS, REGULARIZATIONS, TEXTBOOK_LIMIT
from gradverify.suite import reproduce_command, run_suite

HELP = "check over random architectures (Hypothesis), shrinking any failure to the smallest network"


def _names(option: str, allowed) -> callable:
    allowed = tuple(allowed)

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
        bad = [n for n in names if n not in allowed]
        if not names or bad:
            raise argparse.ArgumentTypeError(InputError(
                f"{option} names {'nothing' if not names else 'unknown ' + ', '.join(bad)}", expected="a comma-separated subset of " + ", ".join(allowed),
                received=repr(text), fix=f"e.g. {option} {allowed[0]}").args[0])
        return names

    parse.__name__ = "names"
    return parse


def register(sub) -> None:
    p = sub.add_parser("suite", help=HELP, description=HELP + ". Without --candidate it checks gradverify's own backprop and "
                       "finite differences against the exact oracle. Narrow the family with --lecture or the options below. "
                       "Exit code 0 = all agree, 1 = a failure, 2 = bad usage, 3 = an internal error.")
    add_candidate_options(p, timeout_help="(default 10)")
    p.add_argument("--examples", type=integer("--examples", lo=1, hi=100_000), default=100, metavar="N", help="architectures to try (default 100)")
    p.add_argument("--seed", type=seed(), default=0, help="Hypothesis seed: the same seed draws the same cases (default 0)")
    family = p.add_argument_group("the family drawn from (default: everything gradverify knows)")
    family.add_argument("--lecture", action="store_true", help="only the lecture's network: sigmoid units and outputs, cross-entropy, "
                        "λ/(2m)·ΣW², biases not regularized (the options below still narrow it)")
    family.add_argument("--activations", type=_names("--activations", ACTIVATIONS), default=None, metavar="A,B",
                        help=f"hidden activations to draw from: {', '.join(ACTIVATIONS)}")
    family.add_argument("--outputs", type=_names("--outputs", OUTPUTS), default=None, metavar="A,B",
                        help=f"output units (and losses): {', '.join(OUTPUTS)}")
    family.add_argument("--reg", type=_names("--reg", REGULARIZATIONS), default=None, metavar="R,S",
                        help=f"regularization conventions: {', '.join(REGULARIZATIONS)}")
    family.add_argument("--reg-bias", choices=("yes", "no", "both"), default=None, help="biases regularized: yes, no or both (default both)")
    sat = family.add_mutually_exclusive_group()
    sat.add_argument("--saturating", dest="saturation", action="store_const", const=True, default=None,
                     help="also draw units saturated past where the textbook cost overflows (default for gradverify's own sources; "
                          "grade --saturating is the same)")
    sat.add_argument("--no-saturation", dest="saturation", action="store_const", const=False,
                     help=f"keep every pre-activation within ±{TEXTBOOK_LIMIT:g}, where the textbook cost is finite "
                          "(default for a --candidate, as in grade)")
    family.add_argument("--max-params", type=integer("--max-params", lo=2, hi=5000), default=60, metavar="P",
                        help="largest network drawn, in parameters (default 60)")
    family.add_argument("--max-depth", type=integer("--max-depth", lo=1, hi=10), default=3, metavar="L", help="most weight layers (default 3)")
    family.add_argument("--max-width", type=integer("--max-width", lo=1, hi=100), default=5, metavar="N", help="widest layer (default 5)")
    family.add_argument("--max-m", type=integer("--max-m", lo=1, hi=1000), default=6, metavar="M", help="largest batch (default 6)")
    p.add_argument("--report", metavar="DIR", nargs="?", const="", default=None, type=out_dir("--report"),
                   help="also write report.json/md/html (default reports/suite-seed<seed>)")
    p.add_argument("--layer", metavar="NAME", help="instead: the suite of one layer of the catalogue (the same as "
                   "gradverify layer NAME --suite; with --candidate FILE.py[:FUNCTION], your layer functions)")
    add_scheduler_option(p, "the cases")
    p.set_defaults(handler=run)


def family_from_args(args):
    """The ``strategies.Family`` the options describe (validated there)."""
    from gradverify.strategies import Family, InvalidArgument

    base = Family.lecture() if args.lecture else Family()
    changes = {"saturating": args.saturation, "max_params": args.max_params, "max_depth": args.max_depth,
               "max_width": args.max_width, "max_m": args.max_m}
    for key, value in (("activations", args.activations), ("outputs", args.outputs), ("regularizations", args.reg)):
        if value is not None:
            changes[key] = value
    if args.reg_bias is not None:
        changes["reg_bias"] = {"yes": True, "no": False, "both": None}[args.reg_bias]
    try:
        return Family(**{**base.__dict__, **changes})
    except InvalidArgument as exc:
        raise InputError("These family options cannot draw any network", received=str(exc), fix="widen the options") from None


def _layer_suite(args) -> int:
    """``suite --layer NAME``: the layer catalogue's suite (``gradverify layer NAME --suite``)."""
    from gradverify.cli.layer import load_candidate, run_suite_of_layer
    from gradverify.layers import get_layer

    if args.profile != "native" or args.settings or getattr(args, "scheduler", None):
        raise InputError("--layer draws the layer's own cases", expected="--layer NAME with --examples, --seed, --candidate, --report",
                         received="--profile, --set or --scheduler as well", fix="drop them, or drop --layer")
    spec = get_layer(args.layer)
    cand = load_candidate(args.candidate[2], spec.name) if args.candidate is not None else None
    return run_suite_of_layer(args, spec.name, {}, {}, cand)


def run(args) -> int:
    if args.layer is not None:
        return _layer_suite(args)
    if args.candidate is None and (args.profile != "native" or args.settings or args.timeout is not None):
        raise InputError("--profile, --set and --timeout apply only to a --candidate", expected="--candidate FILE.py:FUNCTION with them",
                         received="no --candidate", fix="add --candidate, or drop them")
    family = family_from_args(args)
    profile, settings = profile_from_args(args)
    bar = Progress("suite", delay=0.5, unit="cases")
    cand = candidate_for(args, profile, settings, timeout=args.timeout if args.timeout is not None else 10.0)  # as `grade` reads it
    if cand:
        settings = {k: v for k, v in cand.settings.items() if k != "target"}  # the detected form and conventions
        for line in (*cand.read_notes, cand.note):
            if line:
                print(f"candidate: {line}", file=sys.stderr, flush=True)
    label = cand.text if cand else None
    try:
        with open_cluster(args) as cluster:
            candidate = cand.fn if cand else None
            if cluster is not None and cand is not None:  # the candidate travels to the workers as its source
                from gradverify.suite_remote import FileCandidate

                path, target, _ = args.candidate
                candidate = FileCandidate(str(path), target, profile, settings)
            res = run_suite(candidate, profile=profile, settings_=settings, examples=args.examples, seed=args.seed,
                            family=family, progress=bar, cluster=cluster)
    finally:
        bar.close()
        if cand:
            cand.close()
            _show_output(cand)
    what = f"candidate {label} ({profile.name} profile)" if label else "gradverify's backprop and finite differences"
    emit(f"suite    {what} against the exact oracle; seed {args.seed}")
    emit(f"family   {res.family}")
    emit(f"tried    {len(res.records)} architectures in {res.seconds:.1f} s ({res.per_second:.0f} per second, shrinking included)")
    recs = res.records
    if recs:
        by_spec: dict[str, list] = {}
        for r in recs:
            by_spec.setdefault(f"{r.spec}", []).append(r)
        rows = []
        for spec, rs in sorted(by_spec.items(), key=lambda kv: (-sum(r.verdict != "pass" for r in kv[1]), kv[0]))[:15]:
            ratios = [r.worst_ratio for r in rs if np.isfinite(r.worst_ratio)]
            rows.append([spec, rs[0].n_params, len(rs), sum(r.verdict != "pass" for r in rs), f"{max(ratios):.2g}" if ratios else "—"])
        emit()
        emit(table(["network", "params", "cases", "failed", "worst ratio"], rows, align="l"))
        if len(by_spec) > 15:
            emit(f"… {len(by_spec) - 15} more architectures")
    emit()
    if res.failure is not None:
        p = res.failure.problem
        emit("smallest failing case (shrunk):" if res.shrunk else "failing case (one of the extremes judged after the search):")
        emit(render(res.failure, rows=20, width=terminal_width()))
        emit(f"\nreproduce: {reproduce_command(p, candidate=label, profile=profile.name, settings=settings)}")
        emit("rerun the suite: " + args.command_line)
    elif res.failure_error:
        emit(f"FAIL: {res.failure_error}")
        if res.minimal is not None and res.minimal.origin.rebuildable:
            emit(f"reproduce: {reproduce_command(res.minimal, candidate=label, profile=profile.name, settings=settings)}")
    else:
        emit(f"PASS: all {len(recs)} architectures agree with the exact oracle.")
    if args.report is not None:
        from gradverify.cli.report import write_suite_report

        paths = write_suite_report(res, args.report, command=args.command_line)
        emit("report: " + ", ".join(str(p) for p in paths))
    return 0 if res.ok else 1

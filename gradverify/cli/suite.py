"""``gradverify suite``: the three-way check over random architectures, or a user's candidate."""

from __future__ import annotations


import numpy as np

from gradverify.cli._cluster import add_scheduler_option, open_cluster
from gradverify.cli._common import Progress, table
from gradverify.cli._problem import candidate_from_args, profile_from_args
from gradverify.cli.verify import render
from gradverify.errors import InputError
from gradverify.suite import reproduce_command, run_suite

HELP = "check over random architectures (Hypothesis), shrinking any failure to the smallest network"


def register(sub) -> None:
    p = sub.add_parser("suite", help=HELP, description=HELP + ". Without --candidate it checks gradverify's own backprop and "
                       "finite differences against the exact oracle. Exit code 0 = all agree, 1 = a failure, 2 = bad usage.")
    p.add_argument("--candidate", metavar="FILE.py:FUNCTION", help="your gradient function (trusted code), called as --profile says")
    p.add_argument("--profile", default="native", help="native (f(network, params, X, Y) -> (J, grads)), ex4, layers, two-layer-relu, or a .toml file")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE", help="profile setting (repeatable)")
    p.add_argument("--examples", type=int, default=100, metavar="N", help="architectures to try (default 100)")
    p.add_argument("--seed", type=int, default=0, help="Hypothesis seed: the same seed draws the same cases (default 0)")
    p.add_argument("--max-params", type=int, default=60, metavar="P", help="largest network drawn, in parameters (default 60)")
    p.add_argument("--no-saturation", action="store_true", help="leave out parameter scales that saturate units")
    p.add_argument("--report", metavar="DIR", nargs="?", const="", default=None, help="also write report.json/md/html (default reports/suite)")
    add_scheduler_option(p, "the cases")
    p.set_defaults(handler=run)


def run(args) -> int:
    if args.examples < 1 or args.max_params < 2:
        raise InputError("--examples and --max-params must be positive", received=f"--examples {args.examples}, --max-params {args.max_params}")
    profile, settings = profile_from_args(args)
    cand = candidate_from_args(args, profile, settings)
    candidate, label = (cand.fn, cand.text) if cand else (None, None)
    with open_cluster(args) as cluster:
        if cluster is not None and cand is not None:  # the candidate travels to the workers as its source
            from gradverify.suite_remote import FileCandidate

            path, _, target = args.candidate.rpartition(":")
            candidate = FileCandidate(path, target, profile, settings)
        bar = Progress("suite", delay=0.5)
        res = run_suite(candidate, profile=profile, settings_=settings, examples=args.examples, seed=args.seed,
                        max_params=args.max_params, saturating=not args.no_saturation, progress=bar, cluster=cluster)
        bar.close()
    what = f"candidate {label} ({profile.name} profile)" if label else "gradverify's backprop and finite differences"
    print(f"suite    {what} against the exact oracle; seed {args.seed}")
    print(f"tried    {len(res.records)} architectures in {res.seconds:.1f} s ({res.per_second:.0f} per second, shrinking included)")
    recs = res.records
    if recs:
        by_spec: dict[str, list] = {}
        for r in recs:
            by_spec.setdefault(f"{r.spec}", []).append(r)
        rows = []
        for spec, rs in sorted(by_spec.items(), key=lambda kv: (-sum(r.verdict != "pass" for r in kv[1]), kv[0]))[:15]:
            ratios = [r.worst_ratio for r in rs if np.isfinite(r.worst_ratio)]
            rows.append([spec, rs[0].n_params, len(rs), sum(r.verdict != "pass" for r in rs), f"{max(ratios):.2g}" if ratios else "—"])
        print()
        print(table(["network", "params", "cases", "failed", "worst ratio"], rows, align="l"))
        if len(by_spec) > 15:
            print(f"… {len(by_spec) - 15} more architectures")
    print()
    if res.failure is not None:
        p = res.failure.problem
        print("smallest failing case (shrunk):")
        print(render(res.failure, rows=20))
        print(f"\nreproduce: {reproduce_command(p, candidate=label, profile=profile.name, settings=settings)}")
        print("rerun the suite: " + args.command_line)
    elif res.failure_error:
        print(f"FAIL: {res.failure_error}")
    else:
        print(f"PASS: all {len(recs)} architectures agree with the exact oracle.")
    if args.report is not None:
        from gradverify.cli.report import write_suite_report

        paths = write_suite_report(res, args.report, command=args.command_line)
        print("report: " + ", ".join(str(p) for p in paths))
    return 0 if res.ok else 1

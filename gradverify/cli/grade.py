"""``gradverify grade``: grade student submissions in a sandbox, batch, resume, Gradescope output."""

from __future__ import annotations

from pathlib import Path

from gradverify.cli._args import integer, out_dir
from gradverify.cli._cluster import add_scheduler_option, open_cluster
from gradverify.cli._common import Progress, table
from gradverify.cli._problem import parse_settings
from gradverify.errors import InputError
from gradverify.profiles import LAYERS_API_NAME, PROFILES, get_profile

HELP = "grade untrusted student gradient code against the exact oracle (sandboxed)"


def register(sub) -> None:
    p = sub.add_parser("grade", help=HELP, description=HELP + ". Writes per-student feedback (Markdown, JSON), Gradescope "
                       "results.json and a gradebook CSV under --out; a rerun resumes where a crashed or killed run stopped "
                       "(and grades again what the grader failed on). Exit code 0 = every submission passed, 1 = some did not, "
                       "2 = bad usage (or another batch is grading into --out), 3 = the grader itself failed on some "
                       "submissions (listed; not the students' fault).")
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                   help="a .py or .ipynb file, a student's folder (several modules: the file defining the function is found), "
                        "or a class folder (each file and each subfolder is one submission)")
    p.add_argument("--assignment", required=True, metavar="PROFILE",
                   help=f"{', '.join(n for n in PROFILES if n != 'native')}, {LAYERS_API_NAME} (a layers.py of CS231n's "
                        "forward/backward pairs, one rubric item per layer), or a .toml profile")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="pin a profile setting, e.g. unroll_order=F, label_base=1, reg_scale=0.5, form=thetas, missing=zero (repeatable); "
                        "without it every convention is detected per submission")
    p.add_argument("--allow-package", dest="packages", action="append", default=[], metavar="NAME",
                   help="let submissions import this installed distribution too (repeatable); ex4 and two-layer-relu "
                        "already allow numpy, scipy, pandas, scikit-learn and matplotlib")
    p.add_argument("--out", default="graded", metavar="DIR", type=out_dir("--out"), help="output folder (default ./graded)")
    p.add_argument("--jobs", type=int, default=2, metavar="N", help="submissions graded in parallel (default 2)")
    p.add_argument("--examples", type=int, default=20, metavar="N",
                   help=f"generated cases per submission (per layer with {LAYERS_API_NAME}; default 20)")
    p.add_argument("--seed", type=integer("--seed", lo=0, hi=(1 << 63) - 1, fix="give the seed a gradebook.csv recorded, or any "
                   "non-negative integer"), default=None, metavar="N",  # 63 bits: the secret seeds a batch draws
                   help="the batch's seed, 0 to 2^63-1 (hidden variants, generated cases, the timing network); default: a fresh "
                        "secret one, reused when the same --out is resumed, and recorded for the instructor in gradebook.csv")
    p.add_argument("--entry", metavar="FILE.py", help="for submissions of several files: the module to import "
                   "(a folder holding it is one submission; its siblings are importable)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="wall-clock limit of one call of the student's function (default 10); the worker is killed after it")
    p.add_argument("--budget", type=float, default=120.0, metavar="SECONDS",
                   help="wall-clock time one submission may take in all its calls and restarts (default 120); calls after it "
                        "are refused and their checks fail")
    p.add_argument("--saturating", action="store_true", help="also generate saturated units (strict: the textbook log(σ) overflows there)")
    p.add_argument("--report", metavar="DIR", nargs="?", const="", default=None, type=out_dir("--report"),
                   help="also write a class report (default DIR: <out>/report) and, for every failing submission, "
                        "<out>/<name>/report/report.html with heatmaps of where its gradient is wrong")
    add_scheduler_option(p, "each submission as one task (instead of --jobs)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from gradverify.grading.batch import discover, grade_batch
    from gradverify.grading.text import one_line

    profile = get_profile(args.assignment)
    if profile.name == "native":
        raise InputError("The native profile passes Python objects and cannot cross the sandbox",
                         expected="--assignment ex4, layers, two-layer-relu or a .toml profile", received="native")
    if args.jobs < 1 or args.examples < 1 or not args.timeout > 0 or not args.budget > 0:
        raise InputError("--jobs and --examples must be at least 1, --timeout and --budget positive",
                         received=f"--jobs {args.jobs}, --examples {args.examples}, --timeout {args.timeout}, --budget {args.budget}")
    pinned = parse_settings(args.settings)
    settings = profile.resolve(pinned)
    subs = discover(args.submissions, entry=args.entry)
    from gradverify.grading.packages import resolve

    allowed = resolve((*profile.packages, *args.packages))
    from gradverify.grading.sandbox import detect_isolation

    with open_cluster(args) as cluster:
        print(f"grading  {len(subs)} submission(s) with the {profile.name} profile"
              + (f" ({', '.join(f'{k}={v}' for k, v in settings.items())})" if settings else ""), flush=True)
        # the sandbox runs where the grading runs: here, or on every worker of the cluster
        found = {"this machine": detect_isolation()} if cluster is None else cluster.run_everywhere(detect_isolation)
        for where, isolation in sorted(found.items(), key=lambda kv: str(kv[1])):
            print(f"sandbox  {isolation}" + (f" on {where}" if cluster is not None else ""), flush=True)
            for note in isolation.notes:
                print(f"         note: {note}", flush=True)
        print(f"imports  {allowed}" + ("" if pinned else "; conventions detected per submission"), flush=True)
        bar = Progress("grading", delay=0.0)
        resumed = []

        def progress(done, total, grade, was_done):
            if was_done:
                resumed.append(grade.submission)
            bar(done, total)

        grades = grade_batch(subs, profile, settings, args.out, jobs=args.jobs, examples=args.examples, seed=args.seed,
                             saturating=args.saturating, call_timeout=args.timeout, budget=args.budget,
                             report=args.report is not None, entry=args.entry, pinned=tuple(pinned), packages=tuple(args.packages),
                             progress=progress, cluster=cluster)
        bar.close()
    rows = [[g.submission, str(g.verdict), f"{g.score:g}/{g.max_score:g}", one_line(_headline(g), 90)] for g in grades]
    print()
    print(table(["submission", "verdict", "score", "diagnosis / first failed check"], rows, align="llrl"))
    if args.scheduler:  # each grade records the isolation of the sandbox that ran it, on whichever worker
        from collections import Counter

        print()
        for summary, n in Counter(g.isolation for g in grades if g.isolation).most_common():
            print(f"sandbox  {n} submission(s) graded under {summary}")
    n_pass = sum(g.verdict == "pass" for g in grades)
    out = Path(args.out)
    graded = sum(g.verdict != "grader-error" for g in grades)
    print(f"\n{len(subs)} submissions given, {graded} graded" + (f" ({len(grades) - graded} not: the grader failed)" if graded < len(grades) else "")
          + f"; {n_pass} of {len(grades)} passed" + (f"; {len(resumed)} already graded (resumed)" if resumed else "")
          + f". Feedback and Gradescope results.json under {out}/<submission>/, gradebook {out / 'gradebook.csv'} "
          "(with the batch's secret seed).")
    if args.report is not None:
        from gradverify.cli.report import write_batch_report

        paths = write_batch_report(grades, args.report or str(out / "report"), command=args.command_line)
        print("report: " + ", ".join(str(p) for p in paths))
    failed_us = [g.submission for g in grades if g.verdict == "grader-error"]
    if failed_us:
        print(f"\nthe grader itself failed on {len(failed_us)} submission(s): {', '.join(failed_us)} (not the students' "
              "fault; the incident is in gradebook.csv; a rerun grades them again)")
        return 3
    return 0 if n_pass == len(grades) else 1


def _headline(g) -> str:
    """The grader's one line on a submission: its diagnosis, else its first failed check (never the student's text)."""
    if g.verdict == "grader-error":
        return "grader error: " + g.incident
    if g.diagnosis:
        return g.diagnosis[0].message
    return next((c.message.splitlines()[0] for c in g.checks if not c.passed and c.message), "")

"""Grade one submission: every rubric check, scored, with feedback a student can act on.

The student's code runs only inside a ``Sandbox``; this module decides what to call (through the
assignment ``Profile``), what the right answer is (the exact oracle), and how to say what is wrong
(``diagnose``). Checks, in the order a student should read them:

1. ``loads``: the file imports and the function exists;
2. ``shapes``: what it returns has the profile's form, shapes and a numeric dtype;
3. ``cost`` and ``gradient_fixed``: against the exact values on the fixed cases (the classic debug
   network at λ = 0 and λ = 3);
4. ``gradient_random``: against the exact values on Hypothesis-generated cases (sizes, m, λ,
   saturating scales); the first failure is shrunk to the smallest failing case;
5. ``self_consistency``: the gradient against finite differences of the submission's *own* cost;
   a wrong gradient that agrees with a wrong cost passes the classic gradient check — here it
   still fails ``cost`` and ``gradient_*``, and the diagnosis says so;
6. ``determinism`` (the same output twice) and ``inputs_unmodified``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from gradverify.compare import candidate_source, float64_budget, gather, judge
from gradverify.diagnose import diagnose
from gradverify.finite_diff import numeric_gradient_of
from gradverify.grading.sandbox import CallResult, Limits, Sandbox
from gradverify.params import flatten, unflatten
from gradverify.profiles import Call, Profile, ResultError
from gradverify.spec import Problem
from gradverify.suite import reproduce_command, run_suite

__all__ = ["Check", "Grade", "grade_submission", "CHECK_TITLES"]

CHECK_TITLES = {
    "loads": "The submission loads and defines the function",
    "shapes": "The return value has the expected form and shapes",
    "cost": "Cost equals the exact value (fixed cases)",
    "gradient_fixed": "Gradient equals the exact gradient (fixed cases, incl. the classic debug network)",
    "gradient_random": "Gradient equals the exact gradient (generated networks, batch sizes, λ, parameter scales)",
    "self_consistency": "Gradient agrees with finite differences of your own cost",
    "determinism": "The same output twice",
    "inputs_unmodified": "The inputs are left unmodified",
}


@dataclass
class Check:
    """One rubric item: passed or not, points, and a message written for the student."""

    name: str
    passed: bool
    points: float
    max_points: float
    message: str

    @property
    def title(self) -> str:
        return CHECK_TITLES.get(self.name, self.name)


@dataclass
class Grade:
    """Everything graded for one submission (JSON-ready through ``to_dict``)."""

    submission: str
    path: str
    profile: str
    settings: dict
    verdict: str  # "pass" | "fail" | "error"
    score: float
    max_score: float
    checks: list[Check]
    diagnosis: list[dict] = field(default_factory=list)
    failing_case: dict | None = None
    isolation: str = ""
    stdout: str = ""
    seconds: float = 0.0
    slowest_call: float = 0.0  # seconds of the submission's slowest call (its run time, for the record)
    calls: int = 0
    fingerprint: str = ""
    report_doc: dict | None = None  # the failing case as a report document (grade --report), written apart

    def to_dict(self) -> dict:
        out = asdict(self)
        out["checks"] = [{**asdict(c), "title": c.title} for c in self.checks]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Grade:
        checks = [Check(c["name"], c["passed"], c["points"], c["max_points"], c["message"]) for c in data["checks"]]
        return cls(**{**{k: v for k, v in data.items() if k in cls.__dataclass_fields__}, "checks": checks})


class _StudentError(Exception):
    """A call that did not give a usable answer; the message is for the student."""


def _describe(res: CallResult, target: str) -> str:
    what = {
        "exception": f"{target} raised {res.error}",
        "target": f"cannot call {target}: {res.error}",
        "unsupported": f"{target} returned something that cannot be graded: {res.error}",
        "timeout": f"{target} did not finish in time (an infinite loop, or far too slow)",
        "cpu": f"{target} used up its CPU time",
        "memory": f"{target} ran out of memory",
        "crashed": f"the process running {target} died ({res.error})",
        "protocol": f"the process running {target} broke the grading protocol ({res.error})",
        "load": f"the submission did not load: {res.error}",
        "setup": f"the grader could not build its sandbox: {res.error} (not your fault; tell the instructor)",
    }.get(res.kind, f"{target}: {res.kind} {res.error}")
    tb = (res.traceback or "").strip()
    return what + (f"\n\n```\n{tb[-1500:]}\n```" if tb and res.kind == "exception" else "")


def _same(a, b) -> bool:
    """Structural equality of returned/sent values, NaN equal to NaN, exact for numbers."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a.astype(float)) & np.isnan(b.astype(float)))))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


class _Runner:
    """Calls the submission through the sandbox as the profile says, and reads the answers."""

    def __init__(self, sandbox: Sandbox, profile: Profile, settings: dict):
        self.sandbox, self.profile, self.settings = sandbox, profile, settings
        self.stdout: list[str] = []
        self.target = settings.get("target", profile.target)
        self.slowest, self.calls = 0.0, 0

    def raw(self, problem: Problem, *, return_args: bool = False) -> tuple[object, CallResult]:
        call = self.profile.call_for(problem, self.settings)
        res = self.sandbox.call(call.target, call.args, call.kwargs, attrs=call.attrs, return_args=return_args)
        self.calls += 1
        self.slowest = max(self.slowest, res.elapsed)
        if res.stdout:
            self.stdout.append(res.stdout)
        return call, res

    def answer(self, problem: Problem, res: CallResult) -> tuple[float, dict]:
        if not res.ok:
            raise _StudentError(_describe(res, self.target))
        try:
            return self.profile.read(problem, self.settings, res.value)
        except ResultError as exc:
            raise _StudentError(f"{self.target} returned the wrong form: {exc.detail}") from None

    def __call__(self, problem: Problem) -> tuple[float, dict]:
        return self.answer(problem, self.raw(problem)[1])


def _case_table(comp, label: str, limit: int = 8) -> list[dict]:
    v = comp.verdicts[label]
    bad = np.flatnonzero(v.status == "off")
    rows = []
    for i in bad[np.argsort(-v.ratio[bad])][:limit]:
        rows.append({"parameter": comp.names[i], "expected": float(comp.sources["exact"].grad[i]),
                     "yours": float(comp.sources[label].grad[i]), "abs_err": float(v.abs_err[i]), "ratio": float(v.ratio[i])})
    return rows


def _failing_case(comp, label: str, title: str) -> dict:
    p = comp.problem
    src = comp.sources[label]
    return {"title": title, "problem": repr(p), "network": p.network.compact, "m": p.m, "lambda": p.network.lam,
            "reproduce": reproduce_command(p), "cost_expected": comp.sources["exact"].cost, "cost_yours": src.cost,
            "n_off": comp.verdicts[label].n_off, "n_params": len(comp.names), "rows": _case_table(comp, label)}


def grade_submission(path: str | Path, profile: Profile, settings: dict, *, examples: int = 20, seed: int = 0,
                     limits: Limits = Limits(), entry: str | None = None, fingerprint: str = "",
                     saturating: bool = False, report: bool = False) -> Grade:
    """Grade one submission with every rubric check. Never raises for anything the student did.

    Args:
        path: the submission (a .py file, or a folder holding one).
        profile, settings: how to call it (``profile.resolve(...)`` gives the settings).
        examples: how many Hypothesis-generated cases to try (the first failure is shrunk).
        seed: the seed of those cases; every submission sees the same ones.
        limits: the sandbox's resource limits.
        saturating: also generate cases with saturated units (scales 30 and 100). Off by default:
            the textbook cost log(σ(a)) overflows there, and that is not what the assignment grades.
        report: also build a report document of the failing case (heatmaps of where it is wrong).
    """
    t0 = time.perf_counter()
    path = Path(path)
    rubric = profile.rubric
    checks: dict[str, Check] = {}

    def put(name: str, passed: bool, message: str) -> None:
        pts = rubric.get(name, 0.0)
        checks[name] = Check(name, passed, pts if passed else 0.0, pts, message)

    diagnosis: list[dict] = []
    failing: dict | None = None
    report_doc: dict | None = None
    with Sandbox(path, entry=entry, limits=limits) as sb:
        isolation = str(sb.isolation)
        run = _Runner(sb, profile, settings)
        load = sb.start()
        if not load.ok:
            put("loads", False, _describe(load, run.target))
            return _finish(path, profile, settings, checks, rubric, diagnosis, failing, isolation, run, t0, fingerprint, "error")

        # -- fixed cases: loads, shapes, cost, gradient, determinism, inputs ----------------
        fixed = profile.fixed_cases(settings)
        answers: list[tuple[Problem, float, dict]] = []
        first_call: Call | None = None
        first_res: CallResult | None = None
        for title, problem in fixed:
            call, res = run.raw(problem, return_args=True)
            if first_call is None:
                first_call, first_res = call, res
            if res.kind == "target":
                put("loads", False, _describe(res, run.target) + f"\nThe profile '{profile.name}' expects {profile.signature}.")
                return _finish(path, profile, settings, checks, rubric, diagnosis, failing, isolation, run, t0, fingerprint, "error")
            try:
                J, grads = run.answer(problem, res)
            except _StudentError as exc:
                put("loads", True, "loaded")
                put("shapes", False, f"On the {title}: {exc}\nExpected: {profile.signature}.")
                diagnosis = [{"kind": "shapes", "message": f"{exc}", "confidence": 1.0, "where": []}]
                return _finish(path, profile, settings, checks, rubric, diagnosis, failing, isolation, run, t0, fingerprint, "fail")
            answers.append((problem, J, grads))
        put("loads", True, "The submission loads and defines " + run.target + ".")
        put("shapes", True, "Every return value has the expected form and shapes.")

        cost_msgs, grad_msgs, comps = [], [], []
        for (title, problem), (_, J, grads) in zip(fixed, answers):
            exact = gather(problem, ("exact",))
            cand = candidate_source("yours", lambda _p, J=J, grads=grads: (J, grads), problem)
            comp = judge(problem, {**exact, "yours": cand}, diagnose=False)
            comps.append((title, comp))
            v = comp.verdicts["yours"]
            if v.cost_ok is False:
                cost_msgs.append(f"{title}: your cost {J:.10g}, expected {exact['exact'].cost:.10g}")
            if v.n_off:
                w = v.worst
                grad_msgs.append(f"{title}: {v.n_off} of {len(comp.names)} partials are wrong; worst {comp.names[w]}: "
                                 f"yours {cand.grad[w]:.10g}, expected {comp.sources['exact'].grad[w]:.10g}")
        put("cost", not cost_msgs, "\n".join(cost_msgs) or "The cost matches the exact value on every fixed case.")
        put("gradient_fixed", not grad_msgs, "\n".join(grad_msgs) or "The gradient matches the exact gradient on every fixed case.")

        # determinism: the first case again
        _, again = run.raw(fixed[0][1])
        same = again.ok and _same(again.value, first_res.value)
        put("determinism", same, "The same inputs gave the same output twice." if same else
            "Called twice with the same inputs, the function returned different results (global state? randomness?).")

        changed = []
        after = first_res.args_after or {}
        for i, (sent, back) in enumerate(zip(first_call.args, after.get("args", first_call.args))):
            if not _same(np.asarray(sent) if isinstance(sent, np.ndarray) else sent, back):
                changed.append(f"argument {i + 1}")
        for key, value in (first_call.attrs or {}).items():
            if not _same(value, (after.get("attrs") or {}).get(key, value)):
                changed.append(f"self.{key}")
        put("inputs_unmodified", not changed, "The inputs were left unmodified." if not changed else
            f"The function modified its inputs ({', '.join(changed)}); copy arrays before changing them in place.")

        # -- self-consistency: finite differences of the student's own cost -------------------
        sc_problem, sc_J, sc_grads = answers[-1]
        net = sc_problem.network

        def own_cost(theta: np.ndarray) -> float:
            J, _ = run(sc_problem.with_params(unflatten(theta, net)))
            return J

        self_consistent = None
        try:
            num = numeric_gradient_of(own_cost, flatten(sc_problem.params, net), method="central")
            g = flatten(sc_grads, net)
            ok = np.abs(g - num.estimate) <= num.error + float64_budget(sc_problem) + np.spacing(np.abs(g))
            self_consistent = bool(np.all(ok))
            put("self_consistency", self_consistent, "Your gradient agrees with finite differences of your own cost." if self_consistent else
                f"Your gradient disagrees with finite differences of your own cost at {int(np.count_nonzero(~ok))} of {g.size} "
                "parameters: the cost and the gradient do not describe the same function.")
        except (_StudentError, ValueError) as exc:
            put("self_consistency", False, f"Could not differentiate your cost numerically: {exc}")

        # -- random cases, shrunk ---------------------------------------------------------
        suite = run_suite(run, profile=profile, settings_=settings, examples=examples, seed=seed, max_params=60,
                        saturating=saturating)
        if suite.ok:
            put("gradient_random", True, f"The cost and gradient match the exact ones on all {len(suite.records)} generated cases.")
        else:
            what = (f"the smallest failing case (shrunk) is {suite.failure.problem!r}" if suite.failure is not None else suite.failure_error)
            put("gradient_random", False, f"A generated case failed; {what}. Reproduce it: "
                + (reproduce_command(suite.failure.problem, candidate="YOURFILE.py:" + run.target, profile=profile.name)
                   if suite.failure is not None else f"seed {seed}") + ".")

        # -- diagnosis and the case to show ------------------------------------------------
        worst = next(((t, c, "yours") for t, c in comps if not c.verdicts["yours"].ok), None)
        if worst is None and suite.failure is not None:
            worst = ("smallest failing generated case (shrunk)", suite.failure, "candidate")
        if worst is not None:
            title, comp, label = worst
            failing = _failing_case(comp, label, title)
            findings = diagnose(comp.problem, comp.sources[label], comp.sources["exact"], self_consistent=self_consistent)
            diagnosis = [f.to_dict() for f in findings]
            if report:
                from gradverify.report import comparison_document

                judged = replace(comp, sources={k: v for k, v in comp.sources.items() if k in ("exact", label)},
                                 verdicts={label: comp.verdicts[label]}, diagnoses={label: findings})
                report_doc = comparison_document(judged, command=failing["reproduce"] + f" --candidate YOURFILE.py:{run.target} --profile {profile.name}")
        elif suite.failure_error:
            failing = {"title": "smallest failing generated case (shrunk)", "error": suite.failure_error}
    verdict = "pass" if all(c.passed for c in checks.values()) else "fail"
    grade = _finish(path, profile, settings, checks, rubric, diagnosis, failing, isolation, run, t0, fingerprint, verdict)
    grade.report_doc = report_doc
    return grade


def _finish(path, profile, settings, checks, rubric, diagnosis, failing, isolation, run, t0, fingerprint, verdict) -> Grade:
    for name, pts in rubric.items():  # checks never reached score 0 and say why
        if name not in checks:
            checks[name] = Check(name, False, 0.0, pts, "Not checked: an earlier check failed.")
    ordered = [checks[n] for n in rubric]
    score = round(sum(c.points for c in ordered), 2)
    return Grade(path.stem if path.is_file() else path.name, str(path), profile.name,
                 {k: v for k, v in settings.items()}, verdict, score, float(sum(rubric.values())), ordered, diagnosis, failing,
                 isolation, "".join(run.stdout)[-20_000:] if run else "", time.perf_counter() - t0,
                 run.slowest if run else 0.0, run.calls if run else 0, fingerprint)

"""Grade one submission: every rubric check, scored, with feedback a student can act on.

The student's code runs only inside a ``Sandbox``; this module decides what to call (through the
assignment ``Profile``), what the right answer is (the exact oracle), and how to say what is wrong
(``diagnose``). The checks themselves are in ``checks``; here they are run in order, and a
``_Grading`` record carries what has been found so far to the ``Grade`` at the end.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from gradverify.diagnose import Finding, diagnose
from gradverify.grading import checks
from gradverify.grading.checks import CHECK_TITLES, Answer, Check
from gradverify.grading.limits import Limits
from gradverify.grading.runner import Runner, StudentError, describe_failure
from gradverify.grading.sandbox import Sandbox
from gradverify.profiles import Profile

__all__ = ["Check", "Grade", "Verdict", "grade_submission", "CHECK_TITLES"]


class Verdict(StrEnum):
    """How grading one submission ended (a ``str``: it compares equal to its value)."""

    PASS = "pass"  # every check passed
    FAIL = "fail"  # graded; some check failed
    ERROR = "error"  # the submission could not be graded: it did not load or has no such function
    GRADER_ERROR = "grader-error"  # gradverify itself failed on this submission: not the student's fault


@dataclass
class Grade:
    """Everything graded for one submission (JSON-ready through ``to_dict``)."""

    submission: str
    path: str
    profile: str
    settings: dict
    verdict: Verdict
    score: float
    max_score: float
    checks: list[Check]
    diagnosis: list[Finding] = field(default_factory=list)
    failing_case: dict | None = None
    isolation: str = ""
    stdout: str = ""
    seconds: float = 0.0
    slowest_call: float = 0.0  # seconds of the submission's slowest call (its run time, for the record)
    calls: int = 0
    fingerprint: str = ""
    incident: str = ""  # for a grader-error: what failed inside gradverify (for the instructor)
    report_doc: dict | None = None  # the failing case as a report document (grade --report), written apart

    def to_dict(self) -> dict:
        out = asdict(self)
        out["verdict"] = str(self.verdict)
        out["checks"] = [{**asdict(c), "title": c.title} for c in self.checks]
        out["diagnosis"] = [f.to_dict() for f in self.diagnosis]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Grade:
        """The grade written by ``to_dict``.

        Raises:
            KeyError, TypeError, ValueError: ``data`` is not such a grade.
        """
        checks_ = [Check(c["name"], bool(c["passed"]), float(c["points"]), float(c["max_points"]), str(c["message"]))
                   for c in data["checks"]]
        findings = [Finding(str(d["kind"]), str(d["message"]), float(d["confidence"]), tuple(d.get("where", ())))
                    for d in data.get("diagnosis", [])]
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "verdict": Verdict(data["verdict"]), "checks": checks_, "diagnosis": findings})


@dataclass
class _Grading:
    """What grading one submission has found so far; ``finish`` turns it into the ``Grade``."""

    path: Path
    profile: Profile
    settings: dict
    fingerprint: str
    started: float = field(default_factory=time.perf_counter)
    checks: dict[str, Check] = field(default_factory=dict)
    diagnosis: list[Finding] = field(default_factory=list)
    failing: dict | None = None
    report_doc: dict | None = None
    isolation: str = ""
    runner: Runner | None = None

    def put(self, check: Check) -> None:
        self.checks[check.name] = check

    def finish(self, verdict: Verdict | None = None) -> Grade:
        """The grade: checks never reached score 0 and say why; the verdict follows the checks unless given."""
        rubric = self.profile.rubric
        ordered = [self.checks.get(name) or checks.not_reached(name, rubric) for name in rubric]
        if verdict is None:
            verdict = Verdict.PASS if all(c.passed for c in ordered) else Verdict.FAIL
        run = self.runner
        return Grade(self.path.stem if self.path.is_file() else self.path.name, str(self.path), self.profile.name,
                     dict(self.settings), verdict, round(sum(c.points for c in ordered), 2), float(sum(rubric.values())),
                     ordered, self.diagnosis, self.failing, self.isolation,
                     stdout="".join(run.stdout)[-20_000:] if run else "", seconds=time.perf_counter() - self.started,
                     slowest_call=run.slowest if run else 0.0, calls=run.calls if run else 0, fingerprint=self.fingerprint,
                     report_doc=self.report_doc)


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
        entry: for a folder of several modules, the file to import.
        fingerprint: recorded in the grade (the batch runner's key for resuming).
        saturating: also generate cases with saturated units (scales 30 and 100). Off by default:
            the textbook cost log(σ(a)) overflows there, and that is not what the assignment grades.
        report: also build a report document of the failing case (heatmaps of where it is wrong).

    Returns:
        The ``Grade``; its verdict is ``error`` when the submission could not be graded at all.
    """
    g = _Grading(Path(path), profile, settings, fingerprint)
    rubric = profile.rubric
    with Sandbox(g.path, entry=entry, limits=limits) as sb:
        g.isolation = str(sb.isolation)
        run = g.runner = Runner(sb, profile, settings)
        load = sb.start()
        if not load.ok:
            g.put(checks.loads(rubric, False, describe_failure(load, run.target)))
            return g.finish(Verdict.ERROR)
        answers = _answer_fixed_cases(g)
        if answers is None:
            return g.finish(Verdict.ERROR if not g.checks["loads"].passed else Verdict.FAIL)
        comps = checks.judge_fixed(answers)
        g.put(checks.cost(rubric, comps))
        g.put(checks.gradient_fixed(rubric, comps))
        g.put(checks.determinism(rubric, run, answers[0]))
        g.put(checks.inputs_unmodified(rubric, answers[0]))
        consistency, consistent = checks.self_consistency(rubric, run, answers[-1])
        g.put(consistency)
        from gradverify.suite import run_suite

        suite = run_suite(run, profile=profile, settings_=settings, examples=examples, seed=seed, max_params=60,
                          saturating=saturating)
        g.put(checks.gradient_random(rubric, suite, target=run.target, profile=profile.name, seed=seed))
        _diagnose(g, comps, suite, consistent, report)
    return g.finish()


def _answer_fixed_cases(g: _Grading) -> list[Answer] | None:
    """Call every fixed case; on the first unusable answer, record why (``loads``/``shapes``) and return None."""
    run, rubric, profile = g.runner, g.profile.rubric, g.profile
    answers = []
    for title, problem in profile.fixed_cases(g.settings):
        call, res = run.raw(problem, return_args=True)
        if res.kind == "target":
            g.put(checks.loads(rubric, False, describe_failure(res, run.target)
                               + f"\nThe profile '{profile.name}' expects {profile.signature}."))
            return None
        try:
            J, grads = run.answer(problem, res)
        except StudentError as exc:
            g.put(checks.loads(rubric, True, "loaded"))
            g.put(checks.shapes(rubric, False, f"On the {title}: {exc}\nExpected: {profile.signature}."))
            g.diagnosis = [Finding("shapes", str(exc), 1.0)]
            return None
        answers.append(Answer(title, problem, J, grads, call, res))
    g.put(checks.loads(rubric, True, "The submission loads and defines " + run.target + "."))
    g.put(checks.shapes(rubric, True, "Every return value has the expected form and shapes."))
    return answers


def _diagnose(g: _Grading, comps: list, suite, consistent: bool | None, report: bool) -> None:
    """Name the bug on the worst case (a fixed one first, else the shrunk generated one) and keep that case."""
    worst = next(((t, c, "yours") for t, c in comps if not c.verdicts["yours"].ok), None)
    if worst is None and suite.failure is not None:
        worst = ("smallest failing generated case (shrunk)", suite.failure, "candidate")
    if worst is None:
        if suite.failure_error:
            g.failing = {"title": "smallest failing generated case (shrunk)", "error": suite.failure_error}
        return
    title, comp, label = worst
    g.failing = _failing_case(comp, label, title)
    g.diagnosis = diagnose(comp.problem, comp.sources[label], comp.sources["exact"], self_consistent=consistent)
    if report:
        from gradverify.report import comparison_document

        judged = replace(comp, sources={k: v for k, v in comp.sources.items() if k in ("exact", label)},
                         verdicts={label: comp.verdicts[label]}, diagnoses={label: g.diagnosis})
        command = g.failing["reproduce"] + f" --candidate YOURFILE.py:{g.runner.target} --profile {g.profile.name}"
        g.report_doc = comparison_document(judged, command=command)


def _case_table(comp, label: str, limit: int = 8) -> list[dict]:
    import numpy as np

    v = comp.verdicts[label]
    bad = np.flatnonzero(v.status == "off")
    rows = []
    for i in bad[np.argsort(-v.ratio[bad])][:limit]:
        rows.append({"parameter": comp.names[i], "expected": float(comp.sources["exact"].grad[i]),
                     "yours": float(comp.sources[label].grad[i]), "abs_err": float(v.abs_err[i]), "ratio": float(v.ratio[i])})
    return rows


def _failing_case(comp, label: str, title: str) -> dict:
    from gradverify.suite import reproduce_command

    p = comp.problem
    src = comp.sources[label]
    return {"title": title, "problem": repr(p), "network": p.network.compact, "m": p.m, "lambda": p.network.lam,
            "reproduce": reproduce_command(p), "cost_expected": comp.sources["exact"].cost, "cost_yours": src.cost,
            "n_off": comp.verdicts[label].n_off, "n_params": len(comp.names), "rows": _case_table(comp, label)}

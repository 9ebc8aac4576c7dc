"""Grade one submission: every rubric check, scored, with feedback a student can act on.

The student's code runs only inside a ``Sandbox``; this module decides what to call (through the
assignment ``Profile`` and the batch's ``cases``), what the right answer is (the exact oracle),
and how to say what is wrong (``diagnose``, ``timing``). The checks themselves are in ``checks``;
here they are run in order, and a ``_Grading`` record carries what has been found so far to the
``Grade`` at the end. Nothing the submission does makes ``grade_submission`` raise; a failure
inside gradverify does, and the batch runner turns it into that submission's ``grader-error``.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from gradverify.callforms import Signature
from gradverify.diagnose import Finding, diagnose
from gradverify.grading import checks, timing
from gradverify.grading.detect import detect_submission
from gradverify.grading.cases import Case, Cases, cases_for, derive
from gradverify.grading.checks import CHECK_TITLES, Answer, Check
from gradverify.grading.files import fingerprint
from gradverify.grading.limits import Limits
from gradverify.grading.packages import blocked_import
from gradverify.grading.runner import Runner, StudentError, describe_failure
from gradverify.grading.sandbox import Sandbox
from gradverify.grading.text import clean, non_ascii_note
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
    fingerprint: str = ""  # the digest of the copy that was graded (with the grading options, in a batch)
    incident: str = ""  # for a grader-error: what failed inside gradverify (for the instructor)
    cost_probe: dict | None = None  # what the gradient cost on a small and a large network (timing.CostProbe)
    report_doc: dict | None = None  # the failing case as a report document (grade --report), written apart
    detected: str = ""  # the conventions and call form found (or why none fitted), in words
    notes: list[str] = field(default_factory=list)  # how the submission became a module (Python 2, notebook cells)
    entry: str = ""  # the file imported (a folder's: the one that defines the target)
    reproduce: str | None = None  # reproduce.py: the graded call made again (written apart; not in feedback.json)

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
        checks_ = [Check(c["name"], bool(c["passed"]), float(c["points"]), float(c["max_points"]), str(c["message"]),
                         str(c.get("details", ""))) for c in data["checks"]]
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
    started: float = field(default_factory=time.perf_counter)
    checks: dict[str, Check] = field(default_factory=dict)
    diagnosis: list[Finding] = field(default_factory=list)
    failing: dict | None = None
    report_doc: dict | None = None
    isolation: str = ""
    fingerprint: str = ""
    probe: timing.CostProbe | None = None
    runner: Runner | None = None
    incident: str = ""
    detected: str = ""
    notes: list[str] = field(default_factory=list)
    entry: str = ""
    reproduce: str | None = None

    @property
    def rubric(self) -> dict:
        return self.profile.rubric

    def put(self, check: Check) -> None:
        self.checks[check.name] = check

    def finish(self, verdict: Verdict | None = None) -> Grade:
        """The grade: checks never reached score 0 and say why; the verdict follows the checks unless given."""
        ordered = [self.checks.get(name) or checks.not_reached(name, self.rubric) for name in self.rubric]
        if verdict == Verdict.GRADER_ERROR:
            ordered = [checks.not_graded(name, self.rubric) for name in self.rubric]
        if verdict is None:  # an advisory check (0 points) informs; it does not fail a submission
            verdict = Verdict.PASS if all(c.passed or not c.max_points for c in ordered) else Verdict.FAIL
        run = self.runner
        name = self.path.stem if self.path.suffix == ".py" else self.path.name
        return Grade(clean(name, 200), clean(str(self.path), 2000), self.profile.name, dict(self.settings), verdict,
                     round(sum(c.points for c in ordered), 2), float(sum(self.rubric.values())), ordered, self.diagnosis,
                     self.failing, self.isolation, stdout=clean("".join(run.stdout)[-20_000:]) if run else "",
                     seconds=time.perf_counter() - self.started, slowest_call=run.slowest if run else 0.0,
                     calls=run.calls if run else 0, fingerprint=self.fingerprint, incident=clean(self.incident, 2000),
                     cost_probe=asdict(self.probe) if self.probe else None, report_doc=self.report_doc,
                     detected=clean(self.detected, 4000), notes=[clean(n, 2000) for n in self.notes[:30]],
                     entry=clean(self.entry, 255), reproduce=self.reproduce)


def grade_submission(path: str | Path, profile: Profile, settings: dict, *, examples: int = 20, seed: int = 0,
                     limits: Limits = Limits(), entry: str | None = None, saturating: bool = False,
                     report: bool = False, pinned: tuple[str, ...] = (), packages: tuple[str, ...] = ()) -> Grade:
    """Grade one submission with every rubric check. Never raises for anything the student did.

    Args:
        path: the submission (a .py file, or a folder holding one).
        profile, settings: how to call it (``profile.resolve(...)`` gives the settings); a
            ``layer_profile.LayerProfile`` is graded by ``layer_grader`` (one item per layer).
        examples: how many Hypothesis-generated cases to try (the first failure is shrunk).
        seed: the batch's secret seed: the hidden variants, the generated cases and the large
            network are drawn from it; every submission of a batch sees the same ones.
        limits: the sandbox's resource limits (``budget_seconds`` is the submission's time budget).
        entry: for a folder of several modules, the file to import.
        saturating: also generate cases with saturated units (scales 30 and 100). Off by default:
            the textbook cost log(σ(a)) overflows there, and that is not what the assignment grades.
        report: also build a report document of the failing case (heatmaps of where it is wrong).
        pinned: the settings the instructor fixed (``--set``); the profile's other conventions are
            detected per submission (``detect``).
        packages: distributions allowed besides the profile's own (``--allow-package``).

    Returns:
        The ``Grade``; its verdict is ``error`` when the submission could not be graded at all.
        ``fingerprint`` is the digest of the copy that was graded.
    """
    if not isinstance(profile, Profile):  # the modular layer API (layers-api): one rubric item per layer
        from gradverify.grading.layer_grader import grade_layer_submission

        return grade_layer_submission(path, profile, settings, examples=examples, seed=seed, limits=limits, entry=entry,
                                      report=report, packages=packages)
    g = _Grading(Path(path), profile, settings)
    cases = cases_for(profile, settings, seed)
    calibrate = [(cases.small.problem.network.sizes, cases.small.problem.m),
                 (cases.large.problem.network.sizes, cases.large.problem.m)]
    with Sandbox(g.path, entry=entry, limits=limits, calibrate=calibrate, targets=profile.names,
                 packages=(*profile.packages, *packages)) as sb:
        run = g.runner = Runner(sb, profile, settings)
        load = sb.start()
        g.isolation = str(sb.isolation)
        g.fingerprint = sb.fingerprint or fingerprint(g.path, entry=entry, limits=limits)  # not copied: the files' own
        info = sb.load_info
        g.entry, g.notes = info.entry, [*info.notes, *(f"Skipped while loading: {e}" for e in info.cell_errors)]
        g.notes += [b for b in (blocked_import(m, sb.packages) for m in _missing_modules(info.cell_errors)) if b]  # --allow-package
        if load.kind == "setup":  # the sandbox could not be built, or the files were refused: not the student's doing
            g.incident = f"not graded: {load.error}"
            return g.finish(Verdict.GRADER_ERROR)
        if not load.ok:
            what, details = describe_failure(load, run.target)
            blocked = blocked_import(info.missing_module, sb.packages) if info.missing_module else None
            g.put(checks.loads(g.rubric, False, f"the submission did not load: {blocked}" if blocked else what, details))
            return g.finish(Verdict.ERROR)
        if profile.forms:
            if not _detect(g, sb, cases, {k: settings[k] for k in pinned if k in settings}):
                return g.finish(Verdict.ERROR)
            cases = cases_for(profile, g.settings, seed)  # a convention can change the network (reg_scale)
            run = g.runner = Runner(sb, profile, g.settings)
        answers = _answer_fixed_cases(g, cases)
        if answers is None:
            return g.finish(Verdict.ERROR if not g.checks["loads"].passed else Verdict.FAIL)
        _grade_answers(g, cases, answers, examples=examples, seed=seed, saturating=saturating, report=report)
    return g.finish()


def _missing_modules(cell_errors) -> list[str]:
    """The modules a skipped import statement could not find (``loader``'s words), each once."""
    found = [m.group(1) for e in cell_errors for m in [re.search(r"ModuleNotFoundError: No module named '([\w.]+)'", e)] if m]
    return list(dict.fromkeys(found))[:5]


def _detect(g: _Grading, sb: Sandbox, cases: Cases, pinned: dict) -> bool:
    """Find the target, call form and conventions (``detect``); False when nothing can be called at all
    (then ``loads`` says what the file defines and which forms were tried)."""
    def two_cases(settings: dict) -> list:
        public = [p for _, p in g.profile.fixed_cases(settings)]
        return [public[0], next((p for p in public if p.network.lam > 0), public[-1])]

    found = detect_submission(sb, g.profile, two_cases, pinned)
    if not found.attempts:
        defined = [str(Signature.from_wire(name, params) or name) + non_ascii_note(name) for name, params in sb.load_info.callables]
        forms = "; ".join(f.text.replace("f(", "/".join(g.profile.names) + "(", 1) if not f.method else f.text
                          for f in g.profile.forms)
        example = max(sb.load_info.callables, key=lambda c: len(c[1] or []), default=("NAME", None))[0]  # the likeliest: most parameters
        g.put(checks.loads(g.rubric, False, f"No function in {g.entry or 'the submission'} can be called the way the "
                           f"'{g.profile.name}' profile accepts. Forms tried: {forms}. If one of the functions below computes "
                           f"the cost and gradient, the instructor can name it: --set target={example} --set form=FORM "
                           f"(one of {', '.join(f.name for f in g.profile.forms)}); a method must take the parameters as "
                           "arguments (or read self.params), not weights of its own.",
                           "Your file defines: " + ("; ".join(defined[:20]) or "no functions")))
        return False
    default = {k: v for k, v in g.profile.settings.items() if k not in ("target", "form")}
    g.settings = {**found.settings, "target": found.target, "form": found.form}
    g.detected = found.note(default)
    return True


def _grade_answers(g: _Grading, cases: Cases, answers: list[Answer], *, examples: int, seed: int, saturating: bool,
                   report: bool) -> None:
    """Every check after ``shapes``; the large network first, so that no budget spent later can hide it."""
    from gradverify.suite import run_suite

    run, rubric = g.runner, g.rubric
    comps = checks.judge_fixed(answers)
    g.put(checks.cost(rubric, comps))
    g.put(checks.gradient_fixed(rubric, comps))
    large = _call_large(g, cases)
    points = [a for a in answers if a.case.hidden or a.case.problem.network.lam > 0]
    consistency, consistent = checks.self_consistency(rubric, run, points)
    g.put(consistency)
    suite = run_suite(run, profile=g.profile, settings_=g.settings, examples=examples, seed=seed, max_params=60,
                      saturating=saturating)
    g.put(checks.gradient_random(rubric, suite, large, target=run.target, profile=g.profile.name))
    others = [Case("another case", c.problem) for c in cases_for(g.profile, g.settings, derive(seed, "others")).fixed if c.hidden]
    g.put(checks.determinism(rubric, run, answers, others, derive(seed, "order")))
    g.put(checks.inputs_unmodified(rubric, run))
    g.put(checks.classes_absent(rubric, run, cases.fixed[0].problem))
    _diagnose(g, comps, suite, consistent, report)
    _reproduction(g, cases, comps, suite)
    unproven = _not_backprop(g.probe, large)
    numerical = g.probe is not None and g.probe.numerical
    # A gradient right on the fixed cases — to the last bits, or to finite-difference noise — must
    # show it is backprop. One wrong there otherwise earns no gradient points anyway (but for a
    # self-consistency that an honest consistent bug earns too), and its own diagnosis says more.
    looks_numerical = any(f.kind == "numeric-noise" for f in g.diagnosis)
    if unproven is not None and (numerical or looks_numerical or g.checks["gradient_fixed"].passed):
        checks.withhold_gradient_points(g.checks, unproven)
        finding = Finding("numerical-gradient" if numerical else "unverified-gradient", unproven, 0.95)
        g.diagnosis = [finding] + [f for f in g.diagnosis if f.kind != "numeric-noise"]


def _not_backprop(probe: timing.CostProbe | None, large: tuple) -> str | None:
    """Why the gradient is not shown to be a backpropagation (None: it is).

    The gradient points need that evidence: a right answer on the large network, at the cost of
    a few forward passes. Without it — a numerical gradient, or no usable answer there (an
    error, a wrong value, no time left) — a numerical gradient on small networks could not be
    told from backpropagation. (A gradient hard-wired to the debug network's sizes cannot be
    told from one that refuses the large network on purpose: both lose the gradient points.)
    """
    case, comp, why, _ = large
    rule = (" The gradient points count only when the gradient is right on a large network at the cost of a "
            "backpropagation.")
    if probe is not None and probe.numerical:
        return probe.message()
    if comp is None:
        return f"Your gradient could not be checked on {case.title}: {why}." + rule
    if comp.verdicts["yours"].n_off:  # the gradient: a wrong cost is the cost check's business
        return f"Your gradient is wrong on {case.title}." + rule
    if probe is None:
        return f"Your gradient's cost could not be measured on {case.title}." + rule
    return None


def _call_large(g: _Grading, cases: Cases) -> tuple[Case, object, str, str]:
    """Call the large network (twice if the first looks numerical): ``(case, comparison or None, why not, student text)``."""
    run, case = g.runner, cases.large
    results = [run.call(case.problem, case.title)]
    small, large = cases.small.problem, case.problem
    nets, params = (small.network.compact, large.network.compact), (small.network.n_params, large.network.n_params)

    def probe():
        return timing.judge_cost(run.cheapest_cpu(small), results, run.sandbox.calibration, nets, params)

    first = probe()
    if first is not None and first.numerical:  # the accusation rests on two measurements, the second in a fresh
        run.sandbox.restart()  # process: an answer remembered from the first call cannot make it cheap
        results.append(run.call(case.problem, case.title))
    g.probe = probe()
    answered = timing.measured(results)  # the answer of the call whose cost counts
    if answered is None or not answered.ok:
        what, details = describe_failure(answered or results[0], run.target)
        return case, None, what, details
    try:
        J, grads = run.answer(case.problem, answered)
    except StudentError as exc:
        return case, None, exc.message, exc.details
    return case, _judge_large(case, J, grads), "", ""


def _judge_large(case: Case, J: float, grads: dict):
    from gradverify.compare import candidate_source, judge

    cand = candidate_source("yours", lambda _p: (J, grads), case.problem)
    return judge(case.problem, {"exact": _exact_large(case.problem), "yours": cand}, diagnose=False)


_EXACT_LARGE: dict[tuple, object] = {}


def _exact_large(problem):
    """The exact source of the large network, once per process: it is the same for every submission of a batch."""
    from gradverify.compare import gather

    key = (problem.network, problem.origin)
    if key not in _EXACT_LARGE:
        if len(_EXACT_LARGE) >= 4:
            _EXACT_LARGE.clear()
        _EXACT_LARGE[key] = gather(problem, ("exact",))["exact"]
    return _EXACT_LARGE[key]


def _answer_fixed_cases(g: _Grading, cases: Cases) -> list[Answer] | None:
    """Call every fixed case; on the first unusable answer, record why (``loads``/``shapes``) and return None."""
    run, rubric, profile = g.runner, g.rubric, g.profile
    answers = []
    for case in cases.fixed:
        res = run.call(case.problem, case.title)
        if res.kind == "target":
            what, details = describe_failure(res, run.target)
            g.put(checks.loads(rubric, False, f"{what}. The profile '{profile.name}' expects {profile.signature_of(g.settings)}.", details))
            return None
        try:
            J, grads = run.answer(case.problem, res)
        except StudentError as exc:
            g.put(checks.loads(rubric, True, "The submission loads and defines " + run.target + "."))
            g.put(checks.shapes(rubric, False, f"On the {case.title}: {exc.message}\nExpected: {profile.signature_of(g.settings)}.",
                                exc.details))
            g.diagnosis = [Finding("shapes", exc.message.replace(" (what it said is below)", ""), 1.0)]
            return None
        answers.append(Answer(case, J, grads, res))
    g.put(checks.loads(rubric, True, "The submission loads and defines " + run.target + "."))
    g.put(checks.shapes(rubric, True, "Every return value has the expected form and shapes."))
    return answers


def _diagnose(g: _Grading, comps: list, suite, consistent: bool | None, report: bool) -> None:
    """Name the bug on the worst case (a public fixed one first, a hidden one, then the shrunk generated one)."""
    ranked = sorted(comps, key=lambda cc: cc[0].hidden)
    worst = next(((case, comp, "yours") for case, comp in ranked if not comp.verdicts["yours"].ok), None)
    if worst is None and suite.failure is not None:
        worst = (Case("smallest failing generated case (shrunk)", suite.failure.problem), suite.failure, "candidate")
    if worst is None:
        if suite.failure_error:
            g.failing = {"title": "smallest failing generated case (shrunk)", "error": suite.failure_error}
        return
    case, comp, label = worst
    g.failing = _failing_case(comp, label, case)
    g.diagnosis = diagnose(comp.problem, comp.sources[label], comp.sources["exact"], self_consistent=consistent)
    if report and not case.hidden:
        from gradverify.report import comparison_document

        judged = replace(comp, sources={k: v for k, v in comp.sources.items() if k in ("exact", label)},
                         verdicts={label: comp.verdicts[label]}, diagnoses={label: g.diagnosis})
        command = g.failing["reproduce"] + f" --candidate YOURFILE.py:{g.runner.target} --profile {g.profile.name}"
        g.report_doc = comparison_document(judged, command=command)


def _reproduction(g: _Grading, cases: Cases, comps: list, suite) -> None:
    """``reproduce.py`` for the case to look at — the first public fixed case that fails, else the shrunk
    generated one, else the classic debug network — made by calling the submission on it once more.
    A hidden case is never written out: its values are secret."""
    from gradverify.compare import gather
    from gradverify.grading.reproducer import expected_like, reproduce_script
    from gradverify.params import unflatten

    failing = [(case.title, comp.problem) for case, comp in comps if not case.hidden and not comp.verdicts["yours"].ok]
    if not failing and suite.failure is not None:
        failing = [("the smallest failing generated case (shrunk)", suite.failure.problem)]
    title, problem = (failing or [(cases.small.title, cases.small.problem)])[0]
    res = g.runner.call(problem, title)
    try:
        graded_cost = g.runner.answer(problem, res)[0]
    except StudentError:
        return  # no answer to reproduce (the checks already say why)
    call = g.profile.call_for(problem, g.settings)
    exact = gather(problem, ("exact",))["exact"]
    expected = expected_like(res.value, exact.cost, unflatten(exact.grad, problem.network), profile=g.profile.name,
                             settings=g.settings, network=problem.network)
    try:
        g.reproduce = reproduce_script(name=g.path.name, title=title, submission=g.path.resolve(), entry=g.entry or g.path.name,
                                       target=call.target, how=g.detected or f"the {g.profile.name} profile", settings=g.settings,
                                       args=call.args, kwargs=call.kwargs, attrs=call.attrs, init=call.init, expected=expected,
                                       graded_cost=graded_cost)
    except TypeError:
        g.reproduce = None  # an argument the script cannot write (none of the built-in profiles makes one)


def _case_table(comp, label: str, limit: int = 8) -> list[dict]:
    import numpy as np

    v = comp.verdicts[label]
    bad = np.flatnonzero(v.status == "off")
    rows = []
    for i in bad[np.argsort(-v.ratio[bad])][:limit]:
        rows.append({"parameter": comp.names[i], "expected": float(comp.sources["exact"].grad[i]),
                     "yours": float(comp.sources[label].grad[i]), "abs_err": float(v.abs_err[i]), "ratio": float(v.ratio[i])})
    return rows


def _failing_case(comp, label: str, case: Case) -> dict:
    """The case to show the student; a hidden case keeps its values (and so its reproduce command) secret."""
    from gradverify.reproduce import reproduce_command

    p = comp.problem
    return {"title": case.title, "problem": "(hidden)" if case.hidden else repr(p), "network": p.network.compact, "m": p.m,
            "lambda": p.network.lam, "hidden": case.hidden, "reproduce": None if case.hidden else reproduce_command(p),
            "cost_expected": comp.sources["exact"].cost, "cost_yours": comp.sources[label].cost,
            "n_off": comp.verdicts[label].n_off, "n_params": len(comp.names), "rows": _case_table(comp, label)}

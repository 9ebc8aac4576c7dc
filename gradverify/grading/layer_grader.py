"""Grade one layers.py: every layer it defines is a rubric item, judged against the exact oracle.

For each item of the ``layers-api`` profile (``layer_profile``), in catalogue order:

1. its **fixed cases** (``layer_cases``), in order; the first call also tells whether the item was
   attempted at all (a forward that does not exist, or a stub that returns None or raises
   ``NotImplementedError``, is *not attempted*: left out of the rubric, or 0 points, as the
   profile's ``missing`` setting says);
2. then its **generated cases**, drawn from the batch's secret seed; the first failure is shrunk
   to the smallest failing case (a few dozen more calls at most).

The first failing case ends the item: its message says on which case, what is off (the worst
entry, yours against the exact value), the layer judge's diagnosis ("stride ignored in dw",
"dx misses the mean term of batch-norm's backward" …) and the command that reproduces it. A
function that raises, hangs, crashes or returns the wrong form fails its own item only: the
worker is restarted from the same snapshot for the next call, and nothing of one item is kept
for another. Everything else — the sandbox, the isolation summary, the feedback, Gradescope's
``results.json``, the gradebook, resume and grader-error rows — is the batch's, as for every profile.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gradverify.diagnose import Finding
from gradverify.grading.cases import derive
from gradverify.grading.checks import Check
from gradverify.grading.files import fingerprint
from gradverify.grading.grader import Grade, Verdict
from gradverify.grading.layer_calls import LayerCalls, Outcome, try_case
from gradverify.grading.layer_cases import fixed_cases, generated_cases
from gradverify.grading.layer_profile import LayerItem, LayerProfile
from gradverify.grading.limits import Limits
from gradverify.grading.packages import blocked_import
from gradverify.grading.protocol import Chain
from gradverify.grading.runner import describe_failure
from gradverify.grading.sandbox import Sandbox
from gradverify.grading.text import clean
from gradverify.layers.case import LayerCase
from gradverify.layers.catalogue import LAYERS

__all__ = ["grade_layer_submission"]

_SHRINK_CALLS = 40  # calls a shrinking may add after the generated cases: a readable case, in bounded time


@dataclass
class _Item:
    """What grading one item found: its check (None: not attempted), diagnosis and report."""

    item: LayerItem
    check: Check | None = None
    not_attempted: str = ""
    findings: list[Finding] = field(default_factory=list)
    report: tuple | None = None  # (comparison, reproduce command) of its failing public case


def grade_layer_submission(path: str | Path, profile: LayerProfile, settings: dict, *, examples: int = 20, seed: int = 0,
                           limits: Limits = Limits(), entry: str | None = None, report: bool = False,
                           packages: tuple[str, ...] = ()) -> Grade:
    """Grade a layers.py with one rubric item per layer. Never raises for anything the student did.

    Args:
        path: the submission (a .py file, or a folder holding one).
        profile, settings: the ``LayerProfile`` and its resolved settings.
        examples: generated cases per item (the first failure is shrunk).
        seed: the batch's secret seed (the generated cases are drawn from it).
        limits: the sandbox's limits (``budget_seconds``: all the submission's calls together).
        entry: for a folder of several modules, the file to import.
        report: also build a report document of the first failing item's case.
        packages: distributions allowed besides the profile's own (``--allow-package``).

    Returns:
        The ``Grade``; ``error`` when the file does not load or attempts no layer at all.
    """
    started = time.perf_counter()
    path = Path(path)
    name = path.stem if path.suffix == ".py" else path.name
    base = dict(submission=clean(name, 200), path=clean(str(path), 2000), profile=profile.name, settings=dict(settings))
    with Sandbox(path, entry=entry, limits=limits, targets=profile.names, packages=(*profile.packages, *packages)) as sb:
        load = sb.start()
        isolation = str(sb.isolation)
        digest = sb.fingerprint or fingerprint(path, entry=entry, limits=limits)
        calls = LayerCalls(sb)
        info = sb.load_info
        base.update(entry=clean(info.entry, 255), notes=[clean(n, 2000) for n in info.notes[:20]]
                    + [clean(f"Skipped while loading: {e}", 2000) for e in info.cell_errors[:10]])
        if load.kind == "setup":  # not the student's doing
            checks = [_check(i, profile, False, "Not graded: the grader could not grade this submission (not your fault).")
                      for i in profile.items]
            return Grade(**base, verdict=Verdict.GRADER_ERROR, score=0.0, max_score=_total(profile), checks=checks,
                         isolation=isolation, fingerprint=digest, incident=clean(f"not graded: {load.error}", 2000))
        if not load.ok:
            what, details = describe_failure(load, "your layers")
            blocked = blocked_import(info.missing_module, sb.packages) if info.missing_module else None
            what = f"the submission did not load: {blocked}" if blocked else what
            checks = [_check(i, profile, False, what[:1].upper() + what[1:] + "." if k == 0 else
                             "Not graded: the submission did not load (the first item says why).", details if k == 0 else "")
                      for k, i in enumerate(profile.items)]
            return Grade(**base, verdict=Verdict.ERROR, score=0.0, max_score=_total(profile), checks=checks, isolation=isolation,
                         fingerprint=digest, stdout=clean(load.stdout[-20_000:]), seconds=time.perf_counter() - started)
        results = [_grade_item(calls, profile, settings, item, examples=examples, seed=seed) for item in profile.items]
    return _grade(base, profile, settings, results, calls, isolation=isolation, digest=digest, report=report,
                  seconds=time.perf_counter() - started)


def _total(profile: LayerProfile) -> float:
    return float(sum(profile.rubric.values()))


def _check(item: LayerItem, profile: LayerProfile, passed: bool, message: str, details: str = "") -> Check:
    points = float(profile.rubric[item.name])
    return Check(item.name, passed, points if passed else 0.0, points, message, details)


def _grade(base: dict, profile: LayerProfile, settings: dict, results: list[_Item], calls: LayerCalls, *, isolation: str,
           digest: str, report: bool, seconds: float) -> Grade:
    """The Grade from every item's result (``missing`` decides what a layer not attempted is worth)."""
    checks, skipped = [], []
    for r in results:
        if r.check is not None:
            checks.append(r.check)
        elif settings["missing"] == "zero":
            checks.append(_check(r.item, profile, False, f"Not attempted: {r.not_attempted}."))
        else:
            skipped.append(r)
    attempted = [r for r in results if r.check is not None]
    if not attempted:
        checks = [_check(r.item, profile, False, f"Not attempted: {r.not_attempted}.") for r in results]
        checks[0].message += (" The submission attempts none of the profile's layers: a layers.py defines CS231n's "
                              "functions, e.g. affine_forward(x, w, b) -> (out, cache) and affine_backward(dout, cache) -> "
                              "(dx, dw, db).")
        verdict = Verdict.ERROR
    else:
        verdict = Verdict.PASS if all(c.passed for c in checks) else Verdict.FAIL
    if skipped and attempted:
        base["notes"] = [*base.get("notes", []), "Not attempted, so not graded (this profile counts only the layers you "
                         "define): " + "; ".join(f"{r.item.name} ({r.not_attempted})" for r in skipped) + "."]
    report_doc = None
    first = next((r for r in results if r.report is not None), None)
    if report and first is not None:
        from gradverify.layers.report import layer_document

        report_doc = layer_document(first.report[0], command=first.report[1])
        first.check.message += "\nA picture of where it is wrong (a heatmap per array): report/report.html."
    return Grade(**base, verdict=verdict, score=round(sum(c.points for c in checks), 2), max_score=float(sum(c.max_points for c in checks)),
                 checks=checks, diagnosis=[f for r in results for f in r.findings], isolation=isolation,
                 stdout=clean("".join(calls.stdout)[-20_000:]), seconds=seconds, slowest_call=calls.slowest, calls=calls.calls,
                 fingerprint=digest, report_doc=report_doc)


# ---- one item ------------------------------------------------------------------------------------

def _grade_item(calls: LayerCalls, profile: LayerProfile, settings: dict, item: LayerItem, *, examples: int, seed: int) -> _Item:
    """Every fixed case, then the generated ones; the first failing case ends the item."""
    result = _Item(item)
    cases = fixed_cases(item.layer)
    passed = []
    for k, (fc, case) in enumerate(cases):
        out = try_case(calls, item, case, forward_only=fc.forward_only)
        passed.append(out)
        if k == 0:
            result.not_attempted = _not_attempted(calls, item, out)
            if result.not_attempted:
                return result
        if out.failed:
            return _failed(result, profile, item, f"the fixed case “{fc.what}”", case, out, calls, forward_only=fc.forward_only)
    tried, shrunk = _generated(calls, item, examples, derive(seed, f"layers/{item.name}"))
    if shrunk is not None:
        case, out = shrunk
        return _failed(result, profile, item, "a generated case (the smallest failing one found)", case, out, calls)
    notes = _notes(item, settings, calls, passed)
    if item.name in calls.wrote and settings["inputs"] == "fail":
        result.check = _check(item, profile, False, f"{item.functions}: right on every case, but {_WROTE}" + notes)
        return result
    result.check = _check(item, profile, True, f"{item.functions}: right on {_count(len(cases), 'fixed case')} and "
                          f"{_count(tried, 'generated case')} (every output and gradient within its error budget of the exact "
                          "values)." + notes)
    return result


def _count(n: int, what: str) -> str:
    return f"the {what}" if n == 1 else f"all {n} {what}s"


_WROTE = ("they wrote into their input arrays (x, a parameter or dout, perhaps through the cache): numpy refused, as they are "
          "passed read-only, and the case was run again with copies. Copy before changing an array in place.")


def _notes(item: LayerItem, settings: dict, calls: LayerCalls, outcomes: list[Outcome]) -> str:
    """What a passing item's message adds: a write into its inputs, what the judge read into its answers
    (a db of shape (1, M), dropout's drop-probability convention)."""
    notes = ["Note: " + _WROTE] if item.name in calls.wrote and settings["inputs"] == "note" else []
    said = [n.removeprefix("yours: ") for out in outcomes if out.comparison is not None for n in out.comparison.notes
            if n.startswith("yours: ") and "mask was read" not in n]
    notes += ["Note: " + n + "." for n in dict.fromkeys(said)][:3]
    return "".join("\n" + n for n in notes)


def _generated(calls: LayerCalls, item: LayerItem, examples: int, seed: int) -> tuple[int, tuple[LayerCase, Outcome] | None]:
    """``examples`` generated cases; the first failure shrunk. Returns (cases tried, the smallest failing case)."""
    from hypothesis import HealthCheck, Phase, find, settings as hsettings
    from hypothesis.errors import NoSuchExample, Unsatisfiable

    tried: dict[tuple, tuple[LayerCase, Outcome]] = {}
    stop = [False]

    def key(case: LayerCase) -> tuple:
        return (tuple(case.dims.items()), tuple((k, str(v)) for k, v in case.settings.items()), case.origin)

    def fails(case: LayerCase) -> bool:
        # Memoized, so a replayed case answers as before; once the calls run out (or the sandbox gave
        # up on a call), a new case "passes" and the smallest failure found so far stands.
        k = key(case)
        if k not in tried:
            if stop[0] or len(tried) >= examples + _SHRINK_CALLS:
                return False
            out = try_case(calls, item, case)
            tried[k] = (case, out)
            stop[0] = out.heavy
        return tried[k][1].failed

    hs = hsettings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck),
                   phases=[Phase.generate, Phase.shrink])
    try:
        minimal = find(generated_cases(item.layer), fails, settings=hs, random=random.Random(seed))
    except (NoSuchExample, Unsatisfiable):
        return len(tried), None
    return min(len(tried), examples), tried[key(minimal)]


# ---- not attempted -------------------------------------------------------------------------------

def _not_implemented(res) -> bool:
    """A stub's failure: NotImplementedError, or an AttributeError on its own None (CS231n's dropout
    skeleton ends in ``out = out.astype(x.dtype)`` after the part to write)."""
    error = (res.error or "") if res is not None and res.kind == "exception" else ""
    return error.startswith("NotImplementedError") or error.startswith("AttributeError: 'NoneType' object has no attribute")


def _not_attempted(calls: LayerCalls, item: LayerItem, out: Outcome) -> str:
    """Why ``item`` counts as not attempted, read off its first case ("" when it was attempted).

    Not attempted: no forward, or a forward that is a stub (returns None or only Nones, raises
    NotImplementedError) whose backward shows no work either (missing, a stub, raising, or never
    reached). A backward cannot be graded without its forward's cache.
    """
    fwd, bwd = item.forward, item.backward
    res = out.failure
    if res is None:  # the call answered (perhaps in the wrong form)
        backward_idle = bwd is None or out.stub_backward or out.comparison is None
        return f"{fwd} is a stub: it returns None" if out.stub_forward and backward_idle else ""
    if res.kind not in ("target", "exception"):
        return ""
    if bwd is None:
        return f"there is no function {fwd}" if res.kind == "target" else (f"{fwd} is a stub: {_first_line(res)}"
                                                                           if _not_implemented(res) else "")
    alone = _forward_alone(calls, item, out)
    if alone is not None and alone.kind == "target":
        return f"there is no function {fwd}"
    if res.kind == "target" and item.shares_forward:  # the forward is another item's: this one is its backward
        return f"there is no function {bwd}"
    if _not_implemented(alone):
        return f"{fwd} is a stub: {_first_line(alone)}"
    if alone is not None and alone.ok and _stub(alone):
        return f"{fwd} is a stub: it returns None" + (f", and there is no {bwd}" if res.kind == "target" else "")
    return ""


def _first_line(res) -> str:
    return clean((res.error or "").splitlines()[0] if res.error else "", 120)


def _forward_alone(calls: LayerCalls, item: LayerItem, out: Outcome):
    """The forward called alone on the case's arguments (its outputs, the cache kept in the sandbox)."""
    if out.args is None:
        return out.failure
    return calls.call(item.name, item.forward, out.args, Chain(None, (), len(LAYERS[item.layer].outputs)))


def _stub(res) -> bool:
    v = res.value
    return isinstance(v, dict) and (v.get("form") == ["NoneType", -1] or (type(v.get("head")) is list and all(h is None for h in v["head"])))


# ---- failing items ----------------------------------------------------------------------------

def _failed(result: _Item, profile: LayerProfile, item: LayerItem, where: str, case: LayerCase, out: Outcome,
            calls: LayerCalls, *, forward_only: bool = False) -> _Item:
    """The item's failing check: where, what is off, the diagnosis, how to reproduce it."""
    from gradverify.layers.suite import reproduce_layer_command

    reproduce = f"{reproduce_layer_command(case)} --candidate YOURFILE.py:{item.backward or item.forward}"
    head = f"{item.functions}: wrong on {where}: {case.describe()}."
    details = ""
    if out.comparison is not None:
        lines, findings = _judged(item, out.comparison)
        result.findings = findings[:1]
        if where.startswith("the fixed"):
            result.report = (out.comparison, reproduce)
    elif out.failure is not None:
        who = _who(calls, item, out)
        what, details = describe_failure(out.failure, who)
        lines = [f"{what}."]
    else:
        lines = [clean(out.said, 500) + "."]
    if forward_only:
        lines.append("(Test mode is checked by its forward output alone: CS231n asks for no backward pass there.)")
    result.check = _check(item, profile, False, "\n".join([head, *lines, f"Reproduce it: {reproduce}"]), details)
    return result


def _who(calls: LayerCalls, item: LayerItem, out: Outcome) -> str:
    """Which function failed: the forward when it fails alone the same way, else the backward."""
    if item.backward is None or out.failure is None or out.failure.kind not in ("exception", "target"):
        return item.functions
    alone = _forward_alone(calls, item, out)
    return item.forward if alone is not None and alone.kind == out.failure.kind else item.backward


def _judged(item: LayerItem, comp) -> tuple[list[str], list[Finding]]:
    """What the judge found, in lines for the student, and the item's findings (named for the item)."""
    v = comp.verdicts["yours"]
    src, exact = comp.sources["yours"], comp.sources["exact"]
    lines = []  # a returned array that could not be used is named by the diagnosis
    if v.n_off:
        arrays = [f"d{a} ({s['off']} of {s['n']})" for a, s in comp.array_summary("yours").items() if s["off"]]
        lines.append(f"{v.n_off} of {len(comp.names)} partials are off, in {', '.join(arrays)}.")
        w = v.worst
        if w >= 0 and np.isfinite(src.grad[w]):
            times = f"{v.ratio[w]:.3g}× its budget" if v.ratio[w] < 1e12 else "far beyond its budget"
            lines.append(f"The worst, d{comp.names[w]}: yours {src.grad[w]:.10g}, exact {exact.grad[w]:.10g} "
                         f"(error {v.abs_err[w]:.3g}, {times}).")
    if v.cost_ok is False:
        outs = ", ".join(LAYERS[item.layer].outputs)
        yours = "unusable" if src.cost is None else f"{src.cost:.10g}"
        lines.append(f"The forward output ({outs}) is off: J = Σ dout·out is yours {yours}, exact {exact.cost:.10g}."
                     if not LAYERS[item.layer].is_loss else f"The loss is off: yours {yours}, exact {exact.cost:.10g}.")
    found = comp.diagnoses.get("yours", [])
    if found:
        lines.append("Diagnosis: " + " ".join(f.message for f in found[:2]))
    findings = [Finding(f.kind, f"{item.name}: {f.message}", f.confidence, (item.name, *f.where)) for f in found]
    return lines, findings

"""The verifier's judgement: every source's gradient per parameter, against the exact value.

A ``Comparison`` gathers the gradient sources for one problem — ``exact`` (the SymPy oracle),
``backprop`` (the numpy engine), ``numeric`` (finite differences) and any candidates (a user's
or a student's function) — and judges each one against a referee:

- the referee is ``exact`` when it was computed; otherwise the sources are compared pairwise and
  a disagreement is reported without a culprit (only the truth can say who is wrong);
- each source has an **error budget** per parameter: finite differences bring their own error
  estimate; a float64 engine gets ``FLOAT64_ULPS`` ulps times the magnitudes summed in that
  partial (an upper bound computed from forward values only, see ``term_magnitudes``); the
  exact value adds its own rounding to float64;
- ratio = |source − referee| / budget; ≤ 1 passes. A finite-difference stencil that crosses a
  ReLU kink is marked ``kink``, never ``off``.

Relative error everywhere: |a − b| / max(|a|, |b|, tiny), tiny the smallest normal float64.
The record never raises on a mismatch; ``assert_gradient_matches`` is the thin raising helper.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from gradverify.budget import FLOAT64_ULPS, TINY, Precision, cost_magnitude, float64_budget, term_magnitudes
from gradverify.candidates import candidate_source
from gradverify.errors import GradientMismatchError, InputError
from gradverify.params import scalar_names
from gradverify.sources import SOURCE_NAMES, SourceResult, run_source
from gradverify.spec import Problem

__all__ = [
    "SOURCE_NAMES",
    "FLOAT64_ULPS",
    "Status",
    "Verdict",
    "SourceResult",
    "SourceVerdict",
    "Comparison",
    "term_magnitudes",
    "float64_budget",
    "gather",
    "candidate_source",
    "compare",
    "judge",
    "assert_gradient_matches",
    "mismatch_message",
    "cost_magnitude",
]


class Status(StrEnum):
    """One parameter's status against the referee (a ``str``: it compares equal to its value)."""

    OK = "ok"                # within the error budget
    OFF = "off"              # outside it: the source is wrong here
    KINK = "kink"            # a non-differentiable point: any one-sided value is right (or none can be judged)
    UNCHECKED = "unchecked"  # the source did not compute this partial (e.g. sampled finite differences)


class Verdict(StrEnum):
    """A comparison's overall verdict."""

    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True)
class SourceVerdict:
    """How one source fared against the referee, per parameter and overall."""

    name: str
    referee: str
    abs_err: np.ndarray
    rel_err: np.ndarray
    budget: np.ndarray
    ratio: np.ndarray
    status: np.ndarray  # per parameter: a Status value ("ok", "off", "kink", "unchecked")
    cost_abs_err: float | None
    cost_ok: bool | None

    @property
    def n_off(self) -> int:
        return int(np.count_nonzero(self.status == Status.OFF))

    @property
    def n_kinks(self) -> int:
        return int(np.count_nonzero(self.status == Status.KINK))

    @property
    def n_checked(self) -> int:
        """Partials actually judged or seen at a kink (all but the unchecked ones)."""
        return int(np.count_nonzero(self.status != Status.UNCHECKED))

    @property
    def ok(self) -> bool:
        return self.n_off == 0 and self.cost_ok is not False

    @property
    def worst(self) -> int:
        """Index of the judged parameter with the largest error/budget ratio (−1 when none was judged)."""
        judged = (self.status == Status.OK) | (self.status == Status.OFF)
        if not judged.any():
            return -1
        return int(np.argmax(np.where(judged, self.ratio, -np.inf)))


@dataclass(frozen=True)
class Comparison:
    """Every source on one problem, judged. Never raises on a mismatch; read ``verdict``."""

    problem: Problem
    names: tuple[str, ...]
    sources: dict[str, SourceResult]
    referee: str  # "exact", or "pairwise" when there is no exact value
    verdicts: dict[str, SourceVerdict]
    diagnoses: dict[str, list] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def verdict(self) -> Verdict:
        """``"pass"`` when every judged source is within budget everywhere, else ``"fail"``."""
        return Verdict.PASS if all(v.ok for v in self.verdicts.values()) else Verdict.FAIL

    @property
    def wrong(self) -> list[str]:
        """Sources found wrong (with the exact referee) or in disagreement (pairwise)."""
        return [name for name, v in self.verdicts.items() if not v.ok]

    def array_summary(self, source: str) -> dict[str, dict]:
        """Per parameter array: entries off, worst ratio and its entry, for one source."""
        v = self.verdicts[source]
        out: dict[str, dict] = {}
        start = 0
        for name, shape in self.problem.network.param_shapes:
            size = math.prod(shape)
            sl = slice(start, start + size)
            judged = (v.status[sl] == Status.OK) | (v.status[sl] == Status.OFF)
            ratios = np.where(judged, v.ratio[sl], -np.inf)
            worst = int(np.argmax(ratios)) + start if size else start
            out[name] = {"n": size, "off": int(np.count_nonzero(v.status[sl] == Status.OFF)),
                         "kinks": int(np.count_nonzero(v.status[sl] == Status.KINK)),
                         "worst": self.names[worst], "worst_ratio": float(v.ratio[worst]) if size else 0.0}
            start += size
        return out

    def summary(self) -> str:
        """One line saying who is wrong, where and by how much — or that all agree. True in every branch."""
        if not self.verdicts:
            ran = ", ".join(self.sources) or "no source"
            return (f"NO VERDICT: only {ran} ran, so nothing was compared; add the exact source as the referee "
                    "(or a second source to compare with).")
        if self.verdict == Verdict.PASS:
            judged = list(self.verdicts)
            who = judged[0] if len(judged) == 1 else ", ".join(judged[:-1]) + " and " + judged[-1]
            verb = "agrees" if len(judged) == 1 else "agree"
            ref = "the exact values" if self.referee == "exact" else (
                f"{self.verdicts[judged[0]].referee}" if len(judged) == 1 else f"{self.verdicts[judged[0]].referee} (no exact referee)")
            n = len(self.names)
            coverage = [f"{name} checked {v.n_checked:,} of {n:,}" for name, v in self.verdicts.items() if v.n_checked < n]
            extras = coverage + self._kink_words() + self._range_words()
            return (f"PASS: {who} {verb} with {ref} on " + (f"all {n} parameters" if not coverage else "every parameter checked")
                    + (f" ({'; '.join(extras)})" if extras else "") + ".")
        parts = [self._wrong_words(name) for name in self.wrong]
        diag = [d.message for name in self.wrong for d in self.diagnoses.get(name, [])[:1]]
        return "FAIL: " + "; ".join(parts) + "." + (" Diagnosis: " + " ".join(diag) if diag else "")

    def _wrong_words(self, name: str) -> str:
        from gradverify.diagnose import distinct_digits

        v = self.verdicts[name]
        src, ref = self.sources[name], self.sources.get(v.referee)
        yours, theirs = distinct_digits(src.cost, ref.cost) if src.cost is not None and ref is not None and ref.cost is not None else ("—", "—")
        if v.n_off:
            w = v.worst
            where = (f"is wrong at {v.n_off} of {v.n_checked} parameters" if self.referee == "exact" else f"and {v.referee} disagree at "
                     f"{v.n_off} of {v.n_checked} parameters")
            where += f" (worst {self.names[w]}: error {v.abs_err[w]:.3g} = {v.ratio[w]:.3g}× its budget)"
            if v.cost_ok is False:
                where += f", and its cost is off ({yours} vs {theirs})"
        else:
            where = (f"has the right gradient but a wrong cost ({yours}, {v.referee} {theirs})" if self.referee == "exact"
                     else f"and {v.referee} agree on the gradient but not on the cost ({yours} vs {theirs})")
        if self.referee != "exact":
            where += "; no exact value to say which is wrong (add the exact source)"
        return f"{name} {where}"

    def _kink_words(self) -> list[str]:
        words = []
        for name, v in self.verdicts.items():
            if v.n_kinks:
                inside = self.sources[v.referee].kink_lo is not None
                words.append(f"{v.n_kinks} {name} entr{'y' if v.n_kinks == 1 else 'ies'} at a kink"
                             + (", inside the interval of one-sided values" if inside else ", where finite differences cannot judge"))
        return words

    def _range_words(self) -> list[str]:
        ref = self.sources.get("exact")
        if ref is None:
            return []
        words = []
        if ref.cost is not None and math.isinf(ref.cost):
            words.append("the exact cost overflows float64, so ±inf is the right float64 answer")
        n_inf = int(np.count_nonzero(np.isinf(ref.grad)))
        if n_inf:
            words.append(f"{n_inf} exact partial(s) overflow float64 (±inf there is the right float64 answer)")
        return words

    def to_dict(self, *, values: bool = True) -> dict:
        """A JSON-ready dict (floats, strings, lists) of the whole comparison."""
        net = self.problem.network
        out: dict = {
            "verdict": self.verdict,
            "summary": self.summary(),
            "referee": self.referee,
            "relative_error": "|a - b| / max(|a|, |b|, tiny)",
            "problem": {"network": net.compact, "sizes": list(net.sizes), "activations": list(net.activations),
                        "output": net.output, "lambda": net.lam, "regularization": net.reg,
                        "regularize_bias": net.reg_bias, "m": self.problem.m, "origin": str(self.problem.origin),
                        "n_params": len(self.names)},
            "sources": {name: {"kind": s.kind, "cost": s.cost, "cost_budget": s.cost_budget, "detail": s.detail,
                               "seconds": s.seconds, **s.facts, **({"notes": "; ".join(s.notes)} if s.notes else {})}
                        for name, s in self.sources.items()},
            "verdicts": {name: {"ok": v.ok, "referee": v.referee, "n_off": v.n_off,
                                "n_kinks": int(np.count_nonzero(v.status == "kink")),
                                "cost_abs_err": v.cost_abs_err, "cost_ok": v.cost_ok,
                                "worst": self.names[v.worst] if v.worst >= 0 else None,
                                "worst_ratio": float(v.ratio[v.worst]) if v.worst >= 0 else None,
                                "arrays": self.array_summary(name)}
                         for name, v in self.verdicts.items()},
            "diagnoses": {name: [d.to_dict() for d in ds] for name, ds in self.diagnoses.items()},
            "notes": list(self.notes),
        }
        if values:
            out["parameters"] = [self.parameter_row(i) for i in range(len(self.names))]
        return out

    def parameter_row(self, i: int) -> dict:
        """Entry ``i`` as the report's row: its name, every source's value, every judged source's budget, errors, ratio and status."""
        row = {"name": self.names[i], "values": {s: float(r.grad[i]) for s, r in self.sources.items()}}
        row["budgets"] = {s: float(v.budget[i]) for s, v in self.verdicts.items()}
        row["abs_err"] = {s: float(v.abs_err[i]) for s, v in self.verdicts.items()}
        row["rel_err"] = {s: float(v.rel_err[i]) for s, v in self.verdicts.items()}
        row["ratio"] = {s: float(v.ratio[i]) for s, v in self.verdicts.items()}
        row["status"] = {s: str(v.status[i]) for s, v in self.verdicts.items()}
        return row


def gather(problem: Problem, sources: Sequence[str] = SOURCE_NAMES, *, candidates: dict[str, Callable] | None = None,
           progress: Callable[[str, int, int], None] | None = None, options: dict | None = None,
           precision: Precision = "float64") -> dict[str, SourceResult]:
    """Compute the requested sources (and candidates) on ``problem``.

    Args:
        sources: names among ``SOURCE_NAMES``.
        candidates: ``{label: fn}`` with ``fn(problem) -> (cost, grads)``.
        precision: the precision the candidates compute in ("float64", or "float32" by design):
            their error budget follows from it.
        progress: ``progress(source, done, total)`` for the slow sources.
        options: per-source keyword options, e.g. ``{"exact": {"digits": 40}}``.

    Raises:
        InputError: an unknown source name.
        CandidateError: a candidate raised or returned the wrong form.
    """
    _check_arguments(problem, precision, options, candidates)
    if isinstance(sources, str):  # "exact" or "exact,backprop", as on the command line
        sources = [s.strip() for s in sources.split(",") if s.strip()]
    unknown = [s for s in sources if s not in SOURCE_NAMES]
    if unknown:
        raise InputError(f"Unknown gradient source(s): {', '.join(unknown)}", expected="some of " + ", ".join(SOURCE_NAMES),
                         received=", ".join(sources), fix="pick from exact, backprop, numeric")
    options = options or {}
    out: dict[str, SourceResult] = {}
    for name in sorted(set(sources), key=SOURCE_NAMES.index):  # the referee first, then the estimates
        cb = (lambda done, total, _n=name: progress(_n, done, total)) if progress else None
        out[name] = run_source(name, problem, progress=cb, **options.get(name, {}))
    for label, fn in (candidates or {}).items():
        out[label] = candidate_source(label, fn, problem, precision=precision)
    return out


def _check_arguments(problem, precision, options, candidates) -> None:
    """The caller's arguments, checked before any work (an API user's mistake, said as such)."""
    if not isinstance(problem, Problem):
        raise InputError("compare needs a Problem", expected="a Problem (parse_spec + make_problem, random_problem or "
                         "debug_problem)", received=type(problem).__name__,
                         fix='e.g. compare(random_problem(parse_spec("3-5-3"), m=5, seed=0))')
    if precision not in ("float64", "float32"):
        raise InputError(f"Unknown precision {precision!r}", expected='"float64" or "float32"', received=repr(precision),
                         fix="the precision the candidate computes in, by design")
    if options is not None and (not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values())):
        raise InputError("options must map a source to its keyword options", expected='e.g. {"exact": {"digits": 40}}',
                         received=repr(options)[:120])
    odd = [label for label, fn in (candidates or {}).items() if not callable(fn)]
    if odd:
        raise InputError(f"candidates must map a label to a function: {', '.join(map(repr, odd))} is not one",
                         expected="{label: fn} with fn(problem) -> (cost, grads)", received=type(candidates[odd[0]]).__name__)
    stray = [k for k in options or {} if k not in SOURCE_NAMES]
    if stray:
        raise InputError(f"options names no source: {', '.join(map(repr, stray))}", expected="keys among " + ", ".join(SOURCE_NAMES),
                         received=", ".join(map(repr, options)))


# ---- judging -------------------------------------------------------------------------------

def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), TINY)


def _grad_errors(src: SourceResult, ref: SourceResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """abs error, budget and ratio per partial, honest at the edges of float64.

    NaN is infinitely wrong; an infinity is right only where the referee has the same infinity
    (its exact value overflows float64); an infinite budget judges nothing, so there only exact
    equality passes.
    """
    a, b = src.grad, ref.grad
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - b)
        finite = np.isfinite(a) & np.isfinite(b)
        abs_err = np.where(finite, diff, np.where(a == b, 0.0, np.inf))
        budget = src.budget + ref.budget
        ratio = np.where(abs_err == 0, 0.0, abs_err / np.where(np.isfinite(budget), budget, np.nan))
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    return abs_err, budget, ratio


def _statuses(src: SourceResult, ref: SourceResult, abs_err: np.ndarray, budget: np.ndarray, ratio: np.ndarray,
              unjudged: np.ndarray | None = None) -> np.ndarray:
    status = np.where(ratio <= 1.0, Status.OK.value, Status.OFF.value).astype(object)
    if ref.kink_lo is not None and ref.kink_hi is not None:  # the referee's interval of one-sided values
        at_kink = ~np.isnan(ref.kink_lo)
        slack = np.where(np.isfinite(budget), budget, 0.0)
        inside = at_kink & (src.grad >= ref.kink_lo - slack) & (src.grad <= ref.kink_hi + slack)
        status[inside & (status == Status.OFF.value)] = Status.KINK.value
        status[at_kink & (status == Status.OK.value)] = Status.KINK.value  # right, and worth a note
    for kinks in (src.kinks, ref.kinks):  # a finite-difference stencil across a kink cannot judge
        if kinks is not None:
            status[kinks] = Status.KINK.value
    for checked in (src.checked, ref.checked):
        if checked is not None:
            status[~checked] = Status.UNCHECKED.value
    if unjudged is not None:
        status[unjudged] = Status.UNCHECKED.value
    return status.astype(str)


def _cost_verdict(src: SourceResult, ref: SourceResult) -> tuple[float | None, bool | None]:
    if src.cost is None or ref.cost is None:
        return None, None
    if not (math.isfinite(src.cost) and math.isfinite(ref.cost)):  # right only as the same infinity
        return (0.0, True) if src.cost == ref.cost else (math.inf, False)
    err = abs(src.cost - ref.cost)
    budget = src.cost_budget + ref.cost_budget
    return err, (err <= budget if math.isfinite(budget) else err == 0)


def _verdict(src: SourceResult, ref: SourceResult, referee: str, *, unjudged: np.ndarray | None = None) -> SourceVerdict:
    abs_err, budget, ratio = _grad_errors(src, ref)
    status = _statuses(src, ref, abs_err, budget, ratio, unjudged)
    with np.errstate(invalid="ignore"):
        rel = _rel(src.grad, ref.grad)
    cost_err, cost_ok = _cost_verdict(src, ref)
    return SourceVerdict(src.name, referee, abs_err, rel, budget, ratio, status, cost_err, cost_ok)


def judge(problem: Problem, sources: dict[str, SourceResult], *, diagnose: bool = True) -> Comparison:
    """Judge gathered sources: against ``exact`` when present, else pairwise against the first."""
    names = tuple(scalar_names(problem.network))
    notes: list[str] = []
    if "exact" in sources:
        referee = "exact"
        ref = sources["exact"]
        uncertified = np.isnan(ref.grad)  # a referee without a value judges nothing: no source is blamed there
        verdicts = {n: _verdict(s, ref, "exact", unjudged=uncertified) for n, s in sources.items() if n != "exact"}
        notes += [f"exact: {note}" for note in ref.notes]  # e.g. a fall-back from full to scalable mode, a ReLU kink
        uncertified = np.flatnonzero(uncertified)
        if uncertified.size:
            listed = ", ".join(names[i] for i in uncertified[:5]) + (f" and {uncertified.size - 5} more" if uncertified.size > 5 else "")
            notes.append(f"exact: could not certify ∂J/∂θ for {listed} at the highest precision tried, so no source is "
                         "judged there; please report the problem (gradverify verify … --report) — it is a limit of the oracle")
    else:
        referee = "pairwise"
        order = list(sources)
        verdicts = {}
        if len(order) >= 2:
            base = sources[order[0]]
            for n in order[1:]:
                verdicts[n] = _verdict(sources[n], base, order[0])
            notes.append(f"No exact source: {', '.join(order[1:])} judged against {order[0]}; a disagreement cannot say who is wrong.")
    diagnoses: dict[str, list] = {}
    if diagnose and referee == "exact":
        from gradverify.diagnose import diagnose as run_diagnosis

        for n, v in verdicts.items():
            if not v.ok:
                diagnoses[n] = run_diagnosis(problem, sources[n], sources["exact"])
    return Comparison(problem, names, dict(sources), referee, verdicts, diagnoses, tuple(notes))


def compare(problem: Problem, sources: Sequence[str] = SOURCE_NAMES, *, candidates: dict[str, Callable] | None = None,
            progress=None, options: dict | None = None, precision: Precision = "float64") -> Comparison:
    """Gather the sources on ``problem`` and judge them. See ``gather`` for the arguments."""
    return judge(problem, gather(problem, sources, candidates=candidates, progress=progress, options=options, precision=precision))


def assert_gradient_matches(fn: Callable, problem: Problem, *, sources: Sequence[str] = ("exact",), label: str = "candidate",
                            precision: Precision = "float64", timeout: float = 60.0, separate: bool = True) -> Comparison:
    """Raise ``GradientMismatchError`` unless ``fn(network, params, X, Y) -> (J, grads)`` matches the exact gradient.

    ``fn`` has the CLI's native signature and runs in its own process (``separate=False``: in this
    one), so a print, ``sys.exit`` or crash in it is its failure (``CandidateError``), not the test run's.
    For pytest: the message names the parameter, every source's value, the errors, the budget
    ratio, the problem and the diagnosis. Returns the ``Comparison`` when it passes.
    """
    from gradverify.candidates import apart

    call, proc = apart(fn, timeout=timeout, separate=separate)
    try:
        comp = compare(problem, sources, candidates={label: call}, precision=precision)
    finally:
        proc.close()
    v = comp.verdicts[label]
    if not v.ok:
        raise GradientMismatchError(mismatch_message(comp, label))
    return comp


def mismatch_message(comp: Comparison, label: str, *, limit: int = 5) -> str:
    """A multi-line account of where ``label`` disagrees with the referee."""
    v = comp.verdicts[label]
    lines = [f"{label} disagrees with the {v.referee} gradient on {comp.problem!r}", comp.summary()]
    if v.cost_ok is False:
        lines.append(f"cost: {label} {comp.sources[label].cost!r} vs {v.referee} {comp.sources[v.referee].cost!r} (abs error {v.cost_abs_err:.3g})")
    bad = np.flatnonzero(v.status == "off")
    for i in bad[np.argsort(-v.ratio[bad])][:limit]:
        vals = ", ".join(f"{s} {r.grad[i]:.10g}" for s, r in comp.sources.items())
        lines.append(f"  {comp.names[i]}: {vals}; abs error {v.abs_err[i]:.3g}, rel error {v.rel_err[i]:.3g}, "
                     f"budget {v.budget[i]:.3g} (ratio {v.ratio[i]:.3g})")
    if len(bad) > limit:
        lines.append(f"  … and {len(bad) - limit} more parameters off")
    return "\n".join(lines)

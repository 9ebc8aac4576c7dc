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

from gradverify.budget import FLOAT64_ULPS, TINY, cost_magnitude, float64_budget, term_magnitudes
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

    OK = "ok"      # within the error budget
    OFF = "off"    # outside it: the source is wrong here
    KINK = "kink"  # a non-differentiable point: no single right answer to compare with


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
    status: np.ndarray  # per parameter: "ok", "off" or "kink"
    cost_abs_err: float | None
    cost_ok: bool | None

    @property
    def n_off(self) -> int:
        return int(np.count_nonzero(self.status == "off"))

    @property
    def ok(self) -> bool:
        return self.n_off == 0 and self.cost_ok is not False

    @property
    def worst(self) -> int:
        """Index of the parameter with the largest error/budget ratio."""
        return int(np.nanargmax(np.where(self.status == "kink", -np.inf, self.ratio))) if self.ratio.size else -1


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
    def verdict(self) -> str:
        """``"pass"`` when every judged source is within budget everywhere, else ``"fail"``."""
        return "pass" if all(v.ok for v in self.verdicts.values()) else "fail"

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
            ratios = np.where(v.status[sl] == "kink", 0.0, v.ratio[sl])
            worst = int(np.argmax(ratios)) + start if size else start
            out[name] = {"n": size, "off": int(np.count_nonzero(v.status[sl] == "off")),
                         "kinks": int(np.count_nonzero(v.status[sl] == "kink")),
                         "worst": self.names[worst], "worst_ratio": float(v.ratio[worst]) if size else 0.0}
            start += size
        return out

    def summary(self) -> str:
        """One line saying who is wrong, where and by how much — or that all agree."""
        judged = ", ".join(self.verdicts) or "nothing"
        if self.verdict == "pass":
            kinks = sum(int(np.count_nonzero(v.status == "kink")) for v in self.verdicts.values())
            ref = "the exact values" if self.referee == "exact" else "each other"
            verb = "agrees" if len(self.verdicts) == 1 else "agree"
            return (f"PASS: {judged} {verb} with {ref} on all {len(self.names)} parameters"
                    + (f" ({kinks} finite-difference entries sit on a ReLU kink)" if kinks else "") + ".")
        parts = []
        for name in self.wrong:
            v = self.verdicts[name]
            if v.n_off:
                w = v.worst
                where = f"{v.n_off} of {len(self.names)} parameters (worst {self.names[w]}: error {v.abs_err[w]:.3g} = {v.ratio[w]:.3g}× its budget)"
            else:
                where = "its gradient, but its cost is off"
            if self.referee == "exact":
                parts.append(f"{name} is wrong at {where}")
            else:
                parts.append(f"{name} and {v.referee} disagree at {where}; no exact value to say which is wrong (add the exact source)")
        diag = [d.message for name in self.wrong for d in self.diagnoses.get(name, [])[:1]]
        return "FAIL: " + "; ".join(parts) + "." + (" Diagnosis: " + " ".join(diag) if diag else "")

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
            params = []
            for i, pname in enumerate(self.names):
                row = {"name": pname, "values": {s: float(r.grad[i]) for s, r in self.sources.items()}}
                row["budgets"] = {s: float(v.budget[i]) for s, v in self.verdicts.items()}
                row["abs_err"] = {s: float(v.abs_err[i]) for s, v in self.verdicts.items()}
                row["rel_err"] = {s: float(v.rel_err[i]) for s, v in self.verdicts.items()}
                row["ratio"] = {s: float(v.ratio[i]) for s, v in self.verdicts.items()}
                row["status"] = {s: str(v.status[i]) for s, v in self.verdicts.items()}
                params.append(row)
            out["parameters"] = params
        return out


def gather(problem: Problem, sources: Sequence[str] = SOURCE_NAMES, *, candidates: dict[str, Callable] | None = None,
           progress: Callable[[str, int, int], None] | None = None, options: dict | None = None) -> dict[str, SourceResult]:
    """Compute the requested sources (and candidates) on ``problem``.

    Args:
        sources: names among ``SOURCE_NAMES``.
        candidates: ``{label: fn}`` with ``fn(problem) -> (cost, grads)``.
        progress: ``progress(source, done, total)`` for the slow sources.
        options: per-source keyword options, e.g. ``{"exact": {"digits": 40}}``.

    Raises:
        InputError: an unknown source name.
        CandidateError: a candidate raised or returned the wrong form.
    """
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
        out[label] = candidate_source(label, fn, problem)
    return out


# ---- judging -------------------------------------------------------------------------------

def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), TINY)


def _verdict(src: SourceResult, ref: SourceResult, referee: str) -> SourceVerdict:
    abs_err = np.abs(src.grad - ref.grad)
    abs_err = np.where(np.isnan(abs_err), np.inf, abs_err)  # a NaN gradient is infinitely wrong
    budget = src.budget + ref.budget
    ratio = abs_err / budget
    status = np.where(ratio <= 1.0, "ok", "off").astype(object)
    if src.kinks is not None:
        status[src.kinks] = "kink"
    if ref.kinks is not None:
        status[ref.kinks] = "kink"
    cost_err = cost_ok = None
    if src.cost is not None and ref.cost is not None:
        cost_err = abs(src.cost - ref.cost) if math.isfinite(src.cost) else math.inf
        cost_ok = cost_err <= src.cost_budget + ref.cost_budget
    return SourceVerdict(src.name, referee, abs_err, _rel(src.grad, ref.grad), budget, ratio, status.astype(str), cost_err, cost_ok)


def judge(problem: Problem, sources: dict[str, SourceResult], *, diagnose: bool = True) -> Comparison:
    """Judge gathered sources: against ``exact`` when present, else pairwise against the first."""
    names = tuple(scalar_names(problem.network))
    notes: list[str] = []
    if "exact" in sources:
        referee = "exact"
        ref = sources["exact"]
        verdicts = {n: _verdict(s, ref, "exact") for n, s in sources.items() if n != "exact"}
        notes += [f"exact: {note}" for note in ref.notes]  # e.g. a fall-back from full to scalable mode, a ReLU kink
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
            progress=None, options: dict | None = None) -> Comparison:
    """Gather the sources on ``problem`` and judge them. See ``gather`` for the arguments."""
    return judge(problem, gather(problem, sources, candidates=candidates, progress=progress, options=options))


def assert_gradient_matches(fn: Callable, problem: Problem, *, sources: Sequence[str] = ("exact",), label: str = "candidate") -> Comparison:
    """Raise ``GradientMismatchError`` unless ``fn(problem)`` matches the exact gradient.

    For pytest: the message names the parameter, every source's value, the errors, the budget
    ratio, the problem and the diagnosis. Returns the ``Comparison`` when it passes.
    """
    comp = compare(problem, sources, candidates={label: fn})
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

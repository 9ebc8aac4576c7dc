"""The verdict on a layer case: every source's partials against the exact ones, per named array.

The same machinery as ``compare`` for the MLP — ``SourceResult`` records with their own error
budgets, ``SourceVerdict`` per source, ratio = |source − referee| / (budget + referee's budget),
≤ 1 passes, status ``ok``/``off``/``kink`` — over the arrays of a layer (``x``, ``w``, ``gamma`` …)
instead of a network's W/b. ``compare.judge`` is tied to a ``Problem``; this module rebuilds the
small verdict step for named arrays of any shape, and uses ``compare``'s records and tolerance
policy (``FLOAT64_ULPS``) unchanged.

Budgets:

- ``exact``: its own rounding to float64 (½ ulp) plus 10^(1 − digits) relative;
- a float64 source (the backprop engine, a candidate): ``FLOAT64_ULPS`` ulps × (1 + log₂ of the
  largest dimension) × the oracle's ``magnitudes`` (a first-order rounding-error analysis of each
  partial, ``exact._float64_magnitudes``); without the exact source, a loose fallback of
  ``_FALLBACK_ULPS`` ulps of the array's largest partial. Calibrated on 150 drawn cases per layer
  (ordinary and saturating scales, kinks): the engine and the corpus's student layers used at most
  27 % of it (softmax loss; under 10 % for most layers), while any classic bug exceeds it by ≥ 10¹⁰;
- ``numeric``: its measured error bar, plus the float64 budget (the bar measures the round-off of
  the finite-difference arithmetic, not a forward value that float64 and extended precision both
  round to the same number).

J (the objective Σ dout ⊙ out, or the loss) is compared too: a candidate whose backward is right
but whose forward is wrong has its J off (``cost_ok`` false), said as "its forward is off".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from gradverify.compare import FLOAT64_ULPS, SourceResult, SourceVerdict, Status
from gradverify.errors import InputError
from gradverify.layers.candidate import Pair, PairResult, align_case, resolve_pair, run_pair
from gradverify.layers.case import LayerCase, scalar_names

__all__ = ["SOURCE_NAMES", "LayerSourceResult", "LayerComparison", "gather_layer", "judge_layer", "compare_layer", "engine_pair"]

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).tiny)
SOURCE_NAMES = ("exact", "backprop", "numeric")
_FALLBACK_ULPS = 1e3


@dataclass(frozen=True)
class LayerSourceResult(SourceResult):
    """A ``compare.SourceResult`` with what the layer judge needs besides.

    Attributes:
        magnitudes: the exact source's float64 rounding scale per partial (the float64 budgets' base).
        problems: a forward/backward pair's returns that could not be used (``candidate.ShapeProblem``).
        cost_magnitude: Σ |dout ⊙ out| of the source's own forward output (what its J rounds).
        result: the raw result record (``ExactLayerGradient``, ``NumericLayerGradient``), for reports and tests.
    """

    magnitudes: np.ndarray | None = None
    problems: tuple = ()
    cost_magnitude: float = 0.0
    result: object = None


@dataclass(frozen=True)
class LayerComparison:
    """Every source on one layer case, judged. Never raises on a mismatch; read ``verdict``."""

    case: LayerCase
    names: tuple[str, ...]
    sources: dict[str, SourceResult]
    referee: str
    verdicts: dict[str, SourceVerdict]
    diagnoses: dict[str, list] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        """``"pass"`` when every judged source is within budget everywhere (and its J agrees), else ``"fail"``."""
        return "pass" if all(v.ok for v in self.verdicts.values()) else "fail"

    @property
    def wrong(self) -> list[str]:
        return [n for n, v in self.verdicts.items() if not v.ok]

    def array_summary(self, source: str) -> dict[str, dict]:
        """Per input array: entries off, kinks, worst ratio and its entry, for one judged source."""
        v = self.verdicts[source]
        out = {}
        for name, sl in self.case.slices().items():
            ratios = np.where(v.status[sl] == "kink", 0.0, v.ratio[sl])
            worst = sl.start + int(np.argmax(ratios)) if ratios.size else sl.start
            out[name] = {"n": sl.stop - sl.start, "off": int(np.count_nonzero(v.status[sl] == "off")),
                         "kinks": int(np.count_nonzero(v.status[sl] == "kink")),
                         "worst": self.names[worst] if ratios.size else "", "worst_ratio": float(v.ratio[worst]) if ratios.size else 0.0}
        return out

    def summary(self) -> str:
        """One line: who is wrong, in which arrays, by how much — or that all agree."""
        judged = ", ".join(self.verdicts) or "nothing"
        n = len(self.names)
        if self.verdict == "pass":
            kinks = int(np.count_nonzero(np.any([v.status == "kink" for v in self.verdicts.values()], axis=0))) if self.verdicts else 0
            ref = "the exact partials" if self.referee == "exact" else "each other"
            verb = "agrees" if len(self.verdicts) == 1 else "agree"
            checked = min(v.n_checked for v in self.verdicts.values()) if self.verdicts else n
            scope = f"all {n}" if checked == n else f"{checked} of {n} (the rest could not be judged: see the notes)"
            return (f"PASS: {judged} {verb} with {ref} on {scope} partials of {self.case.name}"
                    + (f" ({kinks} of them sit on a kink, where any value between the one-sided derivatives is right)" if kinks else "") + ".")
        parts = []
        for name in self.wrong:
            v = self.verdicts[name]
            if v.n_off:
                w = v.worst
                arrays = [a for a, s in self.array_summary(name).items() if s["off"]]
                unusable = [a for a, sl in self.case.slices().items() if np.all(np.isnan(self.sources[name].grad[sl]))]
                if unusable:
                    worst = f"d{', d'.join(unusable)} could not be used"
                else:
                    worst = f"worst {self.names[w]}: error {v.abs_err[w]:.3g} = {v.ratio[w]:.3g}× its budget"
                where = f"{v.n_off} of {n} partials, in d{', d'.join(arrays)} ({worst})"
            else:
                unusable = v.cost_abs_err is None
                parts.append(f"{name} has the right partials, but its forward output " + (
                    "could not be used (not numbers of the expected shape)" if unusable else "is off (J differs)")
                    + ("" if self.referee == "exact" else f", against {v.referee}"))
                continue
            if self.referee == "exact":
                parts.append(f"{name} is wrong at {where}")
            else:
                parts.append(f"{name} and {v.referee} disagree at {where}; no exact value to say which is wrong")
        diag = [d.message for name in self.wrong for d in self.diagnoses.get(name, [])[:1]]
        return "FAIL: " + "; ".join(parts) + "." + (" Diagnosis: " + " ".join(diag) if diag else "")

    def to_dict(self, *, values: bool = True) -> dict:
        """A JSON-ready dict of the whole comparison (floats, strings, lists)."""
        c = self.case
        out: dict = {
            "verdict": self.verdict, "summary": self.summary(), "referee": self.referee,
            "relative_error": "|a - b| / max(|a|, |b|, tiny)",
            "case": {"layer": c.name, "api": [n for n in c.layer.api if n], "dims": dict(c.dims),
                     "settings": {k: v for k, v in c.settings.items()}, "origin": c.origin,
                     "inputs": {n: list(s) for n, s in c.layout()}, "outputs": list(c.layer.outputs), "n_partials": len(self.names)},
            "sources": {n: {"kind": s.kind, "cost": s.cost, "cost_budget": s.cost_budget, "detail": s.detail, "seconds": s.seconds,
                            **dict(s.facts)} for n, s in self.sources.items()},
            "verdicts": {n: {"ok": v.ok, "referee": v.referee, "n_off": v.n_off, "n_kinks": int(np.count_nonzero(v.status == "kink")),
                             "cost_abs_err": v.cost_abs_err, "cost_ok": v.cost_ok,
                             "worst": self.names[v.worst] if v.worst >= 0 else None,
                             "worst_ratio": float(v.ratio[v.worst]) if v.worst >= 0 else None, "arrays": self.array_summary(n)}
                         for n, v in self.verdicts.items()},
            "diagnoses": {n: [d.to_dict() for d in ds] for n, ds in self.diagnoses.items()},
            "notes": list(self.notes),
        }
        if values:
            rows = []
            for i, name in enumerate(self.names):
                rows.append({"name": name, "values": {s: float(r.grad[i]) for s, r in self.sources.items()},
                             "budgets": {s: float(v.budget[i]) for s, v in self.verdicts.items()},
                             "abs_err": {s: float(v.abs_err[i]) for s, v in self.verdicts.items()},
                             "rel_err": {s: float(v.rel_err[i]) for s, v in self.verdicts.items()},
                             "ratio": {s: float(v.ratio[i]) for s, v in self.verdicts.items()},
                             "status": {s: str(v.status[i]) for s, v in self.verdicts.items()}})
            out["parameters"] = rows
        return out

    def __repr__(self) -> str:
        return f"LayerComparison({self.case!r}, {self.verdict}, sources {', '.join(self.sources)})"


# ---- sources -------------------------------------------------------------------------------------

def engine_pair(layer: str) -> Pair:
    """gradverify's own forward/backward pair for ``layer`` (``layers.engine``), labelled ``backprop``."""
    from gradverify.layers import engine

    return resolve_pair(vars(engine), layer, label="backprop")


def _length(case: LayerCase) -> float:
    return 1.0 + math.log2(max(2, *case.dims.values()))


def _objective(case: LayerCase, outputs: Mapping[str, np.ndarray | None]) -> tuple[float | None, float]:
    """J from a source's forward outputs, and Σ|terms| of it (None when an output is unusable)."""
    if case.layer.is_loss:
        loss = outputs.get("loss")
        return (None, 0.0) if loss is None else (float(loss), abs(float(loss)))
    total, mag = 0.0, 0.0
    for o in case.layer.outputs:
        out = outputs.get(o)
        if out is None:
            return None, 0.0
        terms = case.upstream[o] * out
        total += float(terms.sum())
        mag += float(np.abs(terms).sum())
    return total, mag


def _exact_source(case: LayerCase, progress=None, **options) -> LayerSourceResult:
    from gradverify.layers.exact import exact_layer_gradient  # SymPy is slow to import: only when asked for

    t0 = time.perf_counter()
    ex = exact_layer_gradient(case, progress=progress, **options)
    grad = case.flat(ex.grads)
    radius = case.flat(ex.radius)
    budget = np.spacing(np.abs(grad)) / 2 + radius  # its rounding to float64, plus the ball's certified radius
    kink_lo = kink_hi = None
    if ex.kink_lo is not None and ex.kink_hi is not None:
        lo, hi = case.flat(ex.kink_lo), case.flat(ex.kink_hi)
        wide = (hi - lo) > 4 * radius + 2 * np.spacing(np.maximum(np.abs(lo), np.abs(hi)))  # partials a kink reaches
        if wide.any():
            kink_lo, kink_hi = np.where(wide, lo, np.nan), np.where(wide, hi, np.nan)
    return LayerSourceResult("exact", "exact", grad, budget, cost=ex.cost, cost_budget=float(np.spacing(abs(ex.cost))) / 2 + ex.cost_radius,
                             detail=f"SymPy-derived partials ({ex.backend}), certified to {ex.digits} digits",
                             seconds=time.perf_counter() - t0, kink_lo=kink_lo, kink_hi=kink_hi,
                             notes=tuple(ex.notes) + tuple(ex.kink_messages), facts={"digits": ex.digits, "backend": ex.backend},
                             magnitudes=case.flat(ex.magnitudes), result=ex)


def _numeric_source(case: LayerCase, progress=None, **options) -> LayerSourceResult:
    from gradverify.layers.numeric import numeric_layer_gradient

    t0 = time.perf_counter()
    num = numeric_layer_gradient(case, progress=progress, **options)
    grad = case.flat(num.grads)
    kinks = case.flat({k: v.astype(float) for k, v in num.kinks.items()}) > 0
    return LayerSourceResult("numeric", "numeric", grad, case.flat(num.errors) + np.spacing(np.abs(grad)) + TINY,
                             detail=f"finite differences ({num.method}, round-off {num.roundoff}), {num.n_evals} forward evaluations",
                             seconds=time.perf_counter() - t0, kinks=kinks if kinks.any() else None,
                             facts={"method": num.method, "n_evals": num.n_evals}, result=num)


def _pair_source(case: LayerCase, pair: Pair, *, kind_detail: str) -> LayerSourceResult:
    """A float64 source from a forward/backward pair (engine or candidate); its budget is set in ``_budgets``."""
    res: PairResult = run_pair(pair, case)
    grads = {n: (res.grads[n] if res.grads[n] is not None else np.full(s, np.nan)) for n, s in case.layout()}
    cost, cost_mag = _objective(case, res.outputs)
    return LayerSourceResult(pair.label, "float64", case.flat(grads), np.zeros(case.size), cost=cost, detail=kind_detail,
                             seconds=res.seconds, notes=res.notes, facts={"functions": " / ".join(n for n in pair.names if n)},
                             problems=res.problems, cost_magnitude=cost_mag)


def _budgets(case: LayerCase, sources: dict[str, SourceResult]) -> dict[str, SourceResult]:
    """Fill the float64 sources' budgets (they need the exact magnitudes, or the fallback)."""
    exact = sources.get("exact")
    mags_exact = getattr(exact, "magnitudes", None)
    length = FLOAT64_ULPS * EPS * _length(case)
    theta = case.flat({n: case.arrays[n] for n in case.layer.inputs})
    out: dict[str, SourceResult] = {}
    for name, s in sources.items():
        if s.kind == "numeric" and mags_exact is not None:
            # finite differences are computed in float64 too: a forward value that float64 and extended precision
            # round alike (their error bar cannot see it) costs them what it costs any float64 engine
            out[name] = replace(s, budget=s.budget + length * mags_exact)
            continue
        if s.kind != "float64":
            out[name] = s
            continue
        if mags_exact is not None:
            mags = mags_exact
        else:
            ref = sources.get("numeric") or s
            mags = np.zeros(case.size)
            for sl in case.slices().values():
                g = np.nan_to_num(np.abs(ref.grad[sl]), nan=0.0, posinf=0.0)
                mags[sl] = _FALLBACK_ULPS / FLOAT64_ULPS * (g + (g.max() if g.size else 0.0))
        terms = getattr(s, "cost_magnitude", 0.0)  # Σ|dout ⊙ out| of its own output (inf when that is not finite)
        cost_budget = length * ((terms if math.isfinite(terms) else 0.0) + float(np.abs(theta) @ mags)) + TINY
        out[name] = replace(s, budget=length * mags + TINY, cost_budget=cost_budget)
    return out


_SOURCES: dict[str, Callable[..., SourceResult]] = {
    "exact": _exact_source,
    "backprop": lambda case, progress=None, **o: _pair_source(case, engine_pair(case.name), kind_detail="numpy forward/backward pairs, hand-derived rules"),
    "numeric": _numeric_source,
}


def gather_layer(case: LayerCase, sources: Sequence[str] = SOURCE_NAMES, *, candidates: Mapping[str, Pair] | None = None,
                 progress: Callable[[str, int, int], None] | None = None, options: Mapping[str, dict] | None = None,
                 known: Mapping[str, SourceResult] | None = None) -> tuple[LayerCase, dict[str, SourceResult], list[str]]:
    """Compute the requested sources and candidates on ``case``.

    Args:
        sources: names among ``SOURCE_NAMES``.
        candidates: ``{label: Pair}`` (see ``candidate.resolve_pair``).
        progress: ``progress(source, done, total)``.
        options: per-source keyword options, e.g. ``{"exact": {"digits": 40}, "numeric": {"method": "central"}}``.
        known: sources already gathered on this very case (as returned here), used instead of
            computing them again: the exact source of a case many candidates are judged on.

    Returns:
        (the case actually used — dropout reads the mask off a candidate's forward —, the sources, notes).

    Raises:
        InputError: an unknown source name.
        CandidateError: a candidate raised or returned something that is not the API's tuple.
    """
    unknown = [s for s in sources if s not in _SOURCES]
    if unknown or not sources and not candidates:
        raise InputError(f"Unknown gradient source(s): {', '.join(unknown) or '(none given)'}", expected="some of " + ", ".join(SOURCE_NAMES),
                         received=", ".join(sources) or "nothing", fix="pick from exact, backprop, numeric")
    notes: list[str] = []
    for pair in (candidates or {}).values():
        case, more = align_case(pair, case)
        notes += [f"{pair.label}: {n}" for n in more]
    options = options or {}
    out: dict[str, SourceResult] = {}
    for name in sorted(set(sources), key=SOURCE_NAMES.index):  # the referee first
        cb = (lambda done, total, _n=name: progress(_n, done, total)) if progress else None
        out[name] = known[name] if known and name in known else _SOURCES[name](case, progress=cb, **options.get(name, {}))
    for label, pair in (candidates or {}).items():
        out[label] = _pair_source(case, pair, kind_detail=f"candidate {' / '.join(n for n in pair.names if n)}")
    return case, _budgets(case, out), notes


def _verdict(src: SourceResult, ref: SourceResult, referee: str, *, unjudged: np.ndarray | None = None) -> SourceVerdict:
    """``compare``'s rule for named arrays: ratio = |src − ref| / (budgets), NaN infinitely wrong; at a kink a
    value inside the referee's interval of one-sided values is right (``kink``), outside it is ``off``."""
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(src.grad - ref.grad)
        finite = np.isfinite(src.grad) & np.isfinite(ref.grad)
        abs_err = np.where(finite, diff, np.where(src.grad == ref.grad, 0.0, np.inf))
        budget = src.budget + ref.budget
        ratio = np.where(abs_err == 0, 0.0, abs_err / np.where(np.isfinite(budget), budget, np.nan))
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        rel = abs_err / np.maximum(np.maximum(np.abs(src.grad), np.abs(ref.grad)), TINY)
    rel = np.where(np.isnan(rel), np.inf, rel)
    status = np.where(ratio <= 1.0, Status.OK.value, Status.OFF.value).astype(object)
    if ref.kink_lo is not None and ref.kink_hi is not None:
        at_kink = ~np.isnan(ref.kink_lo)
        slack = np.where(np.isfinite(budget), budget, 0.0)
        with np.errstate(invalid="ignore"):
            inside = at_kink & (src.grad >= ref.kink_lo - slack) & (src.grad <= ref.kink_hi + slack)
        status[at_kink & (inside | (status == Status.OK.value))] = Status.KINK.value
    for kinks in (src.kinks, ref.kinks):  # a finite-difference stencil across a kink cannot judge
        if kinks is not None:
            status[kinks] = Status.KINK.value
    if unjudged is not None:  # no referee value there: nobody is blamed
        status[unjudged] = Status.UNCHECKED.value
    cost_err = cost_ok = None
    if src.cost is not None and ref.cost is not None:
        cost_err = abs(src.cost - ref.cost) if math.isfinite(src.cost) else math.inf
        cost_ok = math.isfinite(cost_err) and cost_err <= src.cost_budget + ref.cost_budget
    elif ref.cost is not None and src.kind == "float64":
        cost_ok = False  # its forward output was unusable: that is a failure of its own
    return SourceVerdict(src.name, referee, abs_err, rel, budget, ratio, status.astype(str), cost_err, cost_ok)


def judge_layer(case: LayerCase, sources: Mapping[str, SourceResult], *, notes: Sequence[str] = (), diagnose: bool = True) -> LayerComparison:
    """Judge gathered sources: against ``exact`` when present, else pairwise against the first."""
    names = tuple(scalar_names(case))
    notes = list(notes)
    if "exact" in sources:
        referee, ref = "exact", sources["exact"]
        uncertified = np.isnan(ref.grad)
        verdicts = {n: _verdict(s, ref, "exact", unjudged=uncertified) for n, s in sources.items() if n != "exact"}
        notes += [f"exact: {n}" for n in ref.notes]
        if uncertified.any():
            notes.append(f"exact: could not certify {int(uncertified.sum())} partial(s) at the highest precision tried, so no "
                         "source is judged there; please report the case (--report) — it is a limit of the oracle")
    else:
        referee, order = "pairwise", list(sources)
        verdicts = {n: _verdict(sources[n], sources[order[0]], order[0]) for n in order[1:]}
        if len(order) >= 2:
            notes.append(f"No exact source: {', '.join(order[1:])} judged against {order[0]}; a disagreement cannot say who is wrong.")
    for n, s in sources.items():
        if n != "exact" and s.notes:
            notes.append(f"{n}: {'; '.join(s.notes)}")
    diagnoses: dict[str, list] = {}
    if diagnose:
        from gradverify.layers.diagnose import diagnose_layer

        for n, v in verdicts.items():
            if not v.ok:
                diagnoses[n] = diagnose_layer(case, sources[n], sources.get("exact") or sources[v.referee], v)
    return LayerComparison(case, names, dict(sources), referee, verdicts, diagnoses, tuple(notes))


def compare_layer(case: LayerCase, sources: Sequence[str] = SOURCE_NAMES, *, candidates: Mapping[str, Pair] | None = None,
                  progress=None, options: Mapping[str, dict] | None = None,
                  known: Mapping[str, SourceResult] | None = None) -> LayerComparison:
    """Gather the sources on ``case`` and judge them (see ``gather_layer`` for the arguments)."""
    used, gathered, notes = gather_layer(case, sources, candidates=candidates, progress=progress, options=options, known=known)
    return judge_layer(used, gathered, notes=notes)

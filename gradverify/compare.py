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

import hashlib
import math
import os
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gradverify.errors import GradientMismatchError, GradverifyError, InputError
from gradverify.forward import pre_activations
from gradverify.functions import activation
from gradverify.params import flatten, scalar_names
from gradverify.spec import Problem

__all__ = [
    "SOURCE_NAMES",
    "FLOAT64_ULPS",
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

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).tiny)
SOURCE_NAMES = ("exact", "backprop", "numeric")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

# The tolerance policy, in one place. A float64 engine's partial is a sum of products; its
# rounding error is bounded by a few ulps of the magnitudes it adds up, carried through the
# layers (term_magnitudes). Calibrated against an 80-bit long-double run of the engine over every
# activation × output × regularization at scales 0.3 to 100: the largest error was under 5 % of
# the budget, while a numerical gradient's 1e-9 relative error exceeds it by orders of magnitude.
FLOAT64_ULPS = 2.0


@dataclass(frozen=True)
class SourceResult:
    """One gradient source on one problem: its values and its own error budget (flat, canonical order).

    ``kind`` is ``"exact"``, ``"float64"`` or ``"numeric"``; ``cost`` is None when the source
    gives no cost; ``kinks`` marks entries where the source found a non-differentiable point.
    """

    name: str
    kind: str
    grad: np.ndarray
    budget: np.ndarray
    cost: float | None = None
    cost_budget: float = 0.0
    detail: str = ""
    seconds: float = 0.0
    kinks: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


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

    def array_of(self, index: int) -> str:
        return self.names[index].split("[", 1)[0]

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
                               "seconds": s.seconds, **{k: v for k, v in s.extra.items() if isinstance(v, (int, float, str, bool))}}
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


# ---- error budgets -------------------------------------------------------------------------

def _slopes(act: str, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on |f′(a)| and |f″(a)| measured from the forward function alone (secants).

    The budget needs only their size, so two secants on each side, with a safety factor, do;
    no derivative rule is involved. Saturated units get slopes near 0, which is what keeps the
    budget tight there. Around a ReLU kink the curvature bound is large, as it should be.
    """
    f = activation(act)
    d = 1e-4 * (1.0 + np.abs(A))
    f0, fp, fm = f(A), f(A + d), f(A - d)
    slope = 1.5 * np.maximum(np.abs(fp - f0), np.abs(f0 - fm)) / d + 1e-12
    curv = 1.5 * np.abs(fp - 2 * f0 + fm) / (d * d) + 1e-6
    return slope, curv


def term_magnitudes(problem: Problem) -> np.ndarray:
    """For every partial, a bound on the rounding error of a float64 backprop, in units of eps (flat).

    A first-order running error analysis of the vectorized pass, from forward values only:

    - forward: F⁽ᵏ⁾, the error of A⁽ᵏ⁾, gathers the magnitudes |H⁽ᵏ⁻¹⁾||Wₖ|ᵀ + |bₖ| summed in
      the product plus the error of H⁽ᵏ⁻¹⁾ carried through |Wₖ|; H⁽ᵏ⁾ = f(A⁽ᵏ⁾) carries it with
      the slope |f′| and adds its own rounding;
    - backward: the error term Δ is bounded by D (|h| + |y| over m at the output, |a| + |y| for
      squared error; then D|Wₖ|∘|f′|) and its error G gathers the magnitudes summed in each
      product, the rounding of f′ and the forward error seen through the curvature |f″|;
    - each partial's bound is the magnitudes summed in ΔᵀH plus the errors that Δ and H carry;
      the regularization adds 2c|θ|.

    Slopes and curvatures come from ``_slopes`` (secants of the forward function).
    """
    net, params, X, Y = problem.network, problem.params, problem.X, problem.Y
    m = X.shape[0]
    absW = {k: np.abs(params[f"W{k}"]) for k in range(1, net.depth + 1)}
    Hs, Fh = [np.abs(X)], [np.zeros_like(X)]  # |H⁽ᵏ⁾| and the error bound of H⁽ᵏ⁾
    Fa, slopes, curvs = {}, {}, {}
    H = X
    for k in range(1, net.depth + 1):
        A = H @ params[f"W{k}"].T + params[f"b{k}"]
        Fa[k] = (Hs[-1] + Fh[-1]) @ absW[k].T + np.abs(params[f"b{k}"])
        if k == net.depth:
            break
        act = net.activations[k - 1]
        slopes[k], curvs[k] = _slopes(act, A)
        H = activation(act)(A)
        Hs.append(np.abs(H))
        Fh.append(slopes[k] * Fa[k] + np.abs(H))
    rows_y = np.abs(Y).sum(axis=1, keepdims=True)
    if net.output == "sigmoid":
        out = activation("sigmoid")(A)
        out_slope = _slopes("sigmoid", A)[0]
    elif net.output == "softmax":
        E = np.exp(A - A.max(axis=1, keepdims=True))
        out = E / E.sum(axis=1, keepdims=True) * rows_y
        out_slope = np.ones_like(A) * (1 + rows_y)
    else:
        out, out_slope = np.abs(A), np.ones_like(A)
    D = (np.abs(out) + np.abs(Y)) / m                 # |Δ⁽ᴸ⁾|
    G = D + out_slope * Fa[net.depth] / m              # its error: rounding + forward error
    mags: dict[str, np.ndarray] = {}
    for k in range(net.depth, 0, -1):
        mags[f"W{k}"] = (D + G).T @ Hs[k - 1] + D.T @ Fh[k - 1]
        mags[f"b{k}"] = (D + G).sum(axis=0)
        if k > 1:
            DW = D @ absW[k]
            # f′ evaluated from h (σ′ = h(1 − h), tanh′ = 1 − h²) has an absolute error of an ulp
            # of 1, however small f′ is: saturated units keep that floor.
            G = (G @ absW[k] + DW) * slopes[k - 1] + DW * (1 + slopes[k - 1] + curvs[k - 1] * Fa[k - 1])
            D = DW * slopes[k - 1]
    if net.lam:
        c = net.reg_coefficient(m)
        for name, _ in net.param_shapes:
            if net.is_regularized(name):
                mags[name] = mags[name] + 2 * c * np.abs(params[name])
    return flatten(mags, net)


def float64_budget(problem: Problem, magnitudes: np.ndarray | None = None) -> np.ndarray:
    """The error budget of a correct float64 engine, per parameter (flat, canonical order).

    ``FLOAT64_ULPS`` ulps of the bound from ``term_magnitudes``, times log₂ of the longest sum
    (blocked and pairwise summation make rounding grow like log n, not n).
    """
    mags = term_magnitudes(problem) if magnitudes is None else magnitudes
    length = 1 + math.log2(max(problem.m, *problem.network.sizes))
    return FLOAT64_ULPS * EPS * length * mags + TINY


def cost_magnitude(problem: Problem) -> float:
    """The magnitudes a float64 engine adds up in J (data term and penalty), from forward values.

    Cross-entropies subtract quantities of the size of the pre-activations (y·a, the
    log-sum-exp), so a correct engine's cost carries an error of an ulp of those, not of J.
    """
    net = problem.network
    A = pre_activations(net, problem.params, problem.X)[-1]
    absY = np.abs(problem.Y)
    if net.output == "identity":
        data = float(np.sum((np.abs(A) + absY) ** 2)) / 2
    else:
        lse = np.max(np.abs(A), axis=1, keepdims=True) + math.log(max(A.shape[1], 2))
        data = float(np.sum((absY + 1) * (np.abs(A) + lse)))
    penalty = 0.0
    if net.lam:
        c = net.reg_coefficient(problem.m)
        penalty = c * sum(float(np.sum(p * p)) for n, p in problem.params.items() if net.is_regularized(n))
    return data / problem.m + penalty


def _cost_budget(problem: Problem, cost: float) -> float:
    net = problem.network
    length = net.depth + 1 + math.log2(problem.m * net.sizes[-1] + 1)
    return FLOAT64_ULPS * EPS * length * (cost_magnitude(problem) + abs(cost)) + TINY


# ---- gathering sources ---------------------------------------------------------------------

# Exact results of small problems, kept because grading asks the same questions of every
# submission (the same fixed and generated cases): the oracle runs once per case, not per student.
_EXACT_CACHE: OrderedDict = OrderedDict()
_EXACT_CACHE_SIZE, _EXACT_CACHE_MAX_PARAMS = 1024, 5000


def _problem_key(problem: Problem, options: dict) -> tuple:
    h = hashlib.sha256()
    for name in sorted(problem.params):
        h.update(name.encode())
        h.update(problem.params[name].tobytes())
    h.update(problem.X.tobytes())
    h.update(problem.Y.tobytes())
    return (problem.network, problem.X.shape, h.hexdigest(), tuple(sorted(options.items())))


def _exact_result(problem: Problem, progress, options: dict):
    from gradverify import symbolic  # imported lazily: SymPy is slow to import

    if problem.network.n_params > _EXACT_CACHE_MAX_PARAMS:
        return symbolic.exact_gradient(problem, progress=progress, **options)
    key = _problem_key(problem, options)
    if key in _EXACT_CACHE:
        _EXACT_CACHE.move_to_end(key)
        return _EXACT_CACHE[key]
    ex = _EXACT_CACHE[key] = symbolic.exact_gradient(problem, progress=progress, **options)
    if len(_EXACT_CACHE) > _EXACT_CACHE_SIZE:
        _EXACT_CACHE.popitem(last=False)
    return ex


def _exact_source(problem: Problem, progress=None, **options) -> SourceResult:
    t0 = time.perf_counter()
    ex = _exact_result(problem, progress, options)
    grad = flatten(ex.grads, problem.network)
    digits = ex.digits
    # the exact value's own error after rounding to float64: ½ ulp, plus 10^-digits relative
    budget = np.spacing(np.abs(grad)) / 2 + np.abs(grad) * 10.0 ** (1 - digits) + TINY
    return SourceResult("exact", "exact", grad, budget, cost=float(ex.cost), cost_budget=float(np.spacing(abs(ex.cost))),
                        detail=f"SymPy-derived partials, {ex.mode} mode ({ex.backend}), evaluated at {digits} digits",
                        seconds=time.perf_counter() - t0,
                        extra={"digits": digits, "mode": ex.mode, "backend": ex.backend,
                               "kinks": "; ".join(ex.kinks), "notes": "; ".join(ex.notes), "result": ex})


def _backprop_source(problem: Problem, progress=None, **options) -> SourceResult:
    from gradverify.backprop import backprop

    t0 = time.perf_counter()
    res = backprop(problem)
    seconds = time.perf_counter() - t0
    return SourceResult("backprop", "float64", flatten(res.grads, problem.network), float64_budget(problem),
                        cost=res.cost, cost_budget=_cost_budget(problem, res.cost),
                        detail="numpy vectorized forward/backward pass, hand-derived rules", seconds=seconds)


def _numeric_source(problem: Problem, progress=None, **options) -> SourceResult:
    from gradverify import finite_diff

    t0 = time.perf_counter()
    num = finite_diff.numeric_gradient(problem, progress=progress, **options)
    net = problem.network
    grad = flatten(num.grads, net)
    budget = flatten(num.errors, net) + np.spacing(np.abs(grad)) + TINY
    kinks = flatten({k: v.astype(float) for k, v in num.kinks.items()}, net) > 0 if num.kinks else None
    return SourceResult("numeric", "numeric", grad, budget, detail=f"finite differences ({num.method}), {num.n_evals} forward evaluations",
                        seconds=time.perf_counter() - t0, kinks=kinks, extra={"method": num.method, "n_evals": num.n_evals, "result": num})


_SOURCES: dict[str, Callable[..., SourceResult]] = {"exact": _exact_source, "backprop": _backprop_source, "numeric": _numeric_source}


def candidate_source(name: str, fn: Callable, problem: Problem) -> SourceResult:
    """Run a candidate gradient function on ``problem`` and wrap it as a float64 source.

    ``fn(problem)`` returns ``(cost, grads)`` (``grads`` a dict ``W1, b1, …`` or a flat vector in
    canonical order) or just ``grads``. Its budget is that of a correct float64 engine.
    """
    t0 = time.perf_counter()
    try:
        out = fn(problem)
    except GradverifyError:
        raise
    except Exception as exc:  # the candidate's own failure: say where in its code, not in ours
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if _PACKAGE_DIR not in f.filename]
        where = "; ".join(f"{f.filename}:{f.lineno} in {f.name}" for f in frames[-3:]) or "(no frame outside gradverify)"
        raise InputError(f"The candidate {name!r} raised {type(exc).__name__}: {exc}", received=f"the call failed at {where}",
                         fix="run the candidate on this problem yourself (gradverify verify prints how to rebuild it)") from None
    seconds = time.perf_counter() - t0
    cost, grads = (out if isinstance(out, tuple) and len(out) == 2 else (None, out))
    grad = _as_flat(grads, problem, name)
    c = None if cost is None else float(cost)
    return SourceResult(name, "float64", grad, float64_budget(problem), cost=c,
                        cost_budget=0.0 if c is None else _cost_budget(problem, c), detail="candidate", seconds=seconds)


def _as_flat(grads, problem: Problem, name: str) -> np.ndarray:
    net = problem.network
    if isinstance(grads, dict):
        shapes = dict(net.param_shapes)
        if set(grads) != set(shapes):
            raise InputError(f"The candidate {name!r} returned gradients for the wrong arrays",
                             expected=", ".join(shapes), received=", ".join(map(str, grads)),
                             fix="return one gradient per parameter array, named like the parameters")
        for key, shape in shapes.items():
            if np.shape(grads[key]) != shape:
                raise InputError(f"The candidate {name!r} returned {key} of the wrong shape",
                                 expected=str(shape), received=str(np.shape(grads[key])),
                                 fix="a gradient has the shape of its parameter")
        return flatten(grads, net)
    vec = np.asarray(grads, dtype=np.float64).reshape(-1)
    if vec.size != net.n_params:
        raise InputError(f"The candidate {name!r} returned a gradient of the wrong size",
                         expected=f"{net.n_params} numbers", received=f"{vec.size}",
                         fix="return the gradient in the canonical flat order W1, b1, W2, b2, … (C order)")
    return vec


def gather(problem: Problem, sources: Sequence[str] = SOURCE_NAMES, *, candidates: dict[str, Callable] | None = None,
           progress: Callable[[str, int, int], None] | None = None, options: dict | None = None) -> dict[str, SourceResult]:
    """Compute the requested sources (and candidates) on ``problem``.

    Args:
        sources: names among ``SOURCE_NAMES``.
        candidates: ``{label: fn}`` with ``fn(problem) -> (cost, grads)``.
        progress: ``progress(source, done, total)`` for the slow sources.
        options: per-source keyword options, e.g. ``{"exact": {"digits": 40}}``.
    """
    unknown = [s for s in sources if s not in _SOURCES]
    if unknown:
        raise InputError(f"Unknown gradient source(s): {', '.join(unknown)}", expected="some of " + ", ".join(SOURCE_NAMES),
                         received=", ".join(sources), fix="pick from exact, backprop, numeric")
    options = options or {}
    out: dict[str, SourceResult] = {}
    for name in sorted(set(sources), key=SOURCE_NAMES.index):  # the referee first, then the estimates
        cb = (lambda done, total, _n=name: progress(_n, done, total)) if progress else None
        out[name] = _SOURCES[name](problem, progress=cb, **options.get(name, {}))
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
        for key in ("notes", "kinks"):  # e.g. a fall-back from full to scalable mode, a ReLU kink
            if ref.extra.get(key):
                notes.append("exact: " + ref.extra[key])
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
                diagnoses[n] = run_diagnosis(problem, sources[n], sources["exact"], sources=sources)
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

"""Finite differences that scale: a sample of the partials, and signed random probes of whole gradients.

Every partial by finite differences costs P times a share of a forward pass; for a deep or wide
network that is minutes to hours (a 5-layer 256-wide sigmoid net: about 7 minutes). Two cheaper
checks, both from the forward cost alone (``forward.cost`` and ``finite_diff``), so the
finite-difference side stays independent of the other sources:

- **a sample of the partials** (``sampled_gradient``): n partials drawn at random, every
  parameter array represented, each estimated by central differences of the forward cost with
  the black-box estimator's own error bar (``finite_diff.numeric_gradient_of``). The source says
  which partials it computed (``SourceResult.checked``); the others are reported as unchecked,
  and the verdict states the coverage;
- **random probes** (``probe_sources``): for each judged float64 gradient g (backprop, a
  candidate), k directional derivatives J′(θ; v) along random signed directions v, each compared
  with ⟨g, v⟩ within its error bar — every partial takes part in every probe, so a wrong entry
  anywhere shows up; a failing probe is bisected down to the wrong entries
  (``finite_diff.probe_check``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gradverify.params import flatten, scalar_names
from gradverify.spec import Problem

__all__ = ["SampledGradient", "ProbeResult", "sample_indices", "sampled_gradient", "probe_gradient", "probe_sources", "PROBES"]

#: random signed probes per judged gradient
PROBES = 8


def sample_indices(problem: Problem, n: int, *, seed: int = 0) -> np.ndarray:
    """n flat indices (sorted), drawn at random with every parameter array represented.

    Each array gets at least ``min(its size, max(2, n // (2·arrays)))`` entries (biases are small
    but bugs love them); the rest of the sample is spread in proportion to the arrays' sizes.
    """
    rng = np.random.default_rng(seed)
    shapes = problem.network.param_shapes
    sizes = np.array([math.prod(s) for _, s in shapes])
    P = int(sizes.sum())
    n = min(int(n), P)
    counts = np.minimum(sizes, max(2, n // (2 * len(sizes))))
    while counts.sum() > n:  # more arrays than the sample can give two each: one each, the largest first
        counts[int(np.argmax(counts))] -= 1
    share = (n - counts.sum()) * sizes / P
    counts = np.minimum(sizes, counts + np.floor(share).astype(int))
    order = np.argsort(-(share - np.floor(share)), kind="stable")
    while counts.sum() < n:  # the rounding remainder, to the arrays with the largest fractional share and room left
        for a in order:
            if counts.sum() < n and counts[a] < sizes[a]:
                counts[a] += 1
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    chosen = [start + rng.choice(size, size=count, replace=False) for start, size, count in zip(starts, sizes, counts) if count]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


@dataclass(frozen=True, eq=False)
class SampledGradient:
    """Finite differences of a sample of the partials: NaN where not computed.

    ``grad``, ``error``: flat, canonical order, NaN outside ``checked``; ``method``; ``n_evals``.
    """

    grad: np.ndarray
    error: np.ndarray
    checked: np.ndarray
    method: str
    n_evals: int

    @property
    def n(self) -> int:
        return int(self.checked.sum())


def sampled_gradient(problem: Problem, n: int, *, seed: int = 0,
                     progress: Callable[[int, int], None] | None = None) -> SampledGradient:
    """Central differences of the forward cost for ``n`` sampled partials (see ``sample_indices``)."""
    from gradverify import finite_diff, forward

    net = problem.network
    idx = sample_indices(problem, n, seed=seed)
    theta = flatten(problem.params, net)
    work = {k: v.copy() for k, v in problem.params.items()}
    views = []  # (position in the sample, array view, index inside it), to write a sampled entry in place
    starts, names = {}, []
    offset = 0
    for name, shape in net.param_shapes:
        starts[name] = offset
        names.append(name)
        offset += math.prod(shape)
    bounds = np.array([starts[n_] for n_ in names] + [offset])
    flat = {name: work[name].reshape(-1) for name in names}
    for pos, i in enumerate(idx):
        a = int(np.searchsorted(bounds, i, side="right")) - 1
        views.append((pos, flat[names[a]], int(i - bounds[a])))

    def J(sub: np.ndarray) -> float:
        for pos, arr, j in views:
            arr[j] = sub[pos]
        return float(np.real(forward.cost(net, work, problem.X, problem.Y)))

    res = finite_diff.numeric_gradient_of(J, theta[idx], method="central", progress=progress)
    grad = np.full(theta.size, np.nan)
    error = np.full(theta.size, np.nan)
    grad[idx], error[idx] = res.estimate, res.error
    checked = np.zeros(theta.size, dtype=bool)
    checked[idx] = True
    return SampledGradient(grad, error, checked, res.method, int(res.n_evals))


@dataclass(frozen=True)
class ProbeResult:
    """Signed random probes of one gradient over all its partials, and what the bisection found.

    Attributes:
        source: the gradient probed (``backprop``, a candidate's label).
        passed: every random probe agreed (inconclusive ones at a ReLU kink excepted) and no entry was found wrong.
        probes, failed: random probes made, and how many failed.
        localized: the entries the bisection found wrong (names), with the numeric partial and its error.
        kinked: entries at a non-differentiable point (not judged).
        n_evals, n_params: forward evaluations used, and P.
        method: the directional estimator.
    """

    source: str
    passed: bool
    probes: int
    failed: int
    localized: list[str] = field(default_factory=list)
    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)
    kinked: list[str] = field(default_factory=list)
    n_evals: int = 0
    n_params: int = 0
    method: str = ""

    def describe(self) -> str:
        if self.probes == 0:
            return f"not probed, {self.method}: " + ", ".join(self.localized[:8]) + (" …" if len(self.localized) > 8 else "")
        head = (f"{self.probes - self.failed} of {self.probes} random signed probes of all {self.n_params:,} partials agree "
                f"({self.method}, {self.n_evals:,} evaluations)")
        if self.passed:
            return head
        where = ", ".join(self.localized[:8]) + (" …" if len(self.localized) > 8 else "")
        return head + (f"; bisection found {len(self.localized)} wrong entr{'y' if len(self.localized) == 1 else 'ies'}: {where}"
                       if self.localized else "; the bisection ran out of evaluations before reaching single entries")

    def to_dict(self) -> dict:
        return {"passed": self.passed, "probes": self.probes, "failed": self.failed, "localized": self.localized,
                "numeric": {k: list(v) for k, v in self.numeric.items()}, "kinked": self.kinked, "n_evals": self.n_evals,
                "n_params": self.n_params, "method": self.method, "summary": self.describe()}


def probe_gradient(problem: Problem, grad: np.ndarray, *, source: str = "gradient", k: int = PROBES, seed: int = 0) -> ProbeResult:
    """Probe one flat gradient (canonical order) with k signed random directions and bisect failures."""
    from gradverify import finite_diff

    names = scalar_names(problem.network)
    grad = np.asarray(grad, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(grad))
    if bad.size:  # no probe can weigh a NaN or an infinity: the entries themselves are the finding
        return ProbeResult(source, False, 0, 0, [names[i] for i in bad[:50]], {}, [], 0, grad.size,
                           f"none: {bad.size:,} entr{'y' if bad.size == 1 else 'ies'} NaN or infinite")
    rep = finite_diff.probe_check(problem, grad, k=k, seed=seed)
    random = [p for p in rep.probes if p.level == 0]
    failed = sum(not p.passed and not p.kinked for p in random)
    return ProbeResult(source, bool(rep.passed), len(random), failed, [names[i] for i in rep.localized],
                       {names[i]: (float(v[0]), float(v[1])) for i, v in rep.numeric.items()},
                       [names[i] for i in rep.kinked], int(rep.n_evals), int(rep.n_params), rep.method)


def probe_sources(comp, *, k: int = PROBES, seed: int = 0) -> dict[str, ProbeResult]:
    """Probe every judged engine of a comparison (not the exact referee, not finite differences themselves)."""
    out = {}
    for name, src in comp.sources.items():
        if src.kind in ("exact", "numeric"):
            continue
        out[name] = probe_gradient(comp.problem, src.grad, source=name, k=k, seed=seed)
    return out

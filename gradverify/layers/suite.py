"""Property checks of one layer over Hypothesis-drawn cases: gradverify's own sources, or a candidate.

Every drawn case (shapes, strides, paddings, modes, values: ``layers.strategies``) is compared
against the exact oracle; the first failure is shrunk to the smallest case that still fails and
reported with the command that reproduces it.

    from gradverify.layers import run_layer_suite, resolve_pair
    res = run_layer_suite("conv", resolve_pair(vars(my_layers), "conv"), examples=50)
    assert res.ok, res.failure.summary()
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gradverify.layers.candidate import Pair
from gradverify.layers.case import LayerCase
from gradverify.layers.judge import LayerComparison, compare_layer

__all__ = ["LayerSuiteRecord", "LayerSuiteResult", "run_layer_suite", "reproduce_layer_command"]


@dataclass(frozen=True)
class LayerSuiteRecord:
    """One case tried: its description, verdict, worst error/budget ratio and time."""

    case: str
    verdict: str
    worst_ratio: float
    seconds: float
    error: str = ""


@dataclass
class LayerSuiteResult:
    """What a layer suite found: every case tried and the shrunk failure, if any."""

    layer: str
    seed: int
    examples: int
    records: list[LayerSuiteRecord] = field(default_factory=list)
    failure: LayerComparison | None = None
    failure_error: str = ""
    minimal: LayerCase | None = None
    reproduce: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.failure_error


def reproduce_layer_command(case: LayerCase) -> str:
    """The ``gradverify layer`` command line that rebuilds a random ``case``."""
    origin = dict(kv.split("=", 1) for kv in case.origin.split() if "=" in kv)
    parts = ["gradverify layer", case.name, "--shape " + ",".join(f"{k}={v}" for k, v in case.dims.items())]
    parts += [f"--set {k}={v}" for k, v in case.settings.items() if v not in ("", None)]
    parts += [f"--seed {origin.get('seed', 0)}", f"--scale {origin.get('scale', 1)}"]
    if case.origin.endswith("integers"):
        parts.append("--integers")
    return " ".join(parts)


# The oracle at 20 digits: a verdict needs float64's 16 and a margin, and each case is cheaper.
_OPTIONS = {"exact": {"digits": 20}}


def run_layer_suite(layer: str, candidate: Pair | None = None, *, examples: int = 30, seed: int = 0,
                    dims: Mapping[str, int] | None = None, settings: Mapping[str, object] | None = None, max_dim: int = 4,
                    progress: Callable[[int, int], None] | None = None) -> LayerSuiteResult:
    """Check ``layer`` over ``examples`` drawn cases; shrink the first failure.

    Args:
        layer: a catalogue name.
        candidate: a forward/backward pair (``resolve_pair``); None checks gradverify's own
            backprop engine and finite differences against the exact oracle.
        examples: how many cases to try.
        seed: the Hypothesis seed; the same seed draws the same cases.
        dims, settings: held fixed (text values are converted); the rest is drawn.
        max_dim: the largest dimension drawn.
        progress: ``progress(done, total)``.

    Returns:
        A ``LayerSuiteResult``.
    """
    from hypothesis import HealthCheck, Phase, find, settings as hsettings
    from hypothesis.errors import NoSuchExample, Unsatisfiable

    from gradverify.layers.strategies import layer_cases

    result = LayerSuiteResult(layer, seed, examples)
    sources = ("exact",) if candidate else ("exact", "backprop", "numeric")
    cands = {candidate.label: candidate} if candidate else None
    t0 = time.perf_counter()

    def fails(case: LayerCase) -> bool:
        t = time.perf_counter()
        try:
            comp = compare_layer(case, sources, candidates=cands, options=_OPTIONS)
        except Exception as exc:  # a candidate that crashes on a case fails it
            rec = LayerSuiteRecord(repr(case), "error", float("inf"), time.perf_counter() - t, f"{type(exc).__name__}: {exc}")
        else:
            worst = max((float(v.ratio[v.worst]) for v in comp.verdicts.values() if v.worst >= 0), default=0.0)
            rec = LayerSuiteRecord(repr(case), comp.verdict, worst, time.perf_counter() - t)
        result.records.append(rec)
        if progress:
            progress(min(len(result.records), examples), examples)
        return rec.verdict != "pass"

    hs = hsettings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck),
                   phases=[Phase.generate, Phase.shrink])
    from gradverify.layers.case import parse_settings
    from gradverify.layers.catalogue import get_layer

    fixed = {k: v for k, v in parse_settings(get_layer(layer), settings).items() if settings and k in settings}
    try:
        minimal = find(layer_cases(layer, dims=dims and {k: int(v) for k, v in dims.items()}, settings=fixed, max_dim=max_dim),
                       fails, settings=hs, random=random.Random(seed))
    except (NoSuchExample, Unsatisfiable):
        minimal = None
    if minimal is not None:
        result.minimal, result.reproduce = minimal, reproduce_layer_command(minimal)
        try:
            result.failure = compare_layer(minimal, sources, candidates=cands, options=_OPTIONS)
        except Exception as exc:
            result.failure_error = f"{type(exc).__name__}: {exc} on {minimal!r}"
    result.seconds = time.perf_counter() - t0
    return result

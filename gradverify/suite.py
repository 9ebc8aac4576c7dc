"""Property checks over random architectures: the project's own engines, or a user's candidate.

Hypothesis draws networks and problems (``strategies``); every one is compared against the exact
oracle; the first failure is shrunk to the smallest network, batch and scale that still fail,
and reported with the exact expected values and how to reproduce it.

    from gradverify.suite import check_candidate
    from gradverify.strategies import Family
    def test_my_backprop():                       # inside a user's own pytest suite
        check_candidate(my_cost_and_grad, family=Family.lecture(), examples=50)   # raises GradientMismatchError, shrunk
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gradverify.compare import Comparison, compare, mismatch_message
from gradverify.errors import CandidateError, GradientMismatchError, InternalError
from gradverify.profiles import Profile, get_profile
from gradverify.reproduce import reproduce_command
from gradverify.spec import Problem

if TYPE_CHECKING:
    from gradverify.strategies import Family

__all__ = ["SuiteRecord", "SuiteResult", "run_suite", "check_candidate", "reproduce_command"]


@dataclass(frozen=True)
class SuiteRecord:
    """One architecture tried: its spec, size, verdict and worst error/budget ratio."""

    spec: str
    n_params: int
    m: int
    origin: str
    verdict: str
    worst_ratio: float
    seconds: float
    error: str = ""


@dataclass
class SuiteResult:
    """What a suite run found: every case tried, and the shrunk failure if any."""

    seed: int
    examples: int
    records: list[SuiteRecord] = field(default_factory=list)
    failure: Comparison | None = None
    failure_error: str = ""
    minimal: Problem | None = None  # the shrunk failing problem (also when comparing it raised)
    shrunk: bool = True  # False when the failing case is one of the extremes, judged before the search
    seconds: float = 0.0
    family: str = ""  # what was drawn, in words

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.failure_error

    @property
    def per_second(self) -> float:
        return len(self.records) / self.seconds if self.seconds else 0.0


# The oracle's scalable mode: as exact as full mode (tests/test_symbolic.py cross-checks them to
# 1e-25) and 3–10× cheaper on the small networks a suite draws, which is most of a case's time.
_ORACLE = {"exact": {"mode": "scalable"}}


class _Stop(Exception):
    """A candidate that timed out: every further case (shrinking included) would wait as long, so stop."""

    def __init__(self, error: CandidateError, problem: Problem):
        super().__init__(str(error))
        self.error, self.problem = error, problem


@dataclass(frozen=True)
class Judged:
    """One case judged: the comparison, or the error of a candidate that crashed on it; and the seconds it took."""

    comparison: Comparison | None
    error: str
    seconds: float


def judge_case(problem: Problem, *, sources: Sequence[str], candidates: dict | None) -> Judged:
    """Compare ``sources`` (and ``candidates``) on ``problem``; a candidate that raises fails the case, anything else is ours."""
    from gradverify.candidate_process import CandidateTimeout

    t = time.perf_counter()
    try:
        comp = compare(problem, sources, candidates=candidates, options=_ORACLE)
    except CandidateTimeout:
        raise  # every further case would wait as long: run_suite stops the search
    except CandidateError as exc:
        return Judged(None, f"{type(exc).__name__}: {exc}", time.perf_counter() - t)
    return Judged(comp, "", time.perf_counter() - t)


def run_suite(candidate: Callable[[Problem], tuple] | None = None, *, profile: str | Profile | None = None,
              settings_: dict | None = None, examples: int = 100, seed: int = 0, max_params: int = 60,
              saturating: bool | None = None, family: Family | None = None, progress: Callable[[int, int], None] | None = None,
              cluster=None) -> SuiteResult:
    """Check over ``examples`` random architectures; shrink the first failure.

    Args:
        candidate: ``fn(problem) -> (J, grads)``; None checks the project's own engines
            (backprop and finite differences) against the exact oracle.
        profile: the profile whose networks to draw (candidates of a fixed architecture).
        examples: how many architectures to try.
        seed: the Hypothesis seed; the same seed draws the same cases.
        max_params, saturating: the largest network, and whether to draw saturating scales (used
            when no ``family`` is given; None: yes for gradverify's own sources, no for a candidate,
            whose cases then reach pre-activations up to where the textbook cost is still finite).
        family: the ``strategies.Family`` to draw from (activations, outputs, regularization
            convention, bias regularization, saturation, maximum sizes).
        progress: ``progress(done, total)``.
        cluster: a connected ``gradverify.cluster.Cluster``: the cases are judged there as tasks
            (the search and its shrinking stay here, and find the same case). A candidate must
            then travel to the workers (``gradverify.suite_remote.FileCandidate``).

    The cases are the profile's case space (``casespace``), the same ``grade`` draws from: the
    search, then (for a candidate, when the search passed) its extremes: many classes, units near
    the textbook limit. A candidate that runs past its time limit (a ``CandidateTimeout``) ends the search
    at once: the case is reported without shrinking.
    """
    from gradverify.candidate_process import CandidateTimeout
    from gradverify.strategies import Family

    from gradverify.casespace import case_space

    family = family if family is not None else Family(max_params=max_params, saturating=saturating)
    prof = get_profile(profile) if isinstance(profile, str) else profile
    settings_ = prof.resolve(settings_) if prof else {}
    space = case_space(prof, settings_, family=family, candidate=candidate is not None)
    result = SuiteResult(seed=seed, examples=examples, family=space.describe())
    sources: Sequence[str] = ("exact",) if candidate else ("exact", "backprop", "numeric")
    cands = {"candidate": candidate} if candidate else None
    judge = functools.partial(judge_case, sources=sources, candidates=cands)
    t0 = time.perf_counter()

    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import Flaky, NoSuchExample, Unsatisfiable

    # Long (~80 lines): the search, its one callback and the four ways it can end (a failure, a
    # timeout, nothing found, answers that changed) share ``result``; read in one place.
    hs = settings(max_examples=examples, database=None, deadline=None, derandomize=False,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
    strategy = space.strategy()
    if cluster is not None:  # the same search; every case it will draw judged on the cluster first
        from gradverify.suite_remote import ClusterJudge

        judge = ClusterJudge(cluster, judge, candidate=candidate is not None)
        judge.prefetch(strategy, hs, seed, progress)

    def fails(problem: Problem) -> bool:
        try:
            j = judge(problem)
        except CandidateTimeout as exc:
            raise _Stop(exc, problem) from None
        net = problem.network
        if j.comparison is None:  # the candidate crashed on this case: it fails it
            rec = SuiteRecord(net.compact, net.n_params, problem.m, str(problem.origin), "error", float("inf"), j.seconds, j.error)
        else:
            worst = max((float(v.ratio[v.worst]) for v in j.comparison.verdicts.values() if v.worst >= 0), default=0.0)
            rec = SuiteRecord(net.compact, net.n_params, problem.m, str(problem.origin), j.comparison.verdict, worst, j.seconds)
        result.records.append(rec)
        if progress and cluster is None:  # on a cluster, the prefetch reports progress
            progress(min(len(result.records), examples), examples)
        return rec.verdict != "pass"

    def search() -> Problem | None:
        try:
            return find(strategy, fails, settings=hs, random=random.Random(seed))
        except (NoSuchExample, Unsatisfiable):
            pass
        # The extremes after a search that passed (a failure it finds is shrunk; the extremes are
        # already small): a search of a few dozen cases reaches them only sometimes.
        extreme = next((p for p in space.extremes(seed) if fails(p)), None)
        result.shrunk = extreme is None
        return extreme

    try:
        minimal = search()
    except _Stop as stop:
        result.minimal = stop.problem
        result.records.append(SuiteRecord(stop.problem.network.compact, stop.problem.network.n_params, stop.problem.m,
                                          str(stop.problem.origin), "error", float("inf"), 0.0, str(stop.error)))
        result.failure_error = f"{type(stop.error).__name__}: {stop.error} on {stop.problem!r} (not shrunk: every case would wait as long)"
        result.seconds = time.perf_counter() - t0
        return result
    except Flaky:  # failed on a case, then passed when the same case was replayed
        minimal = None
        failed = next((r for r in result.records if r.verdict != "pass"), None)
        result.failure_error = ("the answers changed between calls on the same case: a case failed"
                                + (f" ({failed.spec}, m = {failed.m}, {failed.origin})" if failed else "")
                                + " and passed when it was replayed (global state, randomness or caching in the candidate?)")
        if candidate is None:  # our own engines are deterministic: this is a bug of ours
            raise InternalError("gradverify's own sources gave different answers on the same case", received=result.failure_error) from None
    if minimal is not None:
        result.minimal = minimal
        try:
            j = judge(minimal)
        except CandidateTimeout as exc:
            j = Judged(None, f"{type(exc).__name__}: {exc}", 0.0)
        result.failure = j.comparison
        if j.comparison is None:
            result.failure_error = f"{j.error} on {minimal!r}"
    result.seconds = time.perf_counter() - t0
    return result


def check_candidate(fn: Callable, *, profile: str = "native", settings_: dict | None = None, family: Family | None = None,
                    examples: int = 50, seed: int = 0, max_params: int = 60, timeout: float = 10.0,
                    separate: bool = True) -> SuiteResult:
    """For a user's pytest suite: raise ``GradientMismatchError`` with the shrunk failing case.

    Args:
        fn: the candidate, called as the profile says (``native``: ``fn(network, params, X, Y) -> (J, grads)``).
        profile, settings_: how it is called (``gradverify.profiles``).
        family: the networks and problems to draw from, e.g. ``Family.lecture()`` for an engine
            that implements only the lecture's network (default: every activation, output and convention).
        examples, seed: how many cases, and the Hypothesis seed.
        max_params: the largest network (when no ``family`` is given).
        timeout: seconds one call may take.
        separate: run ``fn`` in its own forked process (a ``print``, ``sys.exit`` or crash in it is
            its failure, not the test run's); False calls it in this process.

    Raises:
        GradientMismatchError: a case failed; the message has the smallest failing case, the
            values, the diagnosis and the command that reproduces it.
    """
    from gradverify.candidates import apart

    call, proc = apart(fn, profile=profile, settings_=settings_, timeout=timeout, separate=separate)
    try:
        res = run_suite(call, profile=profile, settings_=settings_, examples=examples, seed=seed, max_params=max_params, family=family)
    finally:
        proc.close()
    if res.failure is not None:
        p = res.failure.problem
        found = "smallest failing case" if res.shrunk else "failing case (an extreme of the case space, not shrunk)"
        raise GradientMismatchError(mismatch_message(res.failure, "candidate") + f"\n{found}: {p!r}\n"
                                    f"reproduce: {reproduce_command(p, profile=profile)} (with your candidate), or "
                                    f"rerun with seed={seed}")
    if res.failure_error:
        raise GradientMismatchError(f"the candidate failed: {res.failure_error}"
                                    + (f"\nreproduce: {reproduce_command(res.minimal, profile=profile)} (with your candidate)"
                                       if res.minimal is not None and res.minimal.origin.rebuildable else ""))
    return res

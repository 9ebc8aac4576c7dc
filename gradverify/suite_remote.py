"""The suite on a Dask cluster: Hypothesis searches here, the costly three-way judgements run as tasks.

Hypothesis draws one case, waits for its answer, and chooses the next from the answers so far,
so its search cannot be cut into tasks as it stands. It does not need to be. With a fixed seed,
as long as every answer is "passes", the cases it draws are fixed, so the search runs twice:

1. the draw pass (:meth:`ClusterJudge.prefetch`): the same ``find`` as ``run_suite``'s, every
   case answered "passes" at once and kept; then all of them are judged on the cluster, in
   parallel;
2. the real pass: ``run_suite``'s own ``find``, where each case's answer comes from pass 1. It
   draws the same cases up to the first failure (its answers so far are the same), then shrinks
   it; a case pass 1 did not judge (a shrinking step) is judged as a task of its own.

So the search, its shrinking, the smallest failing case and its reproduce command are those of a
run on one machine. Each answer of pass 1 is used once: a case asked again (Hypothesis replays a
failure before it reports it) is judged again, as on one machine, so a candidate whose answers
change between calls is still reported as flaky.

A candidate travels to the workers as its source (:class:`FileCandidate`): no shared filesystem.
"""

from __future__ import annotations

import hashlib
import random
import threading
import types
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from gradverify.cluster import Lost
from gradverify.errors import InternalError
from gradverify.profiles import Profile, local_candidate
from gradverify.spec import Problem
from gradverify.suite import Judged

__all__ = ["ClusterJudge", "FileCandidate", "case_key"]


def case_key(problem: Problem) -> str:
    """A digest of everything a case is: network, parameters, data, origin."""
    h = hashlib.sha256(repr((problem.network, problem.origin)).encode())
    arrays = [problem.params[k] for k in sorted(problem.params)] + [problem.X, problem.Y]
    if problem.labels is not None:
        arrays.append(problem.labels)
    for a in arrays:
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class ClusterJudge:
    """``judge(problem) -> Judged`` answered from the cluster; a drop-in for ``suite.judge_case``.

    Args:
        cluster: a connected ``gradverify.cluster.Cluster``.
        judge: the picklable function a worker runs on each case (``suite.judge_case`` bound
            to the sources and candidates).
        candidate: a candidate is judged (so a worker dying on a case is the candidate's crash,
            not ours).
    """

    def __init__(self, cluster, judge: Callable[[Problem], Judged], *, candidate: bool):
        self.cluster, self.judge, self.candidate = cluster, judge, candidate
        self._ready: dict[str, list[Judged]] = {}
        self.prefetched = self.single = 0  # cases judged in the draw pass / one at a time afterwards

    def prefetch(self, strategy, settings, seed: int, progress: Callable[[int, int], None] | None = None) -> None:
        """The draw pass: every case the search would draw if all passed, judged on the cluster."""
        from hypothesis import find
        from hypothesis.errors import NoSuchExample, Unsatisfiable

        _load_what_judging_loads()
        drawn: list[Problem] = []

        def keep(problem: Problem) -> bool:
            drawn.append(problem)
            return False

        try:
            find(strategy, keep, settings=settings, random=random.Random(seed))
        except (NoSuchExample, Unsatisfiable):
            pass
        tasks = ((case_key(p), _judge_arrived, (self.judge, p)) for p in drawn)
        for n, (key, outcome) in enumerate(self.cluster.stream(tasks, name="suite"), 1):
            self._ready.setdefault(key, []).append(self._judged(outcome))
            if progress:
                progress(n, len(drawn))
        self.prefetched = len(drawn)

    def __call__(self, problem: Problem) -> Judged:
        ready = self._ready.get(case_key(problem))
        if ready:
            return ready.pop(0)
        self.single += 1  # a shrinking step, or a case asked again: judged now, as one task
        ((_, outcome),) = self.cluster.stream([(None, _judge_arrived, (self.judge, problem))], name="suite")
        return self._judged(outcome)

    def _judged(self, outcome: object) -> Judged:
        if isinstance(outcome, Judged):
            return outcome
        if not isinstance(outcome, Lost):
            raise InternalError("a suite task returned something else than a judgement", received=type(outcome).__name__)
        if outcome.kind == "worker-died":
            if self.candidate:  # trusted code that crashes its process: the candidate's failure on this case
                return Judged(None, f"CandidateError: the process running the candidate died on this case ({outcome.detail})", 0.0)
            raise InternalError("a Dask worker died while judging gradverify's own sources", received=outcome.detail)
        raise outcome.error  # what judging the case raised, raised here as it would be on one machine


def _load_what_judging_loads() -> None:
    """Import, here, the modules judging a case imports (the sources load lazily).

    Hypothesis draws some values from the constants of the local modules loaded in its process
    (not those of installed packages), so what is loaded steers the cases drawn. On one machine
    the sources' modules are loaded while the first case is judged; here no case is judged
    locally, so they are loaded before the search, and both runs draw the same cases.
    """
    from gradverify.problems import debug_problem
    from gradverify.suite import judge_case

    judge_case(debug_problem(), sources=("exact", "backprop", "numeric"), candidates=None)


def _judge_arrived(judge: Callable[[Problem], Judged], problem: Problem) -> Judged:
    """On a worker: judge a case on fresh copies of its arrays.

    Arrays unpickled from the wire can sit at any byte offset and be read-only; numpy's SIMD
    sums then group terms differently, and an error budget (a sum of magnitudes) came out a few
    ulps off the one computed on one machine. Fresh, aligned copies give the same numbers.
    """
    fresh = replace(problem, params={k: np.array(v) for k, v in problem.params.items()}, X=np.array(problem.X),
                    Y=np.array(problem.Y), labels=None if problem.labels is None else np.array(problem.labels))
    return judge(fresh)


_LOADED: dict[str, Callable] = {}  # per process: a candidate module is executed once per worker
_LOADING = threading.Lock()


class FileCandidate:
    """A trusted candidate that travels as its file's source and is rebuilt where it is called.

    Called as ``fn(problem) -> (J, grads)``, like ``profiles.local_candidate``; pickling it
    carries the source, the target, the profile and its settings, never a function. The file
    must be one module: a worker has none of its siblings.

    Args:
        path: the candidate's ``.py`` file (read now).
        target: the function (or ``Class.method``) to call.
        profile, settings: how to call it.
    """

    def __init__(self, path: str | Path, target: str, profile: Profile, settings: dict):
        path = Path(path)
        self.path, self.source = str(path), path.read_bytes()
        self.target, self.profile, self.settings = target, profile, {**settings, "target": target}
        self._fn: Callable | None = None

    def __repr__(self) -> str:
        return f"FileCandidate({Path(self.path).name}:{self.target}, {self.profile.name} profile)"

    def __getstate__(self) -> dict:
        return {**vars(self), "_fn": None}

    def __call__(self, problem: Problem):
        if self._fn is None:
            self._fn = self._load()
        return self._fn(problem)

    def _load(self) -> Callable:
        digest = hashlib.sha256(self.source + repr((self.path, self.target, self.profile.name, self.settings)).encode()).hexdigest()
        with _LOADING:
            if digest not in _LOADED:
                # Compiled under the client's path, so a traceback names the file the user knows.
                module = types.ModuleType(f"_gradverify_candidate_{digest[:16]}")
                module.__file__ = self.path
                exec(compile(self.source, self.path, "exec"), vars(module))
                _LOADED[digest] = local_candidate(vars(module), self.profile, self.settings)
            return _LOADED[digest]

"""Advisory robustness: code right on the assignment's data that breaks when a batch lacks a class.

The graded cases honour the assignment's data contract (every class present, m ≥ K), because the
real data set always has every digit and code that builds its one-hot matrix from the labels present
(``np.unique(y)``, ``pd.get_dummies(y)``, ``OneHotEncoder()`` without ``categories=``) is right
there. The same code fails on a mini-batch or a small test where some class is missing. This check
runs one such case — the classic debug network with m = K − 1, so class 0 never occurs — and says
what happened and the likely cause. It is worth 0 points by default (a profile may give it some):
advice, not a penalty for something the assignment never asked.
"""

from __future__ import annotations

from dataclasses import replace

from gradverify.problems import debug_problem
from gradverify.spec import Problem

__all__ = ["CLASSES_ABSENT", "CAUSE", "classes_absent_problem", "classes_absent_verdict"]

CLASSES_ABSENT = "classes_absent"
CAUSE = ("the one-hot matrix is sized from the labels present (np.unique(y), pd.get_dummies(y), OneHotEncoder() "
         "without categories=) instead of from num_labels")


def classes_absent_problem(problem: Problem) -> Problem | None:
    """The debug problem of ``problem``'s network at λ = 0 with m = K − 1 (class 0 absent); None when
    the network is not a classifier with at least two classes."""
    net = problem.network
    K = net.sizes[-1]
    if net.output == "identity" or K < 2:
        return None
    return debug_problem(replace(net, lam=0.0), m=K - 1)


def classes_absent_verdict(problem: Problem, *, error: str | None = None, cost_ok: bool | None = None,
                           n_ok: int = 0, n_params: int = 0) -> tuple[bool, str]:
    """Whether the submission was right on ``problem`` (see ``classes_absent_problem``), and what to tell
    the student: what happened, and the cause it names.

    Args:
        problem: the case with classes absent.
        error: how the call failed (an exception, a wrong shape), if it did.
        cost_ok, n_ok, n_params: how its answer compared with the exact one, if it answered.
    """
    labels = sorted(set(int(v) for v in problem.labels)) if problem.labels is not None else []
    K = problem.network.sizes[-1]
    absent = [k for k in range(K) if k not in labels]
    case = (f"a batch in which some classes are absent (m = {problem.m}; classes {', '.join(map(str, labels))} of 0..{K - 1} "
            f"occur, {', '.join(map(str, absent))} never; counted from 0)")
    if error is None and cost_ok is not False and n_params and n_ok == n_params:
        return True, f"Right also on {case}."
    what = f"your function failed: {error}" if error else (
        "your cost is wrong" + (f" and {n_params - n_ok} of {n_params} partials are wrong" if n_ok < n_params else "")
        if cost_ok is False else f"{n_params - n_ok} of {n_params} partials are wrong")
    return False, (f"On {case}, {what}. The likely cause: {CAUSE}. On the assignment's data every class occurs, so this "
                   "costs no points; size the one-hot matrix with num_labels to make your code right on any batch.")

"""The rubric: one small function per check, each returning a ``Check`` record.

Checks, in the order a student should read them:

1. ``loads``: the file imports and the function exists;
2. ``shapes``: what it returns has the profile's form, shapes and a numeric dtype;
3. ``cost`` and ``gradient_fixed``: against the exact values on the fixed cases (the classic debug
   network at λ = 0 and λ = 3);
4. ``gradient_random``: against the exact values on Hypothesis-generated cases (sizes, m, λ,
   saturating scales); the first failure is shrunk to the smallest failing case;
5. ``self_consistency``: the gradient against finite differences of the submission's *own* cost;
   a wrong gradient that agrees with a wrong cost passes the classic gradient check — here it
   still fails ``cost`` and ``gradient_*``, and the diagnosis says so;
6. ``determinism`` (the same output twice) and ``inputs_unmodified``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradverify.compare import Comparison, candidate_source, float64_budget, gather, judge
from gradverify.finite_diff import numeric_gradient_of
from gradverify.grading.protocol import CallResult
from gradverify.grading.runner import Runner, StudentError, same_value
from gradverify.params import flatten, unflatten
from gradverify.profiles import Call
from gradverify.spec import Problem

__all__ = ["CHECK_TITLES", "Check", "Answer", "not_reached", "loads", "cost", "gradient_fixed", "determinism",
           "inputs_unmodified", "self_consistency", "gradient_random", "judge_fixed"]

CHECK_TITLES = {
    "loads": "The submission loads and defines the function",
    "shapes": "The return value has the expected form and shapes",
    "cost": "Cost equals the exact value (fixed cases)",
    "gradient_fixed": "Gradient equals the exact gradient (fixed cases, incl. the classic debug network)",
    "gradient_random": "Gradient equals the exact gradient (generated networks, batch sizes, λ, parameter scales)",
    "self_consistency": "Gradient agrees with finite differences of your own cost",
    "determinism": "The same output twice",
    "inputs_unmodified": "The inputs are left unmodified",
}


@dataclass
class Check:
    """One rubric item: passed or not, points, and a message written for the student."""

    name: str
    passed: bool
    points: float
    max_points: float
    message: str

    @property
    def title(self) -> str:
        return CHECK_TITLES.get(self.name, self.name)


@dataclass(frozen=True)
class Answer:
    """What the submission answered on one fixed case, and how that call went."""

    title: str
    problem: Problem
    cost: float
    grads: dict
    call: Call
    result: CallResult


def _check(name: str, rubric: dict, passed: bool, message: str) -> Check:
    points = float(rubric.get(name, 0.0))
    return Check(name, passed, points if passed else 0.0, points, message)


def not_reached(name: str, rubric: dict) -> Check:
    """A check never reached: 0 points, and it says why."""
    return _check(name, rubric, False, "Not checked: an earlier check failed.")


def loads(rubric: dict, passed: bool, message: str) -> Check:
    """``loads``: the file imports and the function exists (``message`` says which way)."""
    return _check("loads", rubric, passed, message)


def shapes(rubric: dict, passed: bool, message: str) -> Check:
    """``shapes``: every answer had the profile's form (``message`` names the first that did not)."""
    return _check("shapes", rubric, passed, message)


def judge_fixed(answers: list[Answer]) -> list[tuple[str, Comparison]]:
    """Each fixed case's answer judged against the exact oracle."""
    comps = []
    for a in answers:
        exact = gather(a.problem, ("exact",))
        cand = candidate_source("yours", lambda _p, J=a.cost, grads=a.grads: (J, grads), a.problem)
        comps.append((a.title, judge(a.problem, {**exact, "yours": cand}, diagnose=False)))
    return comps


def cost(rubric: dict, comps: list[tuple[str, Comparison]]) -> Check:
    """``cost``: the cost equals the exact value on every fixed case."""
    msgs = []
    for title, comp in comps:
        if comp.verdicts["yours"].cost_ok is False:
            msgs.append(f"{title}: your cost {comp.sources['yours'].cost:.10g}, expected {comp.sources['exact'].cost:.10g}")
    return _check("cost", rubric, not msgs, "\n".join(msgs) or "The cost matches the exact value on every fixed case.")


def gradient_fixed(rubric: dict, comps: list[tuple[str, Comparison]]) -> Check:
    """``gradient_fixed``: the gradient equals the exact one on every fixed case."""
    msgs = []
    for title, comp in comps:
        v = comp.verdicts["yours"]
        if v.n_off:
            w = v.worst
            msgs.append(f"{title}: {v.n_off} of {len(comp.names)} partials are wrong; worst {comp.names[w]}: "
                        f"yours {comp.sources['yours'].grad[w]:.10g}, expected {comp.sources['exact'].grad[w]:.10g}")
    return _check("gradient_fixed", rubric, not msgs,
                  "\n".join(msgs) or "The gradient matches the exact gradient on every fixed case.")


def determinism(rubric: dict, runner: Runner, first: Answer) -> Check:
    """``determinism``: the first fixed case, called again, gives the same output."""
    _, again = runner.raw(first.problem)
    same = again.ok and same_value(again.value, first.result.value)
    return _check("determinism", rubric, same, "The same inputs gave the same output twice." if same else
                  "Called twice with the same inputs, the function returned different results (global state? randomness?).")


def inputs_unmodified(rubric: dict, first: Answer) -> Check:
    """``inputs_unmodified``: the arguments of the first call, as the worker saw them after it."""
    changed = []
    after = first.result.args_after or {}
    for i, (sent, back) in enumerate(zip(first.call.args, after.get("args", first.call.args))):
        if not same_value(np.asarray(sent) if isinstance(sent, np.ndarray) else sent, back):
            changed.append(f"argument {i + 1}")
    for key, value in (first.call.attrs or {}).items():
        if not same_value(value, (after.get("attrs") or {}).get(key, value)):
            changed.append(f"self.{key}")
    return _check("inputs_unmodified", rubric, not changed, "The inputs were left unmodified." if not changed else
                  f"The function modified its inputs ({', '.join(changed)}); copy arrays before changing them in place.")


def self_consistency(rubric: dict, runner: Runner, at: Answer) -> tuple[Check, bool | None]:
    """``self_consistency``: the gradient at ``at`` against finite differences of the submission's own cost.

    Returns the check and whether the gradient was consistent (None: it could not be told).
    """
    net = at.problem.network

    def own_cost(theta: np.ndarray) -> float:
        J, _ = runner(at.problem.with_params(unflatten(theta, net)))
        return J

    try:
        num = numeric_gradient_of(own_cost, flatten(at.problem.params, net), method="central")
    except (StudentError, ValueError) as exc:
        return _check("self_consistency", rubric, False, f"Could not differentiate your cost numerically: {exc}"), None
    g = flatten(at.grads, net)
    ok = np.abs(g - num.estimate) <= num.error + float64_budget(at.problem) + np.spacing(np.abs(g))
    consistent = bool(np.all(ok))
    return _check("self_consistency", rubric, consistent, "Your gradient agrees with finite differences of your own cost."
                  if consistent else f"Your gradient disagrees with finite differences of your own cost at "
                  f"{int(np.count_nonzero(~ok))} of {g.size} parameters: the cost and the gradient do not describe the same "
                  "function."), consistent


def gradient_random(rubric: dict, suite, *, target: str, profile: str, seed: int) -> Check:
    """``gradient_random``: the generated cases of a suite run (``suite.SuiteResult``)."""
    from gradverify.suite import reproduce_command

    if suite.ok:
        return _check("gradient_random", rubric, True,
                      f"The cost and gradient match the exact ones on all {len(suite.records)} generated cases.")
    what = (f"the smallest failing case (shrunk) is {suite.failure.problem!r}" if suite.failure is not None
            else suite.failure_error)
    how = (reproduce_command(suite.failure.problem, candidate="YOURFILE.py:" + target, profile=profile)
           if suite.failure is not None else f"seed {seed}")
    return _check("gradient_random", rubric, False, f"A generated case failed; {what}. Reproduce it: {how}.")

"""The rubric: one small function per check, each returning a ``Check`` record.

Checks, in the order a student should read them:

1. ``loads``: the file imports and the function exists;
2. ``shapes``: what it returns has the profile's form, shapes and a numeric dtype;
3. ``cost`` and ``gradient_fixed``: against the exact values on the fixed cases — the classic
   debug network at λ = 0 and λ = 3 *and* its hidden variants (``cases``): answers known by heart
   for the debug network earn nothing alone;
4. ``gradient_random``: against the exact values on Hypothesis-generated cases drawn from the
   batch's secret seed (the first failure shrunk to the smallest failing case) and on a large
   network;
5. ``self_consistency``: the gradient against finite differences of the submission's *own* cost,
   at several points (the debug network at λ = 3 and every hidden variant);
6. ``determinism``: every fixed case again, in a fresh process, in another order, interleaved
   with other cases — nothing kept from the first calls can make the answers agree;
7. ``inputs_unmodified``: the arrays are passed as read-only memory on every call; a write into
   them anywhere fails this check (and the call is made again with copies).

The gradient points (``GRADIENT_CHECKS``) need evidence that the gradient is a backpropagation:
right on a large network, at the cost of a few forward passes (``timing``). A gradient whose cost
grows with the number of parameters is a numerical gradient, and one with no usable answer on
the large network cannot be told from one: ``withhold_gradient_points`` then takes the gradient
points back, whatever its accuracy on the small cases.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from gradverify.compare import Comparison, candidate_source, float64_budget, gather, judge
from gradverify.grading.cases import Case
from gradverify.grading.protocol import CallResult
from gradverify.grading.runner import Runner, StudentError, same_value
from gradverify.params import flatten, unflatten

__all__ = ["CHECK_TITLES", "GRADIENT_CHECKS", "Check", "Answer", "not_reached", "not_graded", "loads", "shapes", "judge_fixed", "cost",
           "gradient_fixed", "self_consistency", "gradient_random", "determinism", "inputs_unmodified", "classes_absent",
           "withhold_gradient_points"]

CHECK_TITLES = {
    "loads": "The submission loads and defines the function",
    "shapes": "The return value has the expected form and shapes",
    "cost": "Cost equals the exact value (fixed cases)",
    "gradient_fixed": "Gradient equals the exact gradient (the classic debug network and hidden variants of it)",
    "gradient_random": "Gradient equals the exact gradient (generated networks, batch sizes, λ, parameter scales)",
    "self_consistency": "Gradient agrees with finite differences of your own cost",
    "determinism": "The same output again, in a fresh process and another order",
    "inputs_unmodified": "The inputs are left unmodified",
    "classes_absent": "Advice: right also on a batch in which some classes are absent",
}
GRADIENT_CHECKS = ("gradient_fixed", "gradient_random", "self_consistency")


@dataclass
class Check:
    """One rubric item: passed or not, points, a message in the grader's words, and the student's own text apart."""

    name: str
    passed: bool
    points: float
    max_points: float
    message: str
    details: str = ""  # what the submission itself said (exception, traceback): student text, shown apart

    @property
    def title(self) -> str:
        return CHECK_TITLES.get(self.name, self.name)


@dataclass(frozen=True)
class Answer:
    """What the submission answered on one fixed case, and the call's result."""

    case: Case
    cost: float
    grads: dict
    result: CallResult


def _check(name: str, rubric: dict, passed: bool, message: str, details: str = "") -> Check:
    points = float(rubric.get(name, 0.0))
    return Check(name, passed, points if passed else 0.0, points, message, details)


def not_reached(name: str, rubric: dict) -> Check:
    """A check never reached: 0 points, and it says why."""
    return _check(name, rubric, False, "Not checked: an earlier check failed.")


def not_graded(name: str, rubric: dict) -> Check:
    """A check of a submission the grader could not grade: 0 points for now, and not the student's fault."""
    return _check(name, rubric, False, "Not graded: the grader could not grade this submission (not your fault; your "
                  "instructor has the details and will grade it again).")


def loads(rubric: dict, passed: bool, message: str, details: str = "") -> Check:
    """``loads``: the file imports and the function exists (``message`` says which way)."""
    return _check("loads", rubric, passed, message, details)


def shapes(rubric: dict, passed: bool, message: str, details: str = "") -> Check:
    """``shapes``: every answer had the profile's form (``message`` names the first that did not)."""
    return _check("shapes", rubric, passed, message, details)


def judge_fixed(answers: list[Answer]) -> list[tuple[Case, Comparison]]:
    """Each fixed case's answer judged against the exact oracle."""
    comps = []
    for a in answers:
        problem = a.case.problem
        exact = gather(problem, ("exact",))
        cand = candidate_source("yours", lambda _p, J=a.cost, grads=a.grads: (J, grads), problem)
        comps.append((a.case, judge(problem, {**exact, "yours": cand}, diagnose=False)))
    return comps


def cost(rubric: dict, comps: list[tuple[Case, Comparison]]) -> Check:
    """``cost``: the cost equals the exact value on every fixed case, hidden variants included."""
    msgs = []
    for case, comp in comps:
        if comp.verdicts["yours"].cost_ok is False:
            msgs.append(f"{case.title}: your cost {comp.sources['yours'].cost:.10g}, expected {comp.sources['exact'].cost:.10g}")
    if msgs and len(msgs) < len(comps) and all(c.hidden for c, comp in comps if comp.verdicts["yours"].cost_ok is False):
        msgs.append("Right on the debug network but not on its hidden variants: answers that fit only the published "
                    "case earn no points.")
    return _check("cost", rubric, not msgs, "\n".join(msgs) or "The cost matches the exact value on every fixed case.")


def gradient_fixed(rubric: dict, comps: list[tuple[Case, Comparison]]) -> Check:
    """``gradient_fixed``: the gradient equals the exact one on every fixed case, hidden variants included."""
    msgs, wrong = [], []
    for case, comp in comps:
        v = comp.verdicts["yours"]
        if v.n_off:
            wrong.append(case)
            w = v.worst
            msgs.append(f"{case.title}: {v.n_off} of {len(comp.names)} partials are wrong; worst {comp.names[w]}: "
                        f"yours {comp.sources['yours'].grad[w]:.10g}, expected {comp.sources['exact'].grad[w]:.10g}")
    if wrong and all(c.hidden for c in wrong):
        msgs.append("Right on the debug network but not on its hidden variants: answers that fit only the published "
                    "case earn no points.")
    return _check("gradient_fixed", rubric, not msgs,
                  "\n".join(msgs) or "The gradient matches the exact gradient on every fixed case.")


def self_consistency(rubric: dict, runner: Runner, points: list[Answer]) -> tuple[Check, bool | None]:
    """``self_consistency``: at each point, the gradient against finite differences of the submission's own cost.

    Returns the check and whether the gradient was consistent everywhere (None: it could not be told).
    """
    from gradverify.finite_diff import numeric_gradient_of

    for at in points:
        problem, net = at.case.problem, at.case.problem.network
        asked: list[tuple[np.ndarray, float]] = []  # every point the differentiation asked for, and the cost there

        def own_cost(theta: np.ndarray) -> float:
            J, _ = runner(problem.with_params(unflatten(theta, net)))
            asked.append((theta.copy(), J))
            return J

        try:
            num = numeric_gradient_of(own_cost, flatten(problem.params, net), method="central")
        except StudentError as exc:
            return _check("self_consistency", rubric, False, f"Could not differentiate your cost numerically around the "
                          f"{at.case.title}: {exc.message}", exc.details), None
        except ValueError as exc:
            return _check("self_consistency", rubric, False, f"Could not differentiate your cost numerically around the "
                          f"{at.case.title}: {exc}"), None
        true_cost, moved = _cost_beside(problem, at.cost, asked)
        if moved is not None:
            return _check("self_consistency", rubric, False, f"Around the {at.case.title}, your cost is right at the "
                          f"point but not beside it ({moved}): it does not depend on the parameters alone (answers "
                          "remembered from earlier calls?), so finite differences of it confirm nothing."), False
        g = flatten(at.grads, net)
        ok = np.abs(g - num.estimate) <= num.error + float64_budget(problem) + np.spacing(np.abs(g))
        # A cost that jumps inside the stencil (right at the point, something else beside it) makes
        # the error bars, not the values, agree: too many unsure partials confirm nothing — unless
        # the cost is the true one at every point asked, whose kinks (ReLU) are the function's own.
        unsure = num.error > 1e-6 * (np.abs(g) + np.abs(num.estimate)) + 1e-9
        if not true_cost and np.count_nonzero(unsure) > max(1, g.size // 10):
            return _check("self_consistency", rubric, False, f"Around the {at.case.title}, your cost is not smooth: it "
                          f"jumps between nearby points, so finite differences of it confirm nothing ({int(np.count_nonzero(unsure))} "
                          f"of {g.size} partials unsure)."), False
        if not np.all(ok):
            return _check("self_consistency", rubric, False, f"On the {at.case.title}, your gradient disagrees with finite "
                          f"differences of your own cost at {int(np.count_nonzero(~ok))} of {g.size} parameters: the cost "
                          "and the gradient do not describe the same function."), False
    where = "the " + " and the ".join(a.case.title.split(" (")[0] for a in points)
    return _check("self_consistency", rubric, True, f"Your gradient agrees with finite differences of your own cost "
                  f"(at {len(points)} points: {where})."), True


def _cost_beside(problem, center: float, asked: list[tuple[np.ndarray, float]]) -> tuple[bool, str | None]:
    """Whether the submission's cost is the true one at every point the differentiation asked, and if it
    is right at ``problem``'s point but wrong beside it, where (else None).

    Finite differences of a cost confirm a gradient only when the cost is a function of the
    parameters. A cost right at the point checked (within a correct candidate's budget) is right
    beside it too, a few steps of 1e-5 away, unless it depends on something else: a submission
    that remembers the points it was asked and answers near them with a line drawn through its
    own (wrong) gradient agrees with finite differences, and must not earn this check with it.
    """
    from gradverify.budget import candidate_cost_budget
    from gradverify.forward import cost as forward_cost

    def off(params: dict, J: float) -> bool:
        # the numpy cost is itself within a budget of the exact one: 10 budgets of slack
        with np.errstate(all="ignore"):
            exact = float(forward_cost(problem.network, params, problem.X, problem.Y))
        return not abs(J - exact) <= 10 * candidate_cost_budget(problem.with_params(params))[0]

    if off(problem.params, center):
        return False, None  # wrong at the point already: the cost check says so; a consistent bug is judged by its gradient
    wrong = [J for theta, J in asked if off(unflatten(theta, problem.network), J)]
    if not wrong:
        return True, None
    return False, f"wrong at {len(wrong)} of the {len(asked)} points asked"


def gradient_random(rubric: dict, suite, large: tuple[Case, Comparison | None, str, str], *, target: str, profile: str) -> Check:
    """``gradient_random``: the generated cases of a suite run (``suite.SuiteResult``) and the large network.

    ``large`` is ``(case, comparison or None, why it failed, the student's text)``.
    """
    from gradverify.reproduce import reproduce_command

    case, comp, why, details = large
    large_ok = comp is not None and comp.verdicts["yours"].ok  # cost and gradient, like the generated cases
    large_msg = "" if large_ok else (f"On {case.title}: {why}" if comp is None else
                                     f"On {case.title}: {comp.verdicts['yours'].n_off} of {len(comp.names)} partials are wrong.")
    if suite.ok and large_ok:
        return _check("gradient_random", rubric, True, f"The cost and gradient match the exact ones on all "
                      f"{len(suite.records)} generated cases and on {case.title}.")
    if suite.ok:
        return _check("gradient_random", rubric, False, large_msg, details)
    if suite.failure is not None:
        how = reproduce_command(suite.failure.problem, candidate="YOURFILE.py:" + target, profile=profile)
        found = "the smallest failing case (shrunk) is" if suite.shrunk else "the failing case is"
        what = f"A generated case failed; {found} {suite.failure.problem!r}. Reproduce it: {how}."
    else:
        what = f"A generated case could not be graded: {suite.failure_error}"
    return _check("gradient_random", rubric, False, "\n".join(m for m in (what, large_msg) if m), details)


def determinism(rubric: dict, runner: Runner, answers: list[Answer], others: list[Case], seed: int) -> Check:
    """``determinism``: every fixed case again in a fresh process, shuffled, interleaved with ``others``.

    A fresh process forgets everything the first calls left in memory or in the work folder,
    so an answer memoized from the first time cannot come back the same by luck.
    """
    runner.sandbox.restart()
    order = list(range(len(answers)))
    random.Random(seed).shuffle(order)
    if order == sorted(order):
        order.reverse()
    for k, i in enumerate(order):
        if k < len(others):
            runner.call(others[k].problem, others[k].title)
        first = answers[i]
        again = runner.call(first.case.problem, first.case.title)
        if not (again.ok and same_value(again.value, first.result.value)):
            why = "gave a different result" if again.ok else "failed"
            return _check("determinism", rubric, False, f"Called again with the same inputs (the {first.case.title}), "
                          f"in a fresh process and in another order, the function {why}: global state, randomness, "
                          "or answers remembered from earlier calls?")
    return _check("determinism", rubric, True, f"The same inputs gave the same outputs again ({len(answers)} cases, in a "
                  "fresh process, in another order).")


def inputs_unmodified(rubric: dict, runner: Runner) -> Check:
    """``inputs_unmodified``: no call wrote into its (read-only) inputs."""
    cases = runner.wrote_inputs
    if not cases:
        return _check("inputs_unmodified", rubric, True, f"The inputs were left unmodified ({runner.calls} calls, their "
                      "arrays passed as read-only memory).")
    shown = ", ".join(cases[:3]) + (f" and {len(cases) - 3} more" if len(cases) > 3 else "")
    return _check("inputs_unmodified", rubric, False, f"The function wrote into its input arrays (on: {shown}); numpy "
                  "refused because they were passed read-only. Copy an array before changing it in place "
                  "(y = y.copy(), or y = y - 1 instead of y -= 1).")


def classes_absent(rubric: dict, runner: Runner, problem) -> Check:
    """``classes_absent`` (advisory, 0 points by default): the debug network with m = K − 1, class 0 absent;
    the message names the cause when it fails (a one-hot matrix sized from the labels present)."""
    from gradverify.grading.detect import measure
    from gradverify.grading.robustness import CLASSES_ABSENT, classes_absent_problem, classes_absent_verdict

    case = classes_absent_problem(problem)
    if case is None:
        return _check(CLASSES_ABSENT, rubric, True, "Not applicable: the network is not a classifier.")
    try:
        cost_, grads = runner(case)
    except StudentError as exc:
        passed, message = classes_absent_verdict(case, error=exc.message.replace(" (what it said is below)", ""))
        return _check(CLASSES_ABSENT, rubric, passed, message, exc.details)
    cost_ok, n_ok, n_params, _ = measure(case, cost_, grads)
    return _check(CLASSES_ABSENT, rubric, *classes_absent_verdict(case, cost_ok=cost_ok, n_ok=n_ok, n_params=n_params))


def withhold_gradient_points(checks: dict[str, Check], reason: str) -> None:
    """Take back the gradient points (a numerical gradient), keeping each check's own finding in its message."""
    for name in GRADIENT_CHECKS:
        c = checks.get(name)
        if c is not None:
            checks[name] = Check(name, False, 0.0, c.max_points, f"{reason}\n(What this check found: {c.message})", c.details)

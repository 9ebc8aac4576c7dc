"""Calling a submission through its sandbox the way its assignment profile says, and reading the answer.

The runner is the only place the grader meets the student's answers: every call goes through
``Runner.raw`` (which keeps the count, the slowest call and the output), and every answer through
``Runner.answer`` (which turns a failed call or a wrongly formed value into a ``StudentError``
whose message is written for the student).
"""

from __future__ import annotations

import math

import numpy as np

from gradverify.grading.protocol import CallResult
from gradverify.grading.sandbox import Sandbox
from gradverify.profiles import Call, Profile, ResultError
from gradverify.spec import Problem

__all__ = ["Runner", "StudentError", "describe_failure", "same_value"]


class StudentError(Exception):
    """A call that did not give a usable answer; the message is for the student."""


def describe_failure(res: CallResult, target: str) -> str:
    """One paragraph for the student: what went wrong when ``target`` was called."""
    what = {
        "exception": f"{target} raised {res.error}",
        "target": f"cannot call {target}: {res.error}",
        "unsupported": f"{target} returned something that cannot be graded: {res.error}",
        "timeout": f"{target} did not finish in time (an infinite loop, or far too slow)",
        "cpu": f"{target} used up its CPU time",
        "memory": f"{target} ran out of memory",
        "crashed": f"the process running {target} died ({res.error})",
        "protocol": f"the process running {target} broke the grading protocol ({res.error})",
        "load": f"the submission did not load: {res.error}",
        "setup": f"the grader could not build its sandbox: {res.error} (not your fault; tell the instructor)",
    }.get(res.kind, f"{target}: {res.kind} {res.error}")
    tb = (res.traceback or "").strip()
    return what + (f"\n\n```\n{tb[-1500:]}\n```" if tb and res.kind == "exception" else "")


def same_value(a, b) -> bool:
    """Structural equality of returned/sent values, NaN equal to NaN, exact for numbers."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a.astype(float)) & np.isnan(b.astype(float)))))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


class Runner:
    """Calls the submission through the sandbox as the profile says, and reads the answers.

    Args:
        sandbox: the submission's sandbox.
        profile, settings: how to call it.
    """

    def __init__(self, sandbox: Sandbox, profile: Profile, settings: dict):
        self.sandbox, self.profile, self.settings = sandbox, profile, settings
        self.stdout: list[str] = []
        self.target = settings.get("target", profile.target)
        self.slowest, self.calls = 0.0, 0

    def raw(self, problem: Problem, *, return_args: bool = False) -> tuple[Call, CallResult]:
        """Call the submission on ``problem``; return the call made and what happened."""
        call = self.profile.call_for(problem, self.settings)
        res = self.sandbox.call(call.target, call.args, call.kwargs, attrs=call.attrs, return_args=return_args)
        self.calls += 1
        self.slowest = max(self.slowest, res.elapsed)
        if res.stdout:
            self.stdout.append(res.stdout)
        return call, res

    def answer(self, problem: Problem, res: CallResult) -> tuple[float, dict]:
        """``(J, grads)`` read from a call's result.

        Raises:
            StudentError: the call failed, or returned something of the wrong form.
        """
        if not res.ok:
            raise StudentError(describe_failure(res, self.target))
        try:
            return self.profile.read(problem, self.settings, res.value)
        except ResultError as exc:
            raise StudentError(f"{self.target} returned the wrong form: {exc.detail}") from None

    def __call__(self, problem: Problem) -> tuple[float, dict]:
        return self.answer(problem, self.raw(problem)[1])

"""Calling a submission through its sandbox the way its assignment profile says, and reading the answer.

The runner is the only place the grader meets the student's answers. Every call goes through
``Runner.call``, which

* passes the arrays as read-only memory (``Sandbox.call``): a submission that writes into its
  inputs fails with numpy's "read-only" error, which is recorded as a modification of the inputs
  of that case, and the call is made again with writable copies so that the rest of the grading
  can go on — on every call, not only the first;
* keeps the count, the slowest call, the output, and the cheapest CPU time per network size
  (for ``timing``);

and every answer through ``Runner.answer``, which turns a failed call or a wrongly formed value
into a ``StudentError`` with the grader's words apart from the student's own text.
"""

from __future__ import annotations

import math
import re

import numpy as np

from gradverify.errors import CandidateError
from gradverify.grading.protocol import CallResult
from gradverify.grading.sandbox import Sandbox
from gradverify.profiles import Profile, ResultError
from gradverify.spec import Problem

__all__ = ["Runner", "StudentError", "describe_failure", "same_value"]

# numpy's words when a read-only array is written: item or slice assignment, ufunc out=, in-place
# methods, setflags, resize. Student text, but faking it only costs the student.
_WROTE_INPUTS = re.compile(r"(destination|output array|array) is read-only|cannot set WRITEABLE flag|does not own its data")


class StudentError(CandidateError):
    """A call that did not give a usable answer.

    ``message`` is the grader's sentence; ``details`` what the student's code itself said
    (exception, traceback), shown apart.
    """

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.message, self.details = message, details

    def __str__(self) -> str:
        return self.message


def describe_failure(res: CallResult, target: str) -> tuple[str, str]:
    """``(the grader's words, the student's text)`` for a call of ``target`` that failed.

    What the worker reported (an exception, a traceback, why a value cannot be sent, why the
    file did not load) was written in the student's process: it goes to the student's text.
    What the sandbox itself observed (a timeout, a death, a broken protocol) is the grader's.
    """
    worker_said = {
        "exception": f"{target} raised an exception",
        "target": f"cannot call {target}",
        "unsupported": f"{target} returned something that cannot be graded",
        "load": "the submission did not load",
        "cpu": f"{target} used up its CPU time",
        "memory": f"{target} ran out of memory",
    }
    if res.kind == "load" and not res.traceback:  # refused by the copy step, or reported again: the grader's words
        return f"the submission did not load: {res.error}", ""
    if res.kind in worker_said:
        details = "\n\n".join(part.strip() for part in (res.error, res.traceback) if part and part.strip())
        return worker_said[res.kind] + (" (what it said is below)" if details else ""), details
    sandbox_saw = {
        "timeout": f"{target} did not finish in time (an infinite loop, or far too slow)",
        "crashed": f"the process running {target} died",
        "protocol": f"the process running {target} broke the grading protocol and was stopped",
        "budget": f"the submission used up its time budget ({target} is too slow, or was made to wait)",
        "setup": "the grader could not build its sandbox (not your fault; tell the instructor)",
    }
    what = sandbox_saw.get(res.kind, f"{target} failed ({res.kind})")
    return what + (f": {res.error}" if res.error else ""), ""


def same_value(a, b, _depth: int = 0) -> bool:
    """Exact structural equality of two returned values (NaN equal to NaN); never raises."""
    try:
        if _depth > 64:
            return False
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            if type(a) is not np.ndarray or type(b) is not np.ndarray or a.dtype != b.dtype or a.shape != b.shape:
                return False
            return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(same_value(x, y, _depth + 1) for x, y in zip(a, b))
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same_value(a[k], b[k], _depth + 1) for k in a)
        if type(a) is not type(b):
            return False
        if isinstance(a, float) and math.isnan(a) and math.isnan(b):
            return True
        return bool(a == b)
    except Exception:  # a value that cannot even be compared is not the same value
        return False


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
        self.wrote_inputs: list[str] = []  # the cases on which the submission wrote into its inputs
        self.failures: list[tuple[str, CallResult]] = []  # calls that failed, in order (title, result)
        self._cpu: dict[tuple, float] = {}

    def call(self, problem: Problem, title: str = "a generated case") -> CallResult:
        """Call the submission on ``problem`` (again with writable copies if it wrote into its inputs)."""
        res = self._once(problem, writable=False)
        if res.kind == "exception" and _WROTE_INPUTS.search(res.error or ""):
            if title not in self.wrote_inputs:
                self.wrote_inputs.append(title)
            res = self._once(problem, writable=True)
        if not res.ok:
            self.failures.append((title, res))
        return res

    def _once(self, problem: Problem, *, writable: bool) -> CallResult:
        call = self.profile.call_for(problem, self.settings)
        res = self.sandbox.call(call.target, call.args, call.kwargs, attrs=call.attrs, init=call.init, writable=writable)
        self.calls += 1
        self.slowest = max(self.slowest, res.elapsed)
        if res.stdout:
            self.stdout.append(res.stdout)
        if res.ok and res.cpu is not None:
            key = (problem.network.sizes, problem.m)
            self._cpu[key] = min(res.cpu, self._cpu.get(key, math.inf))
        return res

    def cheapest_cpu(self, problem: Problem) -> float | None:
        """The least CPU time a successful call on a problem of this size took (None: no such call)."""
        return self._cpu.get((problem.network.sizes, problem.m))

    def answer(self, problem: Problem, res: CallResult) -> tuple[float, dict]:
        """``(J, grads)`` read from a call's result.

        Raises:
            StudentError: the call failed, or returned something of the wrong form.
        """
        if not res.ok:
            raise StudentError(*describe_failure(res, self.target))
        try:
            return self.profile.read(problem, self.settings, res.value)
        except ResultError as exc:
            raise StudentError(f"{self.target} returned the wrong form: {exc.detail}") from None

    def __call__(self, problem: Problem) -> tuple[float, dict]:
        return self.answer(problem, self.call(problem))

"""The grader's side of the conversation with a worker: call results and the checks on every reply.

Everything a worker sends was potentially written by the student (the worker and the student's
code share one process), so a reply is a claim to be checked, never a fact.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from gradverify.grading import frames

__all__ = ["KINDS", "CallResult", "check_reply", "ready_result", "failure", "text", "unbounded_caps"]

KINDS = (
    "ok",  # the call returned; ``value`` holds the result
    "exception",  # the student's code raised (SystemExit included)
    "target",  # no such function/class/method, or the instance could not be made
    "unsupported",  # the result cannot be sent (type, dtype, size): ``error`` names it
    "load",  # the submission did not load (missing, syntax error, raised at import)
    "setup",  # the sandbox itself could not be built: not the student's fault
    "timeout",  # the wall-clock deadline passed; the worker was killed
    "cpu",  # the CPU-time limit was hit
    "memory",  # MemoryError under the address-space limit
    "crashed",  # the worker died (os._exit, signal, segfault, killed itself)
    "protocol",  # the worker sent something that breaks the protocol; it was killed
)
WORKER_KINDS = frozenset({"ok", "exception", "target", "unsupported", "cpu", "memory"})


@dataclass
class CallResult:
    """What happened when the sandbox started the worker or called into the submission.

    ``kind`` is one of :data:`KINDS`; ``value`` the return value (tuples come back as lists,
    numpy scalars as Python scalars, arrays as plain float64/int64/bool ndarrays; finiteness is
    not checked here); ``error`` a one-line message and ``traceback`` the student's traceback
    (truncated); ``args_after`` (when asked) the arguments as they were after the call:
    ``{"args": [...], "kwargs": {...}, "attrs": {...}}``.
    """

    kind: str
    value: object = None
    error: str | None = None
    traceback: str | None = None
    elapsed: float = 0.0
    stdout: str = ""
    stderr: str = ""
    args_after: dict | None = None

    @property
    def ok(self) -> bool:
        return self.kind == "ok"



def ready_result(ready: object) -> CallResult | None:
    """The load result a valid 'ready' message reports, or None."""
    if (
        not isinstance(ready, dict)
        or ready.get("op") != "ready"
        or ready.get("kind") not in ("ok", "load", "memory", "cpu")
    ):
        return None
    return CallResult(ready["kind"], error=text(ready.get("error")), traceback=text(ready.get("traceback")))


def failure(
    status: str, detail: object, death: str, timeout: float, elapsed: float, out: str, err: str
) -> CallResult:
    if status == "timeout":
        kind, error = "timeout", f"no answer within {timeout:g} s; the worker was killed"
    elif status == "protocol":
        kind, error = "protocol", f"the worker broke the protocol and was killed: {detail}"
    elif death == "SIGXCPU":
        kind, error = "cpu", "the worker hit its CPU-time limit and was killed"
    else:
        kind, error = "crashed", f"the worker died ({death or 'exited'})"
    return CallResult(kind, error=error, elapsed=elapsed, stdout=out, stderr=err)


def check_reply(reply: object, call_id: str) -> tuple[CallResult, str | None]:
    """Turn a worker's reply into a CallResult, or say why it is not a valid reply."""
    if not isinstance(reply, dict) or reply.get("op") != "result":
        return CallResult("protocol"), "the reply is not a result message"
    if reply.get("id") != call_id:
        return CallResult("protocol"), "the reply answers another call (stale or forged)"
    kind = reply.get("kind")
    cpu = reply.get("cpu")
    after = reply.get("args_after")
    if after is not None and not (
        isinstance(after, dict)
        and isinstance(after.get("args"), list)
        and isinstance(after.get("kwargs"), dict)
        and isinstance(after.get("attrs", {}), dict)
    ):
        return CallResult("protocol"), "the reply's args_after is malformed"
    if (
        kind not in WORKER_KINDS
        or not (reply.get("error") is None or isinstance(reply.get("error"), str))
        or not (reply.get("traceback") is None or isinstance(reply.get("traceback"), str))
        or not (after is None or isinstance(after, dict))
        or isinstance(cpu, bool)
        or not isinstance(cpu, (int, float))
        or not math.isfinite(cpu)
    ):
        return CallResult("protocol"), "the reply has missing or ill-typed fields"
    result = CallResult(
        kind,
        value=reply.get("value") if kind == "ok" else None,
        error=text(reply.get("error")),
        traceback=text(reply.get("traceback")),
        args_after=after,
    )
    return result, None


def text(value: object, limit: int = 20_000) -> str | None:
    if value is None:
        return None
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + f"\n[... {len(text) - limit} characters cut]"
    return text


@functools.cache
def unbounded_caps() -> frames.Caps:
    return frames.Caps(header_bytes=(1 << 32) - 1, array_bytes=(1 << 32) - 1, message_bytes=1 << 62)


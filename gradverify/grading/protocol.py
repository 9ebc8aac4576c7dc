"""The grader's side of the conversation with a worker: requests, call results, and the checks on every reply.

Everything a worker sends was potentially written by the student (the worker and the student's
code share one process), so a reply is a claim to be checked, never a fact: its keys must be
exactly the expected ones, its fields of the expected types, its strings are cut to a length.
A request's arrays travel in a *sealed* memory file (``memfd_create`` + ``F_SEAL_WRITE``): the
worker maps it read-only, and no process can write into it any more — the grader's inputs stay
what it sent, whatever the submission does, and no report from the worker is needed to know it.
"""

from __future__ import annotations

import fcntl
import functools
import math
import os
from dataclasses import dataclass
from typing import Literal, get_args

from gradverify.grading import frames

__all__ = ["KINDS", "Kind", "CallResult", "Request", "Chain", "request", "check_reply", "check_caged", "ready_result", "failure",
           "is_target",
           "LoadInfo", "load_info",
           "text", "unbounded_caps"]

Kind = Literal[
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
    "budget",  # the sandbox's time budget is spent: the call was not made
]
KINDS: tuple[str, ...] = get_args(Kind)
WORKER_KINDS = frozenset({"ok", "exception", "target", "unsupported", "cpu", "memory"})
_REPLY_KEYS = frozenset({"op", "id", "kind", "value", "error", "traceback"})
_CAGED_KEYS = frozenset({"op", "kind", "error", "traceback", "layers", "calibration"})
_READY_KEYS = frozenset({"op", "kind", "error", "traceback", "info"})
_INFO_KEYS = frozenset({"entry", "notes", "cell_errors", "callables", "python2", "missing_module"})
_SEALS = ("F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE")


@dataclass
class CallResult:
    """What happened when the sandbox started the worker or called into the submission.

    ``kind`` is one of :data:`KINDS`; ``value`` the return value (tuples come back as lists,
    numpy scalars as Python scalars, arrays as plain float64/int64/bool ndarrays; finiteness is
    not checked here); ``error`` a one-line message and ``traceback`` the student's traceback
    (truncated; both written by the student's process, so student text); ``cpu`` the worker's
    CPU seconds during the call as the kernel counts them (None when unknown).
    """

    kind: Kind
    value: object = None
    error: str | None = None
    traceback: str | None = None
    elapsed: float = 0.0
    stdout: str = ""
    stderr: str = ""
    cpu: float | None = None

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


@dataclass(frozen=True)
class Chain:
    """A second call made in the worker on the first call's last return value: a forward/backward pair.

    The modular layer API returns ``(out…, cache)`` from a forward and takes the cache back in its
    backward. A cache is whatever the student put in it, so it never crosses the pipe: the worker
    calls ``target(*args, cache)`` itself and replies ``{"head": [out…], "tail": what that returned,
    "form": None}``, or ``{"head": None, "tail": None, "form": [type name, length or -1]}`` when the
    forward did not return ``keep`` outputs and a cache. Both are the student's values, to be checked.

    Attributes:
        target: the backward's name; None returns the outputs only (the forward alone).
        args: the arguments before the cache (the upstream gradients).
        keep: how many outputs precede the cache.
    """

    target: str | None
    args: tuple = ()
    keep: int = 1

    def message(self) -> dict:
        return {"target": self.target, "args": list(self.args), "keep": int(self.keep)}


@dataclass
class Request:
    """A call ready to send: its frames and, for its arrays, a sealed read-only memory file."""

    buffers: list
    fd: int | None = None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def request(message: dict, *, sealed: bool) -> Request:
    """Encode a call; with ``sealed``, its arrays go into a sealed memory file instead of the frames.

    Raises:
        TypeError: an argument of a type the protocol cannot carry (``frames.UnsupportedValue``).
    """
    if sealed:
        segment = bytearray()
        buffers = frames.pack(dict(message, segment=True), caps=unbounded_caps(), segment=segment)
        if segment:
            return Request(buffers, _sealed_file(segment))
    return Request(frames.pack(dict(message, segment=False), caps=unbounded_caps()))


def _sealed_file(data: bytes | bytearray) -> int:
    """A read-only descriptor of a memory file holding ``data``, sealed against any change."""
    fd = os.memfd_create("gradverify-arguments", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        seals = 0
        for name in _SEALS:
            seals |= getattr(fcntl, name)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
        # A descriptor opened read-only: a shared mapping of it can never be made writable.
        return os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(fd)


def check_caged(caged: object) -> tuple[list[str], list[float]] | str:
    """``(layers, calibration)`` from a valid 'caged' message, else why it is not one."""
    if not isinstance(caged, dict) or set(caged) != _CAGED_KEYS or caged["op"] != "caged":
        return "the worker's first message is not a valid 'caged'"
    layers, calibration = caged["layers"], caged["calibration"]
    if (caged["kind"] not in ("ok", "setup") or not isinstance(layers, list) or not all(isinstance(n, str) for n in layers)
            or not isinstance(calibration, list) or not all(_seconds(c) for c in calibration)):
        return "the worker's first message is not a valid 'caged'"
    return layers, calibration


def _seconds(value: object) -> bool:
    return type(value) is float and math.isfinite(value) and value >= 0


def ready_result(ready: object) -> CallResult | None:
    """The load result a valid 'ready' message reports, or None."""
    if (
        not isinstance(ready, dict)
        or set(ready) != _READY_KEYS
        or ready["op"] != "ready"
        or ready["kind"] not in ("ok", "load", "memory", "cpu")
        or not _optional_text(ready["error"])
        or not _optional_text(ready["traceback"])
        or load_info(ready["info"]) is None
    ):
        return None
    return CallResult(ready["kind"], error=text(ready["error"]), traceback=text(ready["traceback"]))


@dataclass(frozen=True)
class LoadInfo:
    """What the worker says about how the submission became a module (all of it student-reachable text).

    ``entry``: the file imported; ``notes``: what the student should know (a Python 2 file's prints
    rewritten, a notebook's IPython lines left out); ``cell_errors``: notebook cells (statements) that
    failed and were skipped; ``callables``: every function and method the module defines, with its
    parameters (``callforms.Signature.from_wire`` reads them); ``missing_module``: the module an
    import could not find, when that is why the load failed.
    """

    entry: str = ""
    notes: tuple[str, ...] = ()
    cell_errors: tuple[str, ...] = ()
    callables: tuple[tuple[str, object], ...] = ()
    python2: bool = False
    missing_module: str | None = None


def is_target(name: object) -> bool:
    """Whether ``name`` is ``name`` or ``Class.method`` made of Python identifiers — Unicode ones too (``σ``,
    ``pérte``: a student names functions in any script Python allows, and the grader may call them), at most
    200 characters."""
    if not isinstance(name, str) or len(name) > 200:
        return False
    parts = name.split(".")
    return len(parts) <= 2 and all(part.isidentifier() for part in parts)


def load_info(info: object) -> LoadInfo | None:
    """The ``info`` of a 'ready' message, checked field by field (None: malformed, a protocol error)."""
    if not isinstance(info, dict) or set(info) != _INFO_KEYS:
        return None
    texts = [info["notes"], info["cell_errors"]]
    if (not isinstance(info["entry"], str) or len(info["entry"]) > 1000 or type(info["python2"]) is not bool
            or not _optional_text(info["missing_module"]) or not isinstance(info["callables"], dict)
            or len(info["callables"]) > 50 or not all(isinstance(t, list) and len(t) <= 50 and all(type(x) is str for x in t)
                                                      for t in texts)):
        return None
    callables = []
    for name, params in info["callables"].items():
        if not is_target(name) or not (params is None or isinstance(params, list)):
            return None
        callables.append((name, params))
    return LoadInfo(text(info["entry"])[:255], tuple(text(t)[:2000] for t in info["notes"]),
                    tuple(text(t)[:2000] for t in info["cell_errors"]), tuple(callables), info["python2"],
                    text(info["missing_module"])[:200] if info["missing_module"] else None)


def failure(status: str, detail: object, death: str, timeout: float, elapsed: float, out: str, err: str,
            cpu: float | None = None) -> CallResult:
    """The result of an exchange that did not end in a valid reply (the worker has been killed)."""
    if status == "timeout":
        kind, error = "timeout", f"no answer within {timeout:g} s; the worker was killed"
    elif status == "protocol":
        kind, error = "protocol", f"the worker broke the protocol and was killed: {detail}"
    elif death == "SIGXCPU":
        kind, error = "cpu", "the worker hit its CPU-time limit and was killed"
    else:
        kind, error = "crashed", f"the worker died ({death or 'exited'})"
    return CallResult(kind, error=error, elapsed=elapsed, stdout=out, stderr=err, cpu=cpu)


def _optional_text(value: object) -> bool:
    return value is None or type(value) is str


def check_reply(reply: object, call_id: str) -> tuple[CallResult, str | None]:
    """Turn a worker's reply into a CallResult, or say why it is not a valid reply."""
    if not isinstance(reply, dict) or reply.get("op") != "result":
        return CallResult("protocol"), "the reply is not a result message"
    if set(reply) != _REPLY_KEYS:
        extra = sorted(set(reply) - _REPLY_KEYS)[:5]
        missing = sorted(_REPLY_KEYS - set(reply))
        return CallResult("protocol"), f"the reply has unexpected keys {extra} or misses {missing}"
    if reply["id"] != call_id:
        return CallResult("protocol"), "the reply answers another call (stale or forged)"
    kind = reply["kind"]
    if kind not in WORKER_KINDS or not _optional_text(reply["error"]) or not _optional_text(reply["traceback"]):
        return CallResult("protocol"), "the reply has ill-typed fields"
    if kind != "ok" and reply["value"] is not None:
        return CallResult("protocol"), "a failed call's reply carries a value"
    result = CallResult(
        kind,
        value=reply["value"] if kind == "ok" else None,
        error=text(reply["error"]),
        traceback=text(reply["traceback"]),
    )
    return result, None


def text(value: object, limit: int = 20_000) -> str | None:
    """A string from the worker, cut to ``limit`` characters (None stays None)."""
    if value is None:
        return None
    out = str(value)
    if len(out) > limit:
        out = out[:limit] + f"\n[... {len(out) - limit} characters cut]"
    return out


@functools.cache
def unbounded_caps() -> frames.Caps:
    """Caps for what the grader itself encodes (requests): bounded only by the frame format."""
    return frames.Caps(header_bytes=(1 << 32) - 1, array_bytes=(1 << 32) - 1, message_bytes=1 << 62, decoded_bytes=1 << 62)

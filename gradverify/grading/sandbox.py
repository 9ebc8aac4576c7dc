"""Run untrusted submissions in a caged worker process and call their functions over pipes.

Student code never runs in the grader's process. A :class:`Sandbox` starts one persistent worker
per submission (``_worker.py``, run as ``python -I -S``), which loads the submission and then
serves many calls. Arguments and results travel as validated frames (``frames.py``) on dedicated
pipes; the child's stdout/stderr are captured separately, capped, and never parsed.

Isolation is layered, and every layer the machine allows is used (``detect_isolation`` probes
once per process by starting real workers, and reports what is active):

* always: own session/process group, scrubbed environment, fresh temporary directory as cwd and
  HOME, ``python -I -S`` with a ``sys.path`` that holds only the standard library and numpy,
  rlimits (CPU, address space, file size, open files, no core dumps, no new processes), a
  wall-clock deadline per call, and a kill of the whole worker tree on timeout or close;
* namespaces via ``unshare``: PID (killing the worker, the namespace's init, kills every
  descendant), network (no interfaces: no network), mount, IPC, UTS, and a user namespace when
  not root;
* a private filesystem view (``pivot_root`` into a read-only tmpfs holding only the standard
  library, numpy, system libraries and the work directory);
* as root: an unprivileged uid/gid (65534), so DAC protects the grader's files and
  ``RLIMIT_NPROC`` applies; otherwise all capabilities are dropped;
* Landlock: read-only allow-list, writes only in the work directory, no ``execve``, no TCP,
  and (ABI >= 6) no signals or abstract sockets outside the sandbox.

seccomp is not used: fork, exec and sockets are already closed by ``RLIMIT_NPROC=0``, Landlock
(no EXECUTE right, TCP handled with no allowed port) and the empty network namespace, and a
hand-assembled BPF filter through ctypes is architecture-specific and easy to get subtly wrong.

A worker that dies (timeout, crash, lost protocol sync, CPU budget spent) is killed with its
whole tree and restarted transparently on the next call: module-level state the submission built
in earlier calls is lost. A submission that fails to load is not retried; every call reports it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
import weakref
from dataclasses import replace
from pathlib import Path

from gradverify.grading import frames
from gradverify.grading.files import SubmissionError, make_root
from gradverify.grading.isolation import Isolation, Plan, detect, detect_isolation, isolation_from
from gradverify.grading.limits import Limits
from gradverify.grading.process import MARKER, Worker, kill_marked
from gradverify.grading.protocol import KINDS, CallResult, check_reply, failure, ready_result, text, unbounded_caps

__all__ = ["Limits", "Isolation", "CallResult", "Sandbox", "detect_isolation", "KINDS"]

_TARGET = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?\Z")


class Sandbox:
    """One sandboxed, persistent worker for one submission. Not thread-safe.

    Use as a context manager (``close`` on exit). The worker starts lazily on the first call,
    or explicitly with :meth:`start`.

    Args:
        submission: a ``.py`` file, or a folder holding one ``.py`` file at its top level (or
            several, with ``entry`` naming the one to import). The folder is copied whole
            (regular files only: symbolic links and special files are skipped), so the entry
            module can import its siblings.
        entry: file name of the module to import when ``submission`` is a folder.
        limits: resource limits.
    """

    def __init__(
        self,
        submission: str | os.PathLike[str],
        *,
        entry: str | None = None,
        limits: Limits = Limits(),
        _plan: Plan | None = None,
    ):
        if not isinstance(limits, Limits):
            raise TypeError(f"limits must be a Limits, got {type(limits).__name__}")
        self.submission = Path(submission)
        self.entry = entry
        self.limits = limits
        if _plan is None:
            self._plan, self.isolation = detect()
            self._notes = [n for n in self.isolation.notes]
        else:  # probing or testing one plan: known once the worker has said what it applied
            self._plan, self.isolation = _plan, Isolation("minimal", ())
            self._notes = []
        self.restarts = 0
        self._token = secrets.token_hex(12)
        self._load: CallResult | None = None
        self._state = _State(self._token)
        self._finalizer = weakref.finalize(self, self._state.cleanup)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        status = "closed" if self._state.closed else "running" if self._state.worker else "idle"
        return f"<Sandbox {self.submission.name!r} {status}, {self.isolation.level} isolation>"

    @property
    def marker(self) -> str:
        """``GRADVERIFY_SANDBOX=<token>``: in the environment of every process of this sandbox."""
        return f"{MARKER}={self._token}"

    def start(self) -> CallResult:
        """Start the worker and import the submission (once); return how that went.

        ``kind`` is ``"ok"``, or ``"load"`` (with the student's traceback), ``"timeout"``,
        ``"crashed"``, ``"memory"``, ``"cpu"``, ``"protocol"`` or ``"setup"``.
        """
        self._check_open()
        if self._load is None:
            self._load = self._spawn()
        return self._load

    def call(
        self,
        target: str,
        args: tuple | list = (),
        kwargs: dict | None = None,
        *,
        attrs: dict | None = None,
        return_args: bool = False,
        timeout: float | None = None,
    ) -> CallResult:
        """Call ``target`` in the submission and return what happened (never raises for it).

        Args:
            target: ``"name"`` for a module-level function, or ``"Class.method"``: the worker
                then makes the instance with ``Class.__new__(Class)`` (``__init__`` is not
                run) and sets ``attrs`` on it first.
            args, kwargs: None, bool, int, float, str, lists, tuples, dicts with str keys and
                numeric ndarrays, nested.
            attrs: attributes to set on the instance, e.g. ``{"params": {"W1": ...}}``.
            return_args: also send back the arguments (and attributes) as they are after the
                call, to check that the submission left its inputs alone.
            timeout: wall-clock seconds for this call (default ``limits.call_timeout``).

        Raises:
            ValueError: a malformed target or timeout, or the sandbox is closed.
            TypeError: arguments of a type the protocol cannot carry.
        """
        self._check_open()
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"args must be a tuple or list of arguments, got {type(args).__name__}")
        if not isinstance(kwargs, (dict, type(None))) or not isinstance(attrs, (dict, type(None))):
            raise TypeError("kwargs and attrs must be dicts (or None)")
        if not isinstance(target, str) or not _TARGET.match(target):
            raise ValueError(f"target must look like 'name' or 'Class.method', got {target!r}")
        if attrs is not None and "." not in target:
            raise ValueError("attrs are only meaningful for a 'Class.method' target")
        timeout = self.limits.call_timeout if timeout is None else timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        call_id = secrets.token_hex(8)
        request = {
            "op": "call",
            "id": call_id,
            "target": target,
            "args": list(args),
            "kwargs": dict(kwargs or {}),
            "attrs": None if attrs is None else dict(attrs),
            "return_args": bool(return_args),
        }
        buffers = frames.pack(request, caps=unbounded_caps())  # TypeError for unsupported args

        load = self.start()
        if not load.ok:
            error = f"the submission did not load ({load.kind}): {load.error}"
            return CallResult("load", error=error)
        if self._state.worker is None:
            self.restarts += 1
            again = self._spawn()
            if not again.ok:
                error = "the worker was restarted and the submission failed to load again "
                error += f"({again.kind}): {again.error}"
                return replace(again, kind="load", error=error)
        worker = self._state.worker
        status, reply, elapsed, out, err = worker.exchange(buffers, time.monotonic() + timeout)
        if status == "ok":
            result, problem = check_reply(reply, call_id)
            if problem is None:
                result.elapsed, result.stdout, result.stderr = elapsed, out, err
                cpu = reply.get("cpu")
                if cpu + self.limits.cpu_seconds + 1 > self.limits.worker_cpu_seconds:
                    self._state.retire()  # a fresh worker next time, before the hard limit
                return result
            status, reply = "protocol", problem
        death = self._state.retire()
        return failure(status, reply, death, timeout, elapsed, out, err)

    def close(self) -> None:
        """Kill the worker and everything it started, and delete the sandbox's files."""
        self._state.cleanup()

    # ----------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state.closed:
            raise ValueError("this Sandbox is closed; make a new one")

    def _spawn(self) -> CallResult:
        self._state.retire()
        try:
            root, config = make_root(self.submission, self.entry, self.limits, self._plan)
        except SubmissionError as exc:
            return CallResult("load", error=str(exc))
        except OSError as exc:
            return CallResult("setup", error=f"cannot prepare the sandbox's files: {exc}")
        self._state.root = root
        try:
            worker = Worker(self._plan, root, config, self._token, self.limits)
        except OSError as exc:
            return CallResult("setup", error=f"cannot start the worker: {exc}")
        self._state.worker = worker
        deadline = time.monotonic() + self.limits.load_timeout
        status, caged, elapsed, out, err = worker.exchange(None, deadline)
        if status == "ok":
            layers = caged.get("layers") if isinstance(caged, dict) else None
            if (
                not isinstance(caged, dict)
                or caged.get("op") != "caged"
                or caged.get("kind") not in ("ok", "setup")
                or not isinstance(layers, list)
                or not all(isinstance(name, str) for name in layers)
            ):
                status, caged = "protocol", "the worker's first message is not a valid 'caged'"
            elif caged["kind"] == "setup":
                self._state.retire()
                error, tb = text(caged.get("error")), text(caged.get("traceback"))
                return CallResult("setup", error=error, traceback=tb, stdout=out, stderr=err)
            else:
                self.isolation = isolation_from(self._plan, layers, self._notes)
                status, ready, more, out2, err2 = worker.exchange(None, deadline)
                elapsed, out, err = elapsed + more, out + out2, err + err2
                if status == "ok":
                    result = ready_result(ready)
                    if result is not None:
                        result.elapsed, result.stdout, result.stderr = elapsed, out, err
                        if not result.ok:
                            self._state.retire()
                        return result
                    status, caged = "protocol", "the worker's second message is not a valid 'ready'"
        death = self._state.retire()
        return failure(status, caged, death, self.limits.load_timeout, elapsed, out, err)




class _State:
    """Everything that must be cleaned up, kept apart from the Sandbox for ``weakref.finalize``."""

    def __init__(self, token: str):
        self.token = token
        self.worker: Worker | None = None
        self.root: Path | None = None
        self.closed = False

    def retire(self) -> str:
        """Kill the current worker (if any) and its files; return how it died."""
        death = ""
        if self.worker is not None:
            death = self.worker.kill()
            self.worker = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
        return death

    def cleanup(self) -> None:
        self.retire()
        kill_marked(self.token)
        self.closed = True


"""Run untrusted submissions in a caged worker process and call their functions over pipes.

Student code never runs in the grader's process. A :class:`Sandbox` copies the submission once
(``files.py``: the snapshot its fingerprint is taken from) and starts one persistent worker
(``_worker.py``, run as ``python -I -S``), which loads the submission and then serves many calls.
Arguments travel in a sealed read-only memory file, results as validated frames (``frames.py``,
``protocol.py``) on dedicated pipes; the child's stdout/stderr are captured separately, capped,
and never parsed.

Isolation is layered, and every layer the machine allows is used (``detect_isolation`` probes
once per process by starting real workers, and reports what is active):

* always: own session/process group, scrubbed environment, ``python -I -S`` with a ``sys.path``
  that holds only the standard library and numpy, rlimits (CPU, address space, file size, open
  files, no core dumps, no new processes), a wall-clock deadline per call and a time budget per
  sandbox, and a kill of the whole worker tree on timeout or close;
* namespaces via ``unshare``: PID (killing the worker, the namespace's init, kills every
  descendant), network (no interfaces: no network), mount, IPC, UTS, and a user namespace when
  not root; the work directory is a size- and inode-capped tmpfs inside the mount namespace;
* a private filesystem view (``pivot_root`` into a read-only tmpfs holding only the standard
  library, numpy, system libraries and the work directory);
* as root: a uid of the sandbox's own (leased from ``isolation.UID_RANGE``), so DAC protects the
  grader's and the other sandboxes' files and ``RLIMIT_NPROC`` applies; otherwise all
  capabilities are dropped;
* Landlock: read-only allow-list, writes only in the work directory, no ``execve``, no TCP,
  and (ABI >= 6) no signals or abstract sockets outside the sandbox;
* seccomp (``seccomp.py``): no keyrings, System V IPC, ptrace, bpf, userfaultfd, perf events,
  new namespaces or mounts, io_uring, non-Unix sockets.

A worker that dies (timeout, crash, lost protocol sync, CPU budget spent) is killed with its
whole tree and restarted transparently on the next call, from the same snapshot: module-level
state the submission built in earlier calls is lost. A submission that fails to load is not
retried; every call reports it.
"""

from __future__ import annotations

import secrets
import time
import weakref
from dataclasses import replace
from pathlib import Path

from gradverify.grading import frames, seccomp
from gradverify.grading.files import Root, SubmissionError, make_root, remove_tree, reset_work, worker_config
from gradverify.grading.isolation import Isolation, Plan, UidLease, detect, detect_isolation, isolation_from, lease_uid, sealed_inputs
from gradverify.grading.limits import Limits
from gradverify.grading.process import MARKER, Worker, kill_marked
from gradverify.grading.packages import resolve
from gradverify.grading.protocol import (KINDS, CallResult, Chain, LoadInfo, check_caged, check_reply, failure, is_target,
                                         load_info, ready_result, request, text)

__all__ = ["Limits", "Isolation", "CallResult", "Sandbox", "detect_isolation", "KINDS"]



class Sandbox:
    """One sandboxed, persistent worker for one submission. Not thread-safe.

    Use as a context manager (``close`` on exit). The worker starts lazily on the first call,
    or explicitly with :meth:`start`.

    Args:
        submission: a ``.py`` file, or a folder holding one ``.py`` file at its top level (or
            several, with ``entry`` naming the one to import). The folder is copied whole
            (see ``files.py`` for what is never copied), so the entry module can import its
            siblings.
        entry: file name of the module to import when ``submission`` is a folder.
        limits: resource limits.
        calibrate: ``[(sizes, m), ...]``: the worker times a reference forward pass of each
            before any student code runs (``calibration`` has the CPU seconds).
        targets: the names a folder's entry file is found by (``"name"`` or ``"Class.method"``):
            without ``entry``, the worker imports the top-level file that defines one of them.
        packages: distributions the submission may import besides the standard library (numpy
            always), exposed read-only with their run-time requirements (``packages.resolve``).
    """

    def __init__(
        self,
        submission: str | Path,
        *,
        entry: str | None = None,
        limits: Limits = Limits(),
        calibrate: list | tuple = (),
        targets: tuple[str, ...] = (),
        packages: tuple[str, ...] = ("numpy",),
        _plan: Plan | None = None,
    ):
        if not isinstance(limits, Limits):
            raise TypeError(f"limits must be a Limits, got {type(limits).__name__}")
        self.submission = Path(submission)
        self.entry = entry
        self.limits = limits
        self._calibrate = [[list(map(int, sizes)), int(m)] for sizes, m in calibrate]
        self.targets = tuple(targets)
        self.packages = resolve(("numpy", *packages))
        self.load_info = LoadInfo()  # how the submission became a module (after ``start``)
        if _plan is None:
            self._plan, self.isolation = detect()
            self._notes = [n for n in self.isolation.notes]
        else:  # probing or testing one plan: known once the worker has said what it applied
            self._plan, self.isolation = _plan, Isolation("minimal", ())
            self._notes = []
        self.restarts = 0
        self.spent = 0.0  # wall seconds of starts and calls, against limits.budget_seconds
        self.calibration: list[float] = []
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

    @property
    def fingerprint(self) -> str:
        """The digest of the snapshot this sandbox grades ("" before it is made)."""
        return self._state.root.snapshot.digest if self._state.root else ""

    @property
    def uid(self) -> int | None:
        """The uid the submission runs under (None: not an own uid on this machine)."""
        return self._state.lease.uid if self._state.lease else None

    def start(self) -> CallResult:
        """Start the worker and import the submission (once); return how that went.

        ``kind`` is ``"ok"``, or ``"load"`` (with the student's traceback), ``"timeout"``,
        ``"crashed"``, ``"memory"``, ``"cpu"``, ``"protocol"`` or ``"setup"``.
        """
        self._check_open()
        if self._load is None:
            self._load = self._spawn(time.monotonic() + self.limits.load_timeout)
        return self._load

    def call(
        self,
        target: str,
        args: tuple | list = (),
        kwargs: dict | None = None,
        *,
        attrs: dict | None = None,
        init: tuple | list | None = None,
        writable: bool = False,
        timeout: float | None = None,
        chain: Chain | None = None,
    ) -> CallResult:
        """Call ``target`` in the submission and return what happened (never raises for it).

        Args:
            target: ``"name"`` for a module-level function, or ``"Class.method"``: the worker
                then makes the instance with ``Class.__new__(Class)`` (``__init__`` is not
                run) and sets ``attrs`` on it first.
            args, kwargs: None, bool, int, float, str, lists, tuples, dicts with str keys and
                numeric ndarrays, nested.
            attrs: attributes to set on the instance, e.g. ``{"params": {"W1": ...}}``.
            init: for a method target, the constructor's arguments (ints): the instance is
                ``Class(*init)`` when that works (attributes ``__init__`` sets exist), else made
                without ``__init__``.
            writable: give the submission writable copies of the arrays instead of read-only
                views of the sealed file (for a second try after it wrote into its inputs).
            timeout: wall-clock seconds for this call (default ``limits.call_timeout``); never
                more than what is left of the budget.
            chain: a backward to call in the worker on the call's cache (``protocol.Chain``):
                ``value`` is then ``{"head", "tail", "form"}``.

        Raises:
            ValueError: a malformed target or timeout, or the sandbox is closed.
            TypeError: arguments of a type the protocol cannot carry.
        """
        self._check_open()
        timeout = self._check_call(target, args, kwargs, attrs, timeout)
        if chain is not None and (not isinstance(chain, Chain) or (chain.target is not None and not is_target(chain.target))):
            raise ValueError(f"chain must be a protocol.Chain naming a function, got {chain!r}")
        call_id = secrets.token_hex(8)
        message = {"op": "call", "id": call_id, "target": target, "args": list(args), "kwargs": dict(kwargs or {}),
                   "attrs": None if attrs is None else dict(attrs), "writable": bool(writable),
                   "init": None if init is None else [int(n) for n in init]}
        if chain is not None:
            message["chain"] = chain.message()
        try:
            req = request(message, sealed=sealed_inputs() and not writable)
        except frames.UnsupportedValue as exc:
            raise TypeError(str(exc)) from None
        try:
            return self._call(req, call_id, timeout)
        finally:
            req.close()

    def restart(self) -> None:
        """Kill the worker now: the next call starts a fresh one from the same snapshot (nothing kept)."""
        self._check_open()
        self._state.retire()

    def close(self) -> None:
        """Kill the worker and everything it started, and delete the sandbox's files."""
        self._state.cleanup()

    # ----------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state.closed:
            raise ValueError("this Sandbox is closed; make a new one")

    def _check_call(self, target, args, kwargs, attrs, timeout) -> float:
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"args must be a tuple or list of arguments, got {type(args).__name__}")
        if not isinstance(kwargs, (dict, type(None))) or not isinstance(attrs, (dict, type(None))):
            raise TypeError("kwargs and attrs must be dicts (or None)")
        if not is_target(target):
            raise ValueError(f"target must look like 'name' or 'Class.method', got {target!r}")
        if attrs is not None and "." not in target:
            raise ValueError("attrs are only meaningful for a 'Class.method' target")
        timeout = self.limits.call_timeout if timeout is None else timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        return float(timeout)

    def _left(self) -> float:
        return self.limits.budget_seconds - self.spent

    def _call(self, req, call_id: str, timeout: float) -> CallResult:
        load = self.start()
        if not load.ok:
            return CallResult("load", error=f"the submission did not load ({load.kind}): {load.error}")
        if self._left() <= 0:
            return CallResult("budget", error=f"the sandbox's time budget of {self.limits.budget_seconds:g} s is spent")
        allowed = min(timeout, self._left())
        deadline = time.monotonic() + allowed
        if self._state.worker is None:
            self.restarts += 1
            again = self._spawn(min(deadline, time.monotonic() + self.limits.load_timeout))
            if not again.ok:
                error = f"the worker was restarted and the submission failed to load again ({again.kind}): {again.error}"
                return replace(again, kind="load", error=error)
            allowed = min(timeout, self._left())
            deadline = time.monotonic() + allowed
        worker = self._state.worker
        ex = worker.exchange(req.buffers, deadline, fd=req.fd)
        self.spent += ex.elapsed
        if ex.status == "ok":
            result, problem = check_reply(ex.message, call_id)
            if problem is None:
                result.elapsed, result.stdout, result.stderr, result.cpu = ex.elapsed, ex.stdout, ex.stderr, ex.cpu
                used = worker.cpu_seconds()
                if used is None or used + self.limits.cpu_seconds + 1 > self.limits.worker_cpu_seconds:
                    self._state.retire()  # a fresh worker next time, before the hard limit
                return result
            ex.status, ex.message = "protocol", problem
        death = self._state.retire()
        return failure(ex.status, ex.message, death, allowed, ex.elapsed, ex.stdout, ex.stderr, ex.cpu)

    def _spawn(self, deadline: float) -> CallResult:
        """Start a worker (making the root and leasing the uid the first time); return how the load went."""
        self._state.retire()
        started = time.monotonic()
        try:
            result = self._spawn_worker(deadline)
        finally:
            self.spent += time.monotonic() - started
        return result

    def _spawn_worker(self, deadline: float) -> CallResult:
        state, plan = self._state, self._plan
        try:
            if state.root is None:
                state.lease = lease_uid() if plan.own_uid else None
                state.root = make_root(self.submission, self.entry, self.limits, self.packages.paths)
            reset_work(state.root, plan, self.uid)
            config = worker_config(state.root, self.limits, plan, uid=self.uid, seccomp=_filter() if plan.seccomp else "",
                                   calibrate=self._calibrate, targets=self.targets)
        except SubmissionError as exc:  # "setup" when the refusal is not the student's to fix (a hard link)
            return CallResult("setup" if exc.refused else "load", error=str(exc))
        except OSError as exc:
            return CallResult("setup", error=f"cannot prepare the sandbox's files: {exc}")
        try:
            worker = Worker(plan, state.root.path, config, self._token, self.limits)
        except OSError as exc:
            return CallResult("setup", error=f"cannot start the worker: {exc}")
        state.worker = worker
        ex = worker.exchange(None, deadline)
        if ex.status == "ok":
            checked = check_caged(ex.message)
            if isinstance(checked, str):
                ex.status, ex.message = "protocol", checked
            elif ex.message["kind"] == "setup":
                state.retire()
                return CallResult("setup", error=text(ex.message["error"]), traceback=text(ex.message["traceback"]),
                                  stdout=ex.stdout, stderr=ex.stderr)
            else:
                layers, self.calibration = checked
                self.isolation = isolation_from(plan, layers, self._notes)
                return self._ready(worker, deadline, ex)
        death = state.retire()
        return failure(ex.status, ex.message, death, self.limits.load_timeout, ex.elapsed, ex.stdout, ex.stderr)

    def _ready(self, worker: Worker, deadline: float, caged) -> CallResult:
        ex = worker.exchange(None, deadline)
        elapsed, out, err = caged.elapsed + ex.elapsed, caged.stdout + ex.stdout, caged.stderr + ex.stderr
        if ex.status == "ok":
            result = ready_result(ex.message)
            if result is not None:
                self.load_info = load_info(ex.message["info"])
                result.elapsed, result.stdout, result.stderr = elapsed, out, err
                if not result.ok:
                    self._state.retire()
                return result
            ex.status, ex.message = "protocol", "the worker's second message is not a valid 'ready'"
        death = self._state.retire()
        return failure(ex.status, ex.message, death, self.limits.load_timeout, elapsed, out, err)


_FILTER: str | None = None


def _filter() -> str:
    global _FILTER
    if _FILTER is None:
        _FILTER = seccomp.program().hex()
    return _FILTER


class _State:
    """Everything that must be cleaned up, kept apart from the Sandbox for ``weakref.finalize``."""

    def __init__(self, token: str):
        self.token = token
        self.worker: Worker | None = None
        self.root: Root | None = None
        self.lease: UidLease | None = None
        self.closed = False

    def retire(self) -> str:
        """Kill the current worker (if any); return how it died. The snapshot stays for the next one."""
        death = ""
        if self.worker is not None:
            death = self.worker.kill()
            self.worker = None
        return death

    def cleanup(self) -> None:
        self.retire()
        kill_marked(self.token)
        if self.root is not None:
            remove_tree(self.root.path)
            self.root = None
        if self.lease is not None:
            self.lease.release()  # only now: every process of that uid is gone
            self.lease = None
        self.closed = True

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

import functools
import math
import os
import re
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gradverify.grading import frames

__all__ = ["Limits", "Isolation", "CallResult", "Sandbox", "detect_isolation"]

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
_WORKER_KINDS = frozenset({"ok", "exception", "target", "unsupported", "cpu", "memory"})
_TARGET = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?\Z")
_SANDBOX_UID = 65534  # "nobody"
_MARKER = "GRADVERIFY_SANDBOX"
_HERE = Path(__file__).resolve().parent
_LIB_DIRS = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32")
_DEVICES_READ = ("/dev/zero", "/dev/urandom", "/dev/random")
_SKIPPED_DIRS = frozenset({".git", "__pycache__", ".ipynb_checkpoints"})
_SECCOMP_NOTE = (
    "seccomp not used: fork, exec and sockets are closed by RLIMIT_NPROC=0, Landlock and the "
    "network namespace; a ctypes BPF filter would be arch-specific and fragile"
)


@dataclass(frozen=True)
class Limits:
    """Resource limits for one worker; all sizes in bytes, all times in seconds.

    Args:
        call_timeout: wall-clock deadline of one call (the worker is killed after it).
        load_timeout: wall-clock deadline for starting the worker and importing the submission.
        cpu_seconds: CPU time one call may use (``RLIMIT_CPU`` soft limit, re-armed per call).
        worker_cpu_seconds: CPU time over a worker's life (hard limit); the worker is replaced
            before a call could exceed it.
        memory_bytes: address space of the worker (``RLIMIT_AS``).
        file_bytes: largest file the worker may write (``RLIMIT_FSIZE``).
        open_files: most open file descriptors (``RLIMIT_NOFILE``).
        output_bytes: stdout and stderr kept per call, each; the rest is counted and dropped.
        array_bytes: largest array accepted from the worker.
        message_bytes: largest reply accepted from the worker.
        submission_bytes: largest submission (all files) copied into the sandbox.
    """

    call_timeout: float = 10.0
    load_timeout: float = 20.0
    cpu_seconds: int = 10
    worker_cpu_seconds: int = 600
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    open_files: int = 64
    output_bytes: int = 64 << 10
    array_bytes: int = 256 << 20
    message_bytes: int = 512 << 20
    submission_bytes: int = 16 << 20

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Limits.{name} must be a positive number, got {value!r}")
        integral = ("cpu_seconds", "worker_cpu_seconds", "memory_bytes", "file_bytes", "open_files")
        for name in integral:
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"Limits.{name} must be an int, got {getattr(self, name)!r}")
        if self.worker_cpu_seconds < self.cpu_seconds:
            raise ValueError("Limits.worker_cpu_seconds must be at least Limits.cpu_seconds")
        if self.array_bytes >= 1 << 32:
            raise ValueError("Limits.array_bytes must stay below 4 GiB")


@dataclass(frozen=True)
class Isolation:
    """Which isolation layers protect the grader from the worker.

    ``level`` is ``"full"`` (PID + network namespaces, unprivileged, filesystem allow-list),
    ``"partial"`` (some of these) or ``"minimal"`` (process group, rlimits and clean environment
    only). ``notes`` say why a layer is missing.
    """

    level: str
    layers: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.level} isolation ({', '.join(self.layers)})"


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


@dataclass(frozen=True)
class _Plan:
    namespaces: bool = False
    userns: bool = False
    fs_view: bool = False
    uid: int | None = None
    landlock: int = 0


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


def detect_isolation() -> Isolation:
    """Probe (once per process) which isolation layers work here, by starting real workers."""
    return _detect()[1]


_detect_lock = threading.Lock()


def _detect() -> tuple[_Plan, Isolation]:
    with _detect_lock:
        return _detect_cached()


@functools.cache
def _detect_cached() -> tuple[_Plan, Isolation]:
    plans, notes = _candidate_plans()
    failures = []
    with tempfile.TemporaryDirectory(prefix="gradverify-probe-") as tmp:
        probe = Path(tmp) / "probe.py"
        probe.write_text("")
        os.chmod(tmp, 0o755)
        for plan in plans:
            box = Sandbox(probe, limits=Limits(load_timeout=30), _plan=plan)
            try:
                result = box.start()
                isolation = box.isolation
            finally:
                box.close()
            if result.ok:
                return plan, _isolation_from(plan, list(isolation.layers), notes + failures)
            failures.append(f"{_describe_plan(plan)} failed: {result.error}")
    return plans[-1], Isolation("minimal", ("session", "rlimits"), tuple(notes + failures))


def _candidate_plans() -> tuple[list[_Plan], list[str]]:
    notes = [_SECCOMP_NOTE]
    root = os.geteuid() == 0
    unshare = _unshare()
    abi = _landlock_abi()
    if not unshare:
        notes.append("no 'unshare' program: no namespaces")
    if not abi:
        notes.append("Landlock unavailable in this kernel")
    viewable = os.uname().machine in ("x86_64", "aarch64", "riscv64")
    blocked = _first_private_path()
    if root and blocked:
        notes.append(
            f"{blocked} is not world-readable: the uid drop works only with the private filesystem view"
        )
    bases: list[_Plan] = []
    if unshare and root:
        bases += [_Plan(namespaces=True, fs_view=True, uid=_SANDBOX_UID)] if viewable else []
        bases += [_Plan(namespaces=True, uid=_SANDBOX_UID)] if not blocked else []
        bases += [_Plan(namespaces=True)]
    elif unshare:
        bases += [_Plan(namespaces=True, userns=True, fs_view=True)] if viewable else []
        bases += [_Plan(namespaces=True, userns=True)]
    bases += [_Plan(uid=_SANDBOX_UID)] if root and not blocked else []
    bases += [_Plan()]
    plans = []
    for base in bases:
        plans += [replace(base, landlock=abi), base] if abi else [base]
    return plans, notes


def _unshare() -> str | None:
    return shutil.which("unshare", path=os.pathsep.join([os.defpath, "/usr/bin", "/bin", "/usr/sbin"]))


def _describe_plan(plan: _Plan) -> str:
    parts = ["namespaces" if plan.namespaces else "no namespaces"]
    parts += ["user namespace"] if plan.userns else []
    parts += ["filesystem view"] if plan.fs_view else []
    parts += [f"uid {plan.uid}"] if plan.uid is not None else []
    parts += [f"Landlock ABI {plan.landlock}"] if plan.landlock else []
    return " + ".join(parts)


def _landlock_abi() -> int:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
        version = libc.syscall(ctypes.c_long(444), None, ctypes.c_long(0), ctypes.c_long(1))
    except (OSError, AttributeError):
        return 0
    return max(0, int(version))


def _runtime_paths() -> dict[str, list[str]]:
    """Real paths the worker reads besides the standard library (which it finds itself)."""
    numpy_dir = os.path.dirname(os.path.realpath(np.__file__))
    parent = os.path.dirname(numpy_dir)
    numpy_dirs = [numpy_dir] + sorted(
        os.path.realpath(os.path.join(parent, name))
        for name in os.listdir(parent)
        if name.startswith("numpy") and name.endswith(".libs")
    )
    import sysconfig

    libdir = sysconfig.get_config_var("LIBDIR")
    libs = [p for p in _LIB_DIRS if os.path.lexists(p)]
    libs += [libdir] if libdir and os.path.isdir(libdir) else []
    libs += ["/etc/ld.so.cache"] if os.path.exists("/etc/ld.so.cache") else []
    return {"numpy": numpy_dirs, "libs": libs}


def _first_private_path() -> str | None:
    """The first path an unprivileged uid could not reach without the filesystem view."""
    import sysconfig

    needed = [sysconfig.get_paths()["stdlib"], *_runtime_paths()["numpy"]]
    for path in needed:
        current = "/"
        for part in Path(path).parts[1:]:
            current = os.path.join(current, part)
            try:
                mode = os.stat(current).st_mode
            except OSError:
                return current
            if not mode & stat.S_IXOTH or (current == path and not mode & stat.S_IROTH):
                return current
    return None


def _isolation_from(plan: _Plan, confirmed: list[str], notes: list[str]) -> Isolation:
    layers = list(confirmed)
    if plan.namespaces:
        extra = ["net-ns", "mount-ns", "ipc-ns", "uts-ns"] + (["user-ns"] if plan.userns else [])
        at = layers.index("pid-ns") + 1 if "pid-ns" in layers else len(layers)
        layers[at:at] = [name for name in extra if name not in layers]
    have = set(layers)
    notes = list(notes)
    dropped_uid = any(name.startswith("uid-") for name in have)
    if not ({"pid-ns", "user-ns", "landlock-scoped-signals"} & have or dropped_uid):
        notes.append(
            "the worker runs under the grader's uid without a PID namespace: "
            "it can signal the grader's processes"
        )
    if "no-new-processes" not in have:
        notes.append("the worker can start processes (uid 0 is exempt from RLIMIT_NPROC)")
    namespaced = {"pid-ns", "net-ns"} <= have
    unprivileged = "user-ns" in have or dropped_uid
    allow_list = "fs-view" in have or any(name.startswith("landlock-abi") for name in have)
    if namespaced and unprivileged and allow_list:
        level = "full"
    elif namespaced or unprivileged or allow_list:
        level = "partial"
    else:
        level = "minimal"
    return Isolation(level, tuple(layers), tuple(dict.fromkeys(notes)))


# --------------------------------------------------------------------------------------------
# The sandbox
# --------------------------------------------------------------------------------------------


class _SubmissionError(Exception):
    """The submission cannot be copied into the sandbox (missing, symlink, too large...)."""


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
        _plan: _Plan | None = None,
    ):
        if not isinstance(limits, Limits):
            raise TypeError(f"limits must be a Limits, got {type(limits).__name__}")
        self.submission = Path(submission)
        self.entry = entry
        self.limits = limits
        if _plan is None:
            self._plan, self.isolation = _detect()
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
        return f"{_MARKER}={self._token}"

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
        buffers = frames.pack(request, caps=_unbounded_caps())  # TypeError for unsupported args

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
            result, problem = _check_reply(reply, call_id)
            if problem is None:
                result.elapsed, result.stdout, result.stderr = elapsed, out, err
                cpu = reply.get("cpu")
                if cpu + self.limits.cpu_seconds + 1 > self.limits.worker_cpu_seconds:
                    self._state.retire()  # a fresh worker next time, before the hard limit
                return result
            status, reply = "protocol", problem
        death = self._state.retire()
        return _failure(status, reply, death, timeout, elapsed, out, err)

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
            root, config = _make_root(self.submission, self.entry, self.limits, self._plan)
        except _SubmissionError as exc:
            return CallResult("load", error=str(exc))
        except OSError as exc:
            return CallResult("setup", error=f"cannot prepare the sandbox's files: {exc}")
        self._state.root = root
        try:
            worker = _Worker(self._plan, root, config, self._token, self.limits)
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
                error, tb = _text(caged.get("error")), _text(caged.get("traceback"))
                return CallResult("setup", error=error, traceback=tb, stdout=out, stderr=err)
            else:
                self.isolation = _isolation_from(self._plan, layers, self._notes)
                status, ready, more, out2, err2 = worker.exchange(None, deadline)
                elapsed, out, err = elapsed + more, out + out2, err + err2
                if status == "ok":
                    result = _ready_result(ready)
                    if result is not None:
                        result.elapsed, result.stdout, result.stderr = elapsed, out, err
                        if not result.ok:
                            self._state.retire()
                        return result
                    status, caged = "protocol", "the worker's second message is not a valid 'ready'"
        death = self._state.retire()
        return _failure(status, caged, death, self.limits.load_timeout, elapsed, out, err)


def _ready_result(ready: object) -> CallResult | None:
    """The load result a valid 'ready' message reports, or None."""
    if (
        not isinstance(ready, dict)
        or ready.get("op") != "ready"
        or ready.get("kind") not in ("ok", "load", "memory", "cpu")
    ):
        return None
    return CallResult(ready["kind"], error=_text(ready.get("error")), traceback=_text(ready.get("traceback")))


def _failure(
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


def _check_reply(reply: object, call_id: str) -> tuple[CallResult, str | None]:
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
        kind not in _WORKER_KINDS
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
        error=_text(reply.get("error")),
        traceback=_text(reply.get("traceback")),
        args_after=after,
    )
    return result, None


def _text(value: object, limit: int = 20_000) -> str | None:
    if value is None:
        return None
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + f"\n[... {len(text) - limit} characters cut]"
    return text


@functools.cache
def _unbounded_caps() -> frames.Caps:
    return frames.Caps(header_bytes=(1 << 32) - 1, array_bytes=(1 << 32) - 1, message_bytes=1 << 62)


class _State:
    """Everything that must be cleaned up, kept apart from the Sandbox for ``weakref.finalize``."""

    def __init__(self, token: str):
        self.token = token
        self.worker: _Worker | None = None
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
        _kill_marked(self.token)
        self.closed = True


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _make_root(
    submission: Path, entry: str | None, limits: Limits, plan: _Plan
) -> tuple[Path, dict]:
    root = Path(tempfile.mkdtemp(prefix="gradverify-sandbox-"))
    try:
        os.chmod(root, 0o711)
        rt, work = root / "rt", root / "work"
        rt.mkdir()
        (rt / "site").mkdir()
        work.mkdir()
        shutil.copyfile(_HERE / "frames.py", rt / "_gv_frames.py")
        shutil.copyfile(_HERE / "_worker.py", rt / "_gv_worker.py")
        paths = _runtime_paths()
        for directory in paths["numpy"]:
            (rt / "site" / os.path.basename(directory)).symlink_to(directory)
        for path in (rt / "_gv_frames.py", rt / "_gv_worker.py"):
            os.chmod(path, 0o644)
        os.chmod(rt, 0o755)
        os.chmod(rt / "site", 0o755)
        entry_name = _copy_submission(submission, entry, work, limits.submission_bytes)
        os.chmod(work, 0o700)
        if plan.uid is not None:
            for dirpath, dirnames, filenames in os.walk(work):
                for name in [*dirnames, *filenames]:
                    os.lchown(os.path.join(dirpath, name), plan.uid, plan.uid)
            os.chown(work, plan.uid, plan.uid)
        if plan.fs_view:
            (root / "fs").mkdir()
            os.chmod(root / "fs", 0o755)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    read = [str(rt), *paths["numpy"], *paths["libs"], *_DEVICES_READ]
    config = {
        "site": str(rt / "site"),
        "work": str(work),
        "entry": entry_name,
        "module": Path(entry_name).stem,
        "fs_view": {
            "root": str(root / "fs"),
            "ro": [str(rt), *paths["numpy"], *paths["libs"]],
            "rw": [str(work)],
            "dev": ["/dev/null", *_DEVICES_READ],
            "host_mount_ns": os.readlink("/proc/self/ns/mnt"),
        }
        if plan.fs_view
        else None,
        "uid": plan.uid,
        "gid": plan.uid,
        "userns": plan.userns,
        "landlock": {"abi": plan.landlock, "read": read, "write": [str(work), "/dev/null"]}
        if plan.landlock
        else None,
        "limits": {
            "cpu": limits.cpu_seconds,
            "worker_cpu": limits.worker_cpu_seconds,
            "memory": limits.memory_bytes,
            "file": limits.file_bytes,
            "open_files": limits.open_files,
        },
        "caps": {"array_bytes": limits.array_bytes, "message_bytes": limits.message_bytes},
    }
    return root, config


def _copy_submission(src: Path, entry: str | None, work: Path, budget: int) -> str:
    """Copy the submission's regular files into ``work``; return the entry file's name."""
    try:
        info = os.lstat(src)
    except OSError as exc:
        raise _SubmissionError(f"cannot read the submission {str(src)!r}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise _SubmissionError(f"the submission {str(src)!r} is a symbolic link: pass the real path")
    if stat.S_ISREG(info.st_mode):
        if src.suffix != ".py":
            raise _SubmissionError(f"the submission {src.name!r} is not a .py file")
        if entry is not None and entry not in (src.name, src.stem):
            raise _SubmissionError(f"entry {entry!r} given, but the submission is {src.name!r}")
        _copy_file(src, work / src.name, budget)
        return src.name
    if not stat.S_ISDIR(info.st_mode):
        raise _SubmissionError(f"the submission {str(src)!r} is neither a file nor a folder")
    left, count = budget, 0
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        rel = os.path.relpath(dirpath, src)
        target_dir = work if rel == "." else work / rel
        dirnames[:] = [
            d
            for d in dirnames
            if d not in _SKIPPED_DIRS and not os.path.islink(os.path.join(dirpath, d))
        ]
        for name in dirnames:
            (target_dir / name).mkdir(mode=0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue  # symbolic links, fifos, sockets, devices: never followed or read
            count += 1
            if count > 1000:
                raise _SubmissionError("the submission holds more than 1000 files")
            left -= _copy_file(Path(path), target_dir / name, left)
    tops = sorted(p.name for p in work.iterdir() if p.suffix == ".py" and p.is_file())
    if entry is not None:
        name = entry if entry.endswith(".py") else entry + ".py"
        if name not in tops:
            have = ", ".join(tops) or "no .py files"
            raise _SubmissionError(f"the submission folder has no top-level {name!r} (it has {have})")
        return name
    if len(tops) != 1:
        found = ", ".join(tops) if tops else "none"
        raise _SubmissionError(
            "the submission folder must hold exactly one top-level .py file "
            f"(found: {found}); name the one to import with entry="
        )
    return tops[0]


def _copy_file(src: Path, dst: Path, budget: int) -> int:
    # O_NOFOLLOW and O_NONBLOCK: a file swapped for a symlink or a fifo since lstat fails or
    # returns at once instead of leaking another file or hanging the grader.
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _SubmissionError(f"{src.name!r} is not a regular file")
        data = os.read(fd, budget + 1)
        if len(data) > budget:
            raise _SubmissionError("the submission is larger than Limits.submission_bytes")
    finally:
        os.close(fd)
    with open(dst, "wb") as out:
        out.write(data)
    os.chmod(dst, 0o644)
    return len(data)


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


class _Capture:
    """Keep the first ``cap`` bytes of a stream; count the rest."""

    def __init__(self, cap: int):
        self.cap, self.data, self.dropped = cap, bytearray(), 0

    def add(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        self.data += chunk[:room] if room > 0 else b""
        self.dropped += max(0, len(chunk) - max(room, 0))

    def text(self) -> str:
        text = self.data.decode("utf-8", errors="replace")
        return text + (f"\n[... {self.dropped} more bytes not shown]" if self.dropped else "")


class _Worker:
    """One worker process, its pipes, and how to kill everything it started."""

    def __init__(self, plan: _Plan, root: Path, config: dict, token: str, limits: Limits):
        self.token, self.limits = token, limits
        req_r, self.req_w = os.pipe()
        self.resp_r, resp_w = os.pipe()
        config = dict(config, rfd=req_r, wfd=resp_w)
        command = [sys.executable, "-I", "-S", str(root / "rt" / "_gv_worker.py"), _json(config)]
        if plan.namespaces:
            unshare = _unshare()
            flags = ["--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--ipc", "--uts"]
            flags += ["--user", "--map-root-user"] if plan.userns else []
            command = [unshare, *flags, "--", *command]
        work = config["work"]
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": work,
            "TMPDIR": work,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "NUMEXPR_NUM_THREADS": "1",
            "VECLIB_MAXIMUM_THREADS": "1",
            _MARKER: token,
        }
        self.namespaces = plan.namespaces
        self.pidfd: int | None = None
        self.reader = frames.Reader(
            frames.Caps(array_bytes=limits.array_bytes, message_bytes=limits.message_bytes)
        )
        try:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(req_r, resp_w),
                env=env,
                cwd=work,
                start_new_session=True,
            )
        finally:
            os.close(req_r)
            os.close(resp_w)
        self.out_fd, self.err_fd = self.proc.stdout.fileno(), self.proc.stderr.fileno()
        for fd in (self.req_w, self.out_fd, self.err_fd):
            os.set_blocking(fd, False)
        self.open_streams = {self.out_fd, self.err_fd}
        self.dead = False

    def exchange(self, buffers, deadline: float) -> tuple[str, object, float, str, str]:
        """Send a request (if any) and wait for one message, draining stdout/stderr meanwhile.

        Returns ``(status, message_or_error, elapsed, stdout, stderr)`` where status is
        ``"ok"``, ``"timeout"``, ``"eof"`` (the worker died) or ``"protocol"``.
        """
        start = time.monotonic()
        out, err = _Capture(self.limits.output_bytes), _Capture(self.limits.output_bytes)
        captures = {self.out_fd: out, self.err_fd: err}
        pending = [memoryview(b).cast("B") for b in buffers] if buffers else []
        poller = select.poll()
        poller.register(self.resp_r, select.POLLIN)
        for fd in self.open_streams:
            poller.register(fd, select.POLLIN)
        if pending:
            poller.register(self.req_w, select.POLLOUT)

        def finish(status: str, message: object) -> tuple[str, object, float, str, str]:
            self._drain(captures)
            return status, message, time.monotonic() - start, out.text(), err.text()

        try:
            ok, message = self.reader.pop()  # a message may already be buffered (forged early)
        except frames.ProtocolError as exc:
            return finish("protocol", str(exc))
        while not ok:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return finish("timeout", None)
            # Wake up now and then to notice a dead worker whose pipes a stray descendant
            # still holds open (then no EOF would ever come).
            events = poller.poll(max(1, math.ceil(min(remaining, 0.2) * 1000)))
            if not events and self.proc.poll() is not None:
                return finish("eof", None)
            for fd, event in events:
                if fd == self.req_w:
                    if event & (select.POLLERR | select.POLLHUP) or not self._write(pending):
                        pending = []
                    if not pending:
                        poller.unregister(fd)
                elif fd == self.resp_r:
                    chunk = os.read(fd, max(1 << 16, min(self.reader.wanted(), 1 << 22)))
                    if not chunk:
                        return finish("eof", None)
                    self.reader.feed(chunk)
                    try:
                        ok, message = self.reader.pop()
                    except frames.ProtocolError as exc:
                        return finish("protocol", str(exc))
                    if ok:
                        break
                else:
                    if not self._read_stream(fd, captures[fd]):
                        poller.unregister(fd)
        return finish("ok", message)

    def _write(self, pending: list[memoryview]) -> bool:
        try:
            written = os.writev(self.req_w, pending[:512])
        except BlockingIOError:
            return True
        except OSError:  # BrokenPipeError: the worker is gone; its EOF will tell
            return False
        while written and pending:
            if written >= len(pending[0]):
                written -= len(pending.pop(0))
            else:
                pending[0] = pending[0][written:]
                written = 0
        return True

    def _read_stream(self, fd: int, capture: _Capture) -> bool:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return True
        except OSError:
            chunk = b""
        if not chunk:
            self.open_streams.discard(fd)
            return False
        capture.add(chunk)
        return True

    def _drain(self, captures: dict[int, _Capture]) -> None:
        for fd in list(self.open_streams):
            for _ in range(64):  # bounded: a flood must not keep the grader here
                if not self._read_stream(fd, captures[fd]):
                    break
                if fd not in self.open_streams:
                    break
                try:
                    if not select.select([fd], [], [], 0)[0]:
                        break
                except (OSError, ValueError):
                    break

    def worker_pid(self) -> int | None:
        """Host pid of the process running the worker (under ``unshare`` it is its child)."""
        if not self.namespaces:
            return self.proc.pid
        children = _children(self.proc.pid)
        return children[0] if children else None

    def kill(self) -> str:
        """SIGKILL the worker, its namespace, its process group and marked strays; reap."""
        if self.dead:
            return ""
        self.dead = True
        pid = self.worker_pid() if self.proc.poll() is None else None
        if pid is not None and pid != self.proc.pid:
            _signal_pid(pid)  # the PID namespace's init: its death kills every descendant
        for kill in (lambda: os.killpg(self.proc.pid, signal.SIGKILL), self.proc.kill):
            try:
                kill()
            except (ProcessLookupError, PermissionError):
                pass
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        _kill_marked(self.token)
        for fd in (self.req_w, self.resp_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc.stdout.close()
        self.proc.stderr.close()
        if code is not None and code < 0:
            try:
                return signal.Signals(-code).name
            except ValueError:
                return f"signal {-code}"
        return f"exit status {code}" if code else ""


def _json(config: dict) -> str:
    import json

    return json.dumps(config, separators=(",", ":"))


def _proc_stat(pid: str) -> tuple[int, str] | None:
    """``(ppid, state)`` of a process from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return int(fields[1]), fields[0].decode()


def _children(parent: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = _proc_stat(name)
            if info is not None and info[0] == parent:
                found.append(int(name))
    return found


def _marked_pids(token: str) -> list[int]:
    """Live processes whose environment carries this sandbox's marker."""
    needle = f"{_MARKER}={token}".encode() + b"\0"
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        if (b"\0" + environ).find(b"\0" + needle) >= 0:
            info = _proc_stat(name)
            if info is not None and info[1] != "Z":
                found.append(int(name))
    return found


def _signal_pid(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        return
    try:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(fd)


def _kill_marked(token: str, patience: float = 5.0) -> None:
    """SIGKILL every process carrying the marker until none is left (or patience runs out)."""
    deadline = time.monotonic() + patience
    while True:
        pids = _marked_pids(token)
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            _signal_pid(pid)
        time.sleep(0.01)

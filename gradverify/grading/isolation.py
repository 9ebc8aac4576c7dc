"""Which isolation layers this machine allows: probed once per process by starting real workers.

A *plan* says which layers to ask the worker for (namespaces, a private filesystem view, a uid
of its own, Landlock, seccomp); ``detect_isolation`` tries the strongest plans first and keeps
the first whose worker starts, and an ``Isolation`` record says which layers are on and why the
others are not.

Sandboxes share nothing: each runs under a uid leased from ``UID_RANGE`` for its lifetime (a
lock file per uid, released by the kernel if the grader dies), in namespaces of its own, with
the keyrings and System V IPC refused by seccomp — so what one submission leaves in the kernel
cannot be read by another, in this batch or a later one.
"""

from __future__ import annotations

import fcntl
import functools
import os
import secrets
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gradverify.grading import seccomp

__all__ = ["Isolation", "Plan", "UidLease", "UID_RANGE", "detect_isolation", "detect", "isolation_from", "lease_uid",
           "runtime_paths", "unshare_path", "landlock_abi", "sealed_inputs"]

# Sandbox uids: far above login and system accounts, below 2^31 (some tools mishandle larger).
UID_RANGE = range(2_140_000_000, 2_140_000_000 + 65_536)
_LIB_DIRS = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32")


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



@dataclass(frozen=True)
class Plan:
    """The layers to ask a worker for (what the machine allows is probed with real workers)."""

    namespaces: bool = False
    userns: bool = False
    fs_view: bool = False
    own_uid: bool = False
    landlock: int = 0
    seccomp: bool = False


class UidLease:
    """One uid of ``UID_RANGE``, held by this process (a ``flock`` on its lock file) until ``release``."""

    def __init__(self, uid: int, fd: int):
        self.uid, self._fd = uid, fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # drops the lock
            self._fd = -1


def _lease_dir() -> str:
    base = "/run" if os.geteuid() == 0 and os.access("/run", os.W_OK) else tempfile.gettempdir()
    path = os.path.join(base, f"gradverify-uids-{os.geteuid()}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise OSError(f"{path} is not a private folder of this user: refusing to keep uid leases there")
    return path


def lease_uid() -> UidLease:
    """A uid no other live sandbox on this machine holds, from a random place in ``UID_RANGE``.

    Raises:
        OSError: the lease folder cannot be used, or every uid is taken.
    """
    folder, start = _lease_dir(), secrets.randbelow(len(UID_RANGE))
    for i in range(len(UID_RANGE)):
        uid = UID_RANGE[(start + i) % len(UID_RANGE)]
        fd = os.open(os.path.join(folder, str(uid)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return UidLease(uid, fd)
    raise OSError("every sandbox uid is in use")


@functools.cache
def sealed_inputs() -> bool:
    """Whether arguments can be passed as sealed memory files (``memfd_create`` and file seals)."""
    try:
        fd = os.memfd_create("gradverify-probe", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except (AttributeError, OSError):
        return False
    try:
        os.write(fd, b"x")
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
        return os.path.exists(f"/proc/self/fd/{fd}")
    except (AttributeError, OSError):
        return False
    finally:
        os.close(fd)

def detect_isolation() -> Isolation:
    """Probe (once per process) which isolation layers work here, by starting real workers."""
    return detect()[1]


_detect_lock = threading.Lock()


def detect() -> tuple[Plan, Isolation]:
    with _detect_lock:
        return _detect_cached()


@functools.cache
def _detect_cached() -> tuple[Plan, Isolation]:
    plans, notes = _candidate_plans()
    failures = []
    with tempfile.TemporaryDirectory(prefix="gradverify-probe-") as tmp:
        probe = Path(tmp) / "probe.py"
        probe.write_text("")
        os.chmod(tmp, 0o755)
        for plan in plans:
            from gradverify.grading.limits import Limits
            from gradverify.grading.sandbox import Sandbox  # the probe is a real sandbox

            box = Sandbox(probe, limits=Limits(load_timeout=30), _plan=plan)
            try:
                result = box.start()
                isolation = box.isolation
            finally:
                box.close()
            if result.ok:
                return plan, isolation_from(plan, list(isolation.layers), notes + failures)
            failures.append(f"{_describe_plan(plan)} failed: {result.error}")
    return plans[-1], Isolation("minimal", ("session", "rlimits"), tuple(notes + failures))


def _candidate_plans() -> tuple[list[Plan], list[str]]:
    notes = []
    root = os.geteuid() == 0
    unshare = unshare_path()
    abi = landlock_abi()
    if not unshare:
        notes.append("no 'unshare' program: no namespaces")
    if not abi:
        notes.append("Landlock unavailable in this kernel")
    filtered = seccomp.supported()
    if not filtered:
        notes.append(f"no seccomp system-call table for {os.uname().machine}: keyrings and System V IPC are not refused")
    viewable = os.uname().machine in ("x86_64", "aarch64", "riscv64")
    blocked = _first_private_path()
    if root and blocked:
        notes.append(
            f"{blocked} is not world-readable: the uid drop works only with the private filesystem view"
        )
    bases: list[Plan] = []
    if unshare and root:
        bases += [Plan(namespaces=True, fs_view=True, own_uid=True)] if viewable else []
        bases += [Plan(namespaces=True, own_uid=True)] if not blocked else []
        bases += [Plan(namespaces=True)]
    elif unshare:
        bases += [Plan(namespaces=True, userns=True, fs_view=True)] if viewable else []
        bases += [Plan(namespaces=True, userns=True)]
    bases += [Plan(own_uid=True)] if root and not blocked else []
    bases += [Plan()]
    plans = []
    for base in bases:
        for filter_ in ((True, False) if filtered else (False,)):
            plans += [replace(base, landlock=abi, seccomp=filter_)] if abi else []
            plans += [replace(base, seccomp=filter_)]
    return plans, notes


def unshare_path() -> str | None:
    return shutil.which("unshare", path=os.pathsep.join([os.defpath, "/usr/bin", "/bin", "/usr/sbin"]))


def _describe_plan(plan: Plan) -> str:
    parts = ["namespaces" if plan.namespaces else "no namespaces"]
    parts += ["user namespace"] if plan.userns else []
    parts += ["filesystem view"] if plan.fs_view else []
    parts += ["own uid"] if plan.own_uid else []
    parts += [f"Landlock ABI {plan.landlock}"] if plan.landlock else []
    parts += ["seccomp"] if plan.seccomp else []
    return " + ".join(parts)


def landlock_abi() -> int:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
        version = libc.syscall(ctypes.c_long(444), None, ctypes.c_long(0), ctypes.c_long(1))
    except (OSError, AttributeError):
        return 0
    return max(0, int(version))


def runtime_paths() -> dict[str, list[str]]:
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

    needed = [sysconfig.get_paths()["stdlib"], *runtime_paths()["numpy"]]
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


def isolation_from(plan: Plan, confirmed: list[str], notes: list[str]) -> Isolation:
    """The summary of a worker's layers: those it confirmed, the namespaces its plan implies, what is missing."""
    layers = list(confirmed)
    if plan.namespaces:
        extra = ["net-ns", "mount-ns", "ipc-ns", "uts-ns"] + (["user-ns"] if plan.userns else [])
        at = layers.index("pid-ns") + 1 if "pid-ns" in layers else len(layers)
        layers[at:at] = [name for name in extra if name not in layers]
    if sealed_inputs() and "sealed-inputs" not in layers:
        layers.append("sealed-inputs")
    have = set(layers)
    notes = list(notes)
    dropped_uid = "own-uid" in have
    if "seccomp" not in have:
        notes.append("no seccomp filter: kernel keyrings (a channel between submissions of the same uid) are not refused")
    if "tmpfs-work" not in have:
        notes.append("the work folder is on the host's disk: no cap on its total size or number of files")
    if "sealed-inputs" not in have:
        notes.append("no sealed memory files: arguments are private copies, and writes into them are not detected")
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
    if namespaced and unprivileged and allow_list and "seccomp" in have:
        level = "full"
    elif namespaced or unprivileged or allow_list:
        level = "partial"
    else:
        level = "minimal"
    return Isolation(level, tuple(layers), tuple(dict.fromkeys(notes)))


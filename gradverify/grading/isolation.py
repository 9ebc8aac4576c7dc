"""Which isolation layers this machine allows: probed once per process by starting real workers.

A *plan* says which layers to ask the worker for (namespaces, a private filesystem view, an
unprivileged uid, Landlock); ``detect_isolation`` tries the strongest plans first and keeps the
first whose worker starts, and an ``Isolation`` record says which layers are on and why the
others are not.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

__all__ = ["Isolation", "Plan", "detect_isolation", "detect", "isolation_from", "runtime_paths", "unshare_path",
           "landlock_abi"]

SANDBOX_UID = 65534  # "nobody"
_LIB_DIRS = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32")
_SECCOMP_NOTE = (
    "seccomp not used: fork, exec and sockets are closed by RLIMIT_NPROC=0, Landlock and the "
    "network namespace; a ctypes BPF filter would be arch-specific and fragile"
)


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
    uid: int | None = None
    landlock: int = 0


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
    notes = [_SECCOMP_NOTE]
    root = os.geteuid() == 0
    unshare = unshare_path()
    abi = landlock_abi()
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
    bases: list[Plan] = []
    if unshare and root:
        bases += [Plan(namespaces=True, fs_view=True, uid=SANDBOX_UID)] if viewable else []
        bases += [Plan(namespaces=True, uid=SANDBOX_UID)] if not blocked else []
        bases += [Plan(namespaces=True)]
    elif unshare:
        bases += [Plan(namespaces=True, userns=True, fs_view=True)] if viewable else []
        bases += [Plan(namespaces=True, userns=True)]
    bases += [Plan(uid=SANDBOX_UID)] if root and not blocked else []
    bases += [Plan()]
    plans = []
    for base in bases:
        plans += [replace(base, landlock=abi), base] if abi else [base]
    return plans, notes


def unshare_path() -> str | None:
    return shutil.which("unshare", path=os.pathsep.join([os.defpath, "/usr/bin", "/bin", "/usr/sbin"]))


def _describe_plan(plan: Plan) -> str:
    parts = ["namespaces" if plan.namespaces else "no namespaces"]
    parts += ["user namespace"] if plan.userns else []
    parts += ["filesystem view"] if plan.fs_view else []
    parts += [f"uid {plan.uid}"] if plan.uid is not None else []
    parts += [f"Landlock ABI {plan.landlock}"] if plan.landlock else []
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


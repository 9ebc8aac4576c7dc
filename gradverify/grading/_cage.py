"""The worker's cage: every isolation layer it applies to itself before any student code runs.

Never imported by the grader: ``files.py`` copies this file next to the worker (as
``_gv_cage.py``), which loads it by path. Standard library only. ``build`` applies, in order and
as far as the config asks (the grader has probed what the machine allows):

1. the work directory: a size- and inode-capped tmpfs in the worker's own mount namespace,
   filled with the submission's snapshot (gone with the namespace: nothing to clean up);
2. *fs view*: a read-only tmpfs root holding only the standard library, numpy, system
   libraries, this runtime and the work directory, then ``pivot_root`` into it;
3. an unprivileged uid/gid of the sandbox's own (or, when that is impossible, no capabilities);
4. ``no_new_privs`` and a parent-death signal;
5. Landlock: read-only allow-list, writes only in the work directory, no ``execve``, no TCP,
   no signals or abstract sockets outside the sandbox;
6. seccomp: the filter the grader built (``seccomp.py``), confirmed by a refused ``keyctl``;
7. rlimits: CPU, address space, file size, open files, no core dumps, no new processes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import shutil
import signal
import struct

# --------------------------------------------------------------------------------------------
# Linux plumbing through ctypes (Python 3.11 has no os.unshare/mount/pivot_root/landlock)
# --------------------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_MNT_DETACH = 2
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}
_SYS_LANDLOCK = (444, 445, 446)  # create_ruleset, add_rule, restrict_self (all arches)
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS, _PR_CAPBSET_DROP, _PR_CAP_AMBIENT = 1, 38, 24, 47


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None = None):
    src_b, fstype_b, data_b = (None if s is None else s.encode() for s in (src, fstype, data))
    result = _libc.mount(src_b, dst.encode(), fstype_b, ctypes.c_ulong(flags), data_b)
    _check(result, f"mount {dst}")


def _prctl(option: int, arg: int = 0) -> int:
    zero = ctypes.c_ulong(0)
    return _libc.prctl(option, ctypes.c_ulong(arg), zero, zero, zero)


def _syscall(number: int, *args) -> int:
    return _libc.syscall(*(ctypes.c_long(a) if isinstance(a, int) else a for a in (number, *args)))


# --------------------------------------------------------------------------------------------
# Isolation layers
# --------------------------------------------------------------------------------------------


def _build_fs_view(view: dict, stdlib: list[str], work: dict, uid: int | None) -> None:
    """Mount a fresh read-only root holding only what the worker needs, and pivot into it."""
    machine = os.uname().machine
    if machine not in _SYS_PIVOT_ROOT:
        raise OSError(f"pivot_root syscall number unknown on {machine}")
    if os.readlink("/proc/self/ns/mnt") == view["host_mount_ns"]:
        raise OSError("refusing to build the filesystem view outside a private mount namespace")
    new_root = view["root"]
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount("tmpfs", new_root, "tmpfs", _MS_NOSUID, "mode=0755,size=1m")
    ops: list[tuple[str, str, str]] = []  # (target, kind, source)
    for path in stdlib:
        ops.append((path, "ro", os.path.realpath(path)))
        for hidden in _package_dirs(path):
            ops.append((hidden, "hide", ""))
    for path in view["ro"]:
        if os.path.islink(path) and os.path.dirname(path) == "/":
            ops.append((path, "link", os.readlink(path)))  # merged-/usr: /lib -> usr/lib
        elif os.path.exists(path):
            ops.append((path, "ro", os.path.realpath(path)))
            if os.path.isdir(path):
                ops.extend((hidden, "hide", "") for hidden in _package_dirs(path))
    ops.append((work["path"], "work", work["source"]))
    ops.extend((path, "dev", path) for path in view["dev"] if os.path.exists(path))
    # Parents before children, so a hidden site-packages can re-expose numpy inside it.
    ops.sort(key=lambda op: (op[0].rstrip("/").count("/"), op[0]))
    for target, kind, source in ops:
        inside = new_root + target
        if kind == "link":
            os.symlink(source, inside)
            continue
        is_dir = kind in ("hide", "work") or os.path.isdir(source)
        if is_dir:
            os.makedirs(inside, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            if not os.path.exists(inside):
                os.close(os.open(inside, os.O_CREAT | os.O_WRONLY, 0o644))
        if kind == "hide":
            flags = _MS_NOSUID | _MS_NODEV | _MS_RDONLY
            _mount("tmpfs", inside, "tmpfs", flags, "size=4k,mode=0555")
            continue
        if kind == "work":
            _work_tmpfs(inside, work, uid)
            continue
        _mount(source, inside, None, _MS_BIND | _MS_REC)
        if kind in ("ro", "dev") and not (kind == "dev" and target == "/dev/null"):
            # In a user namespace, flags of the original mount are locked: keep them.
            keep = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC | 1024 | 2048 | 4096  # + (no/rel)atime
            locked = os.statvfs(inside).f_flag & keep
            _mount(None, inside, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | locked)
    os.chdir(new_root)
    _check(_syscall(_SYS_PIVOT_ROOT[machine], b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", _MNT_DETACH), "umount old root")
    os.chdir("/")
    _mount(None, "/", None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID)


def _package_dirs(path: str) -> list[str]:
    """site-/dist-packages directories at most two levels under ``path`` (hidden in the view)."""
    found = []
    for base in (path, *[os.path.join(path, d) for d in _listdir(path) if d.startswith("python")]):
        for name in ("site-packages", "dist-packages"):
            candidate = os.path.join(base, name)
            if os.path.isdir(candidate) and not os.path.islink(candidate):
                found.append(candidate)
    return found


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _drop_uid(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise OSError("uid/gid did not change")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise OSError("could regain uid 0 after dropping it")


def _drop_capabilities() -> None:
    for cap in range(64):
        if _prctl(_PR_CAPBSET_DROP, cap) < 0 and ctypes.get_errno() == 22:  # EINVAL: no such cap
            break
    _prctl(_PR_CAP_AMBIENT, 4)  # PR_CAP_AMBIENT_CLEAR_ALL
    header = struct.pack("<Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = ctypes.create_string_buffer(24)  # two all-zero {effective, permitted, inheritable}
    _check(_libc.capset(ctypes.c_char_p(header), data), "capset")


# Landlock access rights (include/uapi/linux/landlock.h).
_LL_EXECUTE, _LL_WRITE_FILE, _LL_READ_FILE, _LL_READ_DIR = 1, 2, 4, 8
_LL_REMOVE_DIR, _LL_REMOVE_FILE, _LL_MAKE_DIR, _LL_MAKE_REG = 16, 32, 128, 256
_LL_MAKE_SYM, _LL_REFER, _LL_TRUNCATE, _LL_IOCTL_DEV = 4096, 1 << 13, 1 << 14, 1 << 15
_LL_FILE_ONLY = _LL_EXECUTE | _LL_WRITE_FILE | _LL_READ_FILE | _LL_TRUNCATE | _LL_IOCTL_DEV


def _landlock(abi: int, read: list[str], write: list[str]) -> list[str]:
    """Restrict this process (and any child) to the allow-lists; return the layer names."""
    handled = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    handled |= _LL_REFER if abi >= 2 else 0
    handled |= _LL_TRUNCATE if abi >= 3 else 0
    handled |= _LL_IOCTL_DEV if abi >= 5 else 0
    net = 0b11 if abi >= 4 else 0  # BIND_TCP | CONNECT_TCP, with no rule allowing any port
    scoped = 0b11 if abi >= 6 else 0  # abstract unix sockets, signals
    attr = ctypes.create_string_buffer(struct.pack("<QQQ", handled, net, scoped), 24)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    create, add_rule, restrict = _SYS_LANDLOCK
    ruleset = _check(_syscall(create, attr, size, 0), "landlock_create_ruleset")
    read_rights = _LL_READ_FILE | _LL_READ_DIR
    write_rights = read_rights | _LL_WRITE_FILE | _LL_REMOVE_DIR | _LL_REMOVE_FILE
    write_rights |= _LL_MAKE_DIR | _LL_MAKE_REG | _LL_MAKE_SYM | (handled & (_LL_REFER | _LL_TRUNCATE))
    try:
        for paths, rights in ((read, read_rights), (write, write_rights)):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    allowed = rights & handled
                    if not os.path.isdir(path):
                        allowed &= _LL_FILE_ONLY
                    rule = ctypes.create_string_buffer(struct.pack("<Qi", allowed, fd), 12)
                    _check(_syscall(add_rule, ruleset, 1, rule, 0), f"landlock_add_rule {path}")
                finally:
                    os.close(fd)
        _check(_prctl(_PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
        _check(_syscall(restrict, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    layers = [f"landlock-abi{abi}"]
    layers += ["landlock-no-tcp"] if net else []
    layers += ["landlock-scoped-signals"] if scoped else []
    return layers


def _work_tmpfs(target: str, work: dict, uid: int | None) -> None:
    """A fresh tmpfs at ``target`` (size and inode caps), holding a copy of the submission's snapshot."""
    options = f"size={work['tmpfs_bytes']},nr_inodes={work['tmpfs_inodes']},mode=0700"
    options += f",uid={uid},gid={uid}" if uid is not None else ""
    _mount("tmpfs", target, "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, options)
    source = work["source"]
    for dirpath, dirnames, filenames in os.walk(source):  # our own snapshot: shallow, no links
        rel = os.path.relpath(dirpath, source)
        into = target if rel == "." else os.path.join(target, rel)
        for name in dirnames:
            os.mkdir(os.path.join(into, name), 0o700)
        for name in filenames:
            shutil.copyfile(os.path.join(dirpath, name), os.path.join(into, name), follow_symlinks=False)
            os.chmod(os.path.join(into, name), 0o600)
        if uid is not None:
            for name in [*dirnames, *filenames]:
                os.lchown(os.path.join(into, name), uid, uid)


def _private_work(work: dict, uid: int | None) -> None:
    """Without a filesystem view but in a private mount namespace: the work tmpfs over the host path."""
    if os.readlink("/proc/self/ns/mnt") == work["host_mount_ns"]:
        raise OSError("refusing to mount the work directory outside a private mount namespace")
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    _work_tmpfs(work["path"], work, uid)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _seccomp(program: bytes) -> list[str]:
    """Install the grader's filter (``no_new_privs`` first) and confirm it refuses ``keyctl``."""
    _check(_prctl(_PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    zero = ctypes.c_ulong(0)
    result = _libc.prctl(22, ctypes.c_ulong(2), ctypes.byref(fprog), zero, zero)  # PR_SET_SECCOMP, FILTER
    _check(result, "seccomp")
    keyctl = {"x86_64": 250, "aarch64": 219}[os.uname().machine]
    # keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, create=1): must be refused now
    if _syscall(keyctl, 0, -4, 1) >= 0 or ctypes.get_errno() != errno.EPERM:
        raise OSError("the seccomp filter was installed but keyctl still works")
    return ["seccomp"]


def build(config: dict, stdlib: list[str]) -> list[str]:
    """Apply every layer the config asks for; return the names of those applied.

    Raises:
        OSError: a layer that was asked for could not be applied (the worker must then stop).
    """
    layers = []
    work, uid = config["work"], config["uid"]
    if config["fs_view"]:
        _build_fs_view(config["fs_view"], stdlib, work, uid)
        layers += ["fs-view", "tmpfs-work"]
    elif work["tmpfs_bytes"]:
        _private_work(work, uid)
        layers.append("tmpfs-work")
    if uid is not None:
        _drop_uid(uid, uid)
        layers.append("own-uid")
    else:
        _drop_capabilities()
        layers.append("no-capabilities")
    _check(_prctl(_PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # re-armed: a uid change clears it
    if config["landlock"]:
        landlock = config["landlock"]
        layers += _landlock(landlock["abi"], stdlib + landlock["read"], landlock["write"])
    if config["seccomp"]:
        layers += _seccomp(bytes.fromhex(config["seccomp"]))
    layers += _set_rlimits(config["limits"])
    return layers


class CpuLimitExceeded(BaseException):
    """Raised in the student's code by SIGXCPU (a BaseException: ``except Exception`` misses it)."""


def _on_sigxcpu(signum, frame):
    raise CpuLimitExceeded("CPU time limit exceeded")


def _set_rlimits(limits: dict) -> list[str]:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory"], limits["memory"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file"], limits["file"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"], limits["open_files"]))
    resource.setrlimit(resource.RLIMIT_CPU, (limits["worker_cpu"], limits["worker_cpu"]))
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    # The kernel exempts the host's uid 0 (also when mapped into a user namespace): check.
    return ["rlimits", "no-new-processes"] if _fork_blocked() else ["rlimits"]


def _fork_blocked() -> bool:
    try:
        pid = os.fork()
    except OSError:
        return True
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return False


def arm_cpu_limit(per_call: int | None) -> None:
    """Give the student's code ``per_call`` more CPU seconds; None: disarm (worker's own work)."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = hard if per_call is None else min(hard, int(sum(os.times()[:2])) + per_call + 1)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))

"""The sandboxed child: builds its own cage, loads one submission, then serves calls.

Never imported by the grader. ``sandbox.py`` copies this file (as ``_gv_worker.py``) and
``frames.py`` (as ``_gv_frames.py``) into a fresh directory and runs

    [unshare --pid --net --mount ... --] python -I -S _gv_worker.py CONFIG_JSON

``-I -S`` leave ``sys.path`` holding only the standard library; the worker adds a directory that
holds nothing but a symlink to numpy, so ``import gradverify`` finds nothing. Then, in this order
and as far as the config asks (the grader has probed what the machine allows):

1. import numpy (trusted code, before any restriction);
2. *fs view*: in the private mount namespace, a read-only tmpfs root holding only the standard
   library, numpy, system libraries, this runtime and the writable work directory, then
   ``pivot_root`` into it — the grader's sources and files simply do not exist in this view;
3. drop to an unprivileged uid/gid (or, when that is impossible, drop every capability);
4. ``no_new_privs``, parent-death signal;
5. Landlock: read-only allow-list, writes only in the work directory, no ``execve``, no TCP,
   no signals or abstract sockets outside the sandbox;
6. rlimits: CPU, address space, file size, open files, no core dumps, no new processes.

The first message, "caged", reports the layers applied and goes out before any student code
runs, so the submission cannot forge it. Only then is the submission imported; the second
message, "ready", says how that went, and calls are served until the grader closes the pipe.
Everything the student's code does happens in this process, so the student can forge
anything the worker sends: the grader trusts nothing it receives (frames.py validates it all).
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import resource
import signal
import struct
import sys
import traceback

_WORKER_FILE = os.path.abspath(__file__)
_TRACEBACK_CHARS = 8000

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


def _build_fs_view(view: dict, stdlib: list[str]) -> None:
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
    ops.extend((path, "rw", path) for path in view["rw"])
    ops.extend((path, "dev", path) for path in view["dev"] if os.path.exists(path))
    # Parents before children, so a hidden site-packages can re-expose numpy inside it.
    ops.sort(key=lambda op: (op[0].rstrip("/").count("/"), op[0]))
    for target, kind, source in ops:
        inside = new_root + target
        if kind == "link":
            os.symlink(source, inside)
            continue
        is_dir = kind == "hide" or os.path.isdir(source)
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


def _arm_cpu_limit(per_call: int | None) -> None:
    """Give the student's code ``per_call`` more CPU seconds; None: disarm (worker's own work)."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = hard if per_call is None else min(hard, int(sum(os.times()[:2])) + per_call + 1)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


# --------------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------------


class _Channel:
    def __init__(self, frames, rfd: int, wfd: int, caps):
        self.frames, self.rfd, self.wfd, self.caps = frames, rfd, wfd, caps
        trusted = frames.Caps(header_bytes=1 << 26, array_bytes=(1 << 32) - 1, message_bytes=1 << 62)
        self.reader = frames.Reader(trusted)  # requests come from the grader

    def receive(self):
        while True:
            ok, message = self.reader.pop()
            if ok:
                return message
            chunk = os.read(self.rfd, max(1 << 16, min(self.reader.wanted(), 1 << 24)))
            if not chunk:  # the grader has gone: nothing left to do
                os._exit(0)
            self.reader.feed(chunk)

    def send(self, message) -> None:
        buffers = [memoryview(b).cast("B") for b in self.frames.pack(message, caps=self.caps)]
        while buffers:
            written = os.writev(self.wfd, buffers[:512])
            while written and buffers:
                if written >= len(buffers[0]):
                    written -= len(buffers.pop(0))
                else:
                    buffers[0] = buffers[0][written:]
                    written = 0


_EMPTY_REPLY = {"kind": "ok", "value": None, "error": None, "traceback": None, "args_after": None}


class _TargetError(Exception):
    """The call names something the submission does not provide."""


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:
        text = "<exception whose str() failed>"
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _format_traceback(exc: BaseException) -> str:
    try:
        tb = exc.__traceback__
        while tb is not None and (
            tb.tb_frame.f_code.co_filename == _WORKER_FILE
            or tb.tb_frame.f_code.co_filename.startswith("<frozen importlib")
        ):
            tb = tb.tb_next
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except BaseException:
        text = _describe(exc) + "\n(traceback could not be formatted)\n"
    if len(text) > _TRACEBACK_CHARS:
        head, tail = _TRACEBACK_CHARS // 4, _TRACEBACK_CHARS * 3 // 4
        text = f"{text[:head]}\n[... {len(text) - head - tail} characters cut ...]\n{text[-tail:]}"
    return text


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, CpuLimitExceeded):
        return "cpu"
    if isinstance(exc, MemoryError):
        return "memory"
    return "exception"


def _load(work: str, entry: str, module_name: str):
    sys.path.insert(0, work)
    sys.argv = [entry]
    spec = importlib.util.spec_from_file_location(module_name, os.path.join(work, entry))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _resolve(module, target: str, attrs):
    name, _, method = target.partition(".")
    obj = getattr(module, name, None)
    if obj is None:
        raise _TargetError(f"the submission defines no {name!r}")
    if not method:
        if attrs:
            raise _TargetError(f"attributes given, but {name!r} is not a method target")
        if not callable(obj):
            kind = type(obj).__name__
            raise _TargetError(f"{name!r} in the submission is a {kind}, not a function")
        return obj, None
    if not isinstance(obj, type):
        raise _TargetError(f"{name!r} in the submission is a {type(obj).__name__}, not a class")
    try:
        instance = obj.__new__(obj)
    except BaseException as exc:
        raise _TargetError(f"cannot create a {name} without running __init__: {_describe(exc)}")
    for key, value in (attrs or {}).items():
        try:
            setattr(instance, key, value)
        except BaseException as exc:
            raise _TargetError(f"cannot set {name}.{key}: {_describe(exc)}")
    try:
        bound = getattr(instance, method)
    except BaseException as exc:
        raise _TargetError(f"{name} has no method {method!r}: {_describe(exc)}")
    if not callable(bound):
        raise _TargetError(f"{name}.{method} is a {type(bound).__name__}, not a method")
    return bound, instance


def _call(module, request: dict, per_call_cpu: int) -> dict:
    reply = dict(_EMPTY_REPLY)
    args, kwargs, attrs = request["args"], request["kwargs"], request["attrs"]
    _arm_cpu_limit(per_call_cpu)
    instance = None
    try:
        function, instance = _resolve(module, request["target"], attrs)
        reply["value"] = function(*args, **kwargs)
    except _TargetError as exc:
        reply.update(kind="target", error=str(exc))
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are the student's too
        reply.update(kind=_error_kind(exc), error=_describe(exc), traceback=_format_traceback(exc))
    finally:
        _arm_cpu_limit(None)
        _flush()
    if request["return_args"]:
        after = {"args": list(args), "kwargs": kwargs}
        if attrs and instance is not None:
            after["attrs"] = {key: getattr(instance, key, None) for key in attrs}
        elif attrs:
            after["attrs"] = dict(attrs)
        reply["args_after"] = after
    return reply


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _send_reply(channel: _Channel, reply: dict) -> None:
    reply["cpu"] = sum(os.times()[:2])
    try:
        channel.send(reply)
        return
    except BaseException as exc:
        first = exc
    # Something in it cannot be sent: say what, keeping whatever part can still go.
    for key in ("value", "args_after"):
        try:
            channel.frames.pack(reply[key], caps=channel.caps)
        except BaseException as exc:
            kind = "memory" if isinstance(exc, MemoryError) else "unsupported"
            what = "return value" if key == "value" else "arguments after the call"
            if reply["kind"] == "ok" or key == "value":
                reply.update(kind=kind, error=f"the {what} cannot be sent back: {_describe(exc)}")
            reply[key] = None
    try:
        channel.send(reply)
    except BaseException:
        error = f"the reply cannot be sent: {_describe(first)}"
        fallback = dict(_EMPTY_REPLY, kind="unsupported", error=error)
        channel.send(dict(fallback, op="result", id=reply["id"], cpu=reply["cpu"]))


def main(argv: list[str]) -> None:
    config = json.loads(argv[1])
    rt = os.path.dirname(_WORKER_FILE)
    stdlib = [p for p in sys.path if os.path.isdir(p)]
    sys.path.append(config["site"])  # holds only numpy (and its bundled libraries)
    spec = importlib.util.spec_from_file_location("_gv_frames", os.path.join(rt, "_gv_frames.py"))
    frames = importlib.util.module_from_spec(spec)
    sys.modules["_gv_frames"] = frames
    spec.loader.exec_module(frames)  # imports numpy: from here on numpy is loaded
    channel = _Channel(frames, config["rfd"], config["wfd"], frames.Caps(**config["caps"]))

    # Message 1, "caged", goes out before any student code runs, so the layers it reports
    # cannot be forged by the submission.
    layers = ["session", "clean-env", "python-isolated"]
    if os.getpid() == 1:
        layers.append("pid-ns")
    caged = {"op": "caged", "kind": "ok", "error": None, "traceback": None}
    try:
        if config["fs_view"]:
            _build_fs_view(config["fs_view"], stdlib)
            layers.append("fs-view")
        if config["uid"] is not None:
            _drop_uid(config["uid"], config["gid"])
            layers.append(f"uid-{config['uid']}")
        else:
            _drop_capabilities()
            layers.append("no-capabilities")
        _check(_prctl(_PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # re-armed: a uid change clears it
        if config["landlock"]:
            landlock = config["landlock"]
            layers += _landlock(landlock["abi"], stdlib + landlock["read"], landlock["write"])
        layers += _set_rlimits(config["limits"])
    except BaseException as exc:
        error = f"sandbox set-up failed: {_describe(exc)}"
        caged.update(kind="setup", error=error, traceback=_format_traceback(exc))
    caged["layers"] = layers
    channel.send(caged)
    if caged["kind"] != "ok":
        os._exit(3)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")

    # Message 2, "ready": how the import of the submission went.
    ready = {"op": "ready", "kind": "ok", "error": None, "traceback": None}
    os.chdir(config["work"])
    module = None
    _arm_cpu_limit(config["limits"]["cpu"])
    try:
        module = _load(config["work"], config["entry"], config["module"])
    except BaseException as exc:
        kind = _error_kind(exc)
        kind = "load" if kind == "exception" else kind
        ready.update(kind=kind, error=_describe(exc), traceback=_format_traceback(exc))
    finally:
        _arm_cpu_limit(None)
    _flush()
    ready["cpu"] = sum(os.times()[:2])
    channel.send(ready)

    per_call_cpu = config["limits"]["cpu"]
    while True:
        request = channel.receive()
        if request.get("op") != "call":
            os._exit(0)
        if module is None:
            reply = dict(_EMPTY_REPLY, kind="load", error="the submission did not load")
        else:
            reply = _call(module, request, per_call_cpu)
        reply["op"], reply["id"] = "result", request["id"]
        _send_reply(channel, reply)
        reply = request = None


if __name__ == "__main__":
    main(sys.argv)

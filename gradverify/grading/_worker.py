"""The sandboxed child: cages itself, loads one submission, then serves calls.

Never imported by the grader. ``files.py`` copies this file (as ``_gv_worker.py``), ``_cage.py``
(as ``_gv_cage.py``) and ``frames.py`` (as ``_gv_frames.py``) into a fresh directory and runs

    [unshare --pid --net --mount ... --] python -I -S _gv_worker.py CONFIG_JSON

``-I -S`` leave ``sys.path`` holding only the standard library; the worker adds a directory that
holds nothing but a symlink to numpy, so ``import gradverify`` finds nothing. It imports numpy
(trusted code, before any restriction), applies every isolation layer (``_cage.build``), times
a reference forward pass of the sizes the grader asked for (the calibration that judges how the
submission's cost grows), and sends the first message, "caged": the layers applied and those
timings. It goes out before any student code runs, so the submission cannot forge it. Only then
is the submission imported; the second message, "ready", says how that went, and calls are
served until the grader closes the pipe.

A call's array arguments arrive in a sealed memory file whose descriptor comes over a Unix
socket beside the request pipe: they are mapped read-only, so the student's code cannot write
into them (numpy raises "assignment destination is read-only"), and the grader, which holds the
same sealed file, knows its inputs are untouched without asking. Everything the student's code
does happens in this process, so the student can forge anything the worker sends: the grader
trusts nothing it receives (``frames.py`` and ``protocol.py`` validate it all).

A call may carry a ``chain`` (``protocol.Chain``): a forward/backward pair of the modular layer
API, completed here because its cache cannot cross the pipe (``_chain``).
"""

from __future__ import annotations

import importlib.util
import json
import mmap
import os
import socket
import sys
import time
import traceback

_WORKER_FILE = os.path.abspath(__file__)
_LOADER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_gv_loader.py")
_TRACEBACK_CHARS = 8000


def _load_runtime(name: str):
    """One of the runtime's own modules, copied beside this file (not importable by name)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(_WORKER_FILE), name + ".py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class _Channel:
    """The request pipe, the reply pipe and the socket that carries each call's sealed arguments."""

    def __init__(self, frames, config: dict):
        self.frames, self.rfd, self.wfd = frames, config["rfd"], config["wfd"]
        self.sock = socket.socket(fileno=config["sfd"])
        self.caps = frames.Caps(**config["caps"])
        trusted = frames.Caps(header_bytes=1 << 26, array_bytes=(1 << 32) - 1, message_bytes=1 << 62,
                              decoded_bytes=1 << 62)
        self.reader = frames.Reader(trusted, segments=True)  # requests come from the grader

    def receive(self):
        while True:
            ok, message = self.reader.pop()
            if ok:
                return message
            chunk = os.read(self.rfd, max(1 << 16, min(self.reader.wanted(), 1 << 24)))
            if not chunk:  # the grader has gone: nothing left to do
                os._exit(0)
            self.reader.feed(chunk)

    def segment(self):
        """The sealed argument file of the current call, mapped read-only (whole)."""
        _, fds, _, _ = socket.recv_fds(self.sock, 16, 1)
        if len(fds) != 1:
            raise OSError("no argument segment came with the call")
        try:
            return mmap.mmap(fds[0], 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        finally:
            os.close(fds[0])

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


def _calibrate(shapes: list) -> list[float]:
    """CPU seconds of one reference forward pass (sigmoid layers, cross-entropy) per ``[sizes, m]``.

    The median of repeated runs, in this process, before any student code: the unit in which
    the grader counts what a submission's gradient costs. Thread CPU time: exact, where the
    process clock advances by scheduler ticks once an RLIMIT_CPU is set (and the worker has
    one thread, as the grader measures it).
    """
    import numpy as np

    out = []
    for sizes, m in shapes:
        rng = np.random.default_rng(0)
        thetas = [0.1 * rng.standard_normal((b, a + 1)) for a, b in zip(sizes, sizes[1:])]
        X = rng.standard_normal((m, sizes[0]))
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]

        def forward():
            h = X
            for theta in thetas:
                h = 1.0 / (1.0 + np.exp(-(np.concatenate([np.ones((m, 1)), h], axis=1) @ theta.T)))
            return -np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h)) / m

        samples, spent = [], 0.0
        while len(samples) < 7 or (spent < 0.02 and len(samples) < 200):
            start = time.thread_time()
            forward()
            samples.append(time.thread_time() - start)
            spent += samples[-1]
        out.append(sorted(samples)[len(samples) // 2])
    return out


_EMPTY_REPLY = {"kind": "ok", "value": None, "error": None, "traceback": None}


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
            tb.tb_frame.f_code.co_filename in (_WORKER_FILE, _LOADER_FILE)
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
    if isinstance(exc, sys.modules["_gv_cage"].CpuLimitExceeded):
        return "cpu"
    if isinstance(exc, MemoryError):
        return "memory"
    return "exception"


def _load(work: str, config: dict, info: dict):
    """Import the submission with the runtime's loader (notebooks, Python 2 prints, the entry of a
    folder found by reading its files); what the student should know goes into ``info``."""
    loader = sys.modules["_gv_loader"]
    entry = config["entry"] or loader.find_entry(work, config["targets"])[0]
    info["entry"] = entry
    loaded = loader.load(work, entry, os.path.splitext(entry)[0], cell_seconds=config["cell_seconds"])
    info.update(notes=list(loaded.notes)[:50], cell_errors=list(loaded.cell_errors)[:50], python2=bool(loaded.python2))
    info["callables"] = loader.callables(loaded.module)
    return loaded.module


def _instance(cls, init):
    """``cls(*init)`` (the student's own constructor: attributes it sets, like ``self.output_size``, exist),
    or the instance without ``__init__`` when the constructor takes other arguments or fails."""
    if init is not None:
        try:
            return cls(*init)
        except Exception:
            pass
        try:  # FullyConnectedNet(hidden_dims, input_dim=…, num_classes=…, dtype=np.float32): by the parameters' names
            return cls(**_init_by_name(cls, init))
        except Exception:
            pass
    return cls.__new__(cls)


_INIT_NAMES = (  # (pattern of a constructor parameter's name, what it gets from the sizes (D, H…, C))
    (r"input_?(dim|size|layer_?size)|n_?(in|input|inputs|features)|d_?in|num_?inputs|in_?(features|size)", "D"),
    (r"hidden_?(dims|sizes|layers)|layers?_?dims|hidden_?layer_?sizes", "Hs"),
    (r"hidden_?(dim|size|layer_?size|units)|n_?hidden|num_?hidden|h", "H"),
    (r"num_?(classes|labels)|n_?(classes|labels|out|outputs)|output_?(dim|size|layer_?size)|out_?(features|size)|c|k", "C"),
    (r"dtype", "dtype"),
)


def _init_by_name(cls, init) -> dict:
    """Keyword arguments for ``cls.__init__`` from the network's sizes, by its parameters' names."""
    import inspect
    import re

    sizes = {"D": init[0], "Hs": list(init[1:-1]), "H": init[1] if len(init) == 3 else None, "C": init[-1], "dtype": "float64"}
    kwargs = {}
    for name in inspect.signature(cls.__init__).parameters:
        for pattern, key in _INIT_NAMES:
            if re.fullmatch(pattern, name.lower()) and sizes[key] is not None:
                kwargs[name] = sizes[key]
                break
    return kwargs


def _resolve(module, target: str, attrs, init=None):
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
        instance = _instance(obj, init)
    except BaseException as exc:
        raise _TargetError(f"cannot create a {name}: {_describe(exc)}")
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


def _call(module, channel: _Channel, request: dict, per_call_cpu: int) -> dict:
    reply = dict(_EMPTY_REPLY)
    cage = sys.modules["_gv_cage"]
    try:  # the worker's own work, before the student's code runs: a failure here is a protocol error
        parts = [request["args"], request["kwargs"], request["attrs"], request.get("chain")]
        if request["segment"]:
            buffer = channel.segment()
            parts = channel.frames.resolve_segments(parts, buffer, writable=request["writable"])
        args, kwargs, attrs, chain = parts
    except Exception as exc:
        return dict(reply, kind="unsupported", error=f"the worker could not read the arguments: {_describe(exc)}")
    cage.arm_cpu_limit(per_call_cpu)
    try:
        function, _ = _resolve(module, request["target"], attrs, request.get("init"))
        value = function(*args, **kwargs)
        reply["value"] = value if chain is None else _chain(module, value, chain)
    except _TargetError as exc:
        reply.update(kind="target", error=str(exc))
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are the student's too
        reply.update(kind=_error_kind(exc), error=_describe(exc), traceback=_format_traceback(exc))
    finally:
        cage.arm_cpu_limit(None)
        _flush()
    return reply


def _chain(module, value, chain: dict) -> dict:
    """Finish a forward/backward pair in this process: ``value`` is the forward's ``(out…, cache)``.

    The cache is the student's own object (anything at all), so it never crosses the pipe: the
    reply holds the outputs before it (``head``) and what ``chain["target"]`` returned when called
    with ``chain["args"]`` and the cache (``tail``; None when there is no target), or, when the
    forward did not return ``keep`` outputs and a cache, its type and length (``form``).
    """
    keep = chain["keep"]
    if not isinstance(value, (tuple, list)) or len(value) != keep + 1:
        return {"head": None, "tail": None, "form": [type(value).__name__, len(value) if isinstance(value, (tuple, list)) else -1]}
    *head, cache = value
    if chain["target"] is None:
        return {"head": head, "tail": None, "form": None}
    function, _ = _resolve(module, chain["target"], None)
    return {"head": head, "tail": function(*chain["args"], cache), "form": None}


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _send_reply(channel: _Channel, reply: dict) -> None:
    try:
        channel.send(reply)
        return
    except BaseException as exc:
        first = exc
    # The value cannot be sent: say what, keeping the rest of the reply.
    try:
        channel.frames.pack(reply["value"], caps=channel.caps)
    except BaseException as exc:
        kind = "memory" if isinstance(exc, MemoryError) else "unsupported"
        reply.update(kind=kind, error=f"the return value cannot be sent back: {_describe(exc)}")
    reply["value"] = None
    try:
        channel.send(reply)
    except BaseException:
        error = f"the reply cannot be sent: {_describe(first)}"
        channel.send(dict(_EMPTY_REPLY, kind="unsupported", error=error, op="result", id=reply["id"]))

def main(argv: list[str]) -> None:
    config = json.loads(argv[1])
    stdlib = [p for p in sys.path if os.path.isdir(p)]
    sys.path.append(config["site"])  # holds only numpy (and its bundled libraries)
    frames = _load_runtime("_gv_frames")  # imports numpy: from here on numpy is loaded
    cage = _load_runtime("_gv_cage")
    for name in ("_gv_notebook", "_gv_python2", "_gv_loader"):  # the loader imports the other two by name
        _load_runtime(name)
    channel = _Channel(frames, config)

    # Message 1, "caged", goes out before any student code runs, so the layers and timings it
    # reports cannot be forged by the submission.
    layers = ["session", "clean-env", "python-isolated"] + (["pid-ns"] if os.getpid() == 1 else [])
    caged = {"op": "caged", "kind": "ok", "error": None, "traceback": None, "calibration": []}
    try:
        layers += cage.build(config, stdlib)
        caged["calibration"] = _calibrate(config["calibrate"])
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
    info = {"entry": "", "notes": [], "cell_errors": [], "callables": {}, "python2": False, "missing_module": None}
    ready = {"op": "ready", "kind": "ok", "error": None, "traceback": None, "info": info}
    work = config["work"]["path"]
    os.chdir(work)
    module = None
    cage.arm_cpu_limit(config["limits"]["cpu"])
    try:
        module = _load(work, config, info)
    except sys.modules["_gv_loader"].LoadError as exc:  # said in the student's words already: no traceback
        ready.update(kind="load", error=str(exc))
    except BaseException as exc:
        kind = _error_kind(exc)
        kind = "load" if kind == "exception" else kind
        ready.update(kind=kind, error=_describe(exc), traceback=_format_traceback(exc))
        if isinstance(exc, ModuleNotFoundError) and isinstance(exc.name, str):
            info["missing_module"] = exc.name
    finally:
        cage.arm_cpu_limit(None)
    _flush()
    channel.send(ready)

    per_call_cpu = config["limits"]["cpu"]
    while True:
        request = channel.receive()
        if request.get("op") != "call":
            os._exit(0)
        if module is None:
            reply = dict(_EMPTY_REPLY, kind="load", error="the submission did not load")
        else:
            reply = _call(module, channel, request, per_call_cpu)
        reply["op"], reply["id"] = "result", request["id"]
        _send_reply(channel, reply)
        reply = request = None


if __name__ == "__main__":
    main(sys.argv)

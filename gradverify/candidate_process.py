"""Trusted candidates run apart: one persistent forked process per candidate, so it cannot corrupt the run.

A user's own gradient function is trusted code — it needs no lockdown — but it must not be able
to write into ``--json`` output, end gradverify with ``sys.exit`` or ``os._exit``, crash the
interpreter, or hang it. So it runs in a child process:

- the child is forked *before* the candidate is loaded, and loads it itself (a file is imported
  there, never in gradverify's process); it stays alive between calls, so a suite of hundreds of
  cases pays for one import, and is forked again if it dies;
- a request (the ``Problem``) and a reply (the return value, made of plain numbers, arrays,
  lists, tuples, dicts and strings) cross two pipes as length-prefixed pickles — the child is
  trusted, and it is our own code at both ends;
- the child's stdout and stderr go to two files of their own, read back after every call and
  kept as ``CallOutput`` records for the caller to show apart; they never reach our stdout;
- an exception, ``SystemExit``, ``os._exit``, a signal, or a call running past ``timeout``
  seconds (the child's whole process group is then killed) becomes a ``CandidateError`` naming
  what happened: the candidate's failure, exit code 1, never gradverify's.

Where ``os.fork`` does not exist (Windows), the candidate is called in-process instead, with the
same error translation (``separate`` says which one is in use).
"""

from __future__ import annotations

import fcntl
import io
import numbers
import os
import pickle
import select
import signal
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradverify.errors import CandidateError, GradverifyError, InputError, SpecError

__all__ = ["CandidateProcess", "CandidateTimeout", "CallOutput", "Opaque", "DEFAULT_TIMEOUT", "plain"]

#: seconds one call (or loading the candidate) may take before the child is stopped
DEFAULT_TIMEOUT = 60.0
_OUTPUT_LIMIT = 20_000  # characters of stdout / stderr kept per call
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_HEADER = struct.Struct("<Q")


class CandidateTimeout(CandidateError):
    """A candidate ran past its time limit and was stopped (still the candidate's failure)."""


@dataclass(frozen=True)
class Opaque:
    """Something a candidate returned that is not plain data (an object of its own class): its type name only."""

    type_name: str

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


@dataclass(frozen=True)
class CallOutput:
    """What the candidate printed during one call (``call`` 0 is loading it)."""

    call: int
    stdout: str
    stderr: str
    dropped: int = 0  # characters beyond the limit, not kept

    @property
    def empty(self) -> bool:
        return not (self.stdout or self.stderr)


def plain(value, depth: int = 0):
    """``value`` as plain, picklable data: arrays, numbers, strings, lists, tuples, dicts; else ``Opaque``.

    Bounded in depth and size, so a self-referencing or huge structure cannot stall the reply.
    """
    if depth > 8:
        return Opaque(type(value).__name__)
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.generic)):
        return value[:1000] if isinstance(value, (str, bytes)) else value
    if isinstance(value, np.ndarray):
        arr = np.array(value)  # a plain ndarray copy (np.matrix, memmaps, views of huge buffers)
        if arr.dtype.kind == "O":
            return [plain(v, depth + 1) for v in arr.reshape(-1)[:10_000]] if arr.ndim else plain(arr.item(), depth + 1)
        return arr
    if isinstance(value, numbers.Real):  # Fraction, Decimal-like, numbers of other libraries
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError):
            return Opaque(type(value).__name__)
    if isinstance(value, (list, tuple)):
        items = [plain(v, depth + 1) for v in list(value)[:10_000]]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {plain(k, depth + 1) if isinstance(k, (str, int)) else repr(k)[:100]: plain(v, depth + 1)
                for k, v in list(value.items())[:10_000]}
    if hasattr(value, "__array__"):  # tensors of other libraries
        try:
            return plain(np.asarray(value), depth + 1)
        except Exception:  # noqa: BLE001 - whatever their conversion raises, it stays an unknown object
            return Opaque(type(value).__name__)
    return Opaque(type(value).__name__)


# ---- what crosses the pipes ----------------------------------------------------------------------

def _send(fd: int, obj, deadline: float | None = None) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise TimeoutError
        view = view[os.write(fd, view[: 1 << 20]):]


def _read_exact(fd: int, n: int, deadline: float | None, tick: Callable[[], None] | None = None) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        while deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if select.select([fd], [], [], min(left, 1.0))[0]:
                break
            if tick is not None:
                tick()
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None  # the other end closed: the process is gone
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _recv(fd: int, deadline: float | None = None, tick: Callable[[], None] | None = None):
    head = _read_exact(fd, _HEADER.size, deadline, tick)
    if head is None:
        return None
    body = _read_exact(fd, _HEADER.unpack(head)[0], deadline, tick)
    return None if body is None else pickle.loads(body)


def _where(tb) -> str:
    frames = [f for f in traceback.extract_tb(tb) if _PACKAGE_DIR not in f.filename and not f.filename.startswith("<frozen")]
    return "; ".join(f"{f.filename}:{f.lineno} in {f.name}" for f in frames[-3:])


def _failure(exc: BaseException) -> tuple:
    """A raised exception as plain data: ("user", class, fields) for our own input errors, else ("raised", …)."""
    if isinstance(exc, (InputError, SpecError)) and not isinstance(exc, CandidateError):
        return ("user", type(exc).__name__, exc.what, exc.expected, exc.received, exc.fix)
    if isinstance(exc, SystemExit):
        return ("exit", repr(exc.code)[:200], _where(exc.__traceback__))
    text = str(exc)
    return ("raised", type(exc).__name__, text[:2000] + ("…" if len(text) > 2000 else ""), _where(exc.__traceback__))


# ---- the child -----------------------------------------------------------------------------------

def _child(load: Callable[[], Callable], requests: int, replies: int, out_fd: int, err_fd: int) -> None:
    """The forked process: load the candidate, then answer calls until the request pipe closes. Never returns."""
    code = 0
    try:
        os.setpgid(0, 0)  # its own process group: a timeout kills whatever it started too
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # input() gets end-of-file instead of waiting on the terminal
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="replace", line_buffering=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="replace", line_buffering=True)
        sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr
        import faulthandler

        faulthandler.enable(file=sys.stderr, all_threads=False)  # a crash in C says where, into the captured stderr
        try:
            fn = load()
        except BaseException as exc:  # noqa: BLE001 - anything at import is the candidate's (or a user error), reported
            _flush()
            _send(replies, ("load-failed", _failure(exc)))
            return
        _flush()
        _send(replies, ("ready",))
        while True:
            request = _recv(requests)
            if request is None:
                return
            os.ftruncate(1, 0)
            os.ftruncate(2, 0)
            start = time.perf_counter()
            try:
                value = plain(fn(request))
                reply = ("ok", value, time.perf_counter() - start)
            except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included: all are its failure
                reply = ("failed", _failure(exc), time.perf_counter() - start)
            _flush()
            try:
                _send(replies, reply)
            except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
                _send(replies, ("failed", ("raised", type(exc).__name__, f"its return value could not be passed back: {exc}", ""), 0.0))
    except BaseException:  # noqa: BLE001 - the child must never run the parent's code after this point
        code = 70
    finally:
        _flush()
        os._exit(code)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


# ---- the parent's handle -------------------------------------------------------------------------

def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        hint = {"SIGSEGV": " (a crash in compiled code)", "SIGKILL": " (killed from outside, e.g. out of memory)",
                "SIGABRT": " (an abort, e.g. a failed C assertion)"}.get(name, "")
        return f"was killed by {name}{hint}"
    if os.WIFEXITED(status):
        return f"ended its process with exit code {os.WEXITSTATUS(status)} (os._exit or a crash that skipped Python's cleanup)"
    return "stopped"


class CandidateProcess:
    """A candidate ``fn(problem) -> value`` run in a persistent forked child; call it like the function.

    Args:
        load: called *in the child* once after each fork; returns the function to call with a
            ``Problem``. For a file this imports it (so gradverify never does); for a function
            object already in memory it just returns it (the fork copies it).
        label: the candidate's name in messages.
        timeout: seconds a call (or the load) may take; then the child's group is killed.
        separate: False calls the candidate in this process (no isolation; errors still translated).
        tick: called about once a second while a call is waited for (a progress line, say).

    The value returned is ``plain`` data. ``outputs`` keeps what the candidate printed, per call.
    Use it as a context manager, or call ``close()``: the child is ended then.
    """

    def __init__(self, load: Callable[[], Callable], *, label: str = "candidate", timeout: float = DEFAULT_TIMEOUT,
                 separate: bool | None = None, tick: Callable[[], None] | None = None):
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise InputError("timeout must be a positive number of seconds", received=repr(timeout), fix="e.g. timeout=60")
        self.load, self.label, self.timeout, self.tick = load, label, float(timeout), tick
        self.separate = hasattr(os, "fork") if separate is None else bool(separate) and hasattr(os, "fork")
        self.outputs: list[CallOutput] = []
        self.calls = 0
        self.forks = 0
        self._pid: int | None = None
        self._local: Callable | None = None
        self._fds: tuple[int, int] | None = None
        self._capture: tuple = ()

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> CandidateProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass

    def close(self) -> None:
        """End the child (if any) and release its pipes and capture files."""
        if self._pid is not None:
            self._kill()
        for f in self._capture:
            f.close()
        self._capture = ()

    def _start(self) -> None:
        for stream in (sys.stdout, sys.stderr):  # what we buffered must not be written twice
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        if not self._capture:
            self._capture = (tempfile.TemporaryFile(), tempfile.TemporaryFile())
            for f in self._capture:
                fl = fcntl.fcntl(f.fileno(), fcntl.F_GETFL)
                fcntl.fcntl(f.fileno(), fcntl.F_SETFL, fl | os.O_APPEND)  # the child truncates; writes then start at 0
        for f in self._capture:
            os.ftruncate(f.fileno(), 0)
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(req_w)
            os.close(rep_r)
            _child(self.load, req_r, rep_w, self._capture[0].fileno(), self._capture[1].fileno())
        os.close(req_r)
        os.close(rep_w)
        self._pid, self._fds = pid, (req_w, rep_r)
        self.forks += 1
        try:
            reply = _recv(rep_r, time.monotonic() + self.timeout)
        except TimeoutError:
            self._kill()
            raise CandidateTimeout(f"Loading the candidate {self.label!r} did not finish within {self.timeout:g} s",
                                 received="no answer from the import", fix="check what the file does at import time, or raise --timeout") from None
        self._collect(0)
        if reply is None:
            status = self._reap()
            raise CandidateError(f"The candidate {self.label!r} {_describe_status(status)} while it was being loaded",
                                 received=self._tail(), fix="run the file with python to see what happens at import")
        if reply[0] == "load-failed":
            self._reap_quietly()
            raise self._error(reply[1], "while it was being loaded")

    def _kill(self) -> None:
        pid, self._pid = self._pid, None
        if self._fds:
            for fd in self._fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._fds = None
        if pid is None:
            return
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                target()
            except (ProcessLookupError, PermissionError, OSError):
                pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    def _reap(self) -> int:
        pid, self._pid = self._pid, None
        for fd in self._fds or ():
            os.close(fd)
        self._fds = None
        try:
            os.killpg(pid, signal.SIGKILL)  # anything it started
        except (ProcessLookupError, PermissionError, OSError):
            pass
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return 0

    def _reap_quietly(self) -> None:
        if self._pid is not None:
            self._kill()

    # -- calls -----------------------------------------------------------------------------------
    def __call__(self, problem):
        """Call the candidate on ``problem``; its plain return value, or a ``CandidateError``."""
        self.calls += 1
        if not self.separate:
            return self._call_here(problem)
        if self._pid is None:
            self._start()
        req_w, rep_r = self._fds
        deadline = time.monotonic() + self.timeout
        try:
            _send(req_w, problem, deadline)
            reply = _recv(rep_r, deadline, self.tick)
        except TimeoutError:
            self._kill()
            self._collect(self.calls)
            raise CandidateTimeout(f"The candidate {self.label!r} did not return within {self.timeout:g} s and was stopped",
                                 expected=f"a result within {self.timeout:g} s (--timeout)", received=self._tail() or "no output",
                                 fix="check for an endless loop or a wait for input; raise --timeout if it is just slow") from None
        except (BrokenPipeError, ConnectionResetError):
            reply = None
        self._collect(self.calls)
        if reply is None:
            status = self._reap()
            fix = ("find the crash by running the candidate yourself (python -X faulthandler shows where)" if os.WIFSIGNALED(status)
                   else "return (J, grads) instead of ending the process")
            raise CandidateError(f"The candidate {self.label!r} {_describe_status(status)} during a call",
                                 received=self._tail() or "no output", fix=fix)
        if reply[0] == "ok":
            return reply[1]
        raise self._error(reply[1], "during a call")

    def ask(self, request):
        """A request answered by the loading side of the child (what the file defines, how it was read):
        not a call of the candidate, so not counted (what the candidate prints stays numbered by its calls)."""
        calls = self.calls
        try:
            return self(request)
        finally:
            self.calls = calls

    def _call_here(self, problem):
        if self._local is None:
            try:
                self._local = self.load()
            except GradverifyError:
                raise
            except BaseException as exc:  # noqa: BLE001
                raise self._error(_failure(exc), "while it was being loaded") from None
        try:
            return plain(self._local(problem))
        except BaseException as exc:  # noqa: BLE001 - SystemExit from a candidate must not end gradverify
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise self._error(_failure(exc), "during a call") from None

    def _error(self, failure: tuple, when: str) -> GradverifyError:
        kind = failure[0]
        if kind == "user":
            cls = SpecError if failure[1] == "SpecError" else InputError
            return cls(failure[2], expected=failure[3], received=failure[4], fix=failure[5])
        if kind == "exit":
            fix = ("the file is imported, not run: keep sys.exit out of its top level (e.g. under if __name__ == '__main__':)"
                   if "loaded" in when else "return (J, grads) instead of exiting")
            return CandidateError(f"The candidate {self.label!r} called sys.exit({failure[1]}) {when}",
                                  received=f"at {failure[2]}" if failure[2] else self._tail() or "no output", fix=fix)
        where = failure[3] or "(no frame outside gradverify)"
        return CandidateError(f"The candidate {self.label!r} raised {failure[1]}: {failure[2]}" + (f" {when}" if "loaded" in when else ""),
                              received=f"the call failed at {where}",
                              fix="run the candidate on this problem yourself (gradverify verify prints how to rebuild it)")

    # -- what it printed ---------------------------------------------------------------------------
    def _collect(self, call: int) -> None:
        if not self._capture:
            return
        texts, dropped = [], 0
        for f in self._capture:
            size = os.fstat(f.fileno()).st_size
            data = os.pread(f.fileno(), _OUTPUT_LIMIT * 4, 0)
            text = _printable(data.decode("utf-8", errors="replace"))
            dropped += max(0, len(text) - _OUTPUT_LIMIT) + max(0, size - len(data))
            texts.append(text[:_OUTPUT_LIMIT])
        out = CallOutput(call, texts[0], texts[1], dropped)
        if not out.empty:
            self.outputs.append(out)

    def _tail(self) -> str:
        """The last lines the candidate printed to stderr (or stdout), for a message."""
        if not self.outputs:
            return ""
        last = self.outputs[-1]
        text = [line for line in (last.stderr or last.stdout).splitlines() if line.strip()]
        if any("Fatal Python error" in line for line in text):  # faulthandler: the error and the candidate's frame
            text = [line.strip() for line in text if "Fatal Python error" in line or (line.strip().startswith("File") and "gradverify" not in line)][:3]
        return "its last output: " + " | ".join(text[-3:])[-400:] if text else ""


def _printable(text: str) -> str:
    """Printed text without terminal control sequences (tabs and newlines kept)."""
    return "".join(c if c in "\n\t" or (c.isprintable()) else "\ufffd" for c in text)

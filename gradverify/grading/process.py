"""Worker processes: start one caged worker, talk to it over pipes, and kill everything it started.

The worker runs in its own session (and, where the plan says so, PID/network/mount/IPC/UTS
namespaces under ``unshare``); its stdout and stderr are drained and capped while a reply is
awaited, and a marker in its environment finds any process it left behind.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gradverify.grading import frames
from gradverify.grading.isolation import Plan, unshare_path
from gradverify.grading.limits import Limits

__all__ = ["MARKER", "Worker", "Exchange", "kill_marked"]

MARKER = "GRADVERIFY_SANDBOX"


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


@dataclass
class Exchange:
    """One request and its reply as the grader saw them.

    ``status`` is ``"ok"`` (``message`` holds the reply), ``"timeout"``, ``"eof"`` (the worker
    died) or ``"protocol"`` (``message`` says how the bytes broke the protocol). ``cpu`` is the
    worker's CPU time during the exchange, read by the grader from the kernel (None when the
    kernel does not say): a number the submission cannot forge.
    """

    status: str
    message: object
    elapsed: float
    stdout: str
    stderr: str
    cpu: float | None = None


class Worker:
    """One worker process, its pipes, and how to kill everything it started."""

    def __init__(self, plan: Plan, root: Path, config: dict, token: str, limits: Limits):
        self.token, self.limits = token, limits
        req_r, self.req_w = os.pipe()
        self.resp_r, resp_w = os.pipe()
        self.sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = dict(config, rfd=req_r, wfd=resp_w, sfd=child_sock.fileno())
        command = [sys.executable, "-I", "-S", str(root / "rt" / "_gv_worker.py"), json.dumps(config, separators=(",", ":"))]
        if plan.namespaces:
            unshare = unshare_path()
            flags = ["--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--ipc", "--uts"]
            flags += ["--user", "--map-root-user"] if plan.userns else []
            command = [unshare, *flags, "--", *command]
        work = config["work"]["path"]
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
            "MPLBACKEND": "Agg",  # matplotlib, where allowed: no display; plt.show() does nothing
            "MPLCONFIGDIR": work,
            MARKER: token,
        }
        self.namespaces = plan.namespaces
        self._pid: int | None = None
        cap = limits.reply_bytes
        self.reader = frames.Reader(frames.Caps(array_bytes=cap, message_bytes=cap + (1 << 20), decoded_bytes=cap))
        try:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(req_r, resp_w, child_sock.fileno()),
                env=env,
                cwd=work,
                start_new_session=True,
            )
        except BaseException:
            self.sock.close()
            raise
        finally:
            os.close(req_r)
            os.close(resp_w)
            child_sock.close()
        self.out_fd, self.err_fd = self.proc.stdout.fileno(), self.proc.stderr.fileno()
        for fd in (self.req_w, self.out_fd, self.err_fd):
            os.set_blocking(fd, False)
        self.open_streams = {self.out_fd, self.err_fd}
        self.dead = False

    def exchange(self, buffers, deadline: float, *, fd: int | None = None) -> Exchange:
        """Send a request (if any, with ``fd`` passed beside it) and wait for one message.

        stdout and stderr are drained (and capped) meanwhile. The deadline covers the whole
        exchange, decoding included: a reply whose last byte arrives late is a timeout.
        """
        start = time.monotonic()
        cpu_start = self.cpu_seconds()
        if fd is not None:
            try:
                socket.send_fds(self.sock, [b"F"], [fd])
            except OSError:  # the worker is gone: its EOF will tell
                pass
        out, err = _Capture(self.limits.output_bytes), _Capture(self.limits.output_bytes)
        captures = {self.out_fd: out, self.err_fd: err}
        pending = [memoryview(b).cast("B") for b in buffers] if buffers else []
        poller = select.poll()
        poller.register(self.resp_r, select.POLLIN)
        for fd in self.open_streams:
            poller.register(fd, select.POLLIN)
        if pending:
            poller.register(self.req_w, select.POLLOUT)

        def finish(status: str, message: object) -> Exchange:
            if status == "ok" and time.monotonic() > deadline:
                status, message = "timeout", None
            cpu_end = self.cpu_seconds()
            cpu = cpu_end - cpu_start if cpu_start is not None and cpu_end is not None else None
            self._drain(captures)
            return Exchange(status, message, time.monotonic() - start, out.text(), err.text(), cpu)

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
        if self._pid is None:
            if not self.namespaces:
                self._pid = self.proc.pid
            else:
                children = _children(self.proc.pid)
                self._pid = children[0] if children else None
        return self._pid

    def cpu_seconds(self) -> float | None:
        """The worker's CPU time so far, as the kernel counts it (None if unreadable).

        The sum over the worker's threads of ``/proc/PID/task/TID/schedstat``'s run time: exact
        to the nanosecond for a task that is not running (the worker waits for the next request
        when this is read), where the process CPU clock advances only at scheduler ticks once
        an ``RLIMIT_CPU`` is set. Falls back to that clock.
        """
        pid = self.worker_pid() if not self.dead else None
        if pid is None:
            return None
        try:
            total = 0
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as fh:
                    total += int(fh.read().split()[0])
            if total:
                return total / 1e9
        except (OSError, ValueError, IndexError):
            pass
        try:
            return time.clock_gettime(((~pid) << 3) | 2)  # the CPU clock of process ``pid`` (CPUCLOCK_SCHED)
        except OSError:
            return None

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
        kill_marked(self.token)
        for fd in (self.req_w, self.resp_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.sock.close()
        self.proc.stdout.close()
        self.proc.stderr.close()
        if code is not None and code < 0:
            try:
                return signal.Signals(-code).name
            except ValueError:
                return f"signal {-code}"
        return f"exit status {code}" if code else ""


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
    needle = f"{MARKER}={token}".encode() + b"\0"
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


def kill_marked(token: str, patience: float = 5.0) -> None:
    """SIGKILL every process carrying the marker until none is left (or patience runs out)."""
    deadline = time.monotonic() + patience
    while True:
        pids = _marked_pids(token)
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            _signal_pid(pid)
        time.sleep(0.01)

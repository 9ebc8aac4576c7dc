"""Small terminal helpers shared by the subcommands: output, warnings, tables that fit, progress."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

from gradverify._io import write_atomic  # noqa: F401  (re-exported for the subcommands)

_stdout_gone = False


def emit(text: str = "") -> None:
    """Print a line of the command's result on stdout; a reader that went away (``| head -1``) is not an error.

    After a broken pipe, stdout points at /dev/null: the command goes on to its exit code (the verdict)
    and the interpreter's final flush is quiet.
    """
    global _stdout_gone
    if _stdout_gone:
        return
    try:
        print(text, flush=True)
    except BrokenPipeError:
        _stdout_gone = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass


def warn(message: str, *, command: str = "") -> None:
    """A warning on stderr: something was not what it seemed, and what was done about it."""
    prefix = f"gradverify {command}: " if command else "gradverify: "
    print(f"{prefix}warning: {message}", file=sys.stderr, flush=True)


def terminal_width() -> int | None:
    """The width tables must fit: ``$COLUMNS``, else the terminal's; None when stdout is not a terminal."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        if sys.stdout.isatty():
            return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError, AttributeError):
        pass
    return None


def table(header: Sequence[str], rows: Sequence[Sequence[object]], *, align: str = "") -> str:
    """Format rows as a plain-text table; ``align`` holds 'l' or 'r' per column (default 'r')."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    align = align.ljust(len(header), "r")

    def fmt(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)).rstrip()

    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(row) for row in cells[1:]]
    return "\n".join(lines)


def fitted_table(header: Sequence[str], rows: Sequence[Sequence[object]], *, align: str = "", priority: Sequence[int] = (),
                 width: int | None = None) -> tuple[str, list[str]]:
    """A table no wider than ``width``: columns of the lowest ``priority`` are dropped first.

    Returns the table and the names of the dropped columns. ``width`` None keeps every column.
    A column of the highest priority is never dropped (the table may then stay too wide).
    """
    keep = list(range(len(header)))
    priority = list(priority) or [0] * len(header)
    top = max(priority) if priority else 0
    align = align.ljust(len(header), "r")

    def render(cols: list[int]) -> str:
        return table([header[i] for i in cols], [[row[i] for i in cols] for row in rows], align="".join(align[i] for i in cols))

    text = render(keep)
    dropped: list[str] = []
    while width is not None and max(len(line) for line in text.splitlines()) > width:
        candidates = [i for i in keep if priority[i] < top]
        if not candidates:
            break
        low = min(candidates, key=lambda i: (priority[i], -i))  # the lowest priority, rightmost first
        keep.remove(low)
        dropped.append(header[low])
        text = render(keep)
    return text, dropped


class Progress:
    """Progress of a slow step on stderr: a bar on a terminal, a line every few seconds otherwise.

    Call it as ``progress(done, total)``; it is the ``progress`` callback the library accepts.
    Nothing is shown during the first ``delay`` seconds, so quick runs stay quiet; on a
    non-terminal (a CI log, a pipe) a line is written at most every ``interval`` seconds.
    """

    def __init__(self, label: str, *, delay: float = 1.0, stream=None, force: bool = False, interval: float = 5.0,
                 unit: str = ""):
        self.label, self.delay, self.interval, self.unit = label, delay, interval, unit
        self.stream = stream or sys.stderr
        try:
            self.tty = force or self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.start = time.monotonic()
        self.last_line = 0.0
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        elapsed = now - self.start
        if elapsed < self.delay:
            return
        frac = min(1.0, done / total) if total else 1.0
        eta = f", ~{_seconds(elapsed / frac - elapsed)} left" if 0 < frac < 1 else ""
        if self.tty:
            bar = "#" * int(30 * frac)
            self.stream.write(f"\r{self.label} [{bar:<30}] {done}/{total} {elapsed:5.1f}s{eta.replace(', ~', ' eta ')}")
            self.stream.flush()
            self.drawn = True
            _last_line[0] = now
        elif now - self.last_line >= self.interval:
            self.last_line = now
            unit = f" {self.unit}" if self.unit else ""
            self.stream.write(f"gradverify: {self.label.strip()} {done:,}/{total:,}{unit} ({100 * frac:.0f} %), "
                              f"{_seconds(elapsed)} elapsed{eta}\n")
            self.stream.flush()
            _last_line[0] = now

    def tick(self, note: str = "still running") -> None:
        """For steps without a count (a candidate's call): a line every ``interval`` seconds, off a terminal too."""
        now = time.monotonic()
        if now - self.start < self.delay or now - self.last_line < self.interval:
            return
        self.last_line = now
        if self.tty:
            self.stream.write(f"\r{self.label} {note}, {_seconds(now - self.start)} elapsed")
            self.drawn = True
        else:
            self.stream.write(f"gradverify: {self.label.strip()} {note}, {_seconds(now - self.start)} elapsed\n")
        self.stream.flush()
        _last_line[0] = now

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


_last_line = [0.0]  # when the last progress line was written (a heartbeat stays quiet right after one)


class Heartbeat:
    """A line on stderr every ``interval`` seconds while a long run gives no other sign of life.

    Works on a terminal and off one (a CI log): driven by ``SIGALRM`` in the main thread, it writes
    with ``os.write`` (no Python I/O lock, so it cannot collide with a line being printed), and only
    when no progress line was written in the last ``interval`` seconds. A forked child inherits no
    timer. A no-op outside the main thread or where ``SIGALRM`` does not exist.
    """

    def __init__(self, what: str, *, interval: float = 5.0, estimate: float | None = None):
        self.what, self.interval, self.estimate = what, interval, estimate
        self.start = time.monotonic()
        self._old = None

    def _beat(self, signum, frame) -> None:
        now = time.monotonic()
        if now - _last_line[0] < self.interval * 0.9:
            return
        _last_line[0] = now
        elapsed = now - self.start
        est = f" (estimated {_seconds(self.estimate)} in all)" if self.estimate else ""
        try:
            os.write(2, f"gradverify: {self.what} still running, {_seconds(elapsed)} elapsed{est}\n".encode())
        except OSError:
            pass

    def __enter__(self) -> Heartbeat:
        import signal
        import threading

        if hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGALRM, self._beat)
            signal.setitimer(signal.ITIMER_REAL, self.interval, self.interval)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        if self._old is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)
            self._old = None


def findings(comp, *, most: int = 3) -> list[str]:
    """The lines under a comparison's table: each judged source's likeliest diagnoses, then the notes.

    ``comp`` is a ``Comparison`` (verify) or a ``LayerComparison`` (layer): both carry
    ``diagnoses`` (source → ranked findings) and ``notes``.
    """
    lines = [f"diagnosis ({name}, confidence {d.confidence:.2f}): {d.message}"
             for name, ds in comp.diagnoses.items() for d in ds[:most]]
    return lines + [f"note: {note}" for note in comp.notes]


def json_default(obj):
    """``json.dumps(default=…)`` for result documents: numpy scalars and arrays as plain numbers, the rest as text."""
    import numpy as np

    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)

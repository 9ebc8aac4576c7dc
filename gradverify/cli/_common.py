"""Small terminal helpers shared by the subcommands: tables, a progress bar, file writing."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from gradverify._io import write_atomic  # noqa: F401  (re-exported for the subcommands)


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


class Progress:
    """A progress bar on stderr, drawn only when stderr is a terminal and the work is slow.

    Call it as ``progress(done, total)``; it is the ``progress`` callback the library accepts.
    Nothing is drawn during the first ``delay`` seconds, so quick runs stay quiet.
    """

    def __init__(self, label: str, *, delay: float = 1.0, stream=None, force: bool = False):
        self.label, self.delay = label, delay
        self.stream = stream or sys.stderr
        self.enabled = force or self.stream.isatty()
        self.start = time.monotonic()
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or time.monotonic() - self.start < self.delay:
            return
        frac = done / total if total else 1.0
        bar = "#" * int(30 * frac)
        elapsed = time.monotonic() - self.start
        eta = f" eta {elapsed / frac - elapsed:5.1f}s" if 0 < frac < 1 else ""
        self.stream.write(f"\r{self.label} [{bar:<30}] {done}/{total} {elapsed:5.1f}s{eta}")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()

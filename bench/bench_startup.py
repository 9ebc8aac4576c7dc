"""Start-up time of the CLI and the import cost of the package (issue 12), run on demand.

    python3 bench/bench_startup.py            # writes its section of bench/RESULTS.md
    python3 bench/bench_startup.py --print    # prints it only

Each command runs in a fresh interpreter ``--repeats`` times; the median wall time is reported
beside the heavy modules it loaded (SymPy, Hypothesis, matplotlib, SymEngine, python-flint), so a
lazy import that became eager shows up as a module, not only as a slower number. The section sits
between ``<!-- startup:begin -->`` and ``<!-- startup:end -->``, which ``bench/run.py`` keeps.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _results import write_section

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sympy", "hypothesis", "matplotlib", "symengine", "flint")
TARGET = 0.3  # seconds: issue 12's "well under 0.3 s"

# (what, python code run in a fresh interpreter: the command, then the heavy modules it loaded)
CASES = (
    ("import gradverify", "import gradverify"),
    ("import gradverify.backprop", "import gradverify.backprop"),
    ("gradverify --help", "from gradverify.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"),
    ("gradverify verify --sources backprop", "from gradverify.cli import main\nmain(['verify', '--sources', 'backprop'])"),
)
_REPORT = "\nimport sys\nprint('HEAVY=' + ','.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n"


def measure(code: str, repeats: int) -> tuple[float, float, str]:
    """(median, min) wall seconds of a fresh interpreter running ``code``, and the heavy modules it loaded."""
    times, heavy = [], ""
    for _ in range(repeats):
        t = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", code + _REPORT.format(heavy=HEAVY)], capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
        found = re.search(r"HEAVY=(.*)", res.stderr)
        heavy = found.group(1) if found else "?"
    return statistics.median(times), min(times), heavy or "none"


def baseline(repeats: int) -> float:
    """The bare interpreter's start-up, for the ratio: what gradverify adds to it."""
    return measure("pass", repeats)[0]


def section(repeats: int) -> str:
    import numpy

    import gradverify

    bare = baseline(repeats)
    load = os.getloadavg()[0]
    rows = []
    for what, code in CASES:
        med, low, heavy = measure(code, repeats)
        rows.append(f"| `{what}` | {med:.3f} s | {low:.3f} s | {med / bare:.1f}× | {heavy} | "
                    f"{'**hit**' if med < TARGET else 'miss'} |")
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        "## Start-up and import cost",
        "",
        f"Written by `python3 bench/bench_startup.py` on {when} (UTC); {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, {platform.platform()}; 1-min load {load:.2f} at start. Versions: python "
        f"{platform.python_version()}, numpy {numpy.__version__}, gradverify {gradverify.__version__}.",
        "",
        f"Each a fresh interpreter, {repeats} runs; the bare interpreter (`python -c pass`) takes {bare:.3f} s (median), "
        f"the ratio is to it. Target (issue 12): well under {TARGET} s, with no SymPy, Hypothesis or matplotlib loaded.",
        "",
        "| command | median | min | × bare python | heavy modules loaded | target |",
        "|---|---|---|---|---|---|",
        *rows,
    ]
    return "<!-- startup:begin -->\n" + "\n".join(lines) + "\n<!-- startup:end -->"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--print", action="store_true", help="print the section instead of writing RESULTS.md")
    args = parser.parse_args()
    block = section(args.repeats)
    if args.print:
        print(block)
        return 0
    path = ROOT / "bench" / "RESULTS.md"
    write_section(path, "startup", block)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

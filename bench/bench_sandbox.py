"""How much a sandboxed call costs: per-call overhead of a persistent worker, and start-up time.

Run from the repository root:

    PYTHONPATH=. python bench/bench_sandbox.py [--calls 2000] [--starts 5]

Prints medians (and the 90th percentile) of: a call of a trivial function with a 10x10 array
argument echoed back, a call with no arguments, a 1000x1000 array round trip, and the time to
start a worker and import a tiny submission (``start``) and to kill it (``close``). No
assertion: the numbers depend on the machine; the target is well under 2 ms per small call.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from gradverify.grading.sandbox import Sandbox, detect_isolation

SUBMISSION = "def echo(x):\n    return x\n\ndef nothing():\n    return None\n"


def _timed(function, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def _line(label: str, times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    median = statistics.median(times)
    return f"{label:<34} median {median * 1e3:8.3f} ms   p90 {p90 * 1e3:8.3f} ms   (n={len(times)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    isolation = detect_isolation()
    print(f"detect_isolation (first call)      {(time.perf_counter() - start) * 1e3:8.1f} ms")
    print(isolation)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "submission.py"
        path.write_text(SUBMISSION)
        starts, closes = [], []
        for _ in range(args.starts):
            box = Sandbox(path)
            begin = time.perf_counter()
            assert box.start().ok
            starts.append(time.perf_counter() - begin)
            begin = time.perf_counter()
            box.close()
            closes.append(time.perf_counter() - begin)
        with Sandbox(path) as box:
            small = np.random.default_rng(0).normal(size=(10, 10))
            big = np.random.default_rng(0).normal(size=(1000, 1000))
            for _ in range(50):  # warm-up
                box.call("echo", (small,))
            echo = _timed(lambda: box.call("echo", (small,)), args.calls)
            nothing = _timed(lambda: box.call("nothing"), args.calls)
            large = _timed(lambda: box.call("echo", (big,)), max(5, args.calls // 100))
            assert np.array_equal(box.call("echo", (small,)).value, small)
    print(_line("call echo(10x10 array)", echo))
    print(_line("call nothing()", nothing))
    print(_line("call echo(1000x1000 array, 8 MB)", large))
    print(_line("start (spawn + isolate + import)", starts))
    print(_line("close (kill tree + delete files)", closes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

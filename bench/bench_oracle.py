"""The exact oracle at real scale: batched mode beside the previous oracle, and Arb beside MPFR.

Usage (from the repository root)::

    python3 bench/bench_oracle.py                 # every case, written into bench/RESULTS.md (~6 min)
    python3 bench/bench_oracle.py --quick         # small cases only, no previous oracle, printed (~30 s)
    python3 bench/bench_oracle.py --json out.json # also the raw results

The full run replaces its own section of bench/RESULTS.md, between ``<!-- oracle-scale:begin -->``
and ``<!-- oracle-scale:end -->``, which ``bench/run.py`` keeps when it regenerates the rest.

Every case runs each implementation in a fresh process (so peak memory is its own), one after
another, on the same seeded problem (``random_problem(spec, λ = 1, seed = 0)``):

- ``batched``: this tree's ``exact_gradient(problem)`` in batched mode (layer templates, Arb
  ball arithmetic, matrix products in ``arb_mat``);
- ``scalable``: this tree's per-scalar template graph (also in Arb), where it fits in memory;
- ``previous``: the oracle as it was at ``--previous`` (default ``1b6cbc5``, the last commit
  before ball arithmetic: MPFR through gmpy2, two passes at p and p + 64 bits, auto mode),
  extracted with ``git archive``.

Reported per run: wall and CPU seconds (batched: the fastest of three calls), peak resident memory (the child's ``VmHWM``), the
digits it claims; and the agreement of the previous oracle's values with the batched balls
(every previous value inside its ball widened by 10⁻³⁰ relative). The number kernels: a
5000×401 by 401×25 matrix product and a sigmoid over 5000×25 entries at 128 bits, in Arb
(``arb_mat``, 1 and 2 threads) and in MPFR (gmpy2 numbers in numpy object arrays).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import write_section

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PREVIOUS = "1b6cbc5"

# (spec, m, target seconds, target GB or None), from issue 17
CASES = [
    ("3-5-3", 5, None, None),
    ("400-25-10", 100, None, None),
    ("784-128-10", 10, 1.0, None),
    ("784-128-10", 100, 3.0, None),
    ("784-128-10", 1000, 30.0, None),
    ("400-25-10", 5000, 10.0, 1.0),
]
QUICK = [("3-5-3", 5, None, None), ("784-128-10", 10, 1.0, None), ("400-25-10", 500, None, None)]
SCALABLE_MAX = 5_000_000  # m · n_out · n_in up to which the per-scalar graph is run (memory)
PREVIOUS_SKIP = {("784-128-10", 1000)}  # ≈ 10× its m = 100 run (37 s, issue 17): not worth the wait

_CHILD = r"""
import json, sys, time
import numpy as np

def peak_mb():  # VmHWM: this process's own peak (ru_maxrss would carry the parent's over fork + exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")

from gradverify.problems import random_problem
from gradverify.spec import parse_spec
from gradverify.symbolic import exact_gradient
spec, m, mode, out, repeats = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
problem = random_problem(parse_spec(spec, lam=1.0), m=m, seed=0)
options = {} if mode == "auto" else {"mode": mode}
exact_gradient(random_problem(parse_spec("3-4-2", lam=1.0), m=2, seed=0), **options)
times = []
for _ in range(repeats):  # the fastest of a few calls: the least disturbed by other work on the machine
    t, c = time.perf_counter(), time.process_time()
    r = exact_gradient(problem, **options)
    times.append((time.perf_counter() - t, time.process_time() - c))
wall, cpu = min(times)
flat = [x for g in r.grads_exact.values() for x in g.reshape(-1)]
radius = [x for g in getattr(r, "grads_radius", {}).values() for x in g.reshape(-1)]
np.savez(out, man=np.array([str(x.man_exp[0]) for x in flat]), exp=np.array([x.man_exp[1] for x in flat]),
         cost=np.array([str(r.cost_exact.man_exp[0]), str(r.cost_exact.man_exp[1])]),
         radius=np.array(radius, dtype=float), cost_radius=float(getattr(r, "cost_radius", 0.0)))
print(json.dumps({"wall": wall, "cpu": cpu, "walls": [w for w, _ in times], "digits": r.digits, "bits": r.bits, "mode": r.mode,
                  "rss_mb": peak_mb(), "notes": list(r.notes)[:3]}))
"""


def _child(pythonpath: Path, spec: str, m: int, mode: str, out: Path, timeout: float, repeats: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(pythonpath), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD, spec, str(m), mode, str(out), str(repeats)], env=env, capture_output=True,
                              text=True, timeout=timeout, cwd=str(pythonpath))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        return {"error": " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])}
    return json.loads(lines[-1])


def _agreement(batched: Path, other: Path) -> dict:
    """How the other run's values sit against the batched balls."""
    import mpmath

    mpmath.mp.dps = 60
    a, b = np.load(batched), np.load(other)

    def values(z):
        return [mpmath.mpf((int(man), int(exp))) for man, exp in zip(z["man"], z["exp"])]

    xs, ys, rad = values(a), values(b), a["radius"]
    inside, worst = 0, mpmath.mpf(0)
    for x, y, r in zip(xs, ys, rad):
        scale = max(abs(x), abs(y))
        if scale:
            worst = max(worst, abs(x - y) / scale)
        inside += abs(x - y) <= r + scale * mpmath.mpf(10) ** -30
    cx, cy = (mpmath.mpf((int(z["cost"][0]), int(z["cost"][1]))) for z in (a, b))
    cost_inside = abs(cx - cy) <= float(a["cost_radius"]) + abs(cx) * mpmath.mpf(10) ** -30
    return {"n": len(xs), "inside": int(inside), "worst_rel": float(worst), "cost_inside": bool(cost_inside)}


def kernels(quick: bool) -> dict:
    """Arb against MPFR on the two kernels batched mode is made of (128 bits)."""
    import gmpy2
    from flint import arb, arb_mat, ctx

    rng = np.random.default_rng(0)
    rows = 500 if quick else 5000
    X, W = rng.standard_normal((rows, 401)), rng.standard_normal((401, 25)) * 0.1
    out: dict = {"shape": f"{rows}×401 by 401×25"}
    old = ctx.prec, ctx.threads
    ctx.prec = 128
    try:
        Xa, Wa = arb_mat(X.tolist()), arb_mat(W.tolist())
        for threads in (1, 2):
            ctx.threads = threads
            t = time.perf_counter()
            A = Xa * Wa
            out[f"arb_matmul_{threads}t"] = time.perf_counter() - t
        t = time.perf_counter()
        entries = np.array(A.entries(), dtype=object)
        _ = 1 / (1 + np.frompyfunc(arb.exp, 1, 1)(-entries))
        out["arb_sigmoid"] = time.perf_counter() - t
        out["arb_radius"] = float(max(x.rad() for x in A.entries()[:1000]))
    finally:
        ctx.prec, ctx.threads = old
    with gmpy2.context(gmpy2.get_context(), precision=128):
        conv = np.frompyfunc(gmpy2.mpfr, 1, 1)
        sub = min(rows, 500)  # MPFR object arrays are slow: time 500 rows, scale linearly
        Xo, Wo = conv(X[:sub]), conv(W)
        t = time.perf_counter()
        Ao = Xo.dot(Wo)
        out["mpfr_matmul"] = (time.perf_counter() - t) * rows / sub
        t = time.perf_counter()
        _ = 1 / (1 + np.frompyfunc(gmpy2.exp, 1, 1)(-Ao))
        out["mpfr_sigmoid"] = (time.perf_counter() - t) * rows / sub
    return out


def _facts() -> dict:
    """Machine, load, versions and commit, for the section's header."""
    import importlib.metadata as md
    import platform

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "unknown") if Path("/proc/cpuinfo").exists() else "unknown"
    versions = {"python": platform.python_version()}
    for name in ("python-flint", "gmpy2", "sympy", "symengine", "mpmath", "numpy"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "not installed"
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), "versions": versions, "commit": head,
            "load_start": os.getloadavg(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def run(quick: bool = False, previous: str = PREVIOUS, log=lambda msg: None) -> dict:
    """Every case, every implementation; returns the raw results."""
    results: dict = {"previous": previous, "cases": [], "facts": _facts(), "kernels": kernels(quick)}
    log(f"  kernels: {results['kernels']}")
    with tempfile.TemporaryDirectory(prefix="gradverify-oracle-") as tmp:
        tmp = Path(tmp)
        old_tree = None
        if not quick:
            old_tree = tmp / "previous"
            old_tree.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", previous, "gradverify"], capture_output=True, timeout=60)
            if archive.returncode:
                results["previous_error"] = archive.stderr.decode()[-300:]
                old_tree = None
            else:
                subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive.stdout, check=True, timeout=60)
        for spec, m, seconds, gb in QUICK if quick else CASES:
            sizes = [int(s) for s in spec.split("-")]
            case = {"spec": spec, "m": m, "P": sum(a * b + a for a, b in zip(sizes[1:], sizes[:-1])),
                    "target_s": seconds, "target_gb": gb, "runs": {}}
            plan = [("batched", ROOT, "batched")]
            if m * max(a * b for a, b in zip(sizes[1:], sizes[:-1])) <= SCALABLE_MAX:
                plan.append(("scalable", ROOT, "scalable"))
            if old_tree is not None and (spec, m) not in PREVIOUS_SKIP:
                plan.append(("previous", old_tree, "auto"))
            for name, tree, mode in plan:
                out = tmp / f"{name}_{spec}_{m}.npz"
                case["runs"][name] = _child(tree, spec, m, mode, out, timeout=900, repeats=3 if name == "batched" else 1)
                log(f"  {spec} m={m} {name}: {case['runs'][name]}")
                if name != "batched" and "error" not in case["runs"][name] and "error" not in case["runs"]["batched"]:
                    case["runs"][name]["agreement"] = _agreement(tmp / f"batched_{spec}_{m}.npz", out)
            results["cases"].append(case)
    results["facts"]["load_end"] = os.getloadavg()
    return results


def render(res: dict) -> list[str]:
    """The Markdown section (a list of lines) for RESULTS.md."""
    k, f = res["kernels"], res["facts"]
    load = f"{f['load_start'][0]:.2f} at start, {f['load_end'][0]:.2f} at end"
    lines = [
        "## Exact oracle at real scale (issue 17): batched mode beside the previous oracle",
        "",
        f"Written by `python3 bench/bench_oracle.py` on {f['started']} (UTC), commit {f['commit']}; {f['cpu']}, {f['cores']} cores, "
        f"{f['os']}; 1-min load {load} (above 2, other work shared the cores: compare CPU times). Versions: "
        + ", ".join(f"{n} {v}" for n, v in f["versions"].items()) + ".",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        *[f"| {what} | {measured} | **{'hit' if ok else 'missed'}** |" for what, measured, ok in targets(res)],
        "",
        "`exact_gradient(problem)` (batched mode: layer templates differentiated by SymPy, evaluated in Arb ball "
        "arithmetic with `arb_mat` products; every value with a proven radius) beside the per-scalar scalable mode "
        f"(also Arb) and the **previous oracle** (the tree at `{res['previous']}`: MPFR via gmpy2, two passes at p and "
        "p + 64 bits, auto mode), each in a fresh process on the same `random_problem(spec, λ = 1, seed = 0)`. "
        "Wall and CPU seconds of the call (imports and template derivation warmed up); peak memory is the process's "
        "`VmHWM`. Targets are judged on min(wall, CPU) (under load, wall time includes waiting for a core). "
        "*Inside*: previous (or scalable) values within the batched balls widened by 10⁻³⁰ relative.",
        "",
        "| network | m | P | run | wall s | CPU s | peak MB | digits | previous ÷ batched: wall / CPU | inside the balls | target |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for case in res["cases"]:
        base = case["runs"].get("batched", {})
        for name, r in case["runs"].items():
            if "error" in r:
                lines.append(f"| {case['spec']} | {case['m']} | {case['P']:,} | {name} | — | — | — | — | | {r['error'][:80]} | |")
                continue
            ratio = (f"{r['wall'] / base['wall']:.1f}× / **{r['cpu'] / base['cpu']:.1f}×**"
                     if name == "previous" and "wall" in base else "")
            agree = r.get("agreement")
            inside = (f"{agree['inside']:,}/{agree['n']:,}; J {'yes' if agree['cost_inside'] else 'NO'}; "
                      f"worst rel {agree['worst_rel']:.0e}") if agree else ""
            target = ""
            if name == "batched" and case["target_s"]:
                gb = f", ≤ {case['target_gb']:g} GB" if case["target_gb"] else ""
                target = f"≤ {case['target_s']:g} s{gb}: **{'hit' if _hit(case, r) else 'missed'}**"
            lines.append(f"| {case['spec']} | {case['m']} | {case['P']:,} | {name} | {r['wall']:.2f} | {r['cpu']:.2f} | "
                         f"{r['rss_mb']:.0f} | {r['digits']} | {ratio} | {inside} | {target} |")
    lines += [
        "",
        f"**Number kernels at 128 bits** ({k['shape']}): matrix product in Arb {k['arb_matmul_1t']:.2f} s (1 thread), "
        f"{k['arb_matmul_2t']:.2f} s (2 threads), every entry with a proven radius (≤ {k['arb_radius']:.0e}); in MPFR "
        f"object arrays {k['mpfr_matmul']:.2f} s (no error bound): **{k['mpfr_matmul'] / k['arb_matmul_1t']:.1f}×** "
        f"slower single-threaded. Sigmoid over the result: Arb {k['arb_sigmoid']:.2f} s, MPFR {k['mpfr_sigmoid']:.2f} s.",
    ]
    return lines


def _hit(case: dict, r: dict) -> bool:
    """Time judged on min(wall, CPU): under load wall time includes waiting for a core, while on an idle
    machine wall ≤ CPU (the matrix products use two threads); memory on the peak resident size."""
    gb = case["target_gb"]
    return min(r["wall"], r["cpu"]) <= case["target_s"] and (gb is None or r["rss_mb"] <= gb * 1024)


def targets(res: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, hit) rows for RESULTS.md's target table."""
    rows = []
    for case in res["cases"]:
        r = case["runs"].get("batched", {})
        if case["target_s"] and "wall" in r:
            gb = case["target_gb"]
            rows.append((f"exact oracle {case['spec']} (m = {case['m']}) batched: ≤ {case['target_s']:g} s"
                         + (f", ≤ {gb:g} GB" if gb else ""),
                         f"{r['wall']:.2f} s wall, {r['cpu']:.2f} s CPU, {r['rss_mb']:.0f} MB, {r['digits']} digits", _hit(case, r)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small cases only, without the previous oracle")
    parser.add_argument("--previous", default=PREVIOUS, help=f"git ref of the previous oracle (default {PREVIOUS})")
    parser.add_argument("--json", default=None, help="also write the raw results here")
    parser.add_argument("--from-json", default=None, help="render these raw results instead of running")
    args = parser.parse_args(argv)
    if args.from_json:
        res = json.loads(Path(args.from_json).read_text())
    else:
        res = run(args.quick, args.previous, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    lines = render(res)
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    if not args.quick:
        write_section(HERE / "RESULTS.md", "oracle-scale",
                      "<!-- oracle-scale:begin -->\n" + "\n".join(lines) + "\n<!-- oracle-scale:end -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())

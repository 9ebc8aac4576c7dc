"""How much memory and time a run will take, estimated before any array is made; and the refusal.

Every number here is a deliberately conservative formula in the sizes of the network and the
batch, calibrated on this project's 2-core machine (see the constants and ``bench/``); they are
kept in this one module so that they are easy to retune when a source gets faster. An estimate
is not a promise: it is there to refuse a run that cannot fit in memory *before* it allocates
(a 100000-100000-10 network needs 80 GB for W1 alone), to pick the finite-difference plan that
fits a time budget, and to tell a person how long to wait.

    est = estimate(network, m, ("exact", "backprop", "numeric"))
    est.check()          # raises InputError with what to use instead, when it cannot fit
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from gradverify.errors import InputError
from gradverify.spec import Network

__all__ = ["SourceCost", "SizeEstimate", "FdPlan", "available_memory", "estimate", "fd_plan", "problem_bytes",
           "check_array_bytes", "AUTO_FULL_SECONDS", "SAMPLE_SECONDS"]

# ---- the tuning constants (seconds per unit of work, bytes per stored value) ---------------------
_F64 = 8
_BACKPROP_NS = 30.0           # per multiply-add of one pass (m·Σ nₖnₖ₋₁), forward + backward, with the budget's pass
_FORWARD_NS = 2.0             # per multiply-add of one forward evaluation of J (a black-box finite difference)
_TRANSCENDENTAL_NS = 25.0     # per activation value (exp/log), per example
_FD_RANK1_NS = 30.0           # structured finite differences: per (parameter × example × output) of the rank-1 update
_FD_DOWNSTREAM_NS = {"complex-step": 6.0, "central": 0.6, "richardson": 1.8}  # per downstream multiply-add, per parameter
_EXACT_US = 0.6               # the oracle's batched mode, per (example × weight), at 30 digits …
_EXACT_PARAM_US = 12.0        # … plus per parameter (its partial, certified); 2000-2000-10, m = 5: 47 s measured
_EXACT_PARAM_BYTES = 700      # per parameter: its partial and adjoint as balls, and the weight's own
_EXACT_VALUE_BYTES = 300      # per forward value (example × unit): a ball with its radius, and its adjoint
_EXACT_IMPORT_BYTES = 150_000_000  # SymPy, SymEngine and the multiprecision libraries once imported
_EXACT_FULL_LIMIT = 8_000_000  # P²·m under which the oracle differentiates the whole expression (symbolic.FULL_MODE_LIMIT)
_CANDIDATE_FACTOR = 3.0       # a candidate engine: assume a few times backprop, in time and memory

#: ``--fd auto`` computes every partial when that is estimated to take at most this long
AUTO_FULL_SECONDS = 20.0
#: the time a sampled finite-difference check aims at
SAMPLE_SECONDS = 10.0
#: never sample fewer partials than this (or all of them, if there are fewer)
MIN_SAMPLE = 64
#: the share of the available memory a run may plan to use
MEMORY_SHARE = 0.8


def available_memory() -> int | None:
    """Bytes this process can still allocate without swapping: MemAvailable, capped by a cgroup limit.

    None when the platform says nothing (then no run is refused for memory).
    """
    free = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            free = None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(path, encoding="ascii").read().strip()
            usage_path = path.replace("memory.max", "memory.current").replace("limit_in_bytes", "usage_in_bytes")
            used = int(open(usage_path, encoding="ascii").read().strip())
        except (OSError, ValueError):
            continue
        if text.isdigit() and int(text) < 2**60:
            room = max(0, int(text) - used)
            free = room if free is None else min(free, room)
    return free


def _weights(net: Network) -> int:
    """Σ nₖ·nₖ₋₁: multiply-adds per example of one forward pass."""
    s = net.sizes
    return sum(s[k] * s[k - 1] for k in range(1, len(s)))


def problem_bytes(net: Network, m: int) -> int:
    """The parameters, X and Y as float64, twice (the caller's copy and the validated one)."""
    return 2 * _F64 * (net.n_params + m * (net.sizes[0] + net.sizes[-1]))


def _activations(net: Network, m: int) -> int:
    return m * sum(net.sizes)


@dataclass(frozen=True)
class SourceCost:
    """One source's estimated peak memory (bytes, beyond the problem itself) and time (seconds)."""

    source: str
    bytes: int
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class FdPlan:
    """How the finite-difference source will run: every partial, or a sample of them.

    ``n`` partials (all P for ``"full"``); ``seconds`` estimated; ``reason`` for people.
    """

    kind: str  # "full" or "sample"
    n: int
    seconds: float
    reason: str = ""


def _fd_full_seconds(net: Network, m: int, method: str) -> float:
    """The structured estimator (finite_diff.numeric_gradient) over every partial."""
    s, L = net.sizes, net.depth
    per = _FD_DOWNSTREAM_NS.get(method, _FD_DOWNSTREAM_NS["central"]) * 1e-9
    total = net.n_params * m * s[-1] * _FD_RANK1_NS * 1e-9
    for layer in range(1, L + 1):
        P_l = s[layer] * (s[layer - 1] + 1)
        downstream = sum(s[k] * s[k - 1] for k in range(layer + 2, L + 1))  # layers recomputed in full
        total += P_l * m * (downstream + s[layer + 1] if layer + 1 <= L else 0) * per
    return total


def _forward_seconds(net: Network, m: int) -> float:
    return m * (_weights(net) * _FORWARD_NS + sum(net.sizes[1:]) * _TRANSCENDENTAL_NS) * 1e-9


def fd_plan(net: Network, m: int, *, fd: str = "auto", method: str = "auto", sample: int | None = None) -> FdPlan:
    """The finite-difference plan: ``fd`` is ``"full"``, ``"sample"`` or ``"auto"``.

    ``auto`` computes every partial when that is estimated to take at most ``AUTO_FULL_SECONDS``,
    else a sample sized to ``SAMPLE_SECONDS`` (at least ``MIN_SAMPLE``). ``sample`` fixes the
    sample's size.
    """
    P = net.n_params
    analytic = all(a != "relu" for a in net.activations)
    resolved = ("complex-step" if analytic else "central") if method == "auto" else method
    full = _fd_full_seconds(net, m, resolved)
    per_sample = 3 * _forward_seconds(net, m)  # central differences of a black box: 3 evaluations per partial
    if fd == "full" or (fd == "auto" and sample is None and full <= AUTO_FULL_SECONDS):
        return FdPlan("full", P, full, "every partial")
    n = sample if sample is not None else max(MIN_SAMPLE, int(SAMPLE_SECONDS / max(per_sample, 1e-9)))
    n = min(P, n)
    if n >= P:
        return FdPlan("full", P, full, "every partial (the sample would hold them all)")
    reason = (f"every partial would take about {_duration(full)}" if fd == "auto" else "asked for")
    return FdPlan("sample", n, n * per_sample + 10 * _forward_seconds(net, m), reason)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 1 else "under a second"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


@dataclass(frozen=True)
class SizeEstimate:
    """The estimated footprint of one run: the problem, each source, and what the machine has."""

    network: Network
    m: int
    problem: int
    costs: dict[str, SourceCost]
    available: int | None
    fd: FdPlan | None = None
    request: dict = field(default_factory=dict, repr=False)  # the estimate's own arguments, to try alternatives

    @property
    def peak_bytes(self) -> int:
        """The problem plus the largest source (they run one after another), plus every result kept."""
        results = 6 * _F64 * self.network.n_params * max(1, len(self.costs))
        return self.problem + max((c.bytes for c in self.costs.values()), default=0) + results

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.costs.values())

    def fits(self) -> bool:
        return self.available is None or self.peak_bytes <= MEMORY_SHARE * self.available

    def describe(self) -> str:
        """One line for people: the estimated memory and time, per source."""
        parts = [f"{name} ~{_size(c.bytes)}, ~{_duration(c.seconds)}" for name, c in self.costs.items()]
        room = f" of {_size(self.available)} available" if self.available is not None else ""
        return f"estimate  peak ~{_size(self.peak_bytes)}{room}; " + "; ".join(parts)

    def check(self) -> None:
        """Raise ``InputError`` saying what to use instead when the run cannot fit in memory.

        The alternatives offered are estimated the same way and fit: fewer sources, sampled
        finite differences, the largest batch that fits, or (when even that fails) a smaller network.
        """
        if self.fits():
            return
        room = int(MEMORY_SHARE * self.available)
        over = [f"{c.source} ~{_size(c.bytes)}" for c in sorted(self.costs.values(), key=lambda c: -c.bytes)
                if self.problem + c.bytes > room]
        raise InputError(
            f"This run would need about {_size(self.peak_bytes)} of memory, more than the {_size(room)} it may use "
            f"({_size(self.available)} available now); nothing was computed",
            expected=f"a run that fits in {_size(room)}",
            received=f"{self.network.compact} ({self.network.n_params:,} parameters), m = {self.m:,}: problem ~{_size(self.problem)}"
            + (f"; {', '.join(over)}" if over else ""),
            fix="use " + " or ".join(self._alternatives()))

    def _alternatives(self) -> list[str]:
        req = dict(self.request)
        sources = [s for s in ("exact", "backprop", "numeric") if s in req["sources"]]
        again = lambda **changes: estimate(self.network, **{**req, "m": self.m, "available": self.available, **changes})  # noqa: E731
        fixes = []
        for subset in ([s for s in sources if s != "exact"], ["backprop"], ["numeric"]):
            if subset and subset != sources and again(sources=tuple(subset)).fits():
                fixes.append(f"--sources {','.join(subset)}")
                break
        if "numeric" in sources and self.fd is not None and self.fd.kind == "full" and again(fd="sample").fits():
            fixes.append("--fd sample (finite differences of a sample of the partials)")
        lo, hi = 0, self.m  # the largest batch that fits: estimates grow with m
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if estimate(self.network, **{**req, "m": mid, "available": self.available}).fits() else (lo, mid)
        if lo >= 1:
            fixes.append(f"a smaller batch (-m {lo:,} fits)")
        else:
            fixes.append("a smaller network")
        return fixes


def _size(n: float | None) -> str:
    if n is None:
        return "?"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def estimate(net: Network, m: int, sources: Sequence[str], *, candidates: int = 0, fd: str = "auto",
             fd_method: str = "auto", fd_sample: int | None = None, digits: int = 30, exact_mode: str = "auto",
             available: int | None = -1) -> SizeEstimate:
    """Estimate the memory and time of running ``sources`` (and ``candidates`` of them) on a network and batch.

    Args:
        net, m: the network and the batch size (nothing is allocated).
        sources: names among ``exact``, ``backprop``, ``numeric``.
        candidates: how many candidate functions are judged too.
        fd, fd_method, fd_sample: the finite-difference plan (see ``fd_plan``).
        digits: the exact oracle's digits (its cost grows with them).
        exact_mode: ``"full"`` differentiates the whole expression (small problems only).
        available: bytes available (default: measured now; None: unknown, nothing refused).
    """
    P, W = net.n_params, _weights(net)
    acts = _activations(net, m)
    costs: dict[str, SourceCost] = {}
    budget_pass = SourceCost("budget", 12 * _F64 * acts + 4 * _F64 * P, 0.0)
    if "exact" in sources:
        precision = max(1.0, digits / 30)
        work = P * P * m
        mode = "full" if (exact_mode == "full" or (exact_mode == "auto" and work <= _EXACT_FULL_LIMIT)) else "batched"
        seconds = (m * (W + sum(net.sizes)) * _EXACT_US + P * _EXACT_PARAM_US) * 1e-6 * precision ** 1.6
        if mode == "full":
            seconds += work * 2e-7
        stored = acts * _EXACT_VALUE_BYTES + P * _EXACT_PARAM_BYTES
        costs["exact"] = SourceCost("exact", _EXACT_IMPORT_BYTES + int(stored * precision), seconds, mode)
    if "backprop" in sources:
        costs["backprop"] = SourceCost("backprop", max(budget_pass.bytes, 4 * _F64 * acts + 3 * _F64 * P),
                                       m * W * _BACKPROP_NS * 1e-9 + acts * _TRANSCENDENTAL_NS * 1e-9)
    plan = None
    if "numeric" in sources:
        plan = fd_plan(net, m, fd=fd, method=fd_method, sample=fd_sample)
        if plan.kind == "full":  # the structured engine keeps the pass's values, complex for complex step
            engine = 6 * 2 * _F64 * acts + 8 * _F64 * P + 2 * _F64 * (1 << 16)
        else:  # a black-box forward evaluation at a time
            engine = 3 * _F64 * acts + 4 * _F64 * P
        costs["numeric"] = SourceCost("numeric", engine, plan.seconds, plan.kind if plan.kind == "full" else f"sample of {plan.n:,}")
    if candidates:
        bp = m * W * _BACKPROP_NS * 1e-9
        costs["candidates"] = SourceCost("candidates", int(_CANDIDATE_FACTOR * (4 * _F64 * acts + 3 * _F64 * P)) + budget_pass.bytes,
                                         candidates * _CANDIDATE_FACTOR * bp)
    room = available_memory() if available == -1 else available
    request = {"sources": tuple(sources), "candidates": candidates, "fd": fd, "fd_method": fd_method, "fd_sample": fd_sample,
               "digits": digits, "exact_mode": exact_mode}
    return SizeEstimate(net, m, problem_bytes(net, m), costs, room, plan, request)


def check_array_bytes(total: int, *, what: str, fix: str) -> None:
    """Refuse to load ``total`` bytes of arrays when they cannot fit in memory (read from headers)."""
    room = available_memory()
    if room is not None and 2 * total > MEMORY_SHARE * room:
        raise InputError(f"{what} would take about {_size(2 * total)} of memory once loaded, more than the "
                         f"{_size(MEMORY_SHARE * room)} it may use; nothing was loaded",
                         expected=f"arrays that fit in {_size(MEMORY_SHARE * room)}", received=f"{_size(total)} of float64 data",
                         fix=fix)

"""Which conventions a submission was written in: tried on a fixed case, kept when cost and gradient fit.

Labels 0..K−1 or 1..K, Θ unrolled in C or Fortran order, ½·reg·ΣW² or reg·ΣW²: these are
conventions, not bugs, and a class mixes them. Each (target, call form, settings) option is
*attempted* on the first fixed case — the profile's own ``attempt`` calls the submission and reads
the answer — and judged against the exact values. The first option under which the cost and every
partial are right is kept. When none is, the closest one is named with why it is closest (the cost
right, how many partials right, whether the gradient points the right way), and the grade is given
under it when it is clearly closer than the default: a bug is then diagnosed in the student's own
conventions instead of being drowned by a convention the grader guessed wrong.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Attempt", "Detection", "detect", "measure", "settings_grid", "describe_settings", "options_for", "detect_submission",
           "detect_calls", "CallFailed"]


@dataclass(frozen=True)
class Attempt:
    """One option tried on the first fixed case and how close its answer came."""

    target: str
    form: str
    settings: dict
    failed: str = ""              # the call failed or returned the wrong form: what happened (for the student)
    cost_ok: bool | None = None
    n_ok: int = 0                 # partials within their error budget
    n_params: int = 0
    cosine: float = 0.0           # |cos| of the angle between the gradient and the exact one
    remark: str = ""              # a profile's own observation (e.g. read in one order, written in the other)
    first_fits: bool = False      # right on the first case (λ = 0), where regularization conventions cannot show
    fatal: bool = False           # the call timed out, crashed or spent the budget: trying more would only spend more

    @property
    def fits(self) -> bool:
        return not self.failed and self.cost_ok is not False and self.n_params > 0 and self.n_ok == self.n_params

    @property
    def closeness(self) -> float:
        """0 for a failed call, up to 2.5 for a perfect answer. A right cost weighs most: where cost and
        gradient disagree (reg·ΣW² in the cost, reg·W in the gradient), the convention is the one the
        cost states and the gradient is the bug."""
        if self.failed or not self.n_params:
            return 0.0
        return 1.0 * bool(self.cost_ok) + self.n_ok / self.n_params + 0.5 * self.cosine

    def why(self) -> str:
        """Why this option is as close as it is, in a student's words."""
        if self.failed:
            return self.failed
        parts = ["the cost is right" if self.cost_ok else "the cost is wrong",
                 f"{self.n_ok} of {self.n_params} partials are right"]
        if self.n_ok < self.n_params:
            parts.append(f"the gradient's direction agrees to cos = {self.cosine:.2f}")
        return ", ".join(parts) + (f"; {self.remark}" if self.remark else "")


@dataclass(frozen=True)
class Detection:
    """What was kept: the option graded under, whether it fits, and every attempt (for the record)."""

    target: str
    form: str
    settings: dict
    fits: bool
    attempts: tuple[Attempt, ...] = field(default=())
    closest: Attempt | None = None
    pinned: tuple[str, ...] = ()

    def note(self, default: dict) -> str:
        """One paragraph for the feedback: what was detected, or why nothing fitted."""
        conv = describe_settings(self.settings, self.pinned)
        if self.fits:
            return f"Detected: {conv}, call form '{self.form}' of {self.target}."
        if self.closest is None:
            return "No call form and convention could be tried: " + "; ".join(a.failed for a in self.attempts[:3])
        chosen = ("graded under it" if self.settings == self.closest.settings and self.form == self.closest.form
                  else f"graded under the default ({describe_settings(default)})")
        return (f"No convention makes your cost and gradient right on the first fixed case. The closest is "
                f"{describe_settings(self.closest.settings)} with call form '{self.closest.form}': {self.closest.why()} "
                f"({chosen}). Tried {len(self.attempts)} combinations.")


def describe_settings(settings: dict, pinned: Iterable[str] = ()) -> str:
    pinned = set(pinned)
    return ", ".join(f"{k}={v}" + (" (pinned)" if k in pinned else "") for k, v in settings.items() if k != "target") or "no settings"


def settings_grid(base: dict, choices: dict, conventions: Iterable[str], pinned: dict, *,
                  key: Callable[[dict], object] | None = None) -> list[dict]:
    """Every combination of the detectable ``conventions`` (each over its ``choices``), the others as in
    ``base``; a pinned setting takes only its pinned value. The default combination comes first.
    ``key(settings)`` says which combinations call the same way (one of each is kept)."""
    keys = [k for k in conventions if k in choices and k not in pinned]
    fixed = {**base, **pinned}
    first = {k: fixed.get(k, choices[k][0]) for k in keys}
    values = [[first[k], *[v for v in choices[k] if v != first[k]]] for k in keys]
    grid, seen = [], set()
    for combo in itertools.product(*values):
        # a convention the profile's defaults leave out is named only where it differs from its default
        settings = {**fixed, **{k: v for k, v in zip(keys, combo) if k in fixed or v != first[k]}}
        k = repr(key(settings)) if key else repr(sorted(settings.items()))
        if k not in seen:
            seen.add(k)
            grid.append(settings)
    return grid


def measure(problem, cost: float, grads: dict, cache: dict | None = None) -> tuple[bool | None, int, int, float]:
    """``(cost_ok, n_ok, n_params, |cos|)`` of an answer against the exact values of ``problem``
    (``cache``: the exact values by problem, computed once)."""
    from gradverify.compare import candidate_source, gather, judge

    key = id(problem)
    if cache is None or key not in cache:
        exact = gather(problem, ("exact",))
        if cache is not None:
            cache[key] = (problem, exact)  # the problem is kept so its id stays its own
    else:
        exact = cache[key][1]
    comp = judge(problem, {**exact, "yours": candidate_source("yours", lambda _p: (cost, grads), problem)}, diagnose=False)
    v = comp.verdicts["yours"]
    g, e = comp.sources["yours"].grad, comp.sources["exact"].grad
    norm = float(np.linalg.norm(g) * np.linalg.norm(e))
    cosine = abs(float(g @ e)) / norm if norm > 0 and np.isfinite(norm) else 0.0
    return v.cost_ok, int(len(comp.names) - v.n_off), len(comp.names), min(cosine, 1.0)


def detect(options: Iterable[tuple[str, str, dict]], attempt: Callable[[str, str, dict], Attempt], *,
           default: dict, pinned: Iterable[str] = (), budget: int = 64) -> Detection:
    """Try ``options`` ((target, form, settings), best guess first) until one fits.

    Args:
        options: what to try, in order; the first option's settings should be the default.
        attempt: calls the submission under one option on the first fixed case and measures the answer.
        default: the profile's default settings (graded under when nothing is clearly closer).
        pinned: settings the instructor fixed with ``--set`` (reported as pinned).
        budget: at most this many attempts (each is one call of the student's function).

    Returns:
        The ``Detection``: the fitting option, or the closest one when it is clearly closer than the
        default option (else the default), with every attempt made.
    """
    attempts: list[Attempt] = []
    for target, form, settings in itertools.islice(options, budget):
        a = attempt(target, form, settings)
        attempts.append(a)
        if a.fits:
            return Detection(target, form, settings, True, tuple(attempts), a, tuple(pinned))
        if a.fatal:
            break
    if not attempts:
        return Detection("", "", dict(default), False, (), None, tuple(pinned))
    first = [a for a in attempts if a.first_fits]
    if first:  # right where conventions of regularization cannot show: the bug is in the regularization
        best = max(first, key=lambda a: a.closeness)
        return Detection(best.target, best.form, best.settings, True, tuple(attempts), best, tuple(pinned))
    usable = [a for a in attempts if not a.failed]
    if not usable:
        first = attempts[0]
        return Detection(first.target, first.form, first.settings, False, tuple(attempts), None, tuple(pinned))
    closest = max(usable, key=lambda a: a.closeness)  # max keeps the first of equals: the default side wins ties
    baseline = next((a for a in usable if a.settings == default and a.form == closest.form), usable[0])
    chosen = closest if closest.closeness > baseline.closeness + 0.05 else baseline
    return Detection(chosen.target, chosen.form, chosen.settings, False, tuple(attempts), closest, tuple(pinned))


# ---- detecting through the sandbox ------------------------------------------------------------

# Failures no other option can cure (an infinite loop, a crash, the budget spent): detection stops there,
# and the submission is graded under the default so that its checks say what happened.
_FATAL = frozenset({"timeout", "cpu", "memory", "crashed", "protocol", "budget", "setup"})

def options_for(profile, callables, pinned: dict) -> list[tuple[str, str, dict]]:
    """What to try for a submission that defines ``callables`` (``LoadInfo.callables``): the profile's
    targets first (in its order), then any other function whose parameter names fit a form almost
    entirely; each with every call form its signature can take, under every combination of the
    profile's conventions (pinned ones fixed), the default first."""
    from gradverify.callforms import Signature, rank_forms

    params = dict(callables)
    if "target" in pinned:
        names = [pinned["target"]]
    else:
        names = [t for t in profile.names if t in params]
        names += [n for n in params if n not in names and "__and__" in n]  # a cost and its gradient function, paired (loader)
        names += [n for n in params if n not in names]
    base = {k: v for k, v in profile.settings.items() if k not in ("target", "form")}
    grid = settings_grid(base, profile.choices, profile.conventions, {k: v for k, v in pinned.items() if k not in ("target", "form")},
                         key=profile.convention_key)
    options = []
    for name in names:
        sig = Signature.from_wire(name, params.get(name))
        if sig is None:
            continue
        forms = rank_forms(sig, profile.forms)
        methods = {t.split(".")[-1] for t in profile.names if "." in t}
        known = name in profile.names or ("." in name and name.split(".")[-1] in methods) or "target" in pinned  # named by hand
        if not known:  # not a name the profile looks for: only a near-perfect fit of the names
            forms = [f for f in forms if f.score(sig) >= max(3, len(f.roles) - 1)]
        if "form" in pinned:
            forms = [f for f in forms if f.name == pinned["form"]]
        options += [(name, f.name, s) for f in forms for s in grid]
    # A convention the profile's defaults leave out (ex4's x_bias=given) is the rare one: every
    # option needing it comes after all the others, so that it never uses up the attempts budget first.
    return sorted(options, key=lambda option: any(k not in base for k in option[2]))


def _mixed_order(profile, problem, settings: dict, value, cache: dict) -> str:
    """When the parameters are read in one order (the cost is right) and the gradient fits only when
    unrolled in the other: a bug, not a convention — say so."""
    from gradverify.profiles import ResultError

    order = settings.get("unroll_order")
    if order not in ("C", "F"):
        return ""
    other = "F" if order == "C" else "C"
    try:
        cost, grads = profile.read(problem, {**settings, "unroll_order": other}, value)
    except ResultError:
        return ""
    _, n_ok, n_params, _ = measure(problem, cost, grads, cache)
    if n_ok < n_params:
        return ""
    words = {"C": "C (row-major) order", "F": "Fortran (column-major) order"}
    return (f"your parameters are read in {words[order]} but your gradient is unrolled in {words[other]}: that is a bug, "
            "not a convention (read and unroll in one order)")


class CallFailed(Exception):
    """One call made while detecting failed: ``message`` for the student; ``fatal`` when trying more
    options would only spend more (a timeout, a crash, the budget spent)."""

    def __init__(self, message: str, fatal: bool = False):
        super().__init__(message)
        self.message, self.fatal = message, fatal


def detect_calls(call, profile, cases, pinned: dict, callables, *, budget: int = 48) -> Detection:
    """Detect the target, call form and conventions of a submission reached through ``call``.

    Args:
        call: ``call(settings, problem) -> raw value`` (``settings`` with ``target`` and ``form``);
            raises ``CallFailed`` when the call or its answer fails.
        profile: the assignment profile (its forms, targets, conventions).
        cases: ``cases(settings) -> [λ = 0 problem, λ > 0 problem]`` under those settings (a convention
            can change the network, as ``reg_scale`` does): the first shows label and layout
            conventions, the second the regularization's; each option is called on both.
        pinned: settings fixed by ``--set``, including ``target`` or ``form``.
        callables: what the submission defines (``loader.callables``: name -> parameters).
        budget: most options tried (each costs two calls of the student's function).
    """
    from gradverify.profiles import ResultError

    exact_cache: dict = {}
    problems: dict = {}

    def cases_of(settings: dict) -> list:
        probe = cases(settings)
        key = tuple(p.network for p in probe)  # the same networks: the same problems, the same exact values
        return problems.setdefault(key, probe)

    def attempt(target: str, form: str, settings: dict) -> Attempt:
        full = {**settings, "target": target, "form": form}
        totals = [True, 0, 0, 0.0]
        first_fits = False
        remark = ""
        chosen = cases_of(settings)
        for i, problem in enumerate(chosen):
            try:
                value = call(full, problem)
                try:
                    cost, grads = profile.read(problem, full, value)
                except ResultError as exc:
                    raise CallFailed(f"{target} returned the wrong form: {exc.detail}") from None
            except CallFailed as exc:
                return Attempt(target, form, settings, failed=exc.message[:300], first_fits=first_fits, fatal=exc.fatal)
            cost_ok, n_ok, n_params, cosine = measure(problem, cost, grads, exact_cache)
            if i == 0 and cost_ok is not False and n_ok < n_params:
                remark = _mixed_order(profile, problem, full, value, exact_cache)
            totals = [totals[0] and cost_ok is not False, totals[1] + n_ok, totals[2] + n_params, totals[3] + cosine / len(chosen)]
            if i == 0:
                first_fits = cost_ok is not False and n_ok == n_params
        return Attempt(target, form, settings, cost_ok=totals[0], n_ok=totals[1], n_params=totals[2], cosine=totals[3],
                       first_fits=first_fits, remark=remark)

    default = {k: v for k, v in profile.settings.items() if k not in ("target", "form")}
    default.update({k: v for k, v in pinned.items() if k not in ("target", "form")})
    return detect(options_for(profile, callables, pinned), attempt, default=default, pinned=tuple(pinned), budget=budget)


def detect_submission(sandbox, profile, cases, pinned: dict, *, budget: int = 48) -> Detection:
    """Detect the target, call form and conventions of the submission loaded in ``sandbox``
    (``detect_calls`` through the sandbox; its ``load_info.callables`` say what it defines)."""
    from gradverify.grading.runner import Runner, StudentError

    def call(settings: dict, problem):
        run = Runner(sandbox, profile, settings)
        try:
            res = run.call(problem)
            run.answer(problem, res)  # a wrong form is said in the student's words here
        except StudentError as exc:
            fatal = bool(run.failures) and run.failures[-1][1].kind in _FATAL
            raise CallFailed(exc.message, fatal) from None
        return res.value

    return detect_calls(call, profile, cases, pinned, sandbox.load_info.callables, budget=budget)

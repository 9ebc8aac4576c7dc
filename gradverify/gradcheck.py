"""``gradcheck``: check the gradient of any numpy function of arrays, with error bars, names and probes.

The job of ``torch.autograd.gradcheck``, ``jax.test_util.check_grads`` and
``scipy.optimize.check_grad``, for plain numpy code:

    from gradverify import gradcheck
    result = gradcheck(f, {"W": W, "x": x}, df=df)   # df(W, x) -> (dW, dx)
    print(result.summary())                          # PASS … / FAIL: names the element, the values, the error bar
    result.raise_if_failed()                         # for pytest (GradientMismatchError)

What it does better than those:

- **error bars, not a global rtol**: each numerical partial carries its own error estimate
  (central differences with a third-difference truncation bound and a measured round-off, from
  ``finite_diff.numeric_gradient_of``), and the analytic side gets one too: the round-off of the
  analytic gradient is *measured* the same way (ECnoise: its values at nine nearby points).
  A partial passes when |analytic − numeric| ≤ both bars; the ratio says by how much it fails.
- **complex step where the function is analytic**: if ``f`` accepts complex input, Im f(x + ih·eₚ)/h
  (h = 1e-20: no step to tune) is tried and kept only if it agrees with central differences within
  their bars everywhere — a function using ``abs``, ``max`` or ``.real`` is detected and checked by
  central differences instead, with a note saying so. Its own error bar is measured too: the
  spread of the partial taken at xₚ and xₚ ± 4 ulps;
- **names**: every element is named after its input (``W[1,2]``; for a vector output
  ``y[3] / W[1,2]``), taken from the dict keys or ``f``'s own parameter names;
- **probes** for large inputs: signed random directional derivatives over all elements, bisected
  down to the wrong ones (``finite_diff.probe_check``), instead of one partial at a time.

The analytic gradient comes from ``df(*inputs)`` (one array per input, each of shape
``y.shape + x.shape``; a single array when there is one input), or, with ``df=None``, from ``f``
itself returning ``(y, gradient)`` in that form.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from gradverify.errors import CandidateError, GradientMismatchError, InputError

__all__ = ["gradcheck", "assert_gradcheck", "GradcheckResult", "MAX_ELEMENTS"]

EPS = float(np.finfo(np.float64).eps)
#: inputs with more elements than this are checked by random probes (plus a sample of partials)
MAX_ELEMENTS = 20_000
#: outputs with at most this many elements are checked one by one (the full Jacobian); more: random cotangents
MAX_OUTPUTS = 16
_COMPLEX_STEP = 1e-20


@dataclass(frozen=True, eq=False)
class GradcheckResult:
    """Every checked element: analytic and numeric values, error bars, ratio, status; and how they were made.

    Attributes:
        names: one per checked entry (``W[1,2]``, or ``y[0] / W[1,2]`` for a vector output).
        analytic, numeric, numeric_error, analytic_error, ratio: per entry.
        status: ``"ok"`` or ``"off"`` per entry.
        method: ``"complex-step"`` or ``"central"``.
        n_evals: calls of ``f``.
        probes: for large inputs, the random probes' report (``finite_diff.ProbeReport``), else None.
        notes: what was decided and why (complex step refused, random cotangents, probes).
    """

    names: list[str]
    analytic: np.ndarray
    numeric: np.ndarray
    numeric_error: np.ndarray
    analytic_error: np.ndarray
    ratio: np.ndarray
    status: np.ndarray
    method: str
    n_evals: int
    probes: object | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return bool(np.all(self.status == "ok")) and (self.probes is None or self.probes.passed)

    @property
    def n_off(self) -> int:
        return int(np.count_nonzero(self.status == "off"))

    def worst(self, n: int = 5) -> list[int]:
        """Indices of the n entries with the largest ratio (failures first)."""
        return [int(i) for i in np.argsort(-np.nan_to_num(self.ratio, nan=np.inf), kind="stable")[:n]]

    def summary(self) -> str:
        """One line: PASS, or FAIL with the worst element, its values and its error bar."""
        how = f"{self.method}, {self.n_evals:,} evaluations of f"
        if self.ok:
            return (f"PASS: the analytic gradient agrees with finite differences on all {len(self.names):,} checked entries "
                    f"(worst ratio {float(np.nanmax(self.ratio, initial=0)):.2g} of its error bar; {how})"
                    + (f"; {self.probes.n_evals} more for {len([p for p in self.probes.probes if p.level == 0])} random probes"
                       if self.probes is not None else "") + ".")
        if self.n_off:
            i = self.worst(1)[0]
            return (f"FAIL: the analytic gradient is off at {self.n_off} of {len(self.names):,} entries; worst {self._entry(i)} ({how}).")
        return f"FAIL: random probes of the whole gradient disagree; bisection found {', '.join(self.probes.names[:8]) or 'no single entry'} ({how})."

    def _entry(self, i: int) -> str:
        return (f"{self.names[i]}: analytic {self.analytic[i]:.10g}, numeric {self.numeric[i]:.10g} ± {self.numeric_error[i]:.2g} "
                f"(abs error {abs(self.analytic[i] - self.numeric[i]):.3g} = {self.ratio[i]:.3g}× the error bars)")

    def report(self, limit: int = 8) -> str:
        """The summary, then the worst entries, one per line, and the notes."""
        lines = [self.summary()]
        for i in self.worst(limit):
            if self.status[i] == "off" or self.ok:
                lines.append("  " + self._entry(i))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def raise_if_failed(self) -> GradcheckResult:
        """Raise ``GradientMismatchError`` (an AssertionError: a test failure in pytest) unless ``ok``."""
        if not self.ok:
            raise GradientMismatchError(self.report())
        return self

    def __repr__(self) -> str:
        return f"GradcheckResult({'ok' if self.ok else 'FAILED'}: {self.n_off} of {len(self.names)} off, {self.method})"


# ---- inputs, names and the function's own return -----------------------------------------------

def _inputs(f: Callable, inputs) -> tuple[list[str], list[np.ndarray], bool]:
    """(names, float64 arrays, whether they came as a dict) — with names from dict keys or f's parameters."""
    if isinstance(inputs, Mapping):
        names, values, as_dict = [str(k) for k in inputs], list(inputs.values()), True
    else:
        values = [inputs] if isinstance(inputs, np.ndarray) or np.isscalar(inputs) else list(inputs)
        as_dict = False
        try:
            params = [p.name for p in inspect.signature(f).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            params = []
        names = params[:len(values)] if len(params) >= len(values) else [f"x{i}" for i in range(len(values))]
    arrays = []
    for name, value in zip(names, values):
        arr = np.asarray(value)
        if arr.dtype.kind == "c":
            raise InputError(f"The input {name} is complex", expected="real arrays (the gradient of a real function)",
                             received=f"dtype {arr.dtype}", fix="pass the real inputs; gradcheck adds the complex step itself")
        if arr.dtype.kind not in "biuf":
            raise InputError(f"The input {name} is not an array of numbers", expected="real arrays", received=f"dtype {arr.dtype}",
                             fix="pass numpy arrays of floats")
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise InputError(f"The input {name} holds NaN or inf", expected="finite values", received=f"{int((~np.isfinite(arr)).sum())} non-finite",
                             fix="check the gradient at a finite point")
        arrays.append(arr)
    if not arrays or sum(a.size for a in arrays) == 0:
        raise InputError("gradcheck needs at least one input element", received="no elements", fix="pass the arrays f takes")
    return names, arrays, as_dict


def _element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, idx))}]" for idx in np.ndindex(*shape)]


def _call(f: Callable, arrays: Sequence[np.ndarray], as_dict: bool, names: list[str]):
    try:
        return f(**dict(zip(names, arrays))) if as_dict else f(*arrays)
    except GradientMismatchError:
        raise
    except Exception as exc:  # the function under test failed: its failure, said plainly
        raise CandidateError(f"The function raised {type(exc).__name__}: {exc}", received="while gradcheck evaluated it",
                             fix="run f on the same inputs yourself") from None


def _real_output(value, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise CandidateError(f"{what} is not an array of numbers", received=str(exc), fix="return a float or a numpy array") from None
    if arr.dtype.kind not in "biufc":
        raise CandidateError(f"{what} is not an array of numbers", received=f"dtype {arr.dtype}", fix="return a float or a numpy array")
    return arr


def _gradient(value, names: list[str], arrays: list[np.ndarray], y_shape: tuple, as_dict: bool) -> list[np.ndarray]:
    """The analytic gradient as one float64 array of shape y.shape + x.shape per input."""
    if as_dict and isinstance(value, Mapping):
        missing = [n for n in names if n not in value]
        if missing:
            raise CandidateError(f"The gradient misses {', '.join(missing)}", expected="one entry per input: " + ", ".join(names),
                                 received="keys " + ", ".join(map(str, value)), fix="return a dict with the inputs' names")
        parts = [value[n] for n in names]
    elif len(arrays) == 1 and not isinstance(value, (tuple, list)):
        parts = [value]
    elif isinstance(value, (tuple, list)) and len(value) == len(arrays):
        parts = list(value)
    else:
        raise CandidateError("The gradient has the wrong form", expected=f"{len(arrays)} array(s), one per input ({', '.join(names)})",
                             received=type(value).__name__ + (f" of {len(value)}" if isinstance(value, (tuple, list)) else ""),
                             fix="return a tuple with one array per input (a single array for a single input)")
    out = []
    for name, x, part in zip(names, arrays, parts):
        g = _real_output(part, f"The gradient for {name}")
        if g.dtype.kind == "c":
            raise CandidateError(f"The gradient for {name} is complex", expected="real numbers", received=f"dtype {g.dtype}",
                                 fix="return the real gradient")
        want = tuple(y_shape) + x.shape
        if g.shape != want:
            raise CandidateError(f"The gradient for {name} has the wrong shape", expected=str(want), received=str(g.shape),
                                 fix="a gradient has the shape of the output followed by the shape of its input")
        out.append(g.astype(np.float64))
    return out


# ---- the check ---------------------------------------------------------------------------------

def gradcheck(f: Callable, inputs, *, df: Callable | None = None, method: str = "auto", rtol: float = 0.0,
              max_elements: int = MAX_ELEMENTS, seed: int = 0) -> GradcheckResult:
    """Check the analytic gradient of ``f`` at ``inputs`` against finite differences, with error bars.

    Args:
        f: a function of numpy arrays returning a float or an array (``f(*inputs)``, or
            ``f(**inputs)`` for a dict). With ``df=None`` it returns ``(value, gradient)``.
        inputs: an array, a sequence of arrays, or a dict name → array (the names are used in messages).
        df: the analytic gradient, called like ``f``: one array per input, of shape
            ``value.shape + input.shape`` (a tuple, a dict for dict inputs, or one array for one input).
        method: ``"auto"`` (complex step where ``f`` is analytic, else central differences),
            ``"central"`` or ``"complex-step"`` (refused, with the reason, when ``f`` is not analytic).
        rtol: extra relative slack on top of the error bars (default 0: the bars alone).
        max_elements: more input elements than this are checked by random probes with bisection.
        seed: for the random cotangents, probes and noise measurements.

    Returns:
        A ``GradcheckResult``; ``.ok``, ``.summary()``, ``.report()``, ``.raise_if_failed()``.

    Raises:
        InputError: bad inputs or options (complex or non-finite inputs, an unknown method).
        CandidateError: ``f`` or ``df`` raised, or returned something of the wrong form.
    """
    from gradverify import finite_diff

    if method not in ("auto", "central", "complex-step"):
        raise InputError(f"Unknown method {method!r}", expected='"auto", "central" or "complex-step"', received=repr(method))
    if not (isinstance(rtol, (int, float)) and rtol >= 0):
        raise InputError("rtol must be a number ≥ 0", received=repr(rtol), fix="0 (the default) uses the error bars alone")
    if not callable(f) or (df is not None and not callable(df)):
        bad = "f" if not callable(f) else "df"
        raise InputError(f"gradcheck's {bad} must be a function", expected="a callable, e.g. lambda x: (x ** 2).sum()",
                         received=type(f if bad == "f" else df).__name__, fix=f"pass the function itself as {bad}")
    if inputs is None:
        raise InputError("gradcheck needs the point to check at", expected="an array, a number, a sequence of arrays or a "
                         "dict of named arrays", received="None", fix="e.g. gradcheck(f, np.array([0.5, -1.0]))")
    names, arrays, as_dict = _inputs(f, inputs)
    value, grads = _evaluate(f, df, arrays, names, as_dict)
    y = _real_output(value, "f's value").astype(np.float64)
    if not np.all(np.isfinite(y)):
        raise CandidateError("f's value is NaN or inf at these inputs", received=repr(value)[:200], fix="check the inputs")
    if y.size * sum(a.size for a in arrays) > 50_000_000:
        raise InputError("The Jacobian of f is too large to hold", expected="at most 50 million entries (outputs × input elements)",
                         received=f"{y.size:,} outputs × {sum(a.size for a in arrays):,} input elements",
                         fix="check a scalar function of the output instead, e.g. f_u(x) = u @ f(x) with a fixed random u")
    grads = _gradient(grads, names, arrays, y.shape, as_dict)
    sizes = [a.size for a in arrays]
    theta = np.concatenate([a.reshape(-1) for a in arrays])
    P = theta.size
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    if y.size <= MAX_OUTPUTS:
        cotangents = list(np.eye(y.size))
        out_names = [""] if y.ndim == 0 else [f"y[{','.join(map(str, i))}] / " for i in np.ndindex(*y.shape)]
    else:
        cotangents = [rng.choice([-1.0, 1.0], size=y.size) for _ in range(2)]
        out_names = ["⟨u1, y⟩ / ", "⟨u2, y⟩ / "]
        notes.append(f"f has {y.size} outputs: checked along 2 random signed combinations of them (u1, u2) instead of one by one")
    jac = np.concatenate([g.reshape(y.size, -1) for g in grads], axis=1)  # (outputs, P)
    elem = [n for name, a in zip(names, arrays) for n in _element_names(name, a.shape)]
    cache: dict[bytes, np.ndarray] = {}
    calls = [0]

    def values_at(vec: np.ndarray) -> np.ndarray:
        key = vec.tobytes()
        if key not in cache:
            calls[0] += 1
            parts = np.split(vec, np.cumsum(sizes)[:-1])
            out = _evaluate(f, df, [p.reshape(a.shape) for p, a in zip(parts, arrays)], names, as_dict, value_only=True)
            cache[key] = _real_output(out, "f's value").astype(np.float64).reshape(-1)
        return cache[key]

    noise = _analytic_noise(lambda vec: _jacobian_at(f, df, vec, sizes, arrays, names, as_dict, y.shape), theta, jac, rng)
    if P > max_elements:
        return _probed(finite_diff, values_at, theta, jac, cotangents, elem, out_names, noise, rtol, notes, seed, calls)
    rows = []
    for u, prefix in zip(cotangents, out_names):
        bb = finite_diff.numeric_gradient_of(lambda vec, u=u: float(u @ values_at(vec)), theta, method="central")
        rows.append((prefix, u @ jac, bb.estimate, bb.error, np.abs(u) @ noise))
    used = "central"
    if method in ("auto", "complex-step"):
        cs = _complex_step(f, arrays, names, as_dict, sizes, theta, cotangents)
        verdict = _complex_agrees(cs, rows)
        if verdict is None:
            used = "complex-step"
            rows = [(prefix, a, c, 2 * spread + 8 * EPS * np.abs(c), na)
                    for (prefix, a, _, _, na), c, spread in zip(rows, cs[0], cs[1])]
        elif method == "complex-step":
            raise InputError("Complex step cannot check this function", expected="a function analytic in its inputs (no abs, max, "
                             "comparisons or .real on them)", received=verdict, fix='use method="central" (or "auto")')
        else:
            notes.append(f"complex step not used: {verdict}; central differences instead")
    return _judge(rows, elem, used, calls[0] + (0 if used == "central" else 3 * P), rtol, notes)


def assert_gradcheck(f: Callable, inputs, *, df: Callable | None = None, **options) -> GradcheckResult:
    """``gradcheck(...).raise_if_failed()``: for pytest, a ``GradientMismatchError`` naming the worst elements."""
    return gradcheck(f, inputs, df=df, **options).raise_if_failed()


def _evaluate(f, df, arrays, names, as_dict, *, value_only: bool = False):
    if df is None:
        out = _call(f, arrays, as_dict, names)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise CandidateError("With df=None, f must return (value, gradient)", expected="a pair (value, gradient)",
                                 received=type(out).__name__, fix="return the gradient too, or pass df=")
        return out[0] if value_only else out
    value = _call(f, arrays, as_dict, names)
    return value if value_only else (value, _call(df, arrays, as_dict, names))


def _jacobian_at(f, df, vec, sizes, arrays, names, as_dict, y_shape) -> np.ndarray:
    parts = np.split(vec, np.cumsum(sizes)[:-1])
    shaped = [p.reshape(a.shape) for p, a in zip(parts, arrays)]
    grads = _gradient(_evaluate(f, df, shaped, names, as_dict)[1], names, shaped, y_shape, as_dict)
    return np.concatenate([g.reshape(int(np.prod(y_shape)), -1) for g in grads], axis=1)


def _analytic_noise(jac_at: Callable, theta: np.ndarray, jac: np.ndarray, rng, n: int = 9) -> np.ndarray:
    """The round-off of the analytic Jacobian, measured (ECnoise, as for f in finite_diff): its values at
    n points θ + k·δ·v along a random signed v, whose differences of order ≥ 3 are rounding only.
    Returns 3σ per entry, at least 4·eps·|entry|."""
    v = rng.choice([-1.0, 1.0], size=theta.size)
    delta = 1e-7 * max(1.0, float(np.abs(theta).max()))
    vals = np.stack([jac] + [jac_at(theta + k * delta * v) for k in range(1, n)])
    sigma = np.zeros_like(jac)
    diff = vals
    for order in range(1, 7):
        diff = np.diff(diff, axis=0)
        if order >= 3:
            sigma = np.maximum(sigma, np.sqrt(np.mean(diff ** 2, axis=0) / math.comb(2 * order, order)))
    return np.maximum(3 * sigma, 4 * EPS * np.abs(jac))


def _complex_step(f, arrays, names, as_dict, sizes, theta, cotangents) -> tuple[list[np.ndarray], list[np.ndarray]] | str:
    """Im f(θ + ih·eₚ)/h for every p, contracted with each cotangent, with its error bar; or why not.

    The complex step has no subtraction of nearby values of f, but the imaginary parts inside f can
    still cancel (x² − 2e8·x near x = 1e8): its rounding is measured, not assumed. Each partial is
    also taken at θₚ ± 4 ulps; the spread of the three (rounding, plus the partial's change over an
    input's own last digits) is its error bar, with 8 ulps of the value as a floor.
    """
    offset = np.cumsum(sizes)[:-1]

    def column(vec: np.ndarray) -> np.ndarray | str:
        parts = [q.reshape(a.shape) for q, a in zip(np.split(vec, offset), arrays)]
        try:
            out = f(**dict(zip(names, parts))) if as_dict else f(*parts)
            arr = np.asarray(out[0] if isinstance(out, tuple) and len(out) == 2 else out)
        except Exception as exc:  # noqa: BLE001 - any failure on complex input means: not usable here
            return f"f does not accept complex input ({type(exc).__name__}: {str(exc)[:120]})"
        if arr.dtype.kind != "c":
            return "f drops the imaginary part (its value is real for complex input: .real, abs or a float conversion)"
        return arr.imag.reshape(-1) / _COMPLEX_STEP

    cols, spread = [], []
    for p in range(theta.size):
        eta = 4 * np.spacing(abs(theta[p])) if theta[p] else 4 * np.finfo(np.float64).tiny
        got = []
        for shift in (0.0, eta, -eta):
            vec = theta.astype(np.complex128)
            vec[p] += shift + 1j * _COMPLEX_STEP
            col = column(vec)
            if isinstance(col, str):
                return col
            got.append(col)
        cols.append(got[0])
        spread.append(np.maximum(np.abs(got[1] - got[0]), np.abs(got[2] - got[0])))
    J, S = np.stack(cols, axis=1), np.stack(spread, axis=1)
    return [u @ J for u in cotangents], [np.abs(u) @ S for u in cotangents]


def _complex_agrees(cs, rows) -> str | None:
    """None when the complex step agrees with central differences within their error bars everywhere; else why not."""
    if isinstance(cs, str):
        return cs
    for c, spread, (prefix, analytic, central, err, na) in zip(cs[0], cs[1], rows):
        gap = np.abs(c - central)
        bad = np.flatnonzero(gap > err + 2 * spread + 8 * EPS * np.abs(c))
        if bad.size:
            return (f"it disagrees with central differences at {bad.size} entr{'y' if bad.size == 1 else 'ies'} beyond their error bar "
                    "(f is not analytic there: abs, max, a comparison or .real on the inputs?)")
    return None


def _judge(rows, elem, method, n_evals, rtol, notes) -> GradcheckResult:
    names, an, nu, ne, ae = [], [], [], [], []
    for prefix, analytic, numeric, err, a_err in rows:
        names += [prefix + e for e in elem]
        an.append(analytic)
        nu.append(numeric)
        ne.append(err)
        ae.append(a_err)
    an, nu, ne, ae = (np.concatenate(x) for x in (an, nu, ne, ae))
    budget = ne + ae + rtol * np.abs(an) + float(np.finfo(np.float64).tiny)
    with np.errstate(invalid="ignore"):
        ratio = np.where(np.isfinite(an), np.abs(an - nu) / budget, np.inf)
    status = np.where(ratio <= 1.0, "ok", "off")
    return GradcheckResult(names, an, nu, ne, ae, ratio, status, method, int(n_evals), None, tuple(notes))


def _probed(finite_diff, values_at, theta, jac, cotangents, elem, out_names, noise, rtol, notes, seed, calls) -> GradcheckResult:
    """Large inputs: random signed probes over all elements per cotangent, bisected to the wrong elements."""
    reports = []
    for u in cotangents[:2]:
        rep = finite_diff.probe_check(lambda vec, u=u: float(u @ values_at(vec)), u @ jac, theta=theta, seed=seed,
                                      rtol=max(rtol, 16 * EPS))
        reports.append(rep)
    worst = next((r for r in reports if not r.passed), reports[0])
    notes.append(f"{theta.size:,} input elements: checked by {sum(1 for p in worst.probes if p.level == 0)} random signed probes of all of "
                 "them per output combination, bisected to the wrong elements")
    loc = sorted({i for r in reports for i in r.localized})
    names = [elem[i] for i in loc]
    an = np.array([(cotangents[0] @ jac)[i] for i in loc])
    nu = np.array([next((r.numeric[i][0] for r in reports if i in r.numeric), np.nan) for i in loc])
    ne = np.array([next((r.numeric[i][1] for r in reports if i in r.numeric), np.nan) for i in loc])
    ae = np.array([(np.abs(cotangents[0]) @ noise)[i] for i in loc])
    ratio = np.abs(an - nu) / (ne + ae) if loc else np.zeros(0)
    status = np.full(len(loc), "off")
    return GradcheckResult(names, an, nu, ne, ae, ratio, status, "central", calls[0], worst, tuple(notes))

"""Assignment profiles: how a candidate gradient function is called and how to read what it returns.

A profile turns a ``Problem`` into a ``Call`` (target name, arguments, attributes to set on an
instance for a method) and reads the return value back into ``(cost, grads)`` in the canonical
``W1, b1, …`` layout. The same profile drives a trusted candidate called in-process (``suite``)
and untrusted student code called through the sandbox (``grade``): a ``Call`` holds only
numbers, strings, lists and dicts of arrays, which is what crosses the sandbox's pipe.

Built-in profiles:

- ``native``: ``f(network, params, X, Y) -> (J, grads)`` — gradverify's own form, any network;
- ``ex4``: the classic exercise, ``nnCostFunction(nn_params, input_layer_size, hidden_layer_size,
  num_labels, X, y, lambda_) -> (J, grad)``, Θ1 then Θ2 unrolled, one hidden layer of sigmoid units;
  also Θ1 and Θ2 passed separately (``callforms.EX4_FORMS``), ``(J, Theta1_grad, Theta2_grad)``
  returned, any name for λ. Conventions, detected per submission: ``label_base`` 0/1,
  ``unroll_order`` C/F, ``y_form`` vector / (m, 1) column / one-hot matrix, ``x_bias`` added (the
  function adds the column of ones to X, the exercise's way) / given (X arrives with it, m × (n₀+1));
- ``layers``: ``f(weights, biases, X, Y, lambda_) -> (J, weight_grads, bias_grads)``, lists of
  Wₖ (nₖ, nₖ₋₁) and bₖ, sigmoid units, any depth;
- ``two-layer-relu``: the common two-layer-net assignment, ``TwoLayerNet.loss(X, y, reg)`` reading
  ``self.params`` = {W1 (D, H), b1, W2 (H, C), b2} and returning ``(loss, grads)``; ReLU and
  softmax; ``reg_scale`` 1 (reg·ΣW²) or 0.5 (½·reg·ΣW²), detected. Also the old
  ``two_layer_net(X, model, y, reg)``, ``loss(params, X, y, reg)`` and ``loss(W1, b1, W2, b2, X, y,
  reg)`` (``callforms.TWO_LAYER_FORMS``).

A profile with call forms lists the ``targets`` it looks for (in order), the ``conventions`` that are
detected per submission rather than fixed for a run (``grading.detect``), and the ``packages`` a
submission may import. A user-written TOML profile starts from a built-in one (``base = "ex4"``) and
overrides the target, settings, conventions, packages, size ranges and rubric.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from gradverify.callforms import EX4_FORMS, TWO_LAYER_FORMS, CallForm, ex4_call, form_named, two_layer_args
from gradverify.errors import CandidateError, InputError, SpecError
from gradverify.params import Layout, unflatten
from gradverify.problems import debug_problem
from gradverify.spec import Network, Problem

__all__ = ["Call", "Profile", "ResultError", "PROFILES", "SCIENTIFIC_PACKAGES", "get_profile", "load_profile", "local_candidate", "invoke_local", "DEFAULT_RUBRIC"]


class ResultError(CandidateError):
    """A candidate returned something of the wrong form; the message is written for its author."""

    def __init__(self, message: str):
        super().__init__(f"The candidate returned the wrong form: {message}",
                         fix="return what the profile's signature says (gradverify grade --help lists the profiles)")
        self.detail = message  # the bare sentence, for feedback that already says who returned it


@dataclass(frozen=True)
class Call:
    """One call of a candidate: ``target`` is ``"name"`` or ``"Class.method"``."""

    target: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    attrs: dict | None = None  # set on the instance before calling a method
    init: tuple | None = None  # the instance is ``Cls(*init)`` when that works, else ``Cls.__new__(Cls)``


# What ex4 and the two-layer net let a submission import (where installed): the imports seen in real
# submissions — scipy.special.expit, pandas or scikit-learn to one-hot encode, the template's matplotlib.
SCIENTIFIC_PACKAGES = ("numpy", "scipy", "pandas", "scikit-learn", "matplotlib")

# points per check; a grader scales them to the profile's total
DEFAULT_RUBRIC = {
    "loads": 5.0,            # the file imports and the function exists
    "shapes": 5.0,           # the return value has the expected form, shapes and a float dtype
    "cost": 15.0,            # the cost equals the exact value on the fixed cases
    "gradient_fixed": 35.0,  # the gradient equals the exact one on the fixed cases (classic debug network…)
    "gradient_random": 25.0, # … and on Hypothesis-generated cases (sizes, m, λ > 0, saturated units)
    "self_consistency": 5.0, # the gradient agrees with finite differences of the submission's own cost
    "determinism": 5.0,      # the same output twice
    "inputs_unmodified": 5.0,  # the arguments are left as they were
    "classes_absent": 0.0,   # advice: right also when a batch lacks some class (one-hot sized from num_labels)
}


@dataclass(frozen=True)
class Profile:
    """How to call one kind of gradient function. See the module docstring for the built-ins."""

    name: str
    description: str
    target: str
    signature: str
    settings: dict
    choices: dict
    network: Callable[[tuple, float, dict], Network]      # (sizes, λ, settings) -> Network
    make_call: Callable[[Problem, dict, str], Call]       # (problem, settings, target) -> Call
    read: Callable[[Problem, dict, object], tuple]        # (problem, settings, returned) -> (J, grads)
    depth: tuple[int, int] = (2, 2)                        # range of weight layers
    width: tuple[int, int] = (1, 5)                        # range of every layer's width
    min_outputs: int = 2
    rubric: dict = field(default_factory=lambda: dict(DEFAULT_RUBRIC))
    source: str = ""  # the TOML file a user-written profile came from
    forms: tuple[CallForm, ...] = ()    # the call forms accepted (empty: only ``signature``)
    targets: tuple[str, ...] = ()       # the names looked for, in order (empty: ``target`` only)
    conventions: tuple[str, ...] = ()   # settings detected per submission (``--set`` pins one)
    packages: tuple[str, ...] = ("numpy",)  # distributions a submission may import (where installed)
    convention_key: Callable[[dict], object] | None = None  # settings that call the same way share a key
    all_classes: bool = True  # the data contract: generated cases have every class present and m ≥ K

    def resolve(self, overrides: dict | None = None) -> dict:
        """The settings with ``overrides`` applied and validated (``target`` and ``form`` too)."""
        out = dict(self.settings)
        for key, value in (overrides or {}).items():
            if key == "form" and self.form(value) is None:
                raise SpecError(f"Profile {self.name!r} has no call form {value!r}",
                                expected="one of " + (", ".join(f.name for f in self.forms) or "(none)"), received=repr(value))
            if key not in self.choices and key not in ("target", "form"):
                raise SpecError(f"Profile {self.name!r} has no setting {key!r}",
                                expected="one of " + (", ".join(["target", "form", *self.choices]) or "(none)"), received=key,
                                fix="check `gradverify grade --help` or the README's profile table")
            if key in self.choices:
                allowed = self.choices[key]
                cast = type(allowed[0])
                try:
                    value = cast(value)
                except (TypeError, ValueError):
                    pass
                if value not in allowed:
                    raise SpecError(f"Setting {key}={value!r} is not valid for profile {self.name!r}",
                                    expected="one of " + ", ".join(map(str, allowed)), received=repr(value))
            out[key] = value
        return out

    def call_for(self, problem: Problem, settings: dict) -> Call:
        return self.make_call(problem, settings, settings.get("target", self.target))

    @property
    def names(self) -> tuple[str, ...]:
        """The targets looked for in a submission, in order."""
        return self.targets or (self.target,)

    def form(self, name: str | None) -> CallForm | None:
        return form_named(self.forms, name)  # a profile's form, or one made from a signature's names

    def signature_of(self, settings: dict) -> str:
        """What the student's function looks like under ``settings`` (its call form), for messages."""
        form = self.form(settings.get("form"))
        return form.text.replace("f(", settings.get("target", self.target).split(".")[-1] + "(", 1) if form else self.signature

    def fixed_cases(self, settings: dict) -> list[tuple[str, Problem]]:
        """The deterministic cases every submission is graded on, the classic debug network first."""
        lo, hi = self.depth
        cases = []
        for lam in (0.0, 3.0):
            sizes = (3, 5, 3) if lo <= 2 <= hi else (3,) + (5,) * (lo - 1) + (3,)
            net = self.network(sizes, lam, settings)
            cases.append((f"debug network {net.compact}, m=5, λ={lam:g}", debug_problem(net, m=5)))
        return cases


# ---- reading what came back ---------------------------------------------------------------
# Everything here reads values a candidate chose: never trust a type, a length or a shape, never
# let numpy guess (a ragged list, strings, objects), and say what came back in words a student
# can act on ("returned a list of 2 arrays of shapes (5, 4) and (3, 6), expected ...").

_MAX_ELEMENTS = 10_000_000  # far beyond any gradient graded here; bounds the work of reading one


def describe(value: object, *, depth: int = 0) -> str:
    """A short description of a returned value: its type and form, never its content."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, (bool, np.bool_)):
        return "a bool"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"a single number ({type(value).__name__})"
    if isinstance(value, (list, tuple)):
        kind = type(value).__name__
        items = list(value[:4]) if isinstance(value, list) else list(tuple.__iter__(value))[:4]
        if not len(value):
            return f"an empty {kind}"
        if depth >= 1:
            return f"a {kind} of {len(value)}"
        if all(isinstance(v, np.ndarray) for v in items):
            shapes = ", ".join(str(tuple(v.shape)) for v in items) + (", …" if len(value) > 4 else "")
            return f"a {kind} of {len(value)} array{'s' * (len(value) != 1)} of shapes {shapes}"
        inner = sorted({describe(v, depth=depth + 1) for v in items})
        return f"a {kind} of {len(value)} ({'; '.join(inner)}{', …' if len(value) > 4 else ''})"
    if isinstance(value, dict):
        keys = ", ".join(_show_key(k) for k in list(value)[:6]) + (", …" if len(value) > 6 else "")
        return f"a dict with keys {keys}" if value else "an empty dict"
    if isinstance(value, (str, bytes)):
        return f"a {type(value).__name__} of length {len(value)}"
    return "None" if value is None else f"a {type(value).__name__}"


def _show_key(key: object) -> str:
    text = repr(key)
    return text if len(text) <= 30 else text[:27] + "...'"


def _shape_of(value: object) -> tuple[int, ...]:
    """The shape of nested lists/tuples of plain numbers, or a ResultError naming what is wrong."""
    shape: list[int] = []
    level = [value]
    while level and isinstance(level[0], (list, tuple)):
        n = len(level[0])
        if any(not isinstance(v, (list, tuple)) or len(v) != n for v in level):
            raise ResultError("a ragged nested list (rows of different lengths, or lists mixed with numbers)")
        shape.append(n)
        if len(shape) > 32 or np.prod(shape, dtype=float) > _MAX_ELEMENTS:
            raise ResultError("a nested list too deep or too large to be a gradient")
        level = [item for v in level for item in v]
    if any(isinstance(v, np.ndarray) for v in level):
        raise ResultError("a list of arrays")
    if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) for v in level):
        bad = next(v for v in level if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)))
        raise ResultError(f"a list holding {describe(bad)}")
    return tuple(shape)


def _numbers(value: object, what: str, expected: str, *, verb: str = "be") -> np.ndarray:
    """``value`` as a float64 array, checked before numpy sees it.

    Raises:
        ResultError: "``what`` must ``verb`` ``expected``; returned <description>[: why]".
    """
    def wrong(why: str = "") -> ResultError:
        return ResultError(f"{what} must {verb} {expected}; returned {describe(value)}" + (f": {why}" if why else ""))

    if isinstance(value, np.ndarray):
        arr = np.asarray(value)  # a subclass is read as the plain array it holds
        if arr.dtype.kind == "c":
            raise wrong("complex numbers (a gradient is real: return .real only if the imaginary part is 0 by design)")
        if arr.dtype.kind not in "biuf" or arr.dtype.kind == "b":
            raise wrong()
        return arr.astype(np.float64)
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, (str, bytes, dict)):
        raise wrong()
    if isinstance(value, (int, float, np.integer, np.floating)):
        return np.array(float(value))
    if isinstance(value, (list, tuple)):
        try:
            shape = _shape_of(value)
        except ResultError as exc:
            raise wrong(exc.detail) from None
        try:
            return np.array(value, dtype=np.float64).reshape(shape)
        except (TypeError, ValueError, OverflowError) as exc:
            raise wrong(str(exc)[:200]) from None
    raise wrong()


def _scalar(value, what: str) -> float:
    arr = _numbers(value, what, "a single number")
    if arr.size != 1:
        raise ResultError(f"{what} must be a single number; returned {describe(value)}")
    return float(arr.reshape(()))


def _array(value, shape: tuple, what: str) -> np.ndarray:
    arr = _numbers(value, what, f"a numeric array of shape {shape}")
    if arr.shape != shape:
        if arr.size == int(np.prod(shape)) and arr.ndim <= 2:
            raise ResultError(f"{what} has shape {arr.shape}, expected {shape}: the numbers are there but in the wrong shape "
                              "(a gradient has the shape of its parameter)")
        raise ResultError(f"{what} has shape {arr.shape}, expected {shape}")
    return arr


def _pair(value, names: str) -> tuple:
    n = len(names.split(","))
    if not isinstance(value, (tuple, list)) or len(value) != n:
        raise ResultError(f"the function must return ({names}), a tuple of {n}; returned {describe(value)}")
    return tuple(list.__iter__(value) if isinstance(value, list) else tuple.__iter__(value))


# ---- native ------------------------------------------------------------------------------

def _native_call(problem: Problem, settings: dict, target: str) -> Call:
    return Call(target, (problem.network, dict(problem.params), problem.X, problem.Y))


def _native_read(problem: Problem, settings: dict, value) -> tuple:
    J, grads = _pair(value, "J, grads")
    if isinstance(grads, dict):
        missing = [n for n, _ in problem.network.param_shapes if n not in grads]
        if missing:
            raise ResultError(f"grads is missing {', '.join(missing)}; returned {describe(grads)}")
        return _scalar(J, "J"), {n: _array(grads[n], s, f"grads[{n!r}]") for n, s in problem.network.param_shapes}
    return _scalar(J, "J"), unflatten(_array(grads, (problem.network.n_params,), "grads"), problem.network)


# ---- ex4 ---------------------------------------------------------------------------------

def _sigmoid_network(sizes: tuple, lam: float, settings: dict) -> Network:
    """The lecture's network (ex4 and layers): sigmoid units, cross-entropy, λ/(2m)·ΣW²."""
    return Network(tuple(sizes), ("sigmoid",), "sigmoid", lam=lam, reg="lambda/2m")


def _ex4_call(problem: Problem, settings: dict, target: str) -> Call:
    args, kwargs = ex4_call(problem, settings, settings.get("form", "unrolled"))
    init = tuple(int(n) for n in problem.network.sizes) if "." in target else None  # a class: Net(n_in, n_hidden, K)
    return Call(target, args, kwargs, init=init)


def _ex4_read(problem: Problem, settings: dict, value) -> tuple:
    if isinstance(value, (tuple, list)) and len(value) == 3:  # (J, Theta1_grad, Theta2_grad); tuples arrive as lists
        return _ex4_read_split(problem, settings, value)
    J, grad = _pair(value, "J, grad")
    P = problem.network.n_params
    expected = f"{P} numbers, in one flat array (Θ1 then Θ2 unrolled)"
    # Θ1 and Θ2 passed apart may come back apart: [Theta1_grad, Theta2_grad] or {'Theta1': …, 'Theta2': …} (by the
    # names' 1 and 2, else in order). Θ passed unrolled must come back unrolled: an optimizer needs it so.
    apart = not str(settings.get("form", "unrolled")).startswith("unrolled")
    if apart and isinstance(grad, (list, tuple)) and len(grad) == 2 and all(isinstance(g, np.ndarray) and g.ndim == 2 for g in grad):
        return _ex4_read_split(problem, settings, (J, *grad))
    if apart and isinstance(grad, dict) and len(grad) == 2:
        keys = sorted(grad, key=lambda k: str(k)[-1:]) if sorted(str(k)[-1:] for k in grad) == ["1", "2"] else list(grad)
        return _ex4_read_split(problem, settings, (J, grad[keys[0]], grad[keys[1]]))
    if isinstance(grad, (list, tuple)) and grad and all(isinstance(g, np.ndarray) for g in grad):
        raise ResultError(f"grad must hold {expected}; returned {describe(grad)}: unroll them into one vector, "
                          "np.concatenate([Theta1_grad.ravel(), Theta2_grad.ravel()])")
    flat = _numbers(grad, "grad", expected, verb="hold")
    if flat.size != P:
        raise ResultError(f"grad must hold {expected}; returned {describe(grad)} ({flat.size} numbers)")
    return _scalar(J, "J"), unflatten(flat.reshape(-1), problem.network, Layout("theta", settings["unroll_order"]))


def _ex4_read_split(problem: Problem, settings: dict, value: tuple) -> tuple:
    J, g1, g2 = list.__iter__(value) if isinstance(value, list) else tuple.__iter__(value)
    n0, h, K = problem.network.sizes
    shapes = ((h, n0 + 1), (K, h + 1))
    mats = []
    for name, g, shape in (("Theta1_grad", g1, shapes[0]), ("Theta2_grad", g2, shapes[1])):
        arr = _numbers(g, name, f"a numeric array of the shape of Θ{name[5]} {shape}")
        if arr.shape != shape and not (arr.size == shape[0] * shape[1] and arr.ndim <= 1):
            raise ResultError(f"{name} has shape {arr.shape}, expected {shape} (the shape of Θ{name[5]})")
        mats.append(arr.reshape(shape, order=settings.get("unroll_order", "C")) if arr.shape != shape else arr)
    theta = np.concatenate([mats[0].ravel(), mats[1].ravel()])
    return _scalar(J, "J"), unflatten(theta, problem.network, Layout("theta", "C"))


# ---- layers ------------------------------------------------------------------------------

def _layers_call(problem: Problem, settings: dict, target: str) -> Call:
    L = problem.network.depth
    weights = [problem.params[f"W{k}"] for k in range(1, L + 1)]
    biases = [problem.params[f"b{k}"] for k in range(1, L + 1)]
    return Call(target, (weights, biases, problem.X, problem.Y, float(problem.network.lam)))


def _layers_read(problem: Problem, settings: dict, value) -> tuple:
    J, dW, db = _pair(value, "J, weight_grads, bias_grads")
    L = problem.network.depth
    if not isinstance(dW, (list, tuple)) or not isinstance(db, (list, tuple)) or len(dW) != L or len(db) != L:
        raise ResultError(f"weight_grads and bias_grads must be lists of {L} arrays, one per layer; returned "
                          f"{describe(dW)} and {describe(db)}")
    grads = {}
    for k in range(1, L + 1):
        grads[f"W{k}"] = _array(dW[k - 1], problem.params[f"W{k}"].shape, f"weight_grads[{k - 1}]")
        grads[f"b{k}"] = _array(db[k - 1], problem.params[f"b{k}"].shape, f"bias_grads[{k - 1}]")
    return _scalar(J, "J"), grads


# ---- two-layer-relu ----------------------------------------------------------------------

def _tlr_network(sizes: tuple, lam: float, settings: dict) -> Network:
    return Network(tuple(sizes), ("relu",), "softmax", lam=lam, reg="lambda" if float(settings["reg_scale"]) == 1.0 else "lambda/2")


def _tlr_params(problem: Problem) -> dict:
    p = problem.params  # their W is (fan_in, fan_out): scores = X·W + b
    return {"W1": p["W1"].T.copy(), "b1": p["b1"].copy(), "W2": p["W2"].T.copy(), "b2": p["b2"].copy()}


def _tlr_call(problem: Problem, settings: dict, target: str) -> Call:
    if "." in target:
        args, attrs = two_layer_args(problem, settings, "class-reg" if settings.get("form") == "class-reg" else "class")
        return Call(target, args, {}, attrs, init=tuple(int(n) for n in problem.network.sizes))  # TwoLayerNet(D, H, C)
    form = settings.get("form", "params")
    args, _ = two_layer_args(problem, settings, "params" if form == "class" else form)
    return Call(target, args)


def _tlr_read(problem: Problem, settings: dict, value) -> tuple:
    J, grads = _pair(value, "loss, grads")
    if not isinstance(grads, dict):
        raise ResultError(f"grads must be a dict with keys W1, b1, W2, b2; returned {describe(grads)}")
    missing = [k for k in ("W1", "b1", "W2", "b2") if k not in grads]
    if missing:
        raise ResultError(f"grads is missing {', '.join(missing)}")
    p = problem.params
    return _scalar(J, "loss"), {
        "W1": _array(grads["W1"], p["W1"].T.shape, "grads['W1']").T, "b1": _bias(grads["b1"], p["b1"].shape, "grads['b1']"),
        "W2": _array(grads["W2"], p["W2"].T.shape, "grads['W2']").T, "b2": _bias(grads["b2"], p["b2"].shape, "grads['b2']"),
    }


def _bias(value, shape: tuple, what: str) -> np.ndarray:
    """A bias gradient: (H,), or the (1, H) row a bias kept as a row vector gives (np.sum(..., keepdims=True))."""
    arr = _numbers(value, what, f"a numeric array of shape {shape}")
    if arr.shape in ((1,) + shape, shape + (1,)):
        return arr.reshape(shape)
    return _array(arr, shape, what)


PROFILES: dict[str, Profile] = {
    "native": Profile("native", "gradverify's own form, any network", "cost_and_grad",
                      "cost_and_grad(network, params, X, Y) -> (J, grads)", {}, {},
                      lambda sizes, lam, s: Network(tuple(sizes), (), "sigmoid", lam=lam), _native_call, _native_read, depth=(1, 3),
                      all_classes=False),  # a user's own engine, not an assignment: any data
    "ex4": Profile("ex4", "the classic exercise: one hidden layer of sigmoid units, Θ unrolled", "nnCostFunction",
                   "nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_) -> (J, grad)",
                   {"label_base": 0, "unroll_order": "C", "y_form": "vector"},
                   {"label_base": (0, 1), "unroll_order": ("C", "F"), "y_form": ("vector", "column", "onehot"),
                    "x_bias": ("added", "given")},
                   _sigmoid_network, _ex4_call, _ex4_read, forms=EX4_FORMS,
                   targets=("nnCostFunction", "nn_cost_function", "backprop", "costFunction", "cost_function"),
                   conventions=("y_form", "label_base", "unroll_order", "x_bias"), packages=SCIENTIFIC_PACKAGES,
                   convention_key=lambda s: (s["y_form"], s["unroll_order"], None if s["y_form"] == "onehot" else s["label_base"],
                                             s.get("x_bias", "added"))),
    "layers": Profile("layers", "the lecture's layer-wise form, sigmoid units, any depth", "cost_and_gradients",
                      "cost_and_gradients(weights, biases, X, Y, lambda_) -> (J, weight_grads, bias_grads)", {}, {},
                      _sigmoid_network, _layers_call, _layers_read, depth=(1, 3)),
    "two-layer-relu": Profile("two-layer-relu", "two-layer net: ReLU hidden layer, softmax loss, params dict with W of shape (fan_in, fan_out)",
                              "TwoLayerNet.loss", "TwoLayerNet.loss(self, X, y, reg) reading self.params -> (loss, grads)",
                              {"reg_scale": 1.0}, {"reg_scale": (1.0, 0.5)}, _tlr_network, _tlr_call, _tlr_read,
                              forms=TWO_LAYER_FORMS, targets=("TwoLayerNet.loss", "two_layer_net", "loss"),
                              conventions=("reg_scale",), packages=SCIENTIFIC_PACKAGES),
}


LAYERS_API_NAME = "layers-api"  # CS231n's forward/backward pairs, one rubric item per layer: grading.layer_profile


def get_profile(name: str) -> Profile:
    """A built-in profile by name, or a user-written one from a ``.toml`` path.

    ``layers-api`` (and a TOML profile based on it) is a ``grading.layer_profile.LayerProfile``.
    """
    if name in PROFILES:
        return PROFILES[name]
    if name == LAYERS_API_NAME:  # the modular layer API: a profile of its own kind (grading.layer_profile)
        from gradverify.grading.layer_profile import LAYERS_API

        return LAYERS_API
    if name.endswith(".toml"):
        return load_profile(name)
    raise SpecError(f"Unknown assignment profile {name!r}", expected="one of " + ", ".join([*PROFILES, LAYERS_API_NAME]) + ", or a .toml file",
                    received=repr(name), fix="pick a built-in profile or write a TOML profile with base = \"ex4\"")


def load_profile(path: str | Path) -> Profile:
    """A user-written profile: a built-in ``base`` with overrides.

    Keys: ``base`` (required), ``name``, ``target``, ``targets`` (names looked for, in order),
    ``[settings]`` (defaults; a setting listed in ``conventions`` is still detected per submission),
    ``conventions`` (the settings to detect; ``[]`` fixes them all), ``packages`` (distributions a
    submission may import), ``all_classes`` (generated cases have every class present; default true),
    ``[rubric]`` (points per check), ``max_width``, ``max_depth``.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"Cannot read the profile {path}", received=exc.strerror or str(exc), fix="check the path") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"The profile {path} is not UTF-8 text", received=f"byte 0x{exc.object[exc.start]:02x} at offset {exc.start}",
                        fix="save it as UTF-8 (TOML requires it)") from None
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise SpecError(f"The profile {path} is not valid TOML", received=str(exc) or "nesting too deep", fix="fix the TOML syntax") from None
    if isinstance(data, dict) and data.get("base") == LAYERS_API_NAME:
        from gradverify.grading.layer_profile import load_layer_profile

        return load_layer_profile(path, data)
    known = {"base", "name", "target", "targets", "settings", "conventions", "packages", "all_classes", "rubric", "max_width",
             "max_depth"}
    _check_types(data, path)
    if set(data) - known or data.get("base") not in PROFILES:
        raise SpecError(f"The profile {path} must name a built-in base and use known keys",
                        expected=f"base = one of {', '.join(PROFILES)}; keys among {', '.join(sorted(known))}",
                        received=f"base = {data.get('base')!r}; keys {', '.join(sorted(data))}")
    base = PROFILES[data["base"]]
    settings = base.resolve(data.get("settings", {}))
    rubric = dict(base.rubric)
    for key, points in data.get("rubric", {}).items():
        if key not in DEFAULT_RUBRIC or not isinstance(points, (int, float)) or points < 0:
            raise SpecError(f"Bad rubric entry {key} = {points!r} in {path}", expected="checks among " + ", ".join(DEFAULT_RUBRIC) + " with points ≥ 0")
        rubric[key] = float(points)
    lists = {}
    for key, allowed in (("conventions", set(base.choices)), ("packages", None), ("targets", None)):
        value = data.get(key, getattr(base, key))
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value) or (
                allowed is not None and not set(value) <= allowed):
            raise SpecError(f"Bad {key} in {path}", expected="a list of names" + (f" among {', '.join(sorted(allowed))}" if allowed else ""),
                            received=repr(value))
        lists[key] = tuple(value)
    if "target" in data and "targets" not in data:
        lists["targets"] = (data["target"],)
    if not isinstance(data.get("all_classes", True), bool):
        raise SpecError(f"Bad all_classes in {path}", expected="true or false", received=repr(data["all_classes"]))
    lists["all_classes"] = data.get("all_classes", base.all_classes)
    return replace(base, name=data.get("name", path.stem), target=data.get("target", base.target), settings=settings, rubric=rubric, **lists,
                   width=(base.width[0], int(data.get("max_width", base.width[1]))),
                   depth=(base.depth[0], int(data.get("max_depth", base.depth[1]))), source=str(path.resolve()))


def _check_types(data: dict, path: Path) -> None:
    """Every value of a profile file has the type it must have: never converted ("1" is not 1, true is not 1)."""
    def wrong(key: str, value, words: str) -> SpecError:
        return SpecError(f"{key} in the profile {path} has the wrong type", expected=words,
                         received=f"{value!r} ({type(value).__name__})", fix=f"write {key} as {words}")

    for key, words in (("base", "a profile name in quotes"), ("name", "a string"), ("target", 'a name in quotes, e.g. "nnCostFunction"')):
        if key in data and not isinstance(data[key], str):
            raise wrong(key, data[key], words)
    for key in ("max_width", "max_depth"):
        if key in data and (not isinstance(data[key], int) or isinstance(data[key], bool) or data[key] < 1):
            raise wrong(key, data[key], "a whole number ≥ 1, without quotes")
    for key in ("settings", "rubric"):
        if key in data and not isinstance(data[key], dict):
            raise wrong(key, data[key], f"a table [{key}]")
    for key, points in data.get("rubric", {}).items():
        if not isinstance(points, (int, float)) or isinstance(points, bool):
            raise wrong(f"rubric.{key}", points, "a number of points ≥ 0, without quotes")
    base = PROFILES.get(data.get("base"))
    for key, value in data.get("settings", {}).items():
        allowed = base.choices.get(key) if base else None
        if allowed and not (isinstance(value, type(allowed[0])) or (isinstance(value, int) and isinstance(allowed[0], float))) \
                or isinstance(value, bool):
            raise wrong(f"settings.{key}", value, "one of " + ", ".join(repr(a) for a in allowed) if allowed else "a plain value")


# ---- trusted, in-process candidates ------------------------------------------------------

def invoke_local(namespace: dict, call: Call):
    """Call ``call.target`` found in ``namespace`` (a module's globals) in this process (trusted code)."""
    if "." in call.target:
        cls_name, method = call.target.split(".", 1)
        cls = namespace.get(cls_name)
        if cls is None:
            raise InputError(f"No class {cls_name!r} in the candidate", fix=f"define class {cls_name} or pass another target")
        try:
            obj = cls(*call.init) if call.init is not None else cls.__new__(cls)
        except Exception:  # a constructor of another signature: the instance without __init__
            obj = cls.__new__(cls)
        for key, value in (call.attrs or {}).items():
            setattr(obj, key, value)
        return getattr(obj, method)(*call.args, **call.kwargs)
    fn = namespace.get(call.target)
    if not callable(fn):
        raise InputError(f"No function {call.target!r} in the candidate",
                         expected=f"a function named {call.target}", received=", ".join(k for k, v in namespace.items() if callable(v) and not k.startswith("_")) or "none",
                         fix="name the function, e.g. FILE.py:FUNCTION")
    return fn(*call.args, **call.kwargs)


def local_candidate(namespace: dict, profile: Profile, settings: dict) -> Callable[[Problem], tuple]:
    """Wrap trusted code as ``fn(problem) -> (J, grads)`` for ``compare``."""
    def fn(problem: Problem) -> tuple:
        call = profile.call_for(problem, settings)
        return profile.read(problem, settings, invoke_local(namespace, call))

    return fn

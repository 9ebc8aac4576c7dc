"""Call forms: the argument lists a profile accepts, and which one a student's function was written for.

The classic exercise fixes ``nnCostFunction(nn_params, input_layer_size, hidden_layer_size,
num_labels, X, y, lambda_)``, but real submissions pass Θ1 and Θ2 separately, put the data first,
name λ ``Lambda``, ``lmbda``, ``l`` or ``learning_rate``, or keep the old CS231n
``two_layer_net(X, model, y, reg)``. A ``CallForm`` is one such argument list: what goes in each
position, and the parameter names that suggest it. ``rank_forms`` orders a profile's forms for a
signature the worker read from the student's function — forms that cannot take that many
arguments are left out, the rest ordered by how many parameter names agree — and the grader then
tries them on a fixed case (``grading.detect``), so a name is a hint, never a verdict.
"""

from __future__ import annotations

import re

import numpy as np
from dataclasses import dataclass

__all__ = ["Param", "Signature", "CallForm", "FormError", "rank_forms", "form_named", "EX4_FORMS", "TWO_LAYER_FORMS", "ex4_args",
           "ex4_call", "ex4_gradient", "two_layer_args", "SIZE_ROLES"]

# The roles an argument can play, with the parameter names that suggest each (full match, lower case).
_HINTS = {
    "nn_params": r"(nn_?)?params?|(nn_?)?thetas?|theta_?vec|nn_?theta|weights|w|p|x0|t|initial_?nn_?params",
    "theta1": r"theta_?1|t1|w1|theta_?one|th1",
    "theta2": r"theta_?2|t2|w2|theta_?two|th2",
    "input_size": r"input(_?layer)?_?size|ils|n_?in(put)?s?|in_?size|n_?features|input_?layersize",
    "hidden_size": r"hidden(_?layer)?_?size|hls|n_?hid(den)?|hid_?size|hidden_?layersize",
    "num_labels": r"num_?labels?|n_?labels?|k|n_?classes|num_?classes|output(_?layer)?_?size|out_?size|label_?num",
    "X": r"x|x_?in|x_?train|data|features|inputs?|a1",
    "y": r"y|y_?in|y_?train|y_?onehot|y_?vec|y_?matrix|labels?|targets?",
    "lambda": r"lambda_?|lambd|lam|lamb|lmbda|lmbd|lamda|l|lambda_?reg|lambda_?in|reg(ularization)?(_?strength)?|"
              r"learning_?rate|alpha|lbd",
    "model": r"model|params|net|weights|parameters",
    "W1": r"w1", "b1": r"b1", "W2": r"w2", "b2": r"b2",
}


@dataclass(frozen=True)
class Param:
    """One parameter of the student's function, as the worker read it with ``inspect.signature``."""

    name: str
    kind: str  # "positional" (positional-or-keyword or positional-only), "var" (*args), "keyword", "varkw"
    default: bool = False


@dataclass(frozen=True)
class Signature:
    """A student's function: ``target`` (``"name"`` or ``"Class.method"``) and its parameters (no ``self``)."""

    target: str
    params: tuple[Param, ...]

    @property
    def positional(self) -> list[Param]:
        return [p for p in self.params if p.kind == "positional"]

    def accepts(self, n: int) -> bool:
        """Whether ``n`` positional arguments bind to it."""
        pos = self.positional
        if any(p.kind == "keyword" and not p.default for p in self.params):
            return False  # a keyword-only parameter without a default: no positional call binds it
        return sum(not p.default for p in pos) <= n and (n <= len(pos) or any(p.kind == "var" for p in self.params))

    def accepts_with(self, n: int, keywords: set[str]) -> bool:
        """Whether ``n`` positional arguments and the keyword arguments ``keywords`` bind to it."""
        pos = self.positional
        if any(p.kind == "keyword" and not p.default and p.name not in keywords for p in self.params):
            return False
        return sum(not p.default for p in pos[n:] if p.name not in keywords) == 0 and sum(not p.default for p in pos[:n]) <= n \
            and (n <= len(pos) or any(p.kind == "var" for p in self.params))

    @classmethod
    def from_wire(cls, target: str, data) -> Signature | None:
        """The signature the worker sent (``loader.parameters``): untrusted, so every field is checked."""
        if not isinstance(data, list):
            return None
        params = []
        for item in data[:40]:
            if (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str) and item[1] in
                    ("positional", "var", "keyword", "varkw") and isinstance(item[2], bool)):
                params.append(Param(item[0][:100], item[1], item[2]))
            else:
                return None
        return cls(target, tuple(params))

    def __str__(self) -> str:
        parts = [("*" if p.kind == "var" else "**" if p.kind == "varkw" else "") + p.name + ("=…" if p.default else "")
                 for p in self.params]
        return f"{self.target}({', '.join(parts)})"


@dataclass(frozen=True)
class CallForm:
    """One argument list a profile accepts: the role of each position, and how the student sees it."""

    name: str
    roles: tuple[str, ...]
    text: str  # e.g. "nnCostFunction(Theta1, Theta2, input_layer_size, …, X, y, lambda) -> (J, Theta1_grad, Theta2_grad)"
    method: bool = False  # a method of a class whose instance holds the parameters (``self.params``)
    keywords: tuple[tuple[str, str], ...] = ()  # (parameter name, role) passed by keyword (keyword-only parameters)

    def score(self, sig: Signature) -> int:
        """How many parameter names agree with the roles (−1: the signature cannot take these arguments)."""
        if self.keywords:  # a form made for this signature by its names (``_by_name``): it fits all of it
            names = {p.name for p in sig.params if p.kind in ("keyword", "positional")}
            ok = all(k in names for k, _ in self.keywords) and sig.accepts_with(len(self.roles), {k for k, _ in self.keywords})
            return len(self.roles) + len(self.keywords) if ok else -1
        if not sig.accepts(len(self.roles)):
            return -1
        if "lambda" not in self.roles and any(re.fullmatch(_HINTS["lambda"], p.name.lower()) for p in sig.positional[len(self.roles):]):
            return -1  # it takes λ as an argument: a form that leaves it at its default would grade another function
        names = [p.name.lower() for p in sig.positional]
        return sum(1 for role, name in zip(self.roles, names) if re.fullmatch(_HINTS.get(role, re.escape(role.lower())), name))


def rank_forms(sig: Signature, forms: tuple[CallForm, ...]) -> list[CallForm]:
    """The forms ``sig`` can be called with, best name agreement first (ties keep the profile's order).

    Besides the profile's own forms, a form read from the parameter names (``_by_name``): a function
    whose every parameter names a role of a form — in another order, with the sizes as keyword
    defaults, or keyword-only — is called with each argument where its name says. A method takes the
    method forms, or, when the profile has none, the function forms on an instance made with the
    network's sizes (so its sizes may come from ``self``).
    """
    method = "." in sig.target
    usable = [f for f in forms if f.method == method or (method and not any(g.method for g in forms))]
    candidates = list(usable)
    for form in usable:
        named = _by_name(sig, form, method)
        if named is not None and all((named.roles, named.keywords) != (c.roles, c.keywords) for c in candidates):
            candidates.append(named)
    scored = [(form.score(sig), i, form) for i, form in enumerate(candidates)]
    return [form for score, i, form in sorted(scored, key=lambda t: (-t[0], t[1])) if score >= 0]


SIZE_ROLES = ("input_size", "hidden_size", "num_labels")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}\Z")


def _role_of(name: str, roles: tuple[str, ...]) -> str | None:
    hits = [r for r in roles if re.fullmatch(_HINTS.get(r, re.escape(r.lower())), name.lower())]
    return hits[0] if len(hits) == 1 else None


def _by_name(sig: Signature, form: CallForm, method: bool) -> CallForm | None:
    """``form`` with its arguments where ``sig``'s parameter names put them, or None when a required
    parameter names no role, two name the same one, or a role the form needs is missing (a method
    may leave the sizes to its instance)."""
    if form.method or any(p.kind in ("var", "varkw") for p in sig.params):
        return None
    positional, keywords, seen = [], [], set()
    for p in sig.params:
        role = _role_of(p.name, form.roles)
        if role is None or role in seen or not _IDENTIFIER.match(p.name):
            if p.default:
                continue
            return None
        seen.add(role)
        if p.kind == "keyword":
            keywords.append((p.name, role))
        elif keywords or len(positional) < [q for q in sig.params if q.kind == "positional"].index(p):
            return None  # a parameter skipped before it: it cannot be reached positionally
        else:
            positional.append(role)
    missing = set(form.roles) - seen
    if missing - (set(SIZE_ROLES) if method else set()):
        return None
    if tuple(positional) == form.roles and not keywords:
        return None  # the profile's own form
    parts = positional + [f"{k}={r}" for k, r in keywords]
    text = f"f({', '.join([p.name for p in sig.params if p.kind == 'positional'][:len(positional)] + (['*'] if keywords else []) + [k for k, _ in keywords])})"
    return CallForm(f"{form.name}/{','.join(parts)}", tuple(positional), text + " (arguments placed by their names)",
                    keywords=tuple(keywords))


def form_named(forms: tuple[CallForm, ...], name: str | None) -> CallForm | None:
    """The form called ``name``: one of ``forms``, or one ``_by_name`` made (``"unrolled/X,y,nn_params,…"``,
    read back from its name: it travels in the settings). None when there is no such form."""
    if not name:
        return None
    found = next((f for f in forms if f.name == name), None)
    if found is not None or "/" not in name:
        return found
    base, _, spec = name.partition("/")
    parent = next((f for f in forms if f.name == base), None)
    if parent is None:
        return None
    positional, keywords = [], []
    for part in spec.split(","):
        key, eq, role = part.partition("=")
        role = role if eq else key
        if role not in parent.roles or (eq and not _IDENTIFIER.match(key)):
            return None
        (keywords.append((key, role)) if eq else positional.append(role))
    text = f"f({', '.join(positional + (['*'] if keywords else []) + [k for k, _ in keywords])}) (arguments placed by their names)"
    return CallForm(name, tuple(positional), text, keywords=tuple(keywords))


EX4_FORMS = (
    CallForm("unrolled", ("nn_params", "input_size", "hidden_size", "num_labels", "X", "y", "lambda"),
             "f(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_)"),
    CallForm("thetas", ("theta1", "theta2", "input_size", "hidden_size", "num_labels", "X", "y", "lambda"),
             "f(Theta1, Theta2, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_)"),
    CallForm("thetas-data", ("theta1", "theta2", "X", "y", "lambda"), "f(Theta1, Theta2, X, y, lambda_)"),
    CallForm("data-thetas", ("X", "y", "theta1", "theta2", "lambda"), "f(X, y, Theta1, Theta2, lambda_)"),
)

TWO_LAYER_FORMS = (
    CallForm("class", ("X", "y", "lambda"), "TwoLayerNet.loss(self, X, y, reg) reading self.params", method=True),
    CallForm("class-reg", ("X", "y"), "TwoLayerNet.loss(self, X, y) reading self.params and self.reg", method=True),
    CallForm("model", ("X", "model", "y", "lambda"), "two_layer_net(X, model, y, reg)"),
    CallForm("params", ("model", "X", "y", "lambda"), "loss(params, X, y, reg)"),
    CallForm("arrays", ("W1", "b1", "W2", "b2", "X", "y", "lambda"), "loss(W1, b1, W2, b2, X, y, reg)"),
)


# ---- building the arguments and reading the answers, per form ------------------------------

class FormError(ValueError):
    """An answer that does not have any shape the form allows; the message is for the student."""


def _flat(value, n: int, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise FormError(f"{what} must be numbers; got {type(value).__name__}") from None
    if arr.size != n:
        raise FormError(f"{what} must hold {n} numbers; got {arr.size}")
    return arr


def ex4_args(problem, settings: dict, form: str) -> tuple:
    """The positional arguments of one ex4 call (see ``ex4_call``)."""
    return ex4_call(problem, settings, form)[0]


def ex4_call(problem, settings: dict, form: str) -> tuple[tuple, dict]:
    """The arguments of one ex4 call, positional and by keyword: Θ unrolled (``unroll_order``) or as
    two matrices, labels with ``label_base`` as a vector, an (m, 1) column or a one-hot matrix
    (``y_form``), X with its column of ones when ``x_bias`` is "given"; ``form`` a name of
    ``EX4_FORMS`` or one made from a signature's names."""
    from gradverify.params import Layout, flatten

    n0, h, K = problem.network.sizes
    labels = problem.labels if problem.labels is not None else np.argmax(problem.Y, axis=1)
    y_form = settings.get("y_form", "vector")
    if y_form == "onehot":
        y = np.eye(K)[labels]
    else:
        y = labels.astype(np.int64) + int(settings["label_base"])
        y = y.reshape(-1, 1) if y_form == "column" else y
    lam = float(problem.network.lam)
    X = problem.X if settings.get("x_bias", "added") == "added" else np.hstack([np.ones((problem.m, 1)), problem.X])
    theta = flatten(problem.params, problem.network, Layout("theta", "C"))
    T1, T2 = theta[: h * (n0 + 1)].reshape(h, n0 + 1), theta[h * (n0 + 1):].reshape(K, h + 1)
    values = {"nn_params": flatten(problem.params, problem.network, Layout("theta", settings.get("unroll_order", "C"))),
              "theta1": T1, "theta2": T2, "input_size": n0, "hidden_size": h, "num_labels": K, "X": X, "y": y,
              "lambda": lam}
    found = form_named(EX4_FORMS, form)
    if found is None:
        raise ValueError(f"unknown ex4 call form {form!r}")
    return tuple(values[r] for r in found.roles), {k: values[r] for k, r in found.keywords}


def ex4_gradient(problem, settings: dict, rest: tuple) -> np.ndarray:
    """The unrolled gradient from what followed J: ``grad`` (unrolled in ``unroll_order``) or
    ``Theta1_grad, Theta2_grad`` (any shapes holding the right number of values, as matrices)."""
    n0, h, K = problem.network.sizes
    order = settings.get("unroll_order", "C")
    if len(rest) == 1:
        return _flat(rest[0], problem.network.n_params, "grad (Θ1 then Θ2 unrolled)").reshape(-1)
    g1 = _flat(rest[0], h * (n0 + 1), f"Theta1_grad (shape {h}×{n0 + 1})")
    g2 = _flat(rest[1], K * (h + 1), f"Theta2_grad (shape {K}×{h + 1})")
    if g1.ndim == 2 and g1.shape != (h, n0 + 1) or g2.ndim == 2 and g2.shape != (K, h + 1):
        raise FormError(f"Theta1_grad and Theta2_grad must have the shapes of Θ1 ({h}×{n0 + 1}) and Θ2 ({K}×{h + 1}); "
                        f"got {g1.shape} and {g2.shape}")
    return np.concatenate([g1.reshape(h, n0 + 1).ravel(order), g2.reshape(K, h + 1).ravel(order)])


def two_layer_args(problem, settings: dict, form: str) -> tuple[tuple, dict | None]:
    """The arguments (and, for the class form, the attributes of the instance) of one two-layer call."""
    p = problem.params  # their W is (fan_in, fan_out): scores = X·W + b
    params = {"W1": p["W1"].T.copy(), "b1": p["b1"].copy(), "W2": p["W2"].T.copy(), "b2": p["b2"].copy()}
    labels = problem.labels if problem.labels is not None else np.argmax(problem.Y, axis=1)
    X, y, reg = problem.X, labels.astype(np.int64), float(problem.network.lam)
    if form == "class":
        return (X, y, reg), {"params": params}
    if form == "class-reg":  # CS231n's assignment 2: the regularization strength is an attribute (``self.reg``)
        return (X, y), {"params": params, "reg": reg}
    if form == "model":
        return (X, params, y, reg), None
    if form == "params":
        return (params, X, y, reg), None
    if form == "arrays":
        return (params["W1"], params["b1"], params["W2"], params["b2"], X, y, reg), None
    raise ValueError(f"unknown two-layer call form {form!r}")

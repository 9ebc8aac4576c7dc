"""What network, what cost, what data: ``Network`` and ``Problem``, and the compact spec grammar.

Notation follows the lecture: h⁰ = x, a⁽ᵏ⁾ = W⁽ᵏ⁾h⁽ᵏ⁻¹⁾ + b⁽ᵏ⁾, h⁽ᵏ⁾ = f(a⁽ᵏ⁾), with Wₖ of
shape (nₖ, nₖ₋₁). A batch X holds one example per row, shape (m, n₀).

Compact spec grammar (``parse_spec``)::

    spec    := sizes [ ":" hidden ] [ "/" output ]
    sizes   := INT ( "-" INT )+              layer widths, input first: 3-5-3
    hidden  := ACT ( "," ACT )*              one activation for every hidden layer, or one each
    ACT     := sigmoid | tanh | relu | softplus | identity
    output  := sigmoid | softmax | identity  (aliases: bce, ce, mse, linear)

    3-5-3                  the lecture's network: sigmoid units, sigmoid outputs + cross-entropy
    4-8-8-2:tanh/softmax   two tanh hidden layers, softmax + categorical cross-entropy
    4-8-8-2:relu,tanh      relu then tanh, sigmoid outputs
    10-1/identity          linear regression with squared error

λ, the regularization scaling and bias regularization are not part of the compact form; they come
from keywords, CLI flags or a spec file (TOML or JSON, see ``load_spec_file``).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from gradverify.errors import InputError, SpecError

__all__ = [
    "ACTIVATIONS",
    "OUTPUTS",
    "REGULARIZATIONS",
    "TEXTBOOK_LIMIT",
    "Network",
    "Origin",
    "Problem",
    "parse_spec",
    "load_spec_file",
    "network_from_mapping",
    "make_problem",
    "save_problem",
]

# Adding an activation (or an output/loss) — each source defines it its own way, on purpose, so a
# wrong definition in one shows up as a disagreement. The places, each with its own table:
#   1. here: ACTIVATIONS (or OUTPUTS), and the README's spec grammar;
#   2. the oracle:              symbolic/forms.py   (a SymPy expression; SymPy differentiates it)
#   3. the backprop engine:     backprop.py _RULES  (forward and hand-derived backward, side by side)
#   4. finite differences:      functions.py        (numpy forward, complex-safe if analytic) and the
#                               finite_diff kernels (their own batched forward; say if it is analytic)
#   5. the float64 budget:      nothing (slopes are measured by secants of functions.py's forward)
#   6. the diagnosis mutants:   diagnose.py _mutant_grad (the true f′ and its classic wrong forms)
#   7. strategies.networks draws from ACTIVATIONS; nothing to do.
# tests/test_project.py::test_every_source_knows_every_activation_and_output fails until all are done.
ACTIVATIONS = ("sigmoid", "tanh", "relu", "softplus", "identity")

# output unit -> the loss it is paired with (the pairing makes ∂J/∂a⁽ᴸ⁾ simple in every case)
OUTPUTS = {
    "sigmoid": "binary cross-entropy summed over outputs, averaged over examples (the lecture's J)",
    "softmax": "categorical cross-entropy, averaged over examples",
    "identity": "squared error 1/(2m)·Σᵢ Σₖ (hₖ − yₖ)²",
}
_OUTPUT_ALIASES = {"bce": "sigmoid", "ce": "softmax", "cce": "softmax", "mse": "identity", "linear": "identity"}

# The textbook cross-entropy −y·log σ(z) − (1−y)·log(1−σ(z)) stays finite while σ(z) < 1 in float64,
# i.e. for z below about 36.7 (1/(1 + e^−z) rounds to 1 beyond); a softmax without the max shift
# stays finite far beyond. Cases kept under |z| ≤ 30 are ones textbook code must get right, and code
# that breaks on moderately large pre-activations (a NaN past |z| = 8, say) fails on them.
TEXTBOOK_LIMIT = 30.0

# regularization convention -> (penalty coefficient c with penalty = c·ΣW², as a function of λ, m)
REGULARIZATIONS = {
    "lambda/2m": "λ/(2m)·ΣW²  (the lecture; gradient λ/m·W)",
    "lambda": "λ·ΣW²  (gradient 2λ·W)",
    "lambda/2": "½λ·ΣW²  (gradient λ·W)",
}


def _is_real(value) -> bool:
    """A real number that is not a bool (``True`` is an int in Python, but never a strength)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _names(field_name: str, value) -> tuple[str, ...]:
    """A sequence of names (strings), or a ``SpecError`` naming the field."""
    try:
        names = tuple(value)
    except TypeError:
        names = None
    if names is None or not all(isinstance(n, str) for n in names):
        raise SpecError(f"{field_name} must be a name or a list of names", expected='e.g. "tanh" or ["relu", "tanh"]',
                        received=f"{value!r} ({type(value).__name__})", fix="write the names as strings")
    return names


@dataclass(frozen=True)
class Network:
    """A feed-forward network and its cost: layer sizes, activations, output/loss, regularization.

    Args:
        sizes: layer widths, input first, e.g. ``(3, 5, 3)``.
        activations: one activation per hidden layer (``len(sizes) - 2`` of them).
        output: ``"sigmoid"`` (+ binary cross-entropy), ``"softmax"`` (+ categorical
            cross-entropy) or ``"identity"`` (+ squared error).
        lam: the regularization strength λ ≥ 0.
        reg: the scaling convention, a key of ``REGULARIZATIONS``.
        reg_bias: whether biases are regularized too (the lecture: no).
    """

    sizes: tuple[int, ...]
    activations: tuple[str, ...] = field(default=())
    output: str = "sigmoid"
    lam: float = 0.0
    reg: str = "lambda/2m"
    reg_bias: bool = False

    def __post_init__(self) -> None:
        sizes = tuple(self.sizes)
        if len(sizes) < 2 or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in sizes):
            raise SpecError(
                "A network needs at least an input and an output layer of positive integer width",
                expected="sizes such as (3, 5, 3)",
                received=repr(self.sizes),
                fix="give every layer width as a positive integer, input first",
            )
        object.__setattr__(self, "sizes", tuple(int(n) for n in sizes))
        acts = (self.activations,) if isinstance(self.activations, str) else _names("activations", self.activations)
        hidden = len(sizes) - 2
        if len(acts) == 0:
            acts = ("sigmoid",) * hidden
        elif len(acts) == 1 and hidden != 1:
            acts = acts * hidden  # one activation for every hidden layer (none if there are none)
        if len(acts) != hidden:
            raise SpecError(
                "The number of hidden activations does not match the number of hidden layers",
                expected=f"1 or {hidden} activation(s) for {hidden} hidden layer(s)",
                received=f"{len(acts)}: {', '.join(acts) or '(none)'}",
                fix="give one activation for all hidden layers or one per hidden layer",
            )
        for act in acts:
            if act not in ACTIVATIONS:
                raise SpecError(
                    f"Unknown activation {act!r}",
                    expected="one of " + ", ".join(ACTIVATIONS),
                    received=repr(act),
                    fix="use one of the supported activation names",
                )
        object.__setattr__(self, "activations", acts)
        if not isinstance(self.output, str):
            raise SpecError("The output must be named by a string", expected="one of " + ", ".join(OUTPUTS),
                            received=f"{self.output!r} ({type(self.output).__name__})", fix='e.g. output = "softmax"')
        output = _OUTPUT_ALIASES.get(self.output, self.output)
        if output not in OUTPUTS:
            raise SpecError(
                f"Unknown output {self.output!r}",
                expected="one of " + ", ".join(OUTPUTS) + " (aliases " + ", ".join(_OUTPUT_ALIASES) + ")",
                received=repr(self.output),
                fix="name the output unit; the loss follows from it",
            )
        object.__setattr__(self, "output", output)
        if output == "softmax" and sizes[-1] < 2:
            raise SpecError(
                "A softmax output needs at least two classes",
                expected="an output layer of width ≥ 2",
                received=f"width {sizes[-1]}",
                fix="use a sigmoid output for a single binary output",
            )
        # a bool or a string is not a strength: JSON `"lambda": true` must not silently mean λ = 1
        lam = float(self.lam) if _is_real(self.lam) else math.nan
        if not math.isfinite(lam) or lam < 0:
            raise SpecError(
                "λ must be a finite number ≥ 0",
                expected="e.g. 0, 1 or 3",
                received=repr(self.lam),
                fix="pass a non-negative λ",
            )
        object.__setattr__(self, "lam", lam)
        if not isinstance(self.reg, str) or self.reg not in REGULARIZATIONS:
            raise SpecError(
                f"Unknown regularization convention {self.reg!r}",
                expected="one of " + ", ".join(REGULARIZATIONS),
                received=repr(self.reg),
                fix="lambda/2m is the lecture's λ/(2m)·ΣW²",
            )
        if not isinstance(self.reg_bias, (bool, np.bool_)):  # "false" (a string) is truthy: never guess
            raise SpecError(
                "regularize_bias must be true or false",
                expected="a boolean (true/false in TOML and JSON, True/False in Python)",
                received=f"{self.reg_bias!r} ({type(self.reg_bias).__name__})",
                fix="write regularize_bias = false without quotes",
            )
        object.__setattr__(self, "reg_bias", bool(self.reg_bias))

    # -- derived facts ----------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Number of weight layers L (a 3-5-3 network has L = 2)."""
        return len(self.sizes) - 1

    @property
    def layer_activations(self) -> tuple[str, ...]:
        """The activation of every layer 1..L, output included."""
        return self.activations + (self.output,)

    @property
    def param_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """``[("W1", (n1, n0)), ("b1", (n1,)), ("W2", ...), ...]`` in canonical order."""
        shapes: list[tuple[str, tuple[int, ...]]] = []
        for k in range(1, self.depth + 1):
            shapes += [(f"W{k}", (self.sizes[k], self.sizes[k - 1])), (f"b{k}", (self.sizes[k],))]
        return shapes

    @property
    def n_params(self) -> int:
        return sum(math.prod(shape) for _, shape in self.param_shapes)

    def reg_coefficient(self, m: int) -> float:
        """c in penalty = c·ΣW² (over regularized entries) for a batch of m examples."""
        return {"lambda/2m": self.lam / (2 * m), "lambda": self.lam, "lambda/2": self.lam / 2}[self.reg]

    def is_regularized(self, name: str) -> bool:
        """Whether the parameter array ``name`` (``W2``, ``b1``…) is in the penalty."""
        return self.lam > 0 and (name.startswith("W") or self.reg_bias)

    @property
    def compact(self) -> str:
        """The compact spec string (without λ and regularization)."""
        text = "-".join(map(str, self.sizes))
        acts = set(self.activations)
        if acts and acts != {"sigmoid"}:
            text += ":" + (self.activations[0] if len(acts) == 1 else ",".join(self.activations))
        if self.output != "sigmoid":
            text += "/" + self.output
        return text

    def describe(self) -> str:
        """One line: the spec, the loss and the regularization, in words."""
        reg = "no regularization" if self.lam == 0 else (
            f"λ = {self.lam:g}, {REGULARIZATIONS[self.reg].split('  ')[0]}"
            + (", biases included" if self.reg_bias else ", biases excluded"))
        return f"{self.compact} ({self.n_params} parameters); {OUTPUTS[self.output]}; {reg}"

    def with_(self, **changes) -> Network:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def __str__(self) -> str:
        return self.compact


_SPEC_RE = re.compile(r"^\s*(?P<sizes>\d+(?:\s*-\s*\d+)+)\s*(?::\s*(?P<hidden>[a-z_,\s]*))?\s*(?:/\s*(?P<output>[a-z_]+))?\s*$")


def parse_spec(text: str, **options) -> Network:
    """Parse a compact spec such as ``"3-5-3"`` or ``"4-8-8-2:tanh/softmax"``.

    Args:
        text: the compact spec (grammar in the module docstring).
        **options: other ``Network`` fields: ``lam``, ``reg``, ``reg_bias``.

    Raises:
        SpecError: the text does not follow the grammar or names an unknown activation.
    """
    if not isinstance(text, str):
        raise SpecError("A compact network spec must be a string", expected='e.g. "3-5-3"', received=repr(text))
    match = _SPEC_RE.match(text.lower())
    if not match:
        raise SpecError(
            f"Cannot parse the network spec {text!r}",
            expected='layer sizes joined by "-", then optionally ":" hidden activation(s) and "/" output, '
            'e.g. "3-5-3", "4-8-8-2:tanh/softmax", "10-1/identity"',
            received=repr(text),
            fix="write the sizes input first, e.g. 400-25-10; or pass a .toml/.json spec file",
        )
    sizes = tuple(int(s) for s in match["sizes"].replace(" ", "").split("-"))
    hidden = tuple(a.strip() for a in (match["hidden"] or "").split(",") if a.strip())
    if hidden and len(sizes) == 2:
        raise SpecError(
            f"The spec {text!r} names hidden activations but has no hidden layer",
            expected="at least three sizes when ':' activations are given",
            received=f"sizes {sizes}",
            fix='drop the ":" part, or use "/" to choose the output, e.g. "10-3/softmax"',
        )
    return Network(sizes, hidden, match["output"] or "sigmoid", **options)


# The spec file's keys, each with the type it must have (checked before anything is built): a
# value of another type is an error, never converted (a string "false" is truthy, JSON true is 1).
_FILE_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "network": ((str,), 'a compact spec string, e.g. "4-8-8-2:tanh/softmax"'),
    "sizes": ((list,), "a list of layer widths, e.g. [4, 8, 8, 2]"),
    "activations": ((str, list), 'an activation name or a list of them, e.g. "tanh" or ["relu", "tanh"]'),
    "output": ((str,), 'an output name, e.g. "softmax"'),
    "lambda": ((int, float), "a number ≥ 0, e.g. 1.0"),
    "regularization": ((str,), 'one of "' + '", "'.join(REGULARIZATIONS) + '"'),
    "regularize_bias": ((bool,), "true or false (no quotes)"),
}


def _json_type(value) -> str:
    return {bool: "a boolean", str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a table"}.get(
        type(value), type(value).__name__)


def network_from_mapping(data: dict, *, source: str = "spec") -> Network:
    """Build a ``Network`` from a parsed TOML/JSON mapping, every key checked against its type.

    Keys: ``network`` (a compact spec) or ``sizes`` (+ ``activations``, ``output``); and
    optionally ``lambda``, ``regularization``, ``regularize_bias``.

    Raises:
        SpecError: an unknown key, a value of the wrong type (``"false"`` for a boolean,
            ``true`` for λ), or a network that does not validate.
    """
    if not isinstance(data, dict):
        raise SpecError(f"{source} must hold a table of keys", expected="keys such as network, lambda", received=_json_type(data))
    unknown = set(data) - set(_FILE_KEYS)
    if unknown:
        raise SpecError(
            f"Unknown key(s) in {source}: {', '.join(sorted(map(str, unknown)))}",
            expected="keys among " + ", ".join(sorted(_FILE_KEYS)),
            received=", ".join(sorted(map(str, data))),
            fix="check the spelling; see the README's spec file section",
        )
    for key, value in data.items():
        types, words = _FILE_KEYS[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise SpecError(f"{key!r} in {source} has the wrong type", expected=words,
                            received=f"{value!r} ({_json_type(value)})",
                            fix=f"write {key} as {words.split(',')[0]}")
    options = {}
    if "lambda" in data:
        options["lam"] = data["lambda"]
    if "regularization" in data:
        options["reg"] = data["regularization"]
    if "regularize_bias" in data:
        options["reg_bias"] = data["regularize_bias"]
    if "network" in data:
        if "sizes" in data:
            raise SpecError(f"{source} gives both 'network' and 'sizes'", expected="one of them", received="both",
                            fix="keep one of them")
        net = parse_spec(data["network"], **options)
        changes = {k: data[k] for k in ("activations", "output") if k in data}
        return net.with_(**changes) if changes else net
    if "sizes" not in data:
        raise SpecError(f"{source} does not say which network", expected="a 'network' or 'sizes' key", received=", ".join(sorted(data)) or "nothing",
                        fix='add network = "3-5-3" (or sizes = [3, 5, 3])')
    return Network(tuple(data["sizes"]), data.get("activations", ()), data.get("output", "sigmoid"), **options)


def load_spec_file(path: str | Path) -> Network:
    """Read a network spec from a ``.toml`` or ``.json`` file.

    Example (TOML)::

        network = "4-8-8-2:tanh/softmax"   # or: sizes = [4, 8, 8, 2]; activations = "tanh"; output = "softmax"
        lambda = 1.0
        regularization = "lambda/2m"       # or "lambda", "lambda/2"
        regularize_bias = false
    """
    path = Path(path)
    if path.is_dir():
        raise SpecError(f"The spec file {path} is a folder", expected="a .toml or .json file", received=f"the folder {path}",
                        fix="give the spec file's path")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"Cannot read the spec file {path}", received=exc.strerror or str(exc), fix="check the path") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"The spec file {path} is not UTF-8 text", expected="a UTF-8 encoded .toml or .json file",
                        received=f"byte 0x{exc.object[exc.start]:02x} at offset {exc.start}",
                        fix="save the file as UTF-8 (TOML requires it), or check that it is the spec and not a binary file") from None
    if path.suffix.lower() not in (".toml", ".json"):
        raise SpecError(f"The spec file {path} has an unknown format", expected="a file ending in .toml or .json",
                        received=path.name, fix="rename it to .toml or .json to say which syntax it uses")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        received = "nesting too deep to read" if isinstance(exc, RecursionError) else str(exc)
        raise SpecError(f"The spec file {path} is not valid {kind}", received=received, fix=f"fix the {kind} syntax") from None
    return network_from_mapping(data, source=str(path))


def exact_text(x: float) -> str:
    """A float as short text that reads back to exactly the same float (``3``, ``0.1``, ``0.123456789``)."""
    short = f"{x:g}"
    return short if float(short) == x else repr(float(x))


OriginKind = Literal["debug", "random", "npz", "arrays"]


@dataclass(frozen=True)
class Origin:
    """How a problem was made, so that a report can say how to make it again.

    Attributes:
        kind: ``"debug"`` (the classic exercise's sin fill), ``"random"`` (``seed`` and ``scale``),
            ``"npz"`` (loaded from the file at ``path``) or ``"arrays"`` (built in Python from
            arrays: no command rebuilds it until it is saved, see ``save_problem``).
        seed, scale: the random generator's seed and parameter scale (``"random"`` only).
        path: the file the problem was read from (``"npz"`` only).
        note: words for people, e.g. ``"hidden variant 2"``; never parsed.
        all_classes: the random labels cover every class (``"random"`` only; ``--all-classes``).
    """

    kind: OriginKind = "arrays"
    seed: int | None = None
    scale: float | None = None
    path: str | None = None
    note: str = ""
    all_classes: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("debug", "random", "npz", "arrays"):
            raise SpecError(f"Unknown problem origin {self.kind!r}", expected="debug, random, npz or arrays", received=repr(self.kind))
        if self.kind == "random" and (self.seed is None or self.scale is None):
            raise SpecError("A random origin needs its seed and scale", received=f"seed={self.seed!r}, scale={self.scale!r}")
        if self.kind == "npz" and not self.path:
            raise SpecError("An npz origin needs the file's path", received=repr(self.path))

    @property
    def rebuildable(self) -> bool:
        """Whether command-line options alone make the same problem again."""
        return self.kind != "arrays"

    def options(self) -> list[str]:
        """The ``gradverify verify`` options that rebuild the parameters and data.

        Raises:
            InputError: the problem was built from arrays (save it with ``save_problem`` first).
        """
        if self.kind == "debug":
            return ["--init", "debug"]
        if self.kind == "random":
            return ["--init", "random", "--seed", str(self.seed), "--scale", exact_text(self.scale)] + (
                ["--all-classes"] if self.all_classes else [])
        if self.kind == "npz":
            return ["--npz", str(self.path)]
        raise InputError("This problem was built from arrays, so no command-line option rebuilds it",
                         expected="a problem from the debug or random generators, or from an .npz file",
                         received=str(self), fix="save it with gradverify.spec.save_problem(problem, PATH) and use --npz PATH")

    def __str__(self) -> str:
        text = {"debug": "debug init", "random": (f"random init, seed={self.seed}, scale={self.scale:g}"
                                                  + (", every class present" if self.all_classes else "")) if self.scale is not None else "",
                "npz": f"npz {self.path}", "arrays": "arrays"}[self.kind]
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True, eq=False)
class Problem:
    """A network with concrete parameters and data: everything a gradient source needs.

    Build it with ``make_problem`` (which validates) or the generators in ``problems``.
    ``params`` maps ``W1, b1, …`` to float64 arrays; ``X`` is (m, n₀); ``Y`` is (m, n_L) targets;
    ``labels`` keeps the integer labels when the targets came from them; ``origin`` says how the
    problem was made, so a report can tell how to reproduce it.
    """

    network: Network
    params: dict[str, np.ndarray]
    X: np.ndarray
    Y: np.ndarray
    labels: np.ndarray | None = None
    origin: Origin = field(default_factory=Origin)

    @property
    def m(self) -> int:
        return int(self.X.shape[0])

    def with_params(self, params: dict[str, np.ndarray]) -> Problem:
        """The same data and network with other parameter values (not validated again)."""
        return replace(self, params=params)

    def __repr__(self) -> str:
        return f"Problem({self.network.describe()}; m={self.m}; {self.origin})"


def _real_array(name: str, value, expected: str) -> np.ndarray:
    """``value`` as an array of real numbers (bool, int or float), without converting anything else.

    Complex numbers would lose their imaginary part and strings would be parsed as numbers if
    handed to ``np.array(…, dtype=float64)``: both are refused here instead.
    """
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise InputError(f"{name} is not an array of numbers", expected=expected, received=f"{type(value).__name__} ({exc})",
                         fix=f"pass {name} as a numpy array of floats") from None
    kind = arr.dtype.kind
    if kind == "c":
        raise InputError(f"{name} holds complex numbers", expected=f"real numbers ({expected})", received=f"dtype {arr.dtype}",
                         fix=f"pass the real part ({name}.real) if the imaginary part is meant to be 0, else real data")
    if kind not in "biuf":
        what = {"U": "text", "S": "bytes", "O": "Python objects", "M": "dates", "m": "time spans", "V": "structured records"}.get(kind, str(arr.dtype))
        raise InputError(f"{name} is not an array of numbers", expected=expected, received=f"{what} (dtype {arr.dtype})",
                         fix=f"convert {name} to floats yourself (e.g. np.asarray(…, dtype=float)) after checking its content")
    return arr


def _as_float_array(name: str, value, shape: tuple[int, ...], fix: str) -> np.ndarray:
    arr = np.array(_real_array(name, value, f"numbers of shape {shape}"), dtype=np.float64)  # a copy: never aliases caller memory
    if arr.shape != shape:
        raise InputError(f"{name} has the wrong shape", expected=f"shape {shape}", received=f"shape {arr.shape}", fix=fix)
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"{name} holds NaN or infinite values ({int(bad.sum())} of {arr.size})",
            expected="finite numbers",
            received=f"{arr[where]} at index {list(where)}",
            fix="replace them with finite values before verifying",
        )
    return arr


def make_problem(network: Network, params: dict, X, Y=None, *, y=None, origin: Origin | None = None) -> Problem:
    """Validate parameters and data against ``network`` and build a ``Problem``.

    Args:
        network: the network and cost.
        params: ``W1, b1, …`` with Wₖ of shape (nₖ, nₖ₋₁) and bₖ of shape (nₖ,).
        X: inputs, shape (m, n₀).
        Y: targets, shape (m, n_L); or give ``y`` instead.
        y: integer labels 0..K−1, shape (m,); turned into one-hot targets (a single sigmoid
            output takes 0/1 labels as its target directly).
        origin: how the problem was made (default: from arrays).

    Raises:
        InputError: a missing array, a wrong shape, NaN/inf, labels out of range.
    """
    names = [name for name, _ in network.param_shapes]
    missing = [n for n in names if n not in params]
    extra = [n for n in params if n not in names]
    if missing or extra:
        raise InputError(
            f"The parameters do not match the network {network.compact}",
            expected="arrays " + ", ".join(names),
            received="arrays " + (", ".join(params) or "none"),
            fix="name the arrays W1, b1, W2, b2, … with Wk of shape (n_k, n_{k-1})"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unexpected {', '.join(extra)}" if extra else ""),
        )
    clean = {
        name: _as_float_array(name, params[name], shape, f"{name} must be {shape} for the spec {network.compact}; "
                              + ("transpose it if your layout is (n_in, n_out)" if name.startswith("W") else "pass the bias as a 1-D vector"))
        for name, shape in network.param_shapes
    }
    X_arr = np.array(_real_array("X", X, f"an (m, {network.sizes[0]}) array of numbers"), dtype=np.float64)
    if X_arr.ndim != 2 or X_arr.shape[1] != network.sizes[0] or X_arr.shape[0] < 1:
        raise InputError(
            "X has the wrong shape",
            expected=f"(m, {network.sizes[0]}): one example per row, {network.sizes[0]} inputs, m ≥ 1",
            received=f"shape {X_arr.shape}",
            fix="transpose X if it holds one example per column" if X_arr.ndim == 2 and X_arr.shape[0] == network.sizes[0] else "reshape X to (m, n0)",
        )
    m, K = X_arr.shape[0], network.sizes[-1]
    X_arr = _as_float_array("X", X_arr, X_arr.shape, "")
    labels = None
    if (Y is None) == (y is None):
        raise InputError("Give exactly one of Y (targets) and y (labels)", expected=f"Y of shape ({m}, {K}) or y of shape ({m},)",
                         received="both" if Y is not None else "neither", fix="pass one of them")
    if y is not None:
        labels = _real_array("y", y, f"integer labels, shape ({m},)")
        if labels.ndim == 2 and 1 in labels.shape:
            labels = labels.reshape(-1)
        n_classes = 2 if (network.output == "sigmoid" and K == 1) else K
        if labels.shape != (m,) or not np.all(np.isfinite(labels.astype(float))) or not np.all(labels == np.round(labels)):
            raise InputError("y must be integer labels, one per example", expected=f"shape ({m},) of integers 0..{n_classes - 1}",
                             received=f"shape {labels.shape}, dtype {labels.dtype}", fix="pass integer class labels")
        labels = labels.astype(np.int64)
        if labels.min() < 0 or labels.max() >= n_classes:
            bad = labels[(labels < 0) | (labels >= n_classes)]
            raise InputError(
                "Labels out of range",
                expected=f"labels 0..{n_classes - 1} for {K} output(s)",
                received=f"labels from {labels.min()} to {labels.max()} (e.g. {bad[0]})",
                fix="labels 1..K (MATLAB style) need subtracting 1; the classic exercise's label 10 means digit 0" if labels.min() >= 1 and labels.max() == n_classes else "map the labels to 0..K-1",
            )
        Y_arr = labels.reshape(m, 1).astype(np.float64) if n_classes == 2 and K == 1 else np.eye(K)[labels]
    else:
        Y_arr = _as_float_array("Y", Y, (m, K), f"Y holds one row of {K} target(s) per example")
    if origin is None:
        origin = Origin()
    elif not isinstance(origin, Origin):
        raise InputError("origin must be an Origin record", expected="gradverify.spec.Origin(kind=...)", received=type(origin).__name__,
                         fix="describe how the problem was made with Origin(...), or leave it out")
    return Problem(network, clean, X_arr, Y_arr, labels, origin)


def save_problem(problem: Problem, path: str | Path) -> Path:
    """Write the problem's parameters and data to an ``.npz`` file that ``--npz`` reads back exactly.

    Keys: ``W1, b1, …``, ``X``, and ``y`` (labels) when the targets came from labels, else ``Y``.
    The network (activations, λ, regularization) is not stored: ``reproduce_command`` gives it.
    """
    from gradverify._io import write_atomic
    import io

    arrays = dict(problem.params)
    arrays["X"] = problem.X
    if problem.labels is not None:
        arrays["y"] = problem.labels
    else:
        arrays["Y"] = problem.Y
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return write_atomic(path, buf.getvalue())

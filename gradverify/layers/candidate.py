"""Calling a CS231n-style forward/backward pair on a layer case, and reading what comes back.

The same adapter runs gradverify's own engine (``layers.engine``) and a candidate's functions, so
both are called exactly alike: ``*_forward(x, …, param_dict) -> (out, cache)`` then
``*_backward(dout, cache) -> (dx, dw, …)``; caches are opaque; a loss returns ``(loss, dx)``.
Arguments are fresh copies (a function that writes into its inputs cannot corrupt the case).

What comes back is treated as hostile: every value is converted defensively to float64 and
checked for its shape. A gradient of the wrong shape is not an error of the run but a finding
about the candidate (``ShapeProblem``): the judge marks that array wrong and the diagnosis reads
the shape (a transposed ``dw``, a ``db`` that was not summed over the batch). A gradient whose
shape differs only by axes of length 1 (``db`` of shape (1, M)) is accepted, with a note.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from gradverify.errors import CandidateError, InputError
from gradverify.layers.case import LayerCase
from gradverify.layers.catalogue import LayerSpec, get_layer

__all__ = ["ShapeProblem", "PairResult", "Pair", "resolve_pair", "run_pair", "align_case"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class ShapeProblem:
    """A returned array that could not be used as the gradient (or output) it should be."""

    array: str          # the input whose gradient it is ("w"), or the output ("out")
    expected: tuple[int, ...]
    received: tuple[int, ...] | None   # None: not numbers at all
    message: str


@dataclass(frozen=True)
class PairResult:
    """What a pair returned on a case: forward outputs and gradients (None where unusable)."""

    outputs: dict[str, np.ndarray | None]
    grads: dict[str, np.ndarray | None]
    problems: tuple[ShapeProblem, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class Pair:
    """A forward function and its backward (None for a loss that returns (loss, dx))."""

    forward: Callable
    backward: Callable | None
    names: tuple[str, str | None]
    label: str = "candidate"


# ---- finding the functions -------------------------------------------------------------------------

def _partner(name: str) -> str:
    """``conv_backward_naive`` → ``conv_forward_naive``; ``batchnorm_backward_alt`` → ``batchnorm_forward``."""
    base = name.replace("backward", "forward")
    return base[:-4] if base.endswith("_alt") else base


def resolve_pair(namespace: Mapping[str, object], layer: str | LayerSpec, function: str | None = None,
                 *, label: str = "candidate") -> Pair:
    """The forward/backward pair for ``layer`` in ``namespace``.

    Args:
        namespace: a module's namespace (``vars(module)``).
        layer: the catalogue layer.
        function: a name given by the user: the forward, the backward (``batchnorm_backward_alt``
            too), the loss function, or a stem (``affine``); default the layer's CS231n names.
        label: the source's name in tables.

    Raises:
        InputError: a function is missing or not callable.
    """
    spec = get_layer(layer)  # type: ignore[arg-type]
    fwd_name, bwd_name = spec.api
    if function:
        if bwd_name is None:
            fwd_name = function
        elif "backward" in function:
            fwd_name, bwd_name = _partner(function), function
        elif "forward" in function:
            fwd_name, bwd_name = function, function.replace("forward", "backward")
        else:
            fwd_name, bwd_name = f"{function}_forward", f"{function}_backward"
    found = []
    for n in (fwd_name, bwd_name):
        if n is None:
            found.append(None)
            continue
        fn = namespace.get(n)
        if not callable(fn):
            near = sorted(k for k in namespace if callable(namespace[k]) and (k.split("_")[0] == n.split("_")[0]))[:6]
            raise InputError(f"No function {n!r} for the {spec.name} layer", expected=f"a callable named {n}",
                             received=("functions " + ", ".join(near)) if near else "no function of that name",
                             fix=f"name the forward/backward pair {spec.api[0]}/{spec.api[1]} (CS231n's names), or give FILE.py:FUNCTION")
        found.append(fn)
    return Pair(found[0], found[1], (fwd_name, bwd_name), label)


# ---- calling -----------------------------------------------------------------------------------------

def _forward_args(case: LayerCase) -> tuple:
    a, s = {k: v.copy() for k, v in case.arrays.items()}, case.settings
    name = case.name
    if name in ("affine", "temporal_affine"):
        return a["x"], a["w"], a["b"]
    if name in ("relu", "sigmoid", "tanh"):
        return (a["x"],)
    if name == "dropout":
        keep = s["p"] if s["convention"] == "keep" else 1 - s["p"]  # type: ignore[operator]
        return a["x"], {"p": s["p"], "mode": s["mode"], "seed": s.get("seed", 0), "mask": a["mask"].astype(bool), "keep_prob": keep}
    if name in ("batchnorm", "spatial_batchnorm"):
        return a["x"], a["gamma"], a["beta"], {"mode": s["mode"], "eps": s["eps"], "momentum": 0.9,
                                               "running_mean": a["running_mean"], "running_var": a["running_var"]}
    if name == "layernorm":
        return a["x"], a["gamma"], a["beta"], {"eps": s["eps"]}
    if name == "spatial_groupnorm":
        return a["x"], a["gamma"], a["beta"], int(s["G"]), {"eps": s["eps"]}
    if name == "conv":
        return a["x"], a["w"], a["b"], {"stride": s["stride"], "pad": s["pad"]}
    if name == "max_pool":
        return a["x"], {"pool_height": s["pool_height"], "pool_width": s["pool_width"], "stride": s["stride"]}
    if name in ("svm_loss", "softmax_loss"):
        return a["x"], a["y"]
    if name == "temporal_softmax_loss":
        return a["x"], a["y"], a["mask"].astype(bool)
    if name == "word_embedding":
        return a["x"], a["W"]
    if name in ("rnn", "lstm"):
        return a["x"], a["h0"], a["Wx"], a["Wh"], a["b"]
    return tuple(a[n] for n in case.layer.inputs)  # rnn_step, lstm_step: the inputs in order


def _call(fn: Callable, args: tuple, label: str, what: str):
    try:
        with np.errstate(all="ignore"):
            return fn(*args)
    except Exception as exc:  # the candidate's own failure: say where in its code, not in ours
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if _PACKAGE_DIR not in f.filename]
        where = "; ".join(f"{f.filename}:{f.lineno} in {f.name}" for f in frames[-3:]) or "(no frame outside gradverify)"
        raise CandidateError(f"The {what} of {label!r} raised {type(exc).__name__}: {exc}", received=f"the call failed at {where}",
                             fix="run it on this case yourself (gradverify layer … --json prints the arrays' seed and shapes)") from None


def _read(value, expected: tuple[int, ...], array: str, what: str) -> tuple[np.ndarray | None, ShapeProblem | None, str]:
    """A returned value as float64 of ``expected`` shape, or the problem with it."""
    try:
        a = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError, OverflowError):
        return None, ShapeProblem(array, expected, None, f"{what} is not an array of numbers (got {type(value).__name__})"), ""
    if a.shape == expected:
        return a, None, ""
    if a.size == math.prod(expected) and tuple(d for d in a.shape if d != 1) == tuple(d for d in expected if d != 1):
        return a.reshape(expected), None, f"{what} has shape {a.shape}; read as {expected}"
    return None, ShapeProblem(array, expected, tuple(a.shape), f"{what} has shape {tuple(a.shape)}, expected {expected}"), ""


def _as_tuple(value, n: int) -> tuple | None:
    if n == 1 and not isinstance(value, (tuple, list)):
        return (value,)
    if isinstance(value, (tuple, list)) and len(value) == n:
        return tuple(value)
    return None


def run_pair(pair: Pair, case: LayerCase) -> PairResult:
    """Call ``pair`` on ``case``: forward, then backward with the case's upstream gradients.

    Raises:
        CandidateError: a function raised, or returned something that is not the API's tuple.
    """
    t0 = time.perf_counter()
    spec, shapes = case.layer, case.shapes()
    problems, notes = [], []
    outputs: dict[str, np.ndarray | None] = {}
    grads: dict[str, np.ndarray | None] = {}

    def take(value, expected, array, what, store):
        a, prob, note = _read(value, expected, array, what)
        store[array] = a
        if prob:
            problems.append(prob)
        if note:
            notes.append(note)

    fwd_name, bwd_name = pair.names
    ret = _call(pair.forward, _forward_args(case), pair.label, fwd_name)
    if spec.is_loss:
        got = _as_tuple(ret, 2)
        if got is None:
            raise CandidateError(f"{fwd_name} of {pair.label!r} did not return (loss, dx)", expected="a tuple (loss, dx)",
                                 received=type(ret).__name__)
        take(got[0], (), "loss", "the loss", outputs)
        take(got[1], shapes["x"], "x", "dx", grads)
        return PairResult(outputs, grads, tuple(problems), tuple(notes), time.perf_counter() - t0)
    got = _as_tuple(ret, len(spec.outputs) + 1)
    if got is None:
        raise CandidateError(f"{fwd_name} of {pair.label!r} did not return ({', '.join(spec.outputs)}, cache)",
                             expected=f"a tuple of {len(spec.outputs) + 1}", received=_describe(ret))
    for name, value in zip(spec.outputs, got):
        take(value, shapes[name], name, name, outputs)
    upstream = [case.upstream[o].copy() for o in spec.outputs]
    back = _call(pair.backward, (*upstream, got[-1]), pair.label, bwd_name)
    parts = _as_tuple(back, len(spec.inputs))
    if parts is None:
        raise CandidateError(f"{bwd_name} of {pair.label!r} did not return the gradients ({', '.join('d' + n for n in spec.inputs)})",
                             expected=f"a tuple of {len(spec.inputs)}" if len(spec.inputs) > 1 else "one array",
                             received=_describe(back))
    for name, value in zip(spec.inputs, parts):
        take(value, shapes[name], name, f"d{name}", grads)
    return PairResult(outputs, grads, tuple(problems), tuple(notes), time.perf_counter() - t0)


def _describe(value) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return type(value).__name__


# ---- dropout: the candidate draws its own mask --------------------------------------------------------

def align_case(pair: Pair, case: LayerCase) -> tuple[LayerCase, list[str]]:
    """The case the other sources must use to judge ``pair``; notes on what was read from it.

    Only dropout needs this: a candidate draws its mask from ``dropout_param['seed']``, so the
    mask is read off its forward output (kept units are the nonzero ones), and the keep
    probability's convention (p kept, or p dropped as in older CS231n versions) off the scale of
    the kept units. Other layers are returned unchanged.
    """
    if case.name != "dropout" or case.settings["mode"] != "train":
        return case, []
    x = case.arrays["x"]
    ret = _call(pair.forward, _forward_args(case), pair.label, pair.names[0])
    got = _as_tuple(ret, 2)
    out, _, _ = _read(got[0] if got else None, x.shape, "out", "out")
    if out is None:
        return case, []
    keep = (out != 0) & (x != 0)
    p = float(case.settings["p"])
    notes = [f"the dropout mask was read from {pair.names[0]}'s output ({int(keep.sum())} of {keep.size} units kept)"]
    ratios = out[keep] / x[keep]
    new = case.with_arrays(mask=keep.astype(np.float64))
    if case.settings["convention"] == "keep" and ratios.size and p < 1 and not np.isclose(p, 0.5) \
            and np.allclose(ratios, 1 / (1 - p), rtol=1e-12):
        notes.append(f"it scales kept units by 1/(1 − p): it reads p as the drop probability (CS231n before 2017), so the "
                     f"case uses convention=drop (keep probability {1 - p:g})")
        return LayerCase(new.layer, new.dims, {**new.settings, "convention": "drop"}, new.arrays, new.upstream, new.origin), notes
    return new, notes

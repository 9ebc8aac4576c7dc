"""Calling a submission's layer functions in its sandbox, and judging one case against the exact oracle.

A forward returns ``(out…, cache)`` and its backward takes the cache back. The cache is the
student's own object — arrays, dicts, closures, anything — and the sandbox's protocol carries
only numbers, lists, dicts and strings, so the **pair runs inside the worker** as one call
(``protocol.Chain``): the worker calls the forward, keeps the cache, calls the backward with the
upstream gradients and the cache, and sends back the outputs and the gradients. Nothing is kept
in the worker between calls, so a restart (a timeout, a crash, a spent CPU budget) loses nothing.

Judging reuses the layer judge unchanged: ``_SandboxPair`` is a ``layers.Pair`` whose forward
makes that one call and hands back the outputs with a token for a cache, and whose backward
hands back the gradients. ``layers.candidate.run_pair`` reads them as it reads any candidate's
(shapes, axes of length 1, a gradient of the wrong shape as a finding), ``compare_layer`` judges
and diagnoses. What came over the pipe is checked first: only numbers reach numpy (a string
``"1.5"`` or a bool is not a gradient), anything else is shown for what it is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from gradverify.errors import CandidateError
from gradverify.grading.layer_profile import LayerItem
from gradverify.grading.protocol import CallResult, Chain
from gradverify.grading.runner import wrote_inputs
from gradverify.grading.sandbox import Sandbox
from gradverify.grading.text import clean
from gradverify.layers.candidate import Pair
from gradverify.layers.case import LayerCase
from gradverify.layers.catalogue import LAYERS
from gradverify.layers.judge import LayerComparison, compare_layer, gather_layer

__all__ = ["LayerCalls", "Outcome", "try_case", "describe"]

# The oracle at 20 digits, as the layer suite uses it: a verdict needs float64's 16 and a margin.
_OPTIONS = {"exact": {"digits": 20}}
HEAVY = frozenset({"timeout", "crashed", "protocol", "budget", "cpu", "memory", "load", "setup"})


class LayerCalls:
    """The submission's sandbox, called item by item; counts calls and remembers who wrote into its inputs.

    Args:
        sandbox: the submission's sandbox (started).
    """

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.calls, self.slowest = 0, 0.0
        self.stdout: list[str] = []
        self.wrote: set[str] = set()  # items whose functions wrote into their (read-only) inputs

    def call(self, item: str, target: str, args: tuple, chain: Chain | None = None) -> CallResult:
        """Call ``target`` (and its chained backward); again with writable copies if it wrote into its inputs."""
        res = self._once(target, args, chain, writable=False)
        if wrote_inputs(res):
            self.wrote.add(item)
            res = self._once(target, args, chain, writable=True)
        return res

    def _once(self, target: str, args: tuple, chain: Chain | None, *, writable: bool) -> CallResult:
        res = self.sandbox.call(target, args, writable=writable, chain=chain)
        self.calls += 1
        self.slowest = max(self.slowest, res.elapsed)
        if res.stdout:
            self.stdout.append(res.stdout)
        return res


# ---- what came back ------------------------------------------------------------------------------

def describe(value: object) -> str:
    """A returned value's kind and form in a few words (never its content)."""
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of {value.dtype} of shape {tuple(value.shape)}"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, (list, dict, str)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"a {type(value).__name__}"


def _numeric_list(value: object, depth: int = 0) -> bool:
    if type(value) is list:
        return depth < 64 and all(_numeric_list(v, depth + 1) for v in value)
    return type(value) in (int, float)


def _unusable(words: str) -> object:
    """A stand-in numpy refuses to read as numbers, named for what came back: ``run_pair`` says
    "dx is not an array of numbers (got None)" in its own words."""
    return type(words, (), {})()


def _usable(value: object) -> object:
    """A value from the pipe as numbers for ``run_pair``, or a stand-in that names what it was."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return value
    if type(value) in (int, float):
        return value
    if type(value) is list and value and _numeric_list(value):
        try:
            return np.array(value, dtype=np.float64)
        except ValueError:
            return _unusable("a ragged list")
    return _unusable(describe(value))


def _all_none(value: object) -> bool:
    return value is None or (type(value) is list and all(v is None for v in value))


# ---- one case ----------------------------------------------------------------------------------

class _NoAnswer(Exception):
    """The call gave nothing to judge; ``_SandboxPair`` holds why (``run_pair`` turns this into a CandidateError)."""


@dataclass
class _SandboxPair:
    """A forward/backward pair that runs in the sandbox; see the module docstring."""

    calls: LayerCalls
    item: LayerItem
    case: LayerCase
    forward_only: bool = False
    exact_grads: dict | None = None  # the gradients a forward-only case hands back (CS231n asks for no backward there)
    args: tuple | None = None
    failure: CallResult | None = None
    form: str = ""  # the forward did not return (out…, cache): what it returned
    stub_forward: bool = False
    stub_backward: bool = False
    _tail: object = None

    def pair(self) -> Pair:
        return Pair(self.forward, None if self.item.backward is None else self.backward,
                    (self.item.forward, self.item.backward), label="yours")

    def forward(self, *args):
        self.args = args
        spec = LAYERS[self.item.layer]
        if self.item.backward is None:  # a loss: (loss, dx) in one call
            res = self._call(self.item.forward, args, None)
            self.stub_forward = _all_none(res.value)
            if type(res.value) is not list:
                return _usable(res.value)
            return [_usable(v) for v in res.value]
        upstream = tuple(self.case.upstream[o] for o in spec.outputs)
        chain = Chain(None if self.forward_only else self.item.backward, upstream, len(spec.outputs))
        value = self._call(self.item.forward, args, chain).value
        if not (isinstance(value, dict) and set(value) == {"head", "tail", "form"}):
            self.form = f"{self.item.forward}'s call sent back {describe(value)} instead of its outputs"
            raise _NoAnswer(self.form)
        if value["form"] is not None:
            self.form = _form_words(self.item.forward, value["form"], spec.outputs)
            self.stub_forward = isinstance(value["form"], list) and value["form"][:1] == ["NoneType"]
            raise _NoAnswer(self.form)
        head, self._tail = value["head"], value["tail"]
        if type(head) is not list or len(head) != len(spec.outputs):
            self.form = f"{self.item.forward}'s call sent back outputs of the wrong form"
            raise _NoAnswer(self.form)
        self.stub_forward = _all_none(head)
        self.stub_backward = not self.forward_only and _all_none(self._tail)
        return (*[_usable(h) for h in head], "cache (kept in the sandbox)")

    def backward(self, *_upstream_and_cache):
        n = len(LAYERS[self.item.layer].inputs)
        if self.forward_only:
            return tuple(self.exact_grads[name] for name in LAYERS[self.item.layer].inputs)
        tail = self._tail
        if type(tail) is list and len(tail) == n:
            return [_usable(v) for v in tail]
        if n == 1 or type(tail) is not list:
            return _usable(tail)
        return tail  # a list of the wrong length: run_pair says so

    def _call(self, target: str, args: tuple, chain: Chain | None) -> CallResult:
        res = self.calls.call(self.item.name, target, args, chain)
        if not res.ok:
            self.failure = res
            raise _NoAnswer(res.kind)
        return res


def _form_words(forward: str, form: object, outputs: tuple[str, ...]) -> str:
    expected = f"({', '.join(outputs)}, cache)"
    if not (isinstance(form, list) and len(form) == 2 and isinstance(form[0], str) and type(form[1]) is int):
        return f"{forward} did not return {expected}"
    kind, length = clean(form[0], 60), form[1]
    got = "None" if kind == "NoneType" else f"a {kind} of {length}" if length >= 0 else f"a value of type {kind}"
    return f"{forward} returned {got}, expected {expected}"


@dataclass
class Outcome:
    """One case tried on one item: judged, or why there was nothing to judge.

    Attributes:
        comparison: the judge's record (None when the call gave no usable answer).
        failure: the sandbox's record of a call that failed (raised, timed out, crashed …).
        said: the grader's words on an answer of the wrong form.
        args: the forward's arguments (for a second, forward-only call).
        stub_forward, stub_backward: the function returned nothing but None.
    """

    comparison: LayerComparison | None = None
    failure: CallResult | None = None
    said: str = ""
    args: tuple | None = None
    stub_forward: bool = False
    stub_backward: bool = False

    @property
    def failed(self) -> bool:
        return self.comparison is None or self.comparison.verdict != "pass"

    @property
    def heavy(self) -> bool:
        """The sandbox itself gave up on the call (time, a crash, the protocol): stop calling this item."""
        return self.failure is not None and self.failure.kind in HEAVY


_EXACT: dict[str, object] = {}
_EXACT_KEPT = 1024


def _exact(case: LayerCase):
    """The exact source of ``case``, once per process: every submission of a batch is judged on the same cases."""
    h = hashlib.sha256(repr((case.name, sorted(case.dims.items()), sorted((k, repr(v)) for k, v in case.settings.items()))).encode())
    for group in (case.arrays, case.upstream):
        for name in sorted(group):
            a = np.ascontiguousarray(group[name])
            h.update(f"{name}{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
    key = h.hexdigest()
    if key not in _EXACT:
        if len(_EXACT) >= _EXACT_KEPT:
            _EXACT.clear()
        _EXACT[key] = gather_layer(case, ("exact",), options=_OPTIONS)[1]["exact"]
    return _EXACT[key]


def try_case(calls: LayerCalls, item: LayerItem, case: LayerCase, *, forward_only: bool = False) -> Outcome:
    """Call ``item``'s functions on ``case`` in the sandbox and judge the answer against the exact partials.

    Never raises for anything the submission did (its failures are in the ``Outcome``); a failure
    inside gradverify propagates (the batch makes it this submission's grader-error).
    """
    known = None if case.name == "dropout" else {"exact": _exact(case)}  # dropout's case is read off the candidate's mask
    exact_grads = known["exact"].result.grads if forward_only and known else None
    sp = _SandboxPair(calls, item, case, forward_only=forward_only, exact_grads=exact_grads)
    try:
        with np.errstate(all="ignore"):
            comp = compare_layer(case, ("exact",), candidates={"yours": sp.pair()}, options=_OPTIONS, known=known)
    except CandidateError as exc:  # run_pair's words on a wrong form, or our _NoAnswer
        said = sp.form or ("" if sp.failure else f"{exc.what.replace(' of ' + repr('yours'), '')}"
                           + (f": expected {exc.expected}, received {exc.received}" if exc.expected else ""))
        return Outcome(failure=sp.failure, said=said, args=sp.args, stub_forward=sp.stub_forward)
    return Outcome(comp, args=sp.args, stub_forward=sp.stub_forward, stub_backward=sp.stub_backward)

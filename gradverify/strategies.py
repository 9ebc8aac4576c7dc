"""Public Hypothesis strategies: networks and problems, shrinking toward the smallest failure.

Every option is keyword-only and validated with a message that says how to fix the call. The
parameter values come from a seeded generator (``problems.random_problem``), so a failing case
shrinks in what matters — depth, widths, m, scale — and is reproduced from its printed seed.

    from hypothesis import given
    from gradverify import strategies as gst

    @given(gst.problems(gst.networks(max_depth=3, activations=("tanh", "relu"))))
    def test_my_engine(problem): ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st

from gradverify.forward import pre_activations
from gradverify.problems import random_problem
from gradverify.spec import ACTIVATIONS, OUTPUTS, REGULARIZATIONS, TEXTBOOK_LIMIT, Network, Problem

__all__ = ["Family", "networks", "problems", "scales", "SATURATING_SCALES", "ORDINARY_SCALES", "LARGE_SCALES",
           "TEXTBOOK_LIMIT", "MANY_CLASSES"]

ORDINARY_SCALES = (0.1, 0.5, 1.0, 2.0)
LARGE_SCALES = (4.0, 8.0, 16.0)  # pre-activations of about 5 to 40: large, kept under a limit by a filter
SATURATING_SCALES = (30.0, 100.0)  # pre-activations of tens to hundreds: units deep in saturation
MANY_CLASSES = 13  # output layers of 11 to 13 units: code that hard-codes the classic 10 labels fails


class InvalidArgument(ValueError):
    """A strategy was called with options that cannot work."""


def _check_range(name_lo: str, lo: int, name_hi: str, hi: int, least: int) -> None:
    for name, v in ((name_lo, lo), (name_hi, hi)):
        if not isinstance(v, int) or isinstance(v, bool) or v < least:
            raise InvalidArgument(f"{name}={v!r} must be an integer ≥ {least}. Consider {name}={least}.")
    if lo > hi:
        raise InvalidArgument(f"{name_lo}={lo} > {name_hi}={hi}: the range is empty. Consider {name_hi}={lo}.")


def _check_choice(name: str, values: Sequence[str], allowed) -> tuple[str, ...]:
    values = (values,) if isinstance(values, str) else tuple(values)
    bad = [v for v in values if v not in allowed]
    if not values or bad:
        raise InvalidArgument(f"{name}={values!r} must be a non-empty selection of {', '.join(allowed)}"
                              + (f"; {', '.join(bad)} is unknown." if bad else "."))
    return values


def networks(*, min_depth: int = 1, max_depth: int = 3, min_width: int = 1, max_width: int = 5,
             activations: Sequence[str] = ACTIVATIONS, outputs: Sequence[str] = tuple(OUTPUTS),
             lam: st.SearchStrategy[float] | float | None = None,
             regularizations: Sequence[str] = tuple(REGULARIZATIONS), reg_bias: bool | None = None,
             max_params: int | None = None, max_classes: int | None = None) -> st.SearchStrategy[Network]:
    """Feed-forward networks: depth (weight layers), widths, activations, output/loss, regularization.

    Args:
        min_depth, max_depth: number of weight layers L (1 = no hidden layer).
        min_width, max_width: width of every layer (a softmax output gets at least 2).
        activations: hidden activations to draw from (each hidden layer draws its own).
        outputs: output units (and so losses) to draw from.
        lam: λ — a fixed float, a strategy, or None for ``0`` or a small positive value.
        regularizations: scaling conventions to draw from.
        reg_bias: fixed bias regularization, or None to draw it.
        max_params: reject networks with more parameters (keeps exact evaluation quick).
        max_classes: a classification output (sigmoid or softmax) draws, one time in four, between
            ``max_width + 1`` and ``max_classes`` units (its hidden layers then at most 2 wide, so
            that it fits ``max_params``); None keeps every layer within ``max_width``.
    """
    _check_range("min_depth", min_depth, "max_depth", max_depth, 1)
    _check_range("min_width", min_width, "max_width", max_width, 1)
    activations = _check_choice("activations", activations, ACTIVATIONS)
    outputs = _check_choice("outputs", outputs, OUTPUTS)
    regularizations = _check_choice("regularizations", regularizations, REGULARIZATIONS)
    if "softmax" in outputs and max_width < 2 and len(outputs) == 1:
        raise InvalidArgument("outputs=('softmax',) needs max_width ≥ 2 (a softmax has at least two classes). Consider max_width=3.")
    if max_params is not None and (not isinstance(max_params, int) or max_params < 2):
        raise InvalidArgument(f"max_params={max_params!r} must be an integer ≥ 2 or None.")
    if max_classes is not None and (not isinstance(max_classes, int) or isinstance(max_classes, bool) or max_classes < 2):
        raise InvalidArgument(f"max_classes={max_classes!r} must be an integer ≥ 2 or None.")
    many = max_classes is not None and max_classes > max_width
    if lam is None:
        lam_st = st.sampled_from([0.0, 0.5, 1.0, 3.0])
    elif isinstance(lam, st.SearchStrategy):
        lam_st = lam
    else:
        if not isinstance(lam, (int, float)) or lam < 0:
            raise InvalidArgument(f"lam={lam!r} must be a number ≥ 0, a strategy, or None.")
        lam_st = st.just(float(lam))

    @st.composite
    def gradverify_networks(draw) -> Network:
        depth = draw(st.integers(min_depth, max_depth))
        output = draw(st.sampled_from(outputs))
        sizes = [draw(st.integers(min_width, max_width)) for _ in range(depth + 1)]
        # Drawn after the sizes, and shrinking toward "no": a failure that does not need many
        # classes shrinks as if they had never been drawn.
        if many and output != "identity" and draw(st.integers(0, 3)) == 3:
            sizes = [min(w, max(min_width, 2)) for w in sizes[:-1]] + [draw(st.integers(max_width + 1, max_classes))]
        if output == "softmax":
            sizes[-1] = max(sizes[-1], 2)
        hidden = tuple(draw(st.sampled_from(activations)) for _ in range(depth - 1))
        net = Network(tuple(sizes), hidden, output, lam=draw(lam_st), reg=draw(st.sampled_from(regularizations)),
                      reg_bias=draw(st.booleans()) if reg_bias is None else reg_bias)
        return net

    strategy = gradverify_networks()
    if max_params is not None:
        strategy = strategy.filter(lambda n: n.n_params <= max_params)
    return strategy


def scales(*, saturating: bool = False, large: bool = False) -> st.SearchStrategy[float]:
    """Parameter scales: ordinary ones, plus large ones (4, 8, 16) and saturating ones (30, 100) if asked."""
    return st.sampled_from(ORDINARY_SCALES + (LARGE_SCALES if large or saturating else ()) + (SATURATING_SCALES if saturating else ()))


def _kept(problem: Problem, kink_margin: float | None, max_preactivation: float | None) -> bool:
    """One forward pass for both filters: ReLU pre-activations at least ``kink_margin`` from 0, and
    every pre-activation within ``max_preactivation`` (None: that filter is off)."""
    net = problem.network
    if max_preactivation is None and "relu" not in net.activations:
        return True  # nothing to look at: no forward pass
    As = pre_activations(net, problem.params, problem.X)
    if kink_margin is not None and any(act == "relu" and np.min(np.abs(A)) < kink_margin for act, A in zip(net.activations, As)):
        return False
    return max_preactivation is None or max(float(np.max(np.abs(A))) for A in As) <= max_preactivation


def problems(network: Network | st.SearchStrategy[Network] | None = None, *, min_m: int = 1, max_m: int = 6,
             scale: float | st.SearchStrategy[float] | None = None, saturating: bool = False,
             avoid_kinks: bool = True, kink_margin: float = 1e-3, all_classes: bool = False,
             max_preactivation: float | None = None) -> st.SearchStrategy[Problem]:
    """Problems (parameters and data) for a network or a strategy of networks.

    Args:
        network: a fixed ``Network``, a strategy of them, or None for ``networks()``.
        min_m, max_m: batch size range.
        scale: parameter scale (fixed, strategy, or None for ``scales(saturating=…)``).
        saturating: include scales that saturate sigmoid/tanh units.
        avoid_kinks: for ReLU networks, keep every pre-activation at least ``kink_margin`` away
            from 0, so a check there is not about a non-differentiable point.
        all_classes: classification data in which every class occurs (m is then at least the number
            of classes), as in an assignment's real data set.
        max_preactivation: also draw the large scales (4, 8, 16), keeping only problems whose every
            pre-activation is at most this in magnitude (e.g. ``TEXTBOOK_LIMIT``, where the textbook
            cost is still finite); None draws no large scales and sets no bound.
    """
    _check_range("min_m", min_m, "max_m", max_m, 1)
    if max_preactivation is not None and not (isinstance(max_preactivation, (int, float)) and max_preactivation > 0):
        raise InvalidArgument(f"max_preactivation={max_preactivation!r} must be a positive number or None.")
    if not (isinstance(kink_margin, (int, float)) and kink_margin >= 0):
        raise InvalidArgument(f"kink_margin={kink_margin!r} must be a number ≥ 0.")
    if network is None:
        net_st = networks()
    elif isinstance(network, Network):
        net_st = st.just(network)
    elif isinstance(network, st.SearchStrategy):
        net_st = network
    else:
        raise InvalidArgument(f"network={network!r} must be a Network, a strategy of networks, or None. "
                              "Consider gradverify.strategies.networks(...).")
    if scale is None:
        scale_st = scales(saturating=saturating, large=max_preactivation is not None)
    elif isinstance(scale, st.SearchStrategy):
        scale_st = scale
    elif isinstance(scale, (int, float)) and scale > 0:
        scale_st = st.just(float(scale))
    else:
        raise InvalidArgument(f"scale={scale!r} must be a positive number, a strategy, or None.")

    @st.composite
    def gradverify_problems(draw) -> Problem:
        net = draw(net_st)
        classes = max(net.sizes[-1], 2) if all_classes and net.output != "identity" else 0
        m = draw(st.integers(max(min_m, classes), max(max_m, classes)))
        s = draw(scale_st)
        seed = draw(st.integers(0, 2**32 - 1))
        problem = random_problem(net, m=m, seed=seed, scale=s, all_classes=bool(classes))
        _note_reproduce(problem)
        return problem

    strategy = gradverify_problems()
    margin = kink_margin if avoid_kinks else None
    if margin is not None or max_preactivation is not None:
        strategy = strategy.filter(lambda p: _kept(p, margin, max_preactivation))
    return strategy


def largest_preactivation(problem: Problem) -> float:
    """max |a⁽ᵏ⁾| over every layer and example: how far into saturation a problem's units go."""
    return max(float(np.max(np.abs(A))) for A in pre_activations(problem.network, problem.params, problem.X))


def _note_reproduce(problem: Problem) -> None:
    """Inside a Hypothesis test, note the command that rebuilds the problem: it is printed with a
    falsifying example, so a failure says how to look at it with ``gradverify verify``."""
    from hypothesis import note
    from hypothesis.errors import InvalidArgument as HypothesisInvalidArgument

    from gradverify.reproduce import reproduce_command

    try:
        note(f"reproduce: {reproduce_command(problem)}")
    except HypothesisInvalidArgument:  # drawn outside a test (strategy.example()): nothing to note into
        pass


@dataclass(frozen=True)
class Family:
    """The family of networks and problems to draw from: what a suite, ``check_candidate`` and a test cover.

    Every field narrows the draw; the defaults cover everything gradverify knows. ``Family.lecture()``
    is the lecture's network only (sigmoid units, sigmoid outputs with cross-entropy, λ/(2m)·ΣW²,
    biases not regularized): the family a correct lecture-only engine must pass.

    Attributes:
        activations, outputs, regularizations: the names to draw from (see ``spec``).
        reg_bias: True or False to fix bias regularization, None to draw both.
        saturating: True draws parameter scales (30, 100) that saturate units past the point where
            the textbook cost overflows; False keeps every pre-activation within
            ``max_preactivation`` (large ones included); None leaves it to who is checked:
            gradverify's own sources are held to True, a candidate (a student's or user's code,
            as in ``grade``) to False.
        max_preactivation: the bound when not saturating (default: ``TEXTBOOK_LIMIT``, 30).
        max_classes: classification outputs sometimes get ``max_width + 1`` to this many units
            (default 13: beyond the classic 10 labels); None keeps outputs within ``max_width``.
        max_depth, max_width: weight layers, and the width of every layer.
        max_params: the largest network, in parameters.
        max_m: the largest batch.
        lam: a fixed λ, or None to draw 0 or a small positive value.
    """

    activations: tuple[str, ...] = ACTIVATIONS
    outputs: tuple[str, ...] = tuple(OUTPUTS)
    regularizations: tuple[str, ...] = tuple(REGULARIZATIONS)
    reg_bias: bool | None = None
    saturating: bool | None = None
    max_depth: int = 3
    max_width: int = 5
    max_params: int = 60
    max_m: int = 6
    lam: float | None = None
    max_preactivation: float = TEXTBOOK_LIMIT
    max_classes: int | None = MANY_CLASSES

    def __post_init__(self) -> None:
        for name, allowed in (("activations", ACTIVATIONS), ("outputs", tuple(OUTPUTS)), ("regularizations", tuple(REGULARIZATIONS))):
            object.__setattr__(self, name, _check_choice(name, getattr(self, name), allowed))
        if self.reg_bias is not None and not isinstance(self.reg_bias, bool):
            raise InvalidArgument(f"reg_bias={self.reg_bias!r} must be True, False or None (draw both).")
        if self.saturating is not None and not isinstance(self.saturating, bool):
            raise InvalidArgument(f"saturating={self.saturating!r} must be True, False or None (decided by who is checked).")
        if not (isinstance(self.max_preactivation, (int, float)) and not isinstance(self.max_preactivation, bool)
                and self.max_preactivation > 0):
            raise InvalidArgument(f"max_preactivation={self.max_preactivation!r} must be a positive number.")
        if self.max_classes is not None and (not isinstance(self.max_classes, int) or isinstance(self.max_classes, bool)
                                             or self.max_classes < 2):
            raise InvalidArgument(f"max_classes={self.max_classes!r} must be an integer ≥ 2 or None.")
        _check_range("min_depth", 1, "max_depth", self.max_depth, 1)
        _check_range("min_width", 1, "max_width", self.max_width, 1)
        _check_range("min_m", 1, "max_m", self.max_m, 1)
        if not isinstance(self.max_params, int) or isinstance(self.max_params, bool) or self.max_params < 2:
            raise InvalidArgument(f"max_params={self.max_params!r} must be an integer ≥ 2.")
        if self.lam is not None and (not isinstance(self.lam, (int, float)) or isinstance(self.lam, bool) or not self.lam >= 0):
            raise InvalidArgument(f"lam={self.lam!r} must be a number ≥ 0, or None to draw it.")
        if self.outputs == ("softmax",) and self.max_width < 2:
            raise InvalidArgument("outputs=('softmax',) needs max_width ≥ 2 (a softmax has at least two classes). Consider max_width=3.")

    @classmethod
    def lecture(cls, **changes) -> Family:
        """The lecture's network and cost only (``changes`` override any field)."""
        base = {"activations": ("sigmoid",), "outputs": ("sigmoid",), "regularizations": ("lambda/2m",), "reg_bias": False}
        return cls(**{**base, **changes})

    def networks(self) -> st.SearchStrategy[Network]:
        """The networks of the family."""
        return networks(max_depth=self.max_depth, max_width=self.max_width, activations=self.activations, outputs=self.outputs,
                        lam=self.lam, regularizations=self.regularizations, reg_bias=self.reg_bias, max_params=self.max_params,
                        max_classes=self.max_classes)

    def resolved(self, *, candidate: bool) -> Family:
        """The family with ``saturating`` decided: True for gradverify's own sources, False for a candidate."""
        return self if self.saturating is not None else replace(self, saturating=not candidate)

    def problems(self, network: Network | st.SearchStrategy[Network] | None = None, *,
                 all_classes: bool = False) -> st.SearchStrategy[Problem]:
        """Problems of the family (on ``network`` if given, else on the family's networks); ``all_classes``:
        every class present in the labels (m ≥ classes), the data contract of real assignments."""
        strict = bool(self.saturating)  # None draws as a candidate's family: within the textbook limit
        return problems(self.networks() if network is None else network, max_m=self.max_m, saturating=strict,
                        all_classes=all_classes, max_preactivation=None if strict else self.max_preactivation)

    def describe(self) -> str:
        """One line for people: what the family draws."""
        parts = [f"hidden {'/'.join(self.activations)}", f"outputs {'/'.join(self.outputs)}", f"regularization {' or '.join(self.regularizations)}",
                 "biases " + ({True: "regularized", False: "not regularized", None: "regularized or not"}[self.reg_bias]),
                 {True: "saturating scales included", False: f"pre-activations within ±{self.max_preactivation:g}",
                  None: "saturating scales for gradverify's own sources, pre-activations within "
                        f"±{self.max_preactivation:g} for candidates"}[self.saturating],
                 f"depth ≤ {self.max_depth}, width ≤ {self.max_width}"
                 + (f" (outputs up to {self.max_classes} classes)" if self.max_classes and self.max_classes > self.max_width else "")
                 + f", ≤ {self.max_params} parameters, m ≤ {self.max_m}"]
        if self.lam is not None:
            parts.append(f"λ = {self.lam:g}")
        return "; ".join(parts)

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
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from gradverify.forward import pre_activations
from gradverify.problems import random_problem
from gradverify.spec import ACTIVATIONS, OUTPUTS, REGULARIZATIONS, Network, Problem

__all__ = ["Family", "networks", "problems", "scales", "SATURATING_SCALES", "ORDINARY_SCALES"]

ORDINARY_SCALES = (0.1, 0.5, 1.0, 2.0)
SATURATING_SCALES = (30.0, 100.0)  # pre-activations of tens to hundreds: units deep in saturation


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
             max_params: int | None = None) -> st.SearchStrategy[Network]:
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


def scales(*, saturating: bool = False) -> st.SearchStrategy[float]:
    """Parameter scales: ordinary ones, plus saturating ones (30, 100) if asked."""
    return st.sampled_from(ORDINARY_SCALES + (SATURATING_SCALES if saturating else ()))


def _clear_of_kinks(problem: Problem, margin: float) -> bool:
    net = problem.network
    if "relu" not in net.activations:
        return True
    for act, A in zip(net.activations, pre_activations(net, problem.params, problem.X)):
        if act == "relu" and np.min(np.abs(A)) < margin:
            return False
    return True


def problems(network: Network | st.SearchStrategy[Network] | None = None, *, min_m: int = 1, max_m: int = 6,
             scale: float | st.SearchStrategy[float] | None = None, saturating: bool = False,
             avoid_kinks: bool = True, kink_margin: float = 1e-3, all_classes: bool = False) -> st.SearchStrategy[Problem]:
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
    """
    _check_range("min_m", min_m, "max_m", max_m, 1)
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
        scale_st = scales(saturating=saturating)
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
    if avoid_kinks:
        strategy = strategy.filter(lambda p: _clear_of_kinks(p, kink_margin))
    return strategy


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
        saturating: also draw parameter scales (30, 100) that saturate units.
        max_depth, max_width: weight layers, and the width of every layer.
        max_params: the largest network, in parameters.
        max_m: the largest batch.
        lam: a fixed λ, or None to draw 0 or a small positive value.
    """

    activations: tuple[str, ...] = ACTIVATIONS
    outputs: tuple[str, ...] = tuple(OUTPUTS)
    regularizations: tuple[str, ...] = tuple(REGULARIZATIONS)
    reg_bias: bool | None = None
    saturating: bool = True
    max_depth: int = 3
    max_width: int = 5
    max_params: int = 60
    max_m: int = 6
    lam: float | None = None

    def __post_init__(self) -> None:
        for name, allowed in (("activations", ACTIVATIONS), ("outputs", tuple(OUTPUTS)), ("regularizations", tuple(REGULARIZATIONS))):
            object.__setattr__(self, name, _check_choice(name, getattr(self, name), allowed))
        if self.reg_bias is not None and not isinstance(self.reg_bias, bool):
            raise InvalidArgument(f"reg_bias={self.reg_bias!r} must be True, False or None (draw both).")
        if not isinstance(self.saturating, bool):
            raise InvalidArgument(f"saturating={self.saturating!r} must be True or False.")
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
                        lam=self.lam, regularizations=self.regularizations, reg_bias=self.reg_bias, max_params=self.max_params)

    def problems(self, network: Network | st.SearchStrategy[Network] | None = None, *,
                 all_classes: bool = False) -> st.SearchStrategy[Problem]:
        """Problems of the family (on ``network`` if given, else on the family's networks); ``all_classes``:
        every class present in the labels (m ≥ classes), the data contract of real assignments."""
        return problems(self.networks() if network is None else network, max_m=self.max_m, saturating=self.saturating,
                        all_classes=all_classes)

    def describe(self) -> str:
        """One line for people: what the family draws."""
        parts = [f"hidden {'/'.join(self.activations)}", f"outputs {'/'.join(self.outputs)}", f"regularization {' or '.join(self.regularizations)}",
                 "biases " + ({True: "regularized", False: "not regularized", None: "regularized or not"}[self.reg_bias]),
                 "saturating scales included" if self.saturating else "no saturating scales",
                 f"depth ≤ {self.max_depth}, width ≤ {self.max_width}, ≤ {self.max_params} parameters, m ≤ {self.max_m}"]
        if self.lam is not None:
            parts.append(f"λ = {self.lam:g}")
        return "; ".join(parts)

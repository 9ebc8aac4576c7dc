"""Problem generators: the classic exercise's debug problem and seeded random ones.

The debug initialization is the one the classic exercise uses to check backprop: every weight
matrix Θ⁽ˡ⁾ (bias as column 0) and X are filled column-major with sin(1), sin(2), …, divided by
10; labels are 1 + (i mod K) for i = 1..m (MATLAB's 1-based labels; here 0-based: i mod K).
Deterministic and free of symmetry, so a wrong index shows up.
"""

from __future__ import annotations

import numpy as np

from gradverify.errors import InputError, SpecError
from gradverify.params import from_theta
from gradverify.spec import Network, Origin, Problem, make_problem, parse_spec

__all__ = ["debug_network", "debug_problem", "random_problem", "debug_fill"]


def debug_fill(rows: int, cols: int) -> np.ndarray:
    """``reshape(sin(1:rows*cols), rows, cols) / 10`` in MATLAB's column-major order."""
    return np.sin(np.arange(1, rows * cols + 1, dtype=np.float64)).reshape(rows, cols, order="F") / 10


def debug_network(lam: float = 3.0) -> Network:
    """The lecture's debug network: 3 inputs, 5 sigmoid hidden units, 3 sigmoid outputs."""
    return parse_spec("3-5-3", lam=lam)


def _labels(m: int, network: Network) -> np.ndarray:
    K = network.sizes[-1]
    classes = 2 if (network.output == "sigmoid" and K == 1) else K
    return np.arange(1, m + 1) % classes


def debug_problem(network: Network | None = None, m: int = 5) -> Problem:
    """The classic debug problem for ``network`` (default: 3-5-3 with λ = 3), m examples.

    For a squared-error output the targets are the one-hot labels as well.
    """
    network = network or debug_network()
    s = network.sizes
    thetas = {f"Theta{k}": debug_fill(s[k], 1 + s[k - 1]) for k in range(1, network.depth + 1)}
    X = debug_fill(m, s[0])
    y = _labels(m, network)
    if network.output == "identity":
        return make_problem(network, from_theta(thetas), X, np.eye(s[-1])[y], origin=Origin("debug"))
    return make_problem(network, from_theta(thetas), X, y=y, origin=Origin("debug"))


def _check_random_arguments(network, m, seed, scale) -> None:
    if not isinstance(network, Network):
        raise InputError("random_problem needs a Network", expected='a Network, e.g. parse_spec("3-5-3")',
                        received=type(network).__name__, fix=f"random_problem(parse_spec({network!r}))" if isinstance(network, str) else "")
    for name, value, lo in (("m", m, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise InputError(f"{name} is out of range", expected=f"an integer ≥ {lo}",
                            received=repr(value))
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating, np.integer)) or not 0 < scale < float("inf"):
        raise InputError("scale must be a finite number > 0", expected="e.g. 1 (unit pre-activations) or 30 (saturated units)",
                        received=repr(scale))


def random_problem(network: Network, *, m: int = 5, seed: int = 0, scale: float = 1.0, all_classes: bool = False) -> Problem:
    """A seeded random problem.

    Weights and biases are ``scale · N(0, 1) / √fan_in``, so ``scale = 1`` gives pre-activations
    of about unit size and a large scale (say 30) pushes units into saturation. X is N(0, 1);
    labels are uniform over the classes; squared-error targets are N(0, 1). With ``all_classes``
    every class occurs at least once (the assignment's data contract: code that sizes its one-hot
    matrix from the labels present is right on real data), which needs m ≥ the number of classes.

    Raises:
        SpecError: ``all_classes`` with fewer examples than classes.
        InputError: not a ``Network``, or ``m``, ``seed`` or ``scale`` out of range.
    """
    _check_random_arguments(network, m, seed, scale)
    rng = np.random.default_rng(seed)
    s = network.sizes
    params = {}
    for k in range(1, network.depth + 1):
        std = scale / np.sqrt(s[k - 1])
        params[f"W{k}"] = std * rng.standard_normal((s[k], s[k - 1]))
        params[f"b{k}"] = std * rng.standard_normal(s[k])
    X = rng.standard_normal((m, s[0]))
    origin = Origin("random", seed=int(seed), scale=float(scale), all_classes=bool(all_classes))
    if network.output == "identity":
        return make_problem(network, params, X, rng.standard_normal((m, s[-1])), origin=origin)
    classes = 2 if (network.output == "sigmoid" and s[-1] == 1) else s[-1]
    if all_classes:
        if m < classes:
            raise SpecError("Every class present needs at least as many examples as classes", expected=f"m ≥ {classes}",
                            received=f"m = {m}", fix=f"use -m {classes} or more")
        y = rng.permutation(np.concatenate([np.arange(classes), rng.integers(0, classes, size=m - classes)]))
        return make_problem(network, params, X, y=y, origin=origin)
    return make_problem(network, params, X, y=rng.integers(0, classes, size=m), origin=origin)

"""Exact gradients for the layers students and engineers write: CS231n's modular API.

A catalogue of layers (affine, ReLU, σ, tanh, dropout, batch/layer/group norm, naive convolution
and max pooling, SVM and softmax losses, RNN and LSTM steps and sequences, word embedding,
temporal affine and softmax loss), each checked three independent ways, as the MLP is:

- ``exact``: the forward written once as SymPy templates, partials by symbolic ``diff`` only,
  evaluated in MPFR (``layers.exact``);
- ``backprop``: hand-derived numpy ``*_forward``/``*_backward`` pairs (``layers.engine``);
- ``numeric``: finite differences of an independent numpy forward, with measured error bars
  (``layers.forward``, ``layers.numeric``);

and any candidate pair, judged per array with budgets, verdicts and diagnoses (``layers.judge``,
``layers.diagnose``).

    from gradverify.layers import random_case, compare_layer, resolve_pair
    case = random_case("conv", dims={"N": 2, "C": 3, "H": 8, "W": 8}, settings={"stride": 2})
    comp = compare_layer(case, candidates={"mine": resolve_pair(vars(my_layers), "conv")})
    print(comp.summary())
"""

from __future__ import annotations

from gradverify.layers.candidate import Pair, PairResult, ShapeProblem, align_case, resolve_pair, run_pair
from gradverify.layers.case import LayerCase, random_case, scalar_names
from gradverify.layers.catalogue import LAYERS, LayerSpec, get_layer, layer_names
from gradverify.layers.judge import SOURCE_NAMES, LayerComparison, compare_layer, gather_layer, judge_layer

__all__ = [
    "LAYERS", "LayerSpec", "get_layer", "layer_names", "LayerCase", "random_case", "scalar_names", "Pair", "PairResult",
    "ShapeProblem", "resolve_pair", "run_pair", "align_case", "SOURCE_NAMES", "LayerComparison", "compare_layer", "gather_layer",
    "judge_layer", "exact_layer_gradient", "numeric_layer_gradient", "run_layer_suite", "LayerSuiteResult",
]

_LAZY = {  # heavy imports (SymPy, Hypothesis) only when used
    "exact_layer_gradient": "gradverify.layers.exact",
    "numeric_layer_gradient": "gradverify.layers.numeric",
    "run_layer_suite": "gradverify.layers.suite",
    "LayerSuiteResult": "gradverify.layers.suite",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gradverify.layers' has no attribute {name!r}")

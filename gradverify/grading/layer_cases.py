"""The cases a layer item is graded on: fixed ones, the same for everyone, then generated ones.

**Fixed cases** are public (seeded, printed with the command that rebuilds them): the catalogue's
shapes first, then the variants where the classic bugs show — a stride of 2 and no padding for
convolution, overlapping pooling windows, ``x`` of shape (N, 2, 3) for an affine layer, zeros at
ReLU's kink, scores large enough to overflow a softmax without its max shift, saturated RNN
units, the keep probabilities of dropout and its test mode.

**Generated cases** are drawn by Hypothesis (``layers.strategies``) from the batch's secret seed,
within what the assignment defines: convolution and pooling sizes that the stride divides
(CS231n's H′ = 1 + (H + 2·pad − HH) / stride assumes it, and many solutions assert it), batch
norm in training mode (its backward is only asked for with batch statistics), dropout's keep
probability below 1 (a drop probability of 1 divides by zero in the pre-2017 convention).

Batch norm in **test mode** is checked by its forward output alone (``forward_only``): CS231n
asks for no backward pass with running statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gradverify.layers.case import LayerCase, random_case

__all__ = ["FixedCase", "FIXED", "fixed_cases", "generated_cases", "MAX_DIM"]

MAX_DIM = 3  # generated dimensions: small cases keep the oracle fast and a shrunk failure readable


@dataclass(frozen=True)
class FixedCase:
    """One fixed case of a layer: what it is, and how ``random_case`` builds it."""

    what: str
    dims: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    scale: float = 1.0
    integers: bool = False
    forward_only: bool = False


_DEFAULT = FixedCase("the catalogue's shapes")
_SATURATED = FixedCase("saturated units (inputs of scale 3)", scale=3.0)
FIXED: dict[str, tuple[FixedCase, ...]] = {
    "affine": (_DEFAULT, FixedCase("x of shape (N, 2, 3), reshaped by the layer", {"D": 6}, {"in_dims": "2x3"})),
    "relu": (_DEFAULT, FixedCase("integer inputs (some exactly 0, ReLU's kink)", integers=True, scale=2.0)),
    "sigmoid": (_DEFAULT, _SATURATED),
    "tanh": (_DEFAULT, _SATURATED),
    "dropout": (FixedCase("training, keep probability 0.5"), FixedCase("training, keep probability 0.8", settings={"p": 0.8}),
                FixedCase("test mode", settings={"mode": "test"})),
    "batchnorm": (FixedCase("training (batch statistics)"), FixedCase("training, N = D = 4", {"N": 4, "D": 4}),
                  FixedCase("test mode (running statistics), forward only", settings={"mode": "test"}, forward_only=True)),
    "layernorm": (_DEFAULT, FixedCase("N = D = 4", {"N": 4, "D": 4})),
    "conv": (FixedCase("stride 1, pad 1"),
             FixedCase("stride 2, pad 1", {"N": 2, "C": 2, "H": 7, "W": 7, "F": 2}, {"stride": 2}),
             FixedCase("no padding, a non-square input and filter", {"N": 2, "C": 2, "H": 5, "W": 6, "F": 3, "HH": 3, "WW": 2},
                       {"pad": 0})),
    "max_pool": (FixedCase("2×2 windows, stride 2"),
                 FixedCase("overlapping 3×3 windows, stride 1", {"H": 5, "W": 5},
                           {"pool_height": 3, "pool_width": 3, "stride": 1})),
    "spatial_batchnorm": (FixedCase("training (batch statistics)"),
                          FixedCase("test mode (running statistics), forward only", settings={"mode": "test"}, forward_only=True)),
    "spatial_groupnorm": (FixedCase("G = 2 groups"), FixedCase("G = 3 groups", settings={"G": 3})),
    "svm_loss": (_DEFAULT, FixedCase("more classes", {"N": 4, "C": 6})),
    "softmax_loss": (_DEFAULT, FixedCase("large scores (scale 1000: exp overflows without the max shift)", scale=1000.0)),
    "rnn_step": (_DEFAULT, _SATURATED),
    "rnn": (_DEFAULT, _SATURATED),
    "lstm_step": (_DEFAULT, _SATURATED),
    "lstm": (_DEFAULT, _SATURATED),
    "word_embedding": (_DEFAULT, FixedCase("a small vocabulary (words repeat)", {"V": 3})),
    "temporal_affine": (_DEFAULT,),
    "temporal_softmax_loss": (_DEFAULT,),
}


def fixed_cases(layer: str) -> list[tuple[FixedCase, LayerCase]]:
    """The fixed cases of ``layer``, each with its own public seed."""
    return [(fc, random_case(layer, dims=fc.dims, settings=fc.settings, seed=100 + i, scale=fc.scale, integers=fc.integers))
            for i, fc in enumerate(FIXED[layer])]


def _divides(case: LayerCase) -> bool:
    """The stride divides the swept length (CS231n's output-size formula assumes it)."""
    d, s = case.dims, case.settings
    if case.name == "conv":
        pad = int(s["pad"])
        return all((d[n] + 2 * pad - d[k]) % int(s["stride"]) == 0 for n, k in (("H", "HH"), ("W", "WW")))
    if case.name == "max_pool":
        return all((d[n] - int(s[k])) % int(s["stride"]) == 0 for n, k in (("H", "pool_height"), ("W", "pool_width")))
    return True


def generated_cases(layer: str):
    """A Hypothesis strategy of ``layer``'s cases within what the assignment defines (see the module docstring)."""
    from hypothesis import strategies as st

    from gradverify.layers.strategies import layer_cases

    if layer in ("batchnorm", "spatial_batchnorm"):
        return layer_cases(layer, settings={"mode": "train"}, max_dim=MAX_DIM)
    if layer == "dropout":
        return st.sampled_from((0.5, 0.8, 0.25)).flatmap(lambda p: layer_cases(layer, settings={"p": p}, max_dim=MAX_DIM))
    if layer in ("conv", "max_pool"):
        return layer_cases(layer, max_dim=MAX_DIM).filter(_divides)
    return layer_cases(layer, max_dim=MAX_DIM)

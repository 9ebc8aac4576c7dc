"""The layer catalogue: what each layer takes and gives, named as in CS231n. No math here.

A ``LayerSpec`` says which arrays a layer reads (differentiable inputs and parameters, in the
order its backward pass returns their gradients; non-differentiable data such as labels or a
dropout mask), what it outputs, its dimensions with defaults, its settings (stride, padding,
mode …) and the shapes all of that implies. Each gradient source reads these facts and builds
its own forward (and, for the backprop engine, its own backward) from them; nothing here is
shared arithmetic, so a wrong formula in one source shows up as a disagreement.

Shapes follow the CS231n assignments: ``x`` (N, D) for affine layers, (N, C, H, W) for
convolutional ones, ``w`` of an affine layer (D, M), of a convolution (F, C, HH, WW), and so on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gradverify.errors import InputError

__all__ = ["LayerSpec", "LAYERS", "get_layer", "layer_names", "conv_output_size"]

Shapes = dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the catalogue.

    Attributes:
        name: the catalogue name (``"conv"``, ``"batchnorm"`` …).
        title: one line for ``gradverify layer --list``.
        api: the CS231n function names: ``(forward, backward)``, or ``(loss_function, None)``
            for a loss that returns ``(loss, dx)`` at once.
        inputs: the differentiable arrays, in the order the backward pass returns their gradients.
        data: arrays the layer reads but is not differentiated in (labels, masks, running stats).
        outputs: the outputs, in the order the forward returns them (``("loss",)`` for a loss).
        dims: the dimensions and their defaults (``{"N": 2, "D": 4}``).
        settings: the settings and their defaults (stride, pad, mode, eps …).
        shape_rule: ``(dims, settings) -> {array or output name: shape}``; it validates too.
        analytic: the layer is analytic in its inputs (no max, no ReLU, no hinge).
        kinks: where it is not differentiable, in words (empty for analytic layers).
    """

    name: str
    title: str
    api: tuple[str, str | None]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dims: Mapping[str, int]
    shape_rule: Callable[[Mapping[str, int], Mapping[str, object]], Shapes]
    data: tuple[str, ...] = ()
    settings: Mapping[str, object] = field(default_factory=dict)
    analytic: bool = True
    kinks: str = ""

    @property
    def is_loss(self) -> bool:
        """A loss layer: one scalar output, the objective itself (no upstream gradient)."""
        return self.outputs == ("loss",)

    def upstream_name(self, output: str) -> str:
        """The name of the upstream gradient of ``output``: ``dout``, ``dnext_h`` …"""
        return f"d{output}"

    def shapes(self, dims: Mapping[str, int], settings: Mapping[str, object]) -> Shapes:
        """Every array's and output's shape for these dimensions and settings (validated)."""
        return self.shape_rule(dims, settings)

    def __repr__(self) -> str:
        return f"LayerSpec({self.name}: {', '.join(self.inputs)} -> {', '.join(self.outputs)})"


def _need(cond: bool, what: str, *, expected: str, received: str, fix: str) -> None:
    if not cond:
        raise InputError(what, expected=expected, received=received, fix=fix)


def conv_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output length of a convolution or pooling window sweep: 1 + (size + 2·pad − kernel) // stride."""
    return 1 + (size + 2 * pad - kernel) // stride


def _positive_int(settings: Mapping[str, object], key: str, least: int = 1) -> int:
    v = settings[key]
    _need(isinstance(v, int) and not isinstance(v, bool) and v >= least, f"The setting {key} must be an integer ≥ {least}",
          expected=f"{key} ≥ {least}", received=repr(v), fix=f"e.g. --set {key}={max(least, 1)}")
    return int(v)  # type: ignore[arg-type]


def _unit_interval(settings: Mapping[str, object], key: str, *, open_low: bool = True) -> float:
    v = settings[key]
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (0 < v <= 1 if open_low else 0 <= v <= 1)
    _need(ok, f"The setting {key} must be a probability in (0, 1]", expected="0 < p ≤ 1", received=repr(v),
          fix=f"e.g. --set {key}=0.5")
    return float(v)  # type: ignore[arg-type]


def _mode(settings: Mapping[str, object]) -> str:
    v = settings["mode"]
    _need(v in ("train", "test"), "The setting mode must be train or test", expected='"train" (batch statistics) or "test"',
          received=repr(v), fix="--set mode=train or --set mode=test")
    return str(v)


def _eps(settings: Mapping[str, object]) -> float:
    v = settings["eps"]
    _need(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0, "The setting eps must be positive",
          expected="a small positive number such as 1e-5", received=repr(v), fix="--set eps=1e-5")
    return float(v)  # type: ignore[arg-type]


# ---- shape rules ------------------------------------------------------------------------------

def _in_dims(d, s) -> tuple[int, ...]:
    """Affine layers may take x of shape (N, d1, …, dk) with d1·…·dk = D, as in CS231n."""
    shape = s.get("in_dims") or ()
    if isinstance(shape, str):
        try:
            shape = tuple(int(t) for t in shape.replace("x", ",").split(",") if t.strip())
        except ValueError:
            raise InputError("Cannot read in_dims", expected="sizes such as 2x3 (x of shape (N, 2, 3))", received=repr(shape)) from None
    shape = tuple(shape)
    if not shape:
        return (d["D"],)
    _need(all(isinstance(k, int) and k >= 1 for k in shape) and math.prod(shape) == d["D"],
          "in_dims must multiply to D", expected=f"positive sizes whose product is D = {d['D']}", received=repr(shape),
          fix="leave in_dims out, or give e.g. --shape D=6 --set in_dims=2x3")
    return shape


def _affine(d, s):
    return {"x": (d["N"], *_in_dims(d, s)), "w": (d["D"], d["M"]), "b": (d["M"],), "out": (d["N"], d["M"])}


def _elementwise(d, s):
    return {"x": (d["N"], d["D"]), "out": (d["N"], d["D"])}


def _dropout(d, s):
    p = _unit_interval(s, "p")
    _mode(s)
    _need(s["convention"] in ("keep", "drop"), "The setting convention must be keep or drop",
          expected='"keep" (p is the probability of keeping a unit, CS231n since 2017) or "drop"', received=repr(s["convention"]),
          fix="--set convention=keep")
    _need(s["convention"] == "keep" or p < 1, "Dropping every unit leaves nothing to scale", expected="p < 1 with convention=drop",
          received=f"p = {p}", fix="a smaller p")
    return {"x": (d["N"], d["D"]), "mask": (d["N"], d["D"]), "out": (d["N"], d["D"])}


def _batchnorm(d, s):
    _mode(s)
    _eps(s)
    _need(d["N"] >= 2 or s["mode"] == "test", "Batch norm in train mode needs a batch of at least 2",
          expected="N ≥ 2 (with N = 1 every x − mean is 0)", received=f"N = {d['N']}", fix="--shape N=4, or --set mode=test")
    D = d["D"]
    return {"x": (d["N"], D), "gamma": (D,), "beta": (D,), "running_mean": (D,), "running_var": (D,), "out": (d["N"], D)}


def _layernorm(d, s):
    _eps(s)
    _need(d["D"] >= 2, "Layer norm needs at least 2 features", expected="D ≥ 2", received=f"D = {d['D']}", fix="--shape D=4")
    return {"x": (d["N"], d["D"]), "gamma": (d["D"],), "beta": (d["D"],), "out": (d["N"], d["D"])}


def _conv(d, s):
    stride, pad = _positive_int(s, "stride"), _positive_int(s, "pad", 0)
    H, W, HH, WW = d["H"], d["W"], d["HH"], d["WW"]
    _need(HH <= H + 2 * pad and WW <= W + 2 * pad, "The filter is larger than the padded input",
          expected="HH ≤ H + 2·pad and WW ≤ W + 2·pad", received=f"HH={HH}, WW={WW}, H={H}, W={W}, pad={pad}",
          fix="use a smaller filter or more padding")
    Ho, Wo = conv_output_size(H, HH, stride, pad), conv_output_size(W, WW, stride, pad)
    return {"x": (d["N"], d["C"], H, W), "w": (d["F"], d["C"], HH, WW), "b": (d["F"],), "out": (d["N"], d["F"], Ho, Wo)}


def _max_pool(d, s):
    ph, pw, stride = _positive_int(s, "pool_height"), _positive_int(s, "pool_width"), _positive_int(s, "stride")
    H, W = d["H"], d["W"]
    _need(ph <= H and pw <= W, "The pooling window is larger than the input", expected="pool_height ≤ H and pool_width ≤ W",
          received=f"pool {ph}×{pw}, input {H}×{W}", fix="use a smaller window")
    Ho, Wo = conv_output_size(H, ph, stride, 0), conv_output_size(W, pw, stride, 0)
    return {"x": (d["N"], d["C"], H, W), "out": (d["N"], d["C"], Ho, Wo)}


def _spatial_batchnorm(d, s):
    _mode(s)
    _eps(s)
    _need(d["N"] * d["H"] * d["W"] >= 2 or s["mode"] == "test", "Spatial batch norm in train mode needs N·H·W ≥ 2",
          expected="N·H·W ≥ 2", received=f"N·H·W = {d['N'] * d['H'] * d['W']}", fix="a larger batch or image")
    C = d["C"]
    shape = (d["N"], C, d["H"], d["W"])
    return {"x": shape, "gamma": (C,), "beta": (C,), "running_mean": (C,), "running_var": (C,), "out": shape}


def _spatial_groupnorm(d, s):
    _eps(s)
    C, G = d["C"], _positive_int(s, "G")
    _need(C % G == 0, "The channels must split into G groups", expected=f"C divisible by G = {G}", received=f"C = {C}",
          fix="choose G dividing C, e.g. --set G=1")
    _need(C // G * d["H"] * d["W"] >= 2, "A group needs at least 2 values", expected="(C/G)·H·W ≥ 2",
          received=f"{C // G * d['H'] * d['W']}", fix="fewer groups or a larger image")
    shape = (d["N"], C, d["H"], d["W"])
    return {"x": shape, "gamma": (1, C, 1, 1), "beta": (1, C, 1, 1), "out": shape}


def _scores(d, s):
    _need(d["C"] >= 2, "A classification loss needs at least 2 classes", expected="C ≥ 2", received=f"C = {d['C']}", fix="--shape C=3")
    return {"x": (d["N"], d["C"]), "y": (d["N"],), "loss": ()}


def _rnn_step(d, s):
    N, D, H = d["N"], d["D"], d["H"]
    return {"x": (N, D), "prev_h": (N, H), "Wx": (D, H), "Wh": (H, H), "b": (H,), "next_h": (N, H)}


def _rnn(d, s):
    N, T, D, H = d["N"], d["T"], d["D"], d["H"]
    return {"x": (N, T, D), "h0": (N, H), "Wx": (D, H), "Wh": (H, H), "b": (H,), "h": (N, T, H)}


def _lstm_step(d, s):
    N, D, H = d["N"], d["D"], d["H"]
    return {"x": (N, D), "prev_h": (N, H), "prev_c": (N, H), "Wx": (D, 4 * H), "Wh": (H, 4 * H), "b": (4 * H,),
            "next_h": (N, H), "next_c": (N, H)}


def _lstm(d, s):
    N, T, D, H = d["N"], d["T"], d["D"], d["H"]
    return {"x": (N, T, D), "h0": (N, H), "Wx": (D, 4 * H), "Wh": (H, 4 * H), "b": (4 * H,), "h": (N, T, H)}


def _embedding(d, s):
    return {"x": (d["N"], d["T"]), "W": (d["V"], d["D"]), "out": (d["N"], d["T"], d["D"])}


def _temporal_affine(d, s):
    N, T, D, M = d["N"], d["T"], d["D"], d["M"]
    return {"x": (N, T, D), "w": (D, M), "b": (M,), "out": (N, T, M)}


def _temporal_softmax(d, s):
    _need(d["V"] >= 2, "A classification loss needs at least 2 classes", expected="V ≥ 2", received=f"V = {d['V']}", fix="--shape V=4")
    N, T = d["N"], d["T"]
    return {"x": (N, T, d["V"]), "y": (N, T), "mask": (N, T), "loss": ()}


_NORM = {"mode": "train", "eps": 1e-5}
_RELU_KINK = "at x = 0 (the gradient there is taken as 0, as dout·(x > 0) does)"

LAYERS: dict[str, LayerSpec] = {spec.name: spec for spec in (
    LayerSpec("affine", "fully connected: out = x·w + b (x reshaped to (N, D))", ("affine_forward", "affine_backward"),
              ("x", "w", "b"), ("out",), {"N": 3, "D": 4, "M": 5}, _affine, settings={"in_dims": ""}),
    LayerSpec("relu", "rectified linear unit: out = max(0, x)", ("relu_forward", "relu_backward"),
              ("x",), ("out",), {"N": 3, "D": 4}, _elementwise, analytic=False, kinks=_RELU_KINK),
    LayerSpec("sigmoid", "logistic unit: out = 1 / (1 + e^−x)", ("sigmoid_forward", "sigmoid_backward"),
              ("x",), ("out",), {"N": 3, "D": 4}, _elementwise),
    LayerSpec("tanh", "hyperbolic tangent unit: out = tanh(x)", ("tanh_forward", "tanh_backward"),
              ("x",), ("out",), {"N": 3, "D": 4}, _elementwise),
    LayerSpec("dropout", "inverted dropout with an explicit keep-mask: out = x·mask / q (train), x (test); q = p, or 1 − p "
              "with convention=drop",
              ("dropout_forward", "dropout_backward"), ("x",), ("out",), {"N": 3, "D": 4}, _dropout, data=("mask",),
              settings={"p": 0.5, "mode": "train", "seed": 0, "convention": "keep"}),
    LayerSpec("batchnorm", "batch normalization over the batch axis (train: batch statistics; test: running ones)",
              ("batchnorm_forward", "batchnorm_backward"), ("x", "gamma", "beta"), ("out",), {"N": 4, "D": 5}, _batchnorm,
              data=("running_mean", "running_var"), settings=dict(_NORM)),
    LayerSpec("layernorm", "layer normalization over the features of each example",
              ("layernorm_forward", "layernorm_backward"), ("x", "gamma", "beta"), ("out",), {"N": 4, "D": 5}, _layernorm,
              settings={"eps": 1e-5}),
    LayerSpec("conv", "naive convolution (cross-correlation) with stride and zero padding",
              ("conv_forward_naive", "conv_backward_naive"), ("x", "w", "b"), ("out",),
              {"N": 2, "C": 3, "H": 8, "W": 8, "F": 4, "HH": 3, "WW": 3}, _conv, settings={"stride": 1, "pad": 1}),
    LayerSpec("max_pool", "naive max pooling", ("max_pool_forward_naive", "max_pool_backward_naive"), ("x",), ("out",),
              {"N": 2, "C": 3, "H": 4, "W": 4}, _max_pool, settings={"pool_height": 2, "pool_width": 2, "stride": 2},
              analytic=False, kinks="where a pooling window's maximum is attained more than once (the gradient goes to the "
              "first maximum in row-major order, as np.argmax does)"),
    LayerSpec("spatial_batchnorm", "batch normalization per channel, over N, H and W",
              ("spatial_batchnorm_forward", "spatial_batchnorm_backward"), ("x", "gamma", "beta"), ("out",),
              {"N": 2, "C": 3, "H": 4, "W": 5}, _spatial_batchnorm, data=("running_mean", "running_var"), settings=dict(_NORM)),
    LayerSpec("spatial_groupnorm", "group normalization: per example, over each group of C/G channels and H, W",
              ("spatial_groupnorm_forward", "spatial_groupnorm_backward"), ("x", "gamma", "beta"), ("out",),
              {"N": 2, "C": 6, "H": 3, "W": 4}, _spatial_groupnorm, settings={"G": 2, "eps": 1e-5}),
    LayerSpec("svm_loss", "multiclass hinge loss, margin 1, averaged over the batch", ("svm_loss", None), ("x",), ("loss",),
              {"N": 5, "C": 4}, _scores, data=("y",), analytic=False,
              kinks="where a margin x[i,j] − x[i,y[i]] + 1 is exactly 0 (the gradient there is taken as 0)"),
    LayerSpec("softmax_loss", "softmax cross-entropy, averaged over the batch", ("softmax_loss", None), ("x",), ("loss",),
              {"N": 5, "C": 4}, _scores, data=("y",)),
    LayerSpec("rnn_step", "vanilla RNN step: next_h = tanh(x·Wx + prev_h·Wh + b)", ("rnn_step_forward", "rnn_step_backward"),
              ("x", "prev_h", "Wx", "Wh", "b"), ("next_h",), {"N": 3, "D": 10, "H": 4}, _rnn_step),
    LayerSpec("rnn", "vanilla RNN over a whole sequence from h0", ("rnn_forward", "rnn_backward"),
              ("x", "h0", "Wx", "Wh", "b"), ("h",), {"N": 2, "T": 3, "D": 4, "H": 5}, _rnn),
    LayerSpec("lstm_step", "LSTM step, gates i, f, o, g in that order along 4H",
              ("lstm_step_forward", "lstm_step_backward"), ("x", "prev_h", "prev_c", "Wx", "Wh", "b"), ("next_h", "next_c"),
              {"N": 3, "D": 5, "H": 6}, _lstm_step),
    LayerSpec("lstm", "LSTM over a whole sequence from h0 (c0 = 0)", ("lstm_forward", "lstm_backward"),
              ("x", "h0", "Wx", "Wh", "b"), ("h",), {"N": 2, "T": 3, "D": 4, "H": 5}, _lstm),
    LayerSpec("word_embedding", "word embedding lookup: out[n,t] = W[x[n,t]]",
              ("word_embedding_forward", "word_embedding_backward"), ("W",), ("out",), {"N": 2, "T": 4, "V": 5, "D": 3},
              _embedding, data=("x",)),
    LayerSpec("temporal_affine", "affine layer applied at every time step", ("temporal_affine_forward", "temporal_affine_backward"),
              ("x", "w", "b"), ("out",), {"N": 2, "T": 3, "D": 4, "M": 5}, _temporal_affine),
    LayerSpec("temporal_softmax_loss", "softmax loss at every masked time step, summed over time, averaged over N",
              ("temporal_softmax_loss", None), ("x",), ("loss",), {"N": 3, "T": 4, "V": 5}, _temporal_softmax, data=("y", "mask")),
)}


def layer_names() -> list[str]:
    """Every catalogue name, in catalogue order."""
    return list(LAYERS)


def get_layer(name: str) -> LayerSpec:
    """The catalogue entry ``name`` (CS231n function names are accepted too: ``conv_forward_naive``).

    Raises:
        InputError: no such layer.
    """
    if isinstance(name, LayerSpec):
        return name
    if not isinstance(name, str):
        raise InputError("A layer is named by a string", expected="one of " + ", ".join(LAYERS), received=type(name).__name__,
                         fix='e.g. get_layer("affine")')
    if name in LAYERS:
        return LAYERS[name]
    for spec in LAYERS.values():
        if name in spec.api:
            return spec
    raise InputError(f"No layer named {name!r}", expected="one of " + ", ".join(LAYERS), received=repr(name),
                     fix="gradverify layer --list shows the catalogue")

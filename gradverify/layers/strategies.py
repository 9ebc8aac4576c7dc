"""Public Hypothesis strategies for layer cases: shapes, strides, paddings, modes and values.

Every case is built by ``random_case`` from drawn dimensions, settings, a seed and a scale, so a
failure shrinks toward small shapes, stride 1, no padding and seed 0, and is reproduced from its
printed ``origin`` with ``gradverify layer NAME --shape … --set … --seed … --scale …``.

    from hypothesis import given
    from gradverify.layers import strategies as lst

    @given(lst.layer_cases("conv"))
    def test_my_conv(case): ...
"""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import strategies as st

from gradverify.layers.case import LayerCase, random_case
from gradverify.layers.catalogue import LAYERS, get_layer

__all__ = ["layer_cases", "any_layer_case", "ORDINARY_SCALES", "SATURATING_SCALES", "KINKED"]

ORDINARY_SCALES = (0.3, 1.0, 3.0)
SATURATING_SCALES = (10.0, 30.0)  # gates and tanh units deep in saturation
KINKED = frozenset({"relu", "max_pool", "svm_loss"})  # layers whose kinks integer inputs hit
_SATURABLE = frozenset({"sigmoid", "tanh", "rnn_step", "rnn", "lstm_step", "lstm", "softmax_loss", "temporal_softmax_loss"})


class InvalidArgument(ValueError):
    """A strategy was called with options that cannot work."""


def _dims(draw, name: str, fixed: Mapping[str, int], max_dim: int) -> dict[str, int]:
    spec = LAYERS[name]
    least = {"N": 2 if name in ("batchnorm", "spatial_batchnorm") else 1, "C": 2 if name in ("svm_loss", "softmax_loss") else 1,
             "D": 2 if name == "layernorm" else 1, "V": 2, "H": 1, "W": 1}
    out = {}
    for key in spec.dims:
        if key in fixed:
            out[key] = int(fixed[key])
        elif key in ("HH", "WW"):
            continue
        else:
            lo = least.get(key, 1)
            out[key] = draw(st.integers(lo, max(lo, max_dim)))
    if name == "spatial_groupnorm" and out["C"] * out["H"] * out["W"] < 2 and "W" not in fixed:
        out["W"] = 2  # a group needs two values to have a variance
    return out


def _conv_settings(draw, d: dict, fixed: Mapping[str, int], s: dict) -> None:
    pad = draw(st.integers(0, 2)) if "pad" not in s else int(s["pad"])
    for size, k in (("H", "HH"), ("W", "WW")):
        if k not in d:
            d[k] = fixed.get(k) or draw(st.integers(1, min(4, d[size] + 2 * pad)))
    if "stride" not in s:
        s["stride"] = draw(st.integers(1, 3))
    s["pad"] = pad


def _pool_settings(draw, d: dict, s: dict) -> None:
    for key, size in (("pool_height", "H"), ("pool_width", "W")):
        if key not in s:
            s[key] = draw(st.integers(1, min(3, d[size])))
    if "stride" not in s:
        s["stride"] = draw(st.integers(1, 3))


def _settings(draw, name: str, d: dict, fixed_dims: Mapping[str, int], given: Mapping[str, object]) -> dict:
    s = dict(given)
    if name == "conv":
        _conv_settings(draw, d, fixed_dims, s)
    elif name == "max_pool":
        _pool_settings(draw, d, s)
    if "mode" in LAYERS[name].settings and "mode" not in s:
        s["mode"] = draw(st.sampled_from(("train", "test")))
    if name == "dropout" and "p" not in s:
        s["p"] = draw(st.sampled_from((0.5, 0.8, 0.25, 1.0)))
    if "eps" in LAYERS[name].settings and "eps" not in s:
        s["eps"] = draw(st.sampled_from((1e-5, 1e-3)))
    if name == "spatial_groupnorm" and "G" not in s:
        divisors = [g for g in range(1, d["C"] + 1) if d["C"] % g == 0 and d["C"] // g * d["H"] * d["W"] >= 2]
        s["G"] = draw(st.sampled_from(divisors)) if divisors else 1
    if name == "affine" and "in_dims" not in s and d["D"] % 2 == 0 and draw(st.booleans()):
        s["in_dims"] = f"2x{d['D'] // 2}"  # x of shape (N, 2, D/2), reshaped by the layer
    return s


def layer_cases(layer: str, *, dims: Mapping[str, int] | None = None, settings: Mapping[str, object] | None = None,
                max_dim: int = 4, scales: tuple[float, ...] | None = None, kinks: bool | None = None) -> st.SearchStrategy[LayerCase]:
    """Cases of ``layer`` with drawn dimensions (1 … ``max_dim``), settings, seed and scale.

    Args:
        layer: a catalogue name.
        dims: dimensions to hold fixed (the others are drawn).
        settings: settings to hold fixed (conv's stride and pad, pooling windows, mode, p, eps, G are drawn otherwise).
        max_dim: the largest dimension drawn.
        scales: input scales to draw from (default: ordinary ones, plus saturating ones for tanh, σ and the RNNs).
        kinks: draw integer-valued inputs sometimes (ReLU zeros, pooling ties, hinge margins at 0);
            default True for the layers that have kinks.

    Raises:
        InvalidArgument: an unknown layer, or ``max_dim`` < 1.
    """
    if layer not in LAYERS:
        raise InvalidArgument(f"layer={layer!r} is not in the catalogue. Consider one of {', '.join(LAYERS)}.")
    if not isinstance(max_dim, int) or max_dim < 1:
        raise InvalidArgument(f"max_dim={max_dim!r} must be an integer ≥ 1. Consider max_dim=4.")
    fixed = dict(dims or {})
    chosen_scales = scales or (ORDINARY_SCALES + (SATURATING_SCALES if layer in _SATURABLE else ()))
    want_kinks = layer in KINKED if kinks is None else kinks

    @st.composite
    def build(draw) -> LayerCase:
        d = _dims(draw, layer, fixed, max_dim)
        s = _settings(draw, layer, d, fixed, settings or {})
        integers = want_kinks and draw(st.booleans())
        seed = draw(st.integers(0, 2 ** 16))
        scale = draw(st.sampled_from(chosen_scales)) if not integers else draw(st.sampled_from((1.0, 2.0)))
        return random_case(get_layer(layer), dims=d, settings=s, seed=seed, scale=scale, integers=integers)

    return build()


def any_layer_case(*, max_dim: int = 3, scales: tuple[float, ...] | None = None) -> st.SearchStrategy[LayerCase]:
    """A case of any catalogue layer (small shapes; ``scales`` as in ``layer_cases``)."""
    return st.sampled_from(list(LAYERS)).flatmap(lambda name: layer_cases(name, max_dim=max_dim, scales=scales))

"""A layer case: one layer with concrete dimensions, settings, arrays and upstream gradients.

The scalar objective every source differentiates is J = Σₖ Σ dout⁽ᵏ⁾ ⊙ out⁽ᵏ⁾ over the layer's
outputs (``dout`` for ``out``; ``dnext_h`` and ``dnext_c`` for an LSTM step), or the loss itself
for a loss layer. Its gradient with respect to an input is exactly what the layer's backward pass
returns for that upstream gradient.

``random_case`` draws a reproducible case from a seed; ``LayerCase.with_arrays`` replaces arrays
(validated). Arrays are float64, except the integer labels ``y`` and indices ``x`` of a word
embedding, and the 0/1 masks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from gradverify.errors import InputError
from gradverify.layers.catalogue import LayerSpec, get_layer

__all__ = ["LayerCase", "random_case", "parse_settings", "parse_dims", "scalar_names"]

#: The most scalars a case may hold (inputs, data and upstream gradients together). The exact oracle keeps a
#: ball and an adjoint for every scalar and every operation on it (hundreds of bytes each, and seconds per few
#: thousand partials): a million-scalar layer would exhaust memory long before it finished.
MAX_CASE_SCALARS = 1_000_000

_INTEGER = {("svm_loss", "y"), ("softmax_loss", "y"), ("temporal_softmax_loss", "y"), ("word_embedding", "x")}


@dataclass(frozen=True, eq=False)
class LayerCase:
    """One layer on concrete data.

    Attributes:
        layer: the catalogue entry.
        dims: every dimension (``{"N": 2, "D": 4}``).
        settings: every setting, defaults filled in.
        arrays: the inputs (float64) and the data arrays, by name.
        upstream: the upstream gradient of every output, by output name (empty for a loss).
        origin: how the case was made (``"random seed=0 scale=1"``), for messages and reproduction.
    """

    layer: LayerSpec
    dims: Mapping[str, int]
    settings: Mapping[str, object]
    arrays: Mapping[str, np.ndarray]
    upstream: Mapping[str, np.ndarray] = field(default_factory=dict)
    origin: str = ""

    @property
    def name(self) -> str:
        return self.layer.name

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self.layer.shapes(self.dims, self.settings)

    def layout(self) -> list[tuple[str, tuple[int, ...]]]:
        """The differentiable inputs and their shapes, in the backward pass's order."""
        shapes = self.shapes()
        return [(n, shapes[n]) for n in self.layer.inputs]

    @property
    def size(self) -> int:
        """The number of scalar partials (all differentiable inputs)."""
        return sum(math.prod(s) for _, s in self.layout())

    def flat(self, grads: Mapping[str, np.ndarray]) -> np.ndarray:
        """Gradients by input name → one float64 vector in layout order (C order)."""
        return np.concatenate([np.asarray(grads[n], dtype=np.float64).reshape(-1) for n, _ in self.layout()]) if self.size else np.zeros(0)

    def unflat(self, vec: np.ndarray) -> dict[str, np.ndarray]:
        """The inverse of ``flat``."""
        out, start = {}, 0
        for n, shape in self.layout():
            k = math.prod(shape)
            out[n] = np.asarray(vec[start:start + k]).reshape(shape)
            start += k
        return out

    def slices(self) -> dict[str, slice]:
        """Where each input's partials sit in the flat vector."""
        out, start = {}, 0
        for n, shape in self.layout():
            k = math.prod(shape)
            out[n] = slice(start, start + k)
            start += k
        return out

    def with_arrays(self, origin: str | None = None, **arrays) -> LayerCase:
        """A copy with some arrays (or upstream gradients, by their ``d…`` name) replaced, validated."""
        new_arrays, new_up = dict(self.arrays), dict(self.upstream)
        for key, value in arrays.items():
            outs = {self.layer.upstream_name(o): o for o in self.layer.outputs}
            if key in outs and not self.layer.is_loss:
                new_up[outs[key]] = value
            else:
                new_arrays[key] = value
        return _validated(self.layer, dict(self.dims), dict(self.settings), new_arrays, new_up,
                          self.origin if origin is None else origin)

    def describe(self) -> str:
        """One line: layer, dimensions, settings."""
        dims = ", ".join(f"{k}={v}" for k, v in self.dims.items())
        sets = ", ".join(f"{k}={v}" for k, v in self.settings.items() if v not in ("", None))
        return f"{self.layer.name} ({dims}{'; ' + sets if sets else ''})"

    def __repr__(self) -> str:
        return f"LayerCase({self.describe()}{', ' + self.origin if self.origin else ''})"


def scalar_names(case: LayerCase) -> list[str]:
    """A name for every scalar partial, in flat order: ``x[0,1]``, ``w[2,3]``, ``b[0]``."""
    names = []
    for n, shape in case.layout():
        for idx in np.ndindex(*shape):
            names.append(f"{n}[{','.join(map(str, idx))}]" if shape else n)
    return names


# ---- building cases -----------------------------------------------------------------------------

def _convert(key: str, value, default):
    """A setting given as text (from the command line) converted to its default's type."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            return value.lower() in ("1", "true", "yes")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise InputError(f"Cannot read the setting {key}={value!r}", expected=f"a {type(default).__name__} such as {default!r}",
                         received=repr(value)) from None
    return value


def parse_settings(layer: LayerSpec, given: Mapping[str, object] | None) -> dict[str, object]:
    """The layer's settings with ``given`` applied over the defaults (text converted, unknown keys refused)."""
    out = dict(layer.settings)
    for key, value in (given or {}).items():
        if key not in out:
            raise InputError(f"{layer.name} has no setting {key!r}",
                             expected="one of " + (", ".join(out) or "(none: this layer has no settings)"),
                             received=repr(key), fix="gradverify layer --list shows each layer's settings")
        out[key] = _convert(key, value, layer.settings[key])
    return out


def parse_dims(layer: LayerSpec, given: Mapping[str, object] | None) -> dict[str, int]:
    """The layer's dimensions with ``given`` applied over the defaults (validated positive integers)."""
    out = dict(layer.dims)
    for key, value in (given or {}).items():
        if key not in out:
            raise InputError(f"{layer.name} has no dimension {key!r}", expected="some of " + ", ".join(out), received=repr(key),
                             fix=f"e.g. --shape {','.join(f'{k}={v}' for k, v in layer.dims.items())}")
        try:
            v = int(value)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            v = -1
        if v < 1 or (isinstance(value, float) and value != v):
            raise InputError(f"The dimension {key} must be a positive integer", received=repr(value), fix=f"e.g. {key}={layer.dims[key]}")
        out[key] = v
    return out


def _validated(layer: LayerSpec, dims, settings, arrays, upstream, origin) -> LayerCase:
    shapes = layer.shapes(dims, settings)
    clean: dict[str, np.ndarray] = {}
    for name in layer.inputs + layer.data:
        if name in ("running_mean", "running_var") and settings.get("mode") == "train" and name not in arrays:
            arrays[name] = np.zeros(shapes[name]) if name == "running_mean" else np.ones(shapes[name])
        if name not in arrays:
            raise InputError(f"The {layer.name} case misses the array {name!r}", expected=", ".join(layer.inputs + layer.data),
                             received=", ".join(arrays))
        a = np.asarray(arrays[name])
        if a.shape != shapes[name]:
            raise InputError(f"{name} has the wrong shape for {layer.name}", expected=str(shapes[name]), received=str(a.shape),
                             fix="check the dimensions (--shape) against the arrays")
        if (layer.name, name) in _INTEGER:
            limit = dims["C"] if "C" in dims and name == "y" else dims.get("V", 0)
            if not np.issubdtype(a.dtype, np.integer) or (a.size and (a.min() < 0 or a.max() >= limit)):
                raise InputError(f"{name} must hold integers from 0 to {limit - 1}", received=f"{a.dtype} values "
                                 f"{a.min() if a.size else ''}..{a.max() if a.size else ''}")
            clean[name] = a.astype(np.int64)
            continue
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise InputError(f"{name} holds NaN or infinite values", fix="give finite arrays")
        if name in ("mask",) and not np.all((a == 0) | (a == 1)):
            raise InputError("A mask holds only 0 and 1", received=f"values {np.unique(a)[:5]}")
        if name == "running_var" and np.any(a + float(settings["eps"]) <= 0):  # type: ignore[arg-type]
            raise InputError("running_var + eps must be positive", received=f"min {a.min()}")
        clean[name] = a
    ups: dict[str, np.ndarray] = {}
    if not layer.is_loss:
        for out in layer.outputs:
            u = np.asarray(upstream.get(out), dtype=np.float64) if out in upstream else None
            if u is None or u.shape != shapes[out] or not np.all(np.isfinite(u)):
                raise InputError(f"The upstream gradient {layer.upstream_name(out)} is missing or malformed",
                                 expected=f"finite values of shape {shapes[out]}", received="none" if u is None else str(u.shape))
            ups[out] = u
    return LayerCase(layer, dims, settings, clean, ups, origin)


def random_case(layer: str | LayerSpec, *, dims: Mapping[str, object] | None = None, settings: Mapping[str, object] | None = None,
                seed: int = 0, scale: float = 1.0, integers: bool = False) -> LayerCase:
    """A reproducible random case: inputs ~ N(0, scale²), upstream ~ N(0, 1), labels and masks uniform.

    Args:
        layer: a catalogue name or entry.
        dims, settings: overrides of the layer's defaults (text values are converted).
        seed: the random seed; the same seed gives the same arrays.
        scale: the standard deviation of the inputs and parameters (large values saturate units).
        integers: round the inputs to whole numbers: ReLU inputs at 0, ties in pooling windows and
            hinge margins at 0 become common — the layers' kinks.

    Returns:
        A ``LayerCase``; its ``origin`` records seed and scale.

    Raises:
        InputError: unknown dimensions or settings, or a combination that has no valid shape.
    """
    spec = get_layer(layer)  # type: ignore[arg-type]
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise InputError("scale must be a positive number", received=repr(scale), fix="e.g. scale=1")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError("seed must be an integer ≥ 0", received=repr(seed), fix="e.g. seed=0")
    d, s = parse_dims(spec, dims), parse_settings(spec, settings)
    shapes = spec.shapes(d, s)
    scalars = sum(math.prod(shapes[n]) for n in spec.inputs + spec.data) + sum(math.prod(shapes[o]) for o in spec.outputs)
    if scalars > MAX_CASE_SCALARS:
        shown = ", ".join(f"{k}={v}" for k, v in d.items())
        raise InputError(f"The {spec.name} case {shown} is too large to verify exactly: {scalars:,} scalars", expected=f"at most "
                         f"{MAX_CASE_SCALARS:,} scalars (inputs, data and upstream gradients)", received=f"{scalars:,}",
                         fix="use smaller dimensions: a gradient bug shows on a few examples and channels as well as on many")
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for name in spec.inputs + spec.data:
        shape = shapes[name]
        if (spec.name, name) in _INTEGER:
            high = d["C"] if name == "y" and "C" in d else d["V"]
            arrays[name] = rng.integers(0, high, size=shape)
        elif name == "mask" and spec.name == "dropout":
            keep = float(s["p"]) if s["convention"] == "keep" else 1 - float(s["p"])  # type: ignore[arg-type]
            arrays[name] = (rng.random(shape) < keep).astype(np.float64)
        elif name == "mask":
            arrays[name] = (rng.random(shape) < 0.75).astype(np.float64)
        elif name == "running_var":
            arrays[name] = rng.uniform(0.5, 2.0, size=shape)
        elif name == "running_mean":
            arrays[name] = rng.standard_normal(shape)
        else:
            values = scale * rng.standard_normal(shape)
            arrays[name] = np.round(values) if integers else values
    upstream = {o: rng.standard_normal(shapes[o]) for o in spec.outputs if not spec.is_loss}
    return _validated(spec, d, s, arrays, upstream, f"random seed={seed} scale={scale:g}" + (" integers" if integers else ""))

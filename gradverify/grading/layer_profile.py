"""The ``layers-api`` assignment profile: CS231n-style forward/backward pairs, one rubric item per layer.

A submission is a ``layers.py`` (or ``rnn_layers.py`` …) written against the modular API:
``*_forward(x, …) -> (out, cache)`` and ``*_backward(dout, cache) -> (dx, dw, …)``, losses as
``svm_loss(x, y) -> (loss, dx)``. Every layer of the catalogue (``gradverify.layers.LAYERS``) is a
rubric item under its catalogue name, called by its CS231n names (``conv_forward_naive`` /
``conv_backward_naive``, ``lstm_step_forward`` / ``lstm_step_backward`` …), plus
``batchnorm_alt`` (``batchnorm_forward`` with ``batchnorm_backward_alt``). Caches are opaque: the
pair runs inside the sandbox (``protocol.Chain``), only outputs and gradients come back.

Settings (``--set KEY=VALUE``):

- ``missing``: what a layer the submission does not attempt (no forward, or a stub that returns
  None or raises ``NotImplementedError``) is worth: ``exclude`` (default: not a rubric item, the
  maximum score counts only the layers attempted — a ``layers.py`` of one assignment is not
  marked down for the layers of another) or ``zero`` (an item of 0 points);
- ``inputs``: a pair that writes into its input arrays (``x``, the parameters or ``dout``, perhaps
  through its cache): ``note`` (default: said in the item's message) or ``fail`` (the item fails).

A TOML profile narrows and weighs the rubric::

    base = "layers-api"
    name = "cs231n-assignment2"
    items = ["affine", "relu", "batchnorm", "dropout", "conv", "max_pool"]   # default: every item
    [settings]
    missing = "zero"
    [rubric]                      # points per item (default 10)
    conv = 20
    [functions]                   # other names: a forward, a backward or a stem, as in `gradverify layer --candidate`
    conv = "conv_forward"
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from gradverify.errors import SpecError
from gradverify.profiles import SCIENTIFIC_PACKAGES
from gradverify.layers.catalogue import LAYERS

__all__ = ["LayerItem", "LayerProfile", "LAYERS_API", "ITEMS", "DEFAULT_POINTS", "load_layer_profile", "function_names"]

DEFAULT_POINTS = 10.0
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


@dataclass(frozen=True)
class LayerItem:
    """One rubric item: a catalogue layer and the functions that implement it.

    Attributes:
        name: the item's name (the catalogue name, or ``batchnorm_alt``).
        layer: the catalogue layer it is judged as.
        forward: the forward's name (a loss's only function).
        backward: the backward's name; None for a loss, which returns ``(loss, dx)`` at once.
        shares_forward: the forward belongs to another item (``batchnorm_alt``): the item is
            attempted only when its backward exists.
    """

    name: str
    layer: str
    forward: str
    backward: str | None
    shares_forward: bool = False

    @property
    def functions(self) -> str:
        """``conv_forward_naive / conv_backward_naive``, or the loss's one name."""
        return self.forward if self.backward is None else f"{self.forward} / {self.backward}"


ITEMS: dict[str, LayerItem] = {name: LayerItem(name, name, *spec.api) for name, spec in LAYERS.items()}
ITEMS["batchnorm_alt"] = LayerItem("batchnorm_alt", "batchnorm", "batchnorm_forward", "batchnorm_backward_alt", shares_forward=True)


def function_names(item: LayerItem, given: str) -> LayerItem:
    """``item`` called by other names: ``given`` is a forward, a backward (``…_alt`` too) or a stem.

    Raises:
        SpecError: ``given`` is not a Python name.
    """
    if not isinstance(given, str) or not _NAME.match(given):
        raise SpecError(f"The function name {given!r} for {item.name} is not a Python name",
                        expected="a name such as conv_forward, conv_backward or conv", received=repr(given))
    if item.backward is None:
        return replace(item, forward=given)
    if "backward" in given:
        forward = given.replace("backward", "forward")
        return replace(item, forward=forward[:-4] if forward.endswith("_alt") else forward, backward=given)
    if "forward" in given:
        return replace(item, forward=given, backward=given.replace("forward", "backward"))
    return replace(item, forward=f"{given}_forward", backward=f"{given}_backward")


@dataclass(frozen=True)
class LayerProfile:
    """How to grade a layers.py: the items, their points and names, and the settings. See the module docstring.

    It offers what the batch and the command line read of a ``profiles.Profile`` (``name``,
    ``rubric``, ``source``, ``resolve``…); ``grader.grade_submission`` hands it to ``layer_grader``.
    """

    name: str
    description: str
    items: tuple[LayerItem, ...]
    rubric: dict  # item name -> points, in item order
    settings: dict = field(default_factory=lambda: {"missing": "exclude", "inputs": "note"})
    choices: dict = field(default_factory=lambda: {"missing": ("exclude", "zero"), "inputs": ("note", "fail")})
    packages: tuple[str, ...] = SCIENTIFIC_PACKAGES  # distributions a submission may import (where installed)
    source: str = ""  # the TOML file it came from

    @property
    def names(self) -> tuple[str, ...]:
        """The forward names: a folder's entry file is the one that defines one of them."""
        return tuple(dict.fromkeys(i.forward for i in self.items))

    @property
    def target(self) -> str:
        return self.items[0].forward if self.items else ""

    @property
    def signature(self) -> str:
        return "*_forward(x, …) -> (out, cache) and *_backward(dout, cache) -> (dx, …) pairs; losses f(x, y) -> (loss, dx)"

    def item(self, name: str) -> LayerItem:
        return next(i for i in self.items if i.name == name)

    def resolve(self, overrides: dict | None = None) -> dict:
        """The settings with ``overrides`` applied and validated.

        Raises:
            SpecError: an unknown setting or value.
        """
        out = dict(self.settings)
        for key, value in (overrides or {}).items():
            if key not in self.choices:
                raise SpecError(f"Profile {self.name!r} has no setting {key!r}", expected="one of " + ", ".join(self.choices),
                                received=repr(key), fix="the README's layers-api section lists the settings")
            if value not in self.choices[key]:
                raise SpecError(f"Setting {key}={value!r} is not valid for profile {self.name!r}",
                                expected="one of " + ", ".join(self.choices[key]), received=repr(value))
            out[key] = value
        return out


LAYERS_API = LayerProfile("layers-api", "CS231n's modular layers: *_forward/*_backward pairs in a layers.py, one rubric item per layer",
                          tuple(ITEMS.values()), {name: DEFAULT_POINTS for name in ITEMS})


def load_layer_profile(path: str | Path, data: dict) -> LayerProfile:
    """A TOML profile with ``base = "layers-api"`` (``data`` is the parsed file).

    Keys: ``base``, ``name``, ``items`` (the rubric items, in order), ``[settings]``, ``[rubric]``
    (points per item), ``[functions]`` (other function names per item) and ``packages`` (the
    distributions a submission may import; default numpy, scipy, pandas, scikit-learn, matplotlib).

    Raises:
        SpecError: an unknown key, item, setting or function name, or points that are not ≥ 0.
    """
    path = Path(path)
    known = {"base", "name", "items", "settings", "rubric", "functions", "packages"}
    if set(data) - known:
        raise SpecError(f"The profile {path} has keys a layers-api profile does not know", expected="keys among " + ", ".join(sorted(known)),
                        received=", ".join(sorted(set(data) - known)))
    names = data.get("items", list(ITEMS))
    tables = {key: data.get(key, {}) for key in ("settings", "rubric", "functions")}
    if not isinstance(names, list) or not names or not all(isinstance(tables[k], dict) for k in tables):
        raise SpecError(f"The profile {path} is malformed", expected="items = a non-empty list of names; settings, rubric and "
                        "functions as tables", received=f"items = {names!r}")
    unknown = [n for n in [*names, *tables["rubric"], *tables["functions"]] if n not in ITEMS]
    if unknown or len(set(names)) != len(names):
        raise SpecError(f"The profile {path} names items that are not layers (or one twice)", expected="some of " + ", ".join(ITEMS),
                        received=", ".join(map(repr, unknown)) or "a repeated item", fix="gradverify layer --list shows the catalogue")
    items = tuple(function_names(ITEMS[n], tables["functions"][n]) if n in tables["functions"] else ITEMS[n] for n in names)
    rubric = {}
    for n in names:
        points = tables["rubric"].get(n, DEFAULT_POINTS)
        if isinstance(points, bool) or not isinstance(points, (int, float)) or not points >= 0:
            raise SpecError(f"Bad rubric entry {n} = {points!r} in {path}", expected="points ≥ 0")
        rubric[n] = float(points)
    settings = LAYERS_API.resolve(tables["settings"])
    packages = data.get("packages", list(LAYERS_API.packages))
    if not isinstance(packages, list) or not all(isinstance(p, str) and _PACKAGE.match(p) for p in packages):
        raise SpecError(f"Bad packages in {path}", expected="a list of distribution names, e.g. [\"numpy\", \"scipy\"]",
                        received=repr(packages))
    return LayerProfile(str(data.get("name", path.stem)), LAYERS_API.description, items, rubric, settings,
                        packages=tuple(packages), source=str(path.resolve()))


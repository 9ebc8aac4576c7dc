"""The cases a candidate is checked on: one definition for ``suite``, ``check_candidate`` and ``grade``.

A profile's case space is its networks (depth, widths, output and conventions from the profile,
the rest from a ``strategies.Family``), the data contract (every class present), how far into
saturation the parameters go, and a few **extremes** drawn from the seed, judged after the search,
that it would only sometimes reach: an output layer of more classes than the classic exercise's 10, and units
driven as far as the textbook cost stays finite (``strategies.TEXTBOOK_LIMIT``). ``grade`` and
``suite --profile`` build the same space from the same profile, so they agree on the same code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from gradverify.problems import random_problem
from gradverify.profiles import Profile
from gradverify.spec import Network, Problem
from gradverify.strategies import Family, largest_preactivation, networks, problems

__all__ = ["CaseSpace", "case_space"]

_EXTREME_SHAPES = (3, 5)  # input and hidden widths of the extremes: the debug network's
_BEYOND_CLASSIC = 11  # the classic exercise has 10 labels: the many-classes extreme has more
_NEAR_LIMIT = 0.75  # the large-pre-activation extreme reaches between 0.75 and 1 times the limit


@dataclass(frozen=True)
class CaseSpace:
    """What is drawn, for whom.

    Attributes:
        family: the family drawn from, ``saturating`` decided.
        profile: the assignment profile whose networks are drawn (None: the family's own networks).
        settings: the profile's resolved settings.
        candidate: True for a candidate's space, False for gradverify's own sources.
    """

    family: Family
    profile: Profile | None = None
    settings: dict = field(default_factory=dict)
    candidate: bool = True

    @property
    def all_classes(self) -> bool:
        """The data contract: every class present in generated labels (as in an assignment's data)."""
        return bool(self.profile is not None and self.profile.all_classes)

    def _networks(self):
        profile, family = self.profile, self.family
        if profile is None or profile.name == "native":
            return family.networks()
        sample = profile.network((2, 2, 2), 1.0, self.settings)
        nets = networks(min_depth=profile.depth[0], max_depth=max(profile.depth[0], min(profile.depth[1], family.max_depth)),
                        min_width=profile.width[0], max_width=max(profile.width[0], min(profile.width[1], family.max_width)),
                        activations=sample.activations[:1] or ("sigmoid",), outputs=(sample.output,), regularizations=(sample.reg,),
                        reg_bias=sample.reg_bias, max_params=family.max_params, max_classes=family.max_classes, lam=family.lam)
        return nets.map(lambda n: profile.network(n.sizes[:-1] + (max(n.sizes[-1], profile.min_outputs),), n.lam, self.settings))

    def strategy(self):
        """The Hypothesis strategy of problems (imports Hypothesis)."""
        strict = bool(self.family.saturating)
        return problems(self._networks(), max_m=self.family.max_m, saturating=strict, all_classes=self.all_classes,
                        max_preactivation=None if strict else self.family.max_preactivation)

    def extremes(self, seed: int) -> tuple[Problem, ...]:
        """The cases judged after a search that passed, drawn from ``seed``: many classes, and units pushed to the limit.

        For gradverify's own sources (``candidate`` False) there are none: their search already
        draws saturating scales.
        """
        if not self.candidate:
            return ()
        out = []
        for i, (net, many) in enumerate(self._extreme_networks(seed)):
            own = _derive(seed, f"extreme-{i}")
            if many:  # many classes, ordinary scale
                out.append(random_problem(net, m=net.sizes[-1] + 1, seed=own, scale=1.0, all_classes=True))
            else:
                near = _near_limit(net, own, self.family.max_preactivation, all_classes=self.all_classes or net.output != "identity")
                out += [near] if near is not None else []
        return tuple(out)

    def _extreme_networks(self, seed: int) -> list[tuple[Network, bool]]:
        """(network, whether it is the many-classes one): per output the family draws (the profile's one), a
        debug-shaped network and, for a classification output, a narrow one with many classes."""
        family, lam = self.family, self.family.lam if self.family.lam is not None else 1.0
        profiled = self.profile is not None and self.profile.name != "native"
        if profiled:
            lo, hi = self.profile.depth
            depth, outputs = (2 if lo <= 2 <= hi else lo), (None,)  # the profile fixes units and output
        else:
            depth, outputs = min(2, family.max_depth), family.outputs

        def make(sizes: tuple, output: str | None) -> Network:
            if profiled:
                return self.profile.network(sizes, lam, self.settings)
            hidden = tuple(family.activations[(seed + k) % len(family.activations)] for k in range(len(sizes) - 2))
            return Network(sizes, hidden, output, lam=lam, reg=family.regularizations[0], reg_bias=bool(family.reg_bias))

        classes = self._many_classes(seed)
        nets = []
        for output in outputs:
            near = make((_EXTREME_SHAPES[0], *(_EXTREME_SHAPES[1],) * (depth - 1), 3), output)
            nets.append((near, False))
            if classes and near.output != "identity":
                nets.append((make((_EXTREME_SHAPES[0], *(2,) * (depth - 1), classes), output), True))
        return nets

    def _many_classes(self, seed: int) -> int:
        """The many-classes extreme's output width (beyond the classic 10 labels), or 0 when the family draws none."""
        f = self.family
        if not f.max_classes or f.max_classes <= f.max_width:
            return 0
        least = min(max(f.max_width + 1, _BEYOND_CLASSIC), f.max_classes)
        return least + _derive(seed, "classes") % (f.max_classes - least + 1)

    def describe(self) -> str:
        """One line for people: the family, and the extremes judged after the search."""
        text = self.family.describe()
        if self.profile is not None and self.profile.name != "native":  # the profile fixes units, loss and conventions
            f, (lo, hi) = self.family, self.profile.depth
            depth = f"{lo}" if lo == min(hi, f.max_depth) else f"{lo} to {max(lo, min(hi, f.max_depth))}"
            text = "; ".join([f"the {self.profile.name} profile's networks: {depth} weight layer(s), widths ≤ {f.max_width}"
                              + (f" (outputs up to {f.max_classes} classes)" if f.max_classes and f.max_classes > f.max_width else "")
                              + f", ≤ {f.max_params} parameters, m ≤ {f.max_m}" + (", every class present" if self.all_classes else ""),
                              "saturating scales included" if f.saturating else f"pre-activations within ±{f.max_preactivation:g}"])
        if self.candidate:
            text += (f"; then cases with up to {self.family.max_classes} classes and with pre-activations near "
                     f"±{self.family.max_preactivation:g}" if self.family.max_classes else
                     f"; then cases with pre-activations near ±{self.family.max_preactivation:g}")
        return text


def case_space(profile: Profile | None = None, settings: dict | None = None, *, family: Family | None = None,
               candidate: bool = True) -> CaseSpace:
    """The case space of ``profile`` (None: the family's own networks) for a candidate or for gradverify's own sources.

    Args:
        profile: a resolved ``Profile`` or None.
        settings: the profile's settings (resolved by the caller).
        family: what to draw from (default ``Family()``); its ``saturating`` None is decided here.
        candidate: whether a candidate is checked (textbook-finite cases) or gradverify's own sources (saturating).
    """
    family = (family if family is not None else Family()).resolved(candidate=candidate)
    return CaseSpace(family, profile, dict(settings or {}), candidate)


def _derive(seed: int, label: str) -> int:
    """A seed of its own for one extreme, a one-way function of the suite's seed."""
    return int.from_bytes(hashlib.sha256(f"gradverify-space/{seed}/{label}".encode()).digest()[:4], "little")


def _near_limit(net: Network, seed: int, limit: float, *, all_classes: bool) -> Problem | None:
    """A random problem on ``net`` whose largest |pre-activation| lies in [0.75, 1]·limit (its scale
    found by bisection and rounded to 3 significant digits, so that the reproduce command is short)."""
    m = max(5, net.sizes[-1]) if all_classes else 5

    def peak(scale: float) -> tuple[float, Problem]:
        p = random_problem(net, m=m, seed=seed, scale=scale, all_classes=all_classes)
        return largest_preactivation(p), p

    lo, hi = 1e-3, 1e4
    for _ in range(60):
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if peak(mid)[0] <= limit else (lo, mid)
    scale = float(f"{lo:.3g}")
    while scale > 1e-3:
        value, problem = peak(scale)
        if value <= limit:
            return problem if value >= _NEAR_LIMIT * limit else None
        scale = float(f"{scale * 0.99:.3g}")
    return None

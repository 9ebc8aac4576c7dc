"""How many bits: certify every value from its ball, and raise the precision until it is.

A pass at p bits returns balls. A value is *certified* when its ball certifies ``digits``
significant digits (``balls.certified_digits``), or is exact. A value whose whole ball lies below
2^-1100 is *settled*: it rounds to 0.0 in float64 whatever its digits, and is named in the notes
when it is not certified. Every other value asks for more bits:

- a value with some certified digits asks for exactly the bits it lacks (plus a margin);
- a value whose ball contains 0 (it cancelled at this precision: 1 − tanh²(700), log(1 + e⁻¹³⁷),
  a cost below ~1e−59) asks, on small problems, at once for the precision that either resolves it
  or settles it below 2^-1100; on large problems for twice the bits, so a few passes find it.

The cost is judged like every partial. At most ``MAX_PASSES`` passes and ``MAX_BITS`` bits; what
is still not certified then is reported with the digits it has.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from flint import arb

from gradverify.symbolic.balls import NEGLIGIBLE_BITS, certified_digits, precision
from gradverify.symbolic.evaluation import Evaluation

__all__ = ["GUARD_BITS", "MAX_BITS", "MAX_PASSES", "UNDECIDED_BITS", "Assessment", "assess", "settle", "start_bits"]

GUARD_BITS = 32
MAX_BITS = 1 << 15
MAX_PASSES = 6
#: A condition still undecided at this precision compares a value within 2^-UNDECIDED_BITS of its
#: boundary (below 1e-600, far under float64's smallest number): the climb stops there and the
#: caller takes it as on the boundary, rather than climb to MAX_BITS for values no source can see.
UNDECIDED_BITS = 2048
_MARGIN_BITS = 16
_LOG2_10 = math.log2(10)


def start_bits(digits: int) -> int:
    """The first pass's precision for ``digits`` significant digits, in whole 64-bit limbs.

    Arb stores a mantissa in 64-bit limbs, and a ball of 132 bits costs what one of 192 does
    (400-25-10, m = 5000: 3.5 s either way; bench/bench_oracle.py): the spare bits are free
    margin against the radius growth of long sums, which spares a second pass.
    """
    return _limbs(math.ceil(digits * _LOG2_10) + GUARD_BITS)


def _limbs(bits: int) -> int:
    return -(-bits // 64) * 64


@dataclass
class Assessment:
    """What the balls of one pass certify.

    Attributes:
        digits: certified digits per value (cost first, then every partial); inf where exact.
        settled: values not certified whose ball lies below 2^-1100 (0.0 in float64 regardless).
        wanted_bits: the precision the uncertified, unsettled values ask for (0 if none).
        short: how many values ask for more bits.
    """

    digits: np.ndarray
    settled: np.ndarray
    wanted_bits: int
    short: int


def _bits_to_settle(x: arb, bits: int) -> int:
    """Bits that shrink the ball of a cancelled value below 2^-1100 (its radius ∝ 2^-bits)."""
    with precision(64):
        log2_rad = float(x.rad().log() / arb(2).log())
    if not math.isfinite(log2_rad):  # an infinite or NaN ball: only the ceiling can help
        return MAX_BITS
    return bits + max(bits, math.ceil(log2_rad) + NEGLIGIBLE_BITS + _MARGIN_BITS)


def assess(values: np.ndarray, digits: int, bits: int, *, jump: bool) -> Assessment:
    """Certified digits of every ball, and the precision that would certify the rest.

    Args:
        values: object array of balls (cost first, then the partials).
        digits: the digits asked for.
        bits: the precision the balls were computed at.
        jump: ask for the settling precision at once when a value cancelled (small problems).
    """
    got = np.fromiter((certified_digits(x) for x in values), dtype=np.float64, count=len(values))
    short = np.flatnonzero(got < digits)
    floor = arb(2) ** -NEGLIGIBLE_BITS
    settled = np.zeros(len(values), dtype=bool)
    wanted = 0
    for i in short:
        x = values[i]
        if x.abs_upper() < floor:
            settled[i] = True
        elif got[i] > 0:
            wanted = max(wanted, bits + math.ceil((digits - got[i]) * _LOG2_10) + _MARGIN_BITS)
        else:
            wanted = max(wanted, _bits_to_settle(x, bits) if jump else 2 * bits)
    return Assessment(got, settled, wanted, int(len(short) - settled.sum()))


def settle(run: Callable[[int, bool], Evaluation], digits: int, *, jump: bool,
           on_retry: Callable[[int, int, Assessment], None]) -> tuple[Evaluation, Assessment]:
    """Passes at rising precision until every value is certified or settled (or the limits).

    Args:
        run: ``run(bits, hull)`` evaluates a pass.
        digits: the digits asked for.
        jump: see ``assess``.
        on_retry: called as ``on_retry(old_bits, new_bits, assessment)`` before each retry.

    Returns:
        The last pass and its assessment.
    """
    bits = start_bits(digits)
    for attempt in range(MAX_PASSES):
        ev = run(bits, False)
        values = np.concatenate([np.array([ev.cost], dtype=object), ev.grads])
        verdict = assess(values, digits, bits, jump=jump)
        new_bits = min(MAX_BITS, _limbs(max(verdict.wanted_bits, bits + GUARD_BITS)))
        if not verdict.short or bits >= MAX_BITS or attempt == MAX_PASSES - 1:
            break
        if ev.conditions.undecided and bits >= UNDECIDED_BITS:
            break
        on_retry(bits, new_bits, verdict)
        bits = new_bits
    return ev, verdict


def undecided_note(count: int, bits: int) -> str:
    """The note of a pass whose straddling conditions were then taken as on their boundary."""
    return (f"{count} Piecewise condition(s) stayed undecided while the precision was raised to {bits} bits: the value compared lies within "
            f"2^-{bits} of its boundary (e.g. a ReLU input that is 0 only after rounding, such as tanh(½) + "
            "tanh(−½)); taken as exactly on it, a kink: the partials it reaches hold the interval of one-sided values")

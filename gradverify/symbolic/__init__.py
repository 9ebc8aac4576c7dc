"""The exact oracle: J and its partials by symbolic differentiation, certified by ball arithmetic.

The cost is written once, from the oracle's own SymPy forms (``forms``) and its own reading of
the specification (``reading``); every derivative comes from a symbolic ``diff``; every value
is computed in python-flint's ``arb`` ball arithmetic, so it carries a proven error radius and its
certified digits (``balls``, ``precision``). Nothing here imports backprop or finite differences.

Modes (``driver.exact_gradient`` picks one from the problem's size):

- ``full`` (``full``): J as one expression, differentiated whole per parameter. The most
  independent reference, and the source of readable partials (``partial_expression``).
- ``scalable`` (``scalable``, ``graph``): J as a graph of scalar templates, one per unit and
  example; each template's local partials by ``diff``, combined by a generic reverse sweep.
- ``batched`` (``batched``, ``templates``, ``tensor``): J as a chain of layer-level templates in
  index notation (``Sum(W[i,k]*H[e,k], k) + b[i]``, f(Z[e,i]), the loss, the penalty); each
  template's vector-Jacobian product from SymPy's ``diff`` of its generic element, evaluated over
  whole matrices (Arb matrix products). The default beyond full mode's size; real sizes
  (784-128-10, 400-25-10 with m = 5000) in seconds.

Modules, one idea each: ``forms`` (activations and losses as SymPy expressions), ``reading``
(layer shapes and the penalty, read from the spec), ``backend`` (SymEngine or SymPy),
``interpret`` (evaluating an expression tree on balls), ``graph`` (templates and the sweep),
``templates`` (layer templates and their VJPs), ``tensor`` (index expressions over arrays),
``full`` / ``scalable`` / ``batched`` (the modes), ``balls`` (what a ball certifies), ``precision`` (how many
bits), ``evaluation`` (one pass's record), ``result`` (``ExactGradient``), ``driver``.
"""

from gradverify.symbolic.driver import FULL_MODE_LIMIT, exact_gradient
from gradverify.symbolic.full import cost_expression, partial_expression
from gradverify.symbolic.result import ExactGradient, Range

__all__ = ["FULL_MODE_LIMIT", "ExactGradient", "Range", "cost_expression", "exact_gradient", "partial_expression"]

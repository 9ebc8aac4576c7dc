"""The exact oracle for layers: forwards as SymPy/SymEngine templates, partials by symbolic diff only.

Every layer's forward is written here, once, as small expressions over index templates — one
output entry of a convolution is Σ x_pad[n, c, i·s + p, j·s + q]·w[f, c, p, q] + b[f]; a batch-norm
output is γ·(x − μ)·(σ² + ε)^(−½) + β with μ and σ² template nodes of their own; a max-pooling
window is a chain of max(a, b) = Piecewise((a, a ≥ b), (b, True)) — instantiated in batches on the
oracle's ``symbolic.graph.Graph`` whose leaves are the case's float64 arrays (entered exactly). The
objective is J = Σ dout ⊙ out (or the loss). Each template's local partials come from the backend's
``diff``; the graph's generic reverse sweep combines them. No layer backward formula appears
anywhere, and nothing here imports the backprop engine or the finite-difference forwards.

Values are Arb balls (python-flint), certified as the MLP oracle certifies them
(``symbolic.precision.settle``): the precision rises until every value's ball certifies ``digits``
digits or lies below 2^-1100 (0.0 in float64). At a non-differentiable point — a ReLU input exactly
0, a pooling window whose maximum is attained twice, a hinge margin exactly 0 — the value uses
the Piecewise's own convention (relu′(0) = 0, the first maximum, no gradient through the hinge) and
a hull pass gives ``kink_lo``/``kink_hi``, the interval of the one-sided values.

``magnitudes`` is the scale a float64 engine's rounding error follows (``exact.rounding``): a
first-order rounding-error analysis read off the same templates, used for the float64 budgets.

Modules, one idea each: ``graph`` (symbols, cached templates, batched helpers), ``layers`` (each
layer's forward as templates, the objective), ``rounding`` (the float64 rounding-scale analysis),
``driver`` (certification, kinks, the answer).
"""

from gradverify.layers.exact.driver import ExactLayerGradient, exact_layer_gradient

__all__ = ["ExactLayerGradient", "exact_layer_gradient"]

"""Scalar computational graphs of the lecture: forward values and backward gradients on every node.

``parse`` turns an expression such as ``"(x + y) * z"`` into a :class:`Graph` (one node per
operation, one node per variable name however often it is used, one node per numeric constant).
``evaluate`` runs the forward pass and then the backward pass exactly as the lecture teaches it:
walking from the output back to the inputs, every node multiplies its *upstream* gradient
∂f/∂node by its *local* gradients ∂node/∂input and sends the products down; where a value is used
more than once (a branch), the gradients arriving from its consumers add. Both passes, the parser
and the renderers are loops over an explicit order, never recursion, so graphs thousands of nodes
deep work.

``check_with_sympy`` checks every node against SymPy without using any derivative rule of this
package: for each node it rebuilds the output with that node replaced by a fresh symbol ``t``,
lets ``sympy.diff`` differentiate with respect to ``t`` and evaluates at 30 digits. It also lets
SymPy parse the expression text itself, as a check on this package's parser.

Grammar: numbers, names, ``+ - * /``, powers ``**`` or ``^`` (right-associative, binding tighter
than unary minus, as in Python: ``-x**2 == -(x**2)``), unary ``-``/``+``, parentheses, and the
functions ``exp log sigmoid tanh`` (one argument) and ``max`` (two arguments). ``×``, ``·``, ``÷``
and ``−`` are accepted as ``*``, ``*``, ``/`` and ``-``.

``max(a, b)`` at a tie (a == b) is not differentiable; by convention the whole gradient goes to
the first argument (a valid subgradient choice). Ties are flagged on the node (``NodeRow.note``,
``GraphResult.ties``) and the SymPy check reports the nodes whose gradient depends on that choice
as ``"kink"`` instead of comparing them.

The package, one idea per module: ``ops`` (the operation table: forward and local gradients side
by side), ``parser`` (text → ``Graph``), ``passes`` (``evaluate``: forward and backward),
``budget`` and ``check`` (the SymPy check and its tolerance), ``render`` (DOT and SVG),
``examples`` (the lecture's expressions).
"""

from __future__ import annotations

from gradverify.graph.budget import RTOL
from gradverify.graph.check import NodeCheck, SympyCheck, check_with_sympy
from gradverify.graph.examples import EXAMPLES, Example
from gradverify.graph.parser import Graph, Node, parse
from gradverify.graph.passes import GraphResult, NodeRow, evaluate
from gradverify.graph.render import to_dot, to_svg

__all__ = [
    "EXAMPLES",
    "RTOL",
    "Example",
    "Graph",
    "GraphResult",
    "Node",
    "NodeCheck",
    "NodeRow",
    "SympyCheck",
    "check_with_sympy",
    "evaluate",
    "parse",
    "to_dot",
    "to_svg",
]

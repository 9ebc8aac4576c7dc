"""The forward and the backward pass, exactly as the lecture teaches them.

Forward in topological order; then backward from the output to the inputs: every node multiplies
its *upstream* gradient ∂f/∂node by its *local* gradients ∂node/∂input and sends the products
down; where a value is used more than once (a branch), the gradients arriving from its consumers
add. Both passes are loops over the node order, never recursion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from gradverify.errors import InputError
from gradverify.graph.ops import OPS
from gradverify.graph.parser import Graph, excerpt

__all__ = ["NodeRow", "GraphResult", "evaluate"]

@dataclass(frozen=True)
class NodeRow:
    """Everything the lecture's staged table shows for one node.

    ``local[i]`` is ∂node/∂input_i; ``upstream`` holds the gradient arriving from each use of the
    node (one entry per consumer edge, in consumer order; ``(1.0,)`` at the output); ``grad`` is
    their sum ∂f/∂node; ``downstream[i] = grad * local[i]`` is what is sent to input i (0 when
    grad is 0, even if ``local[i]`` is undefined).
    """

    id: int
    op: str
    label: str
    text: str
    inputs: tuple[int, ...]
    stage: int
    value: float
    local: tuple[float, ...]
    upstream: tuple[float, ...]
    grad: float
    downstream: tuple[float, ...]
    note: str = ""


@dataclass(frozen=True)
class GraphResult:
    """A graph evaluated at given input values: one row per node, in node-id order."""

    graph: Graph
    values: dict[str, float]
    rows: tuple[NodeRow, ...]

    @property
    def value(self) -> float:
        """The output f."""
        return self.rows[self.graph.output].value

    @property
    def gradients(self) -> dict[str, float]:
        """∂f/∂name for every input name."""
        return {r.label: r.grad for r in self.rows if r.op == "input"}

    @property
    def ties(self) -> tuple[int, ...]:
        """Ids of max nodes evaluated at a tie (gradient sent to the first argument)."""
        return tuple(r.id for r in self.rows if r.op == "max" and r.note.startswith("tie"))

    def __repr__(self) -> str:
        grads = ", ".join(f"{k}={v:.6g}" for k, v in self.gradients.items())
        if len(grads) > 200:
            grads = grads[:197] + "..."
        return f"<GraphResult {excerpt(self.graph.source)}: f={self.value:.6g}; grad {grads}>"


def _stages(graph: Graph) -> list[int]:
    """Layer of every node: inputs 0, an op one right of its furthest input, constants just left
    of their (only) consumer."""
    depth = [0] * len(graph.nodes)
    consumer: dict[int, int] = {}
    for n in graph.nodes:
        for i in n.inputs:
            consumer.setdefault(i, n.id)
        if n.inputs:
            depth[n.id] = 1 + max((depth[i] for i in n.inputs if graph.nodes[i].op != "const"), default=0)
    for n in reversed(graph.nodes):
        if n.op == "const" and n.id in consumer:
            depth[n.id] = depth[consumer[n.id]] - 1
    low = min(depth)
    return [d - low for d in depth]


def _fmt(v: float) -> str:
    return f"{v + 0.0:.6g}"


def _clean_values(graph: Graph, values: Mapping[str, float]) -> dict[str, float]:
    """The input values as floats, exactly one finite number per input name (else InputError)."""
    names = graph.input_names
    given = dict(values)
    missing = [n for n in names if n not in given]
    extra = [n for n in given if n not in names]
    if missing or extra:
        sample = ",".join(f"{n}=1.5" for n in names[:3])
        raise InputError(
            f"The values do not match the names of {excerpt(graph.source)}"
            + (f": no value for {', '.join(missing)}" if missing else "")
            + (f"{';' if missing else ':'} {', '.join(extra)} not in the expression" if extra else ""),
            expected="one value for each of " + (", ".join(names) or "(none: the expression is constant)"),
            received="values for " + (", ".join(given) or "nothing"),
            fix=f"give exactly those names, e.g. {sample} (on the command line: --at {sample})" if names
            else "give no values",
        )
    clean: dict[str, float] = {}
    for name in names:
        try:
            v = float(given[name])
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v):
            raise InputError(f"The value of {name!r} is not a finite number", expected="a finite float",
                             received=repr(given[name]), fix=f"give {name} a finite number such as 1.5")
        clean[name] = v
    return clean


def _forward(graph: Graph, clean: dict[str, float]) -> tuple[list[float], list[tuple[float, ...]], list[str]]:
    """Values, local gradients and notes of every node, in topological order."""
    nodes = graph.nodes
    value = [0.0] * len(nodes)
    local: list[tuple[float, ...]] = [()] * len(nodes)
    notes = [""] * len(nodes)
    for n in nodes:
        if n.op == "input":
            value[n.id] = clean[n.label]
            continue
        if n.op == "const":
            value[n.id] = float(n.const)
            continue
        op, args = OPS[n.op], [value[i] for i in n.inputs]
        try:
            out = op.forward(*args)
            if not math.isfinite(out):
                raise OverflowError
        except (ValueError, ZeroDivisionError, OverflowError):
            shown = ", ".join(f"{nodes[i].label} = {_fmt(a)}" for i, a in zip(n.inputs, args))
            raise InputError(
                f"{graph.text(n)} (node {n.label}) is undefined or overflows at {shown}",
                expected=op.domain or "values where every node stays a finite float64",
                received=", ".join(f"{k}={_fmt(v)}" for k, v in clean.items()),
                fix="choose input values inside the domain of every operation",
            ) from None
        value[n.id] = out
        local[n.id] = tuple(float(g) for g in op.local(*args, out))
        notes[n.id] = _note(n.op, args, local[n.id], [nodes[i].label for i in n.inputs])
    return value, local, notes


def _note(op: str, args: list[float], local: tuple[float, ...], labels: list[str]) -> str:
    """What a node's row must say: a max at a tie, or a local gradient that is undefined."""
    if op == "max" and args[0] == args[1]:
        return (f"tie: max({_fmt(args[0])}, {_fmt(args[1])}) is not differentiable here; "
                "the gradient goes to the first argument (a subgradient choice)")
    if not all(math.isfinite(g) for g in local):
        bad = [label for label, g in zip(labels, local) if not math.isfinite(g)]
        return f"local gradient with respect to {', '.join(bad)} is undefined here"
    return ""


def _backward(graph: Graph, local: list[tuple[float, ...]]):
    """(arriving, grad, downstream) in reverse topological order: each node's gradient is complete
    when it is reached, because every consumer has a larger id. ``arriving[i]`` lists the
    (consumer id, gradient) pairs sent to node i."""
    nodes = graph.nodes
    arriving: list[list[tuple[int, float]]] = [[] for _ in nodes]
    arriving[graph.output].append((len(nodes), 1.0))
    grad = [0.0] * len(nodes)
    downstream: list[tuple[float, ...]] = [()] * len(nodes)
    for n in reversed(nodes):
        parts = sorted(arriving[n.id], key=lambda p: p[0])
        g = 0.0
        for _, part in parts:
            g += part  # gradients add at branches
        grad[n.id] = g
        # nothing flows back through a zero gradient, even where a local gradient is undefined
        # (0 * nan would be nan, but f does not depend on these inputs through this node there)
        downstream[n.id] = tuple(g * lg if g else 0.0 for lg in local[n.id])
        for i, d in zip(n.inputs, downstream[n.id]):
            arriving[i].append((n.id, d))
    return arriving, grad, downstream


def evaluate(graph: Graph, values: Mapping[str, float]) -> GraphResult:
    """Forward pass, then backward pass (upstream × local, adding at branches), iteratively.

    Args:
        graph: from :func:`parse`.
        values: a finite number for every input name of the graph, and nothing else.

    Returns:
        A :class:`GraphResult` with value, local gradients and gradient of every node.

    Raises:
        InputError: a name without value, a value for a name not in the expression, a value that
            is not a finite number, or an operation undefined at these values (log of a
            non-positive number, division by zero, overflow).
    """
    if not isinstance(graph, Graph):
        raise InputError("evaluate needs a parsed graph", expected="the result of parse(expr)",
                         received=type(graph).__name__, fix="call evaluate(parse(expr), values)")
    clean = _clean_values(graph, values)
    value, local, notes = _forward(graph, clean)
    arriving, grad, downstream = _backward(graph, local)
    stages = _stages(graph)
    rows = tuple(
        NodeRow(n.id, n.op, n.label, graph.text(n), n.inputs, stages[n.id], value[n.id], local[n.id],
                tuple(p for _, p in sorted(arriving[n.id], key=lambda p: p[0])), grad[n.id],
                downstream[n.id], notes[n.id])
        for n in graph.nodes
    )
    return GraphResult(graph, clean, rows)

"""Pictures of an evaluated graph: Graphviz DOT text and a self-made SVG, layered left to right
like the lecture's figures (forward values in green above each edge, gradients in red below).

Both renderers and the layout are loops over the node order, never recursion, so graphs thousands
of nodes deep are drawn.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape as _xml_escape

from gradverify.graph.ops import OPS
from gradverify.graph.parser import Node
from gradverify.graph.passes import GraphResult, NodeRow

__all__ = ["GREEN", "RED", "to_dot", "to_svg"]

GREEN, RED = "#1a7f37", "#cf222e"


def _pic(v: float) -> str:
    return "undefined" if not math.isfinite(v) else f"{v + 0.0:.3g}"


def _box_title(n: Node) -> str:
    if n.op == "input":
        return n.label
    if n.op == "const":
        return "const"
    return OPS[n.op].symbol


def _edges(result: GraphResult):
    """(source id, target id, input index, forward value, gradient on that edge)."""
    for r in result.rows:
        for k, (i, d) in enumerate(zip(r.inputs, r.downstream)):
            yield i, r.id, k, result.rows[i].value, d


def to_dot(result: GraphResult) -> str:
    """Graphviz DOT text of the evaluated graph: forward values (green) and gradients (red) on edges.

    Render with e.g. ``dot -Tsvg graph.dot > graph.svg`` (graphviz is not needed by gradverify).
    """
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        "digraph gradverify {",
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        f"  label={q(result.graph.source)}; labelloc=t;",
    ]
    for r in result.rows:
        n = result.graph.nodes[r.id]
        title = _box_title(n)
        sub = _pic(r.value) if n.op in ("input", "const") else f"{r.label} = {_pic(r.value)}"
        lines.append(f'  n{r.id} [label={q(title)[:-1]}\\n{q(sub)[1:]}];')  # \n: a centred line break
    for i, j, _, v, d in _edges(result):
        lines.append(f'  n{i} -> n{j} [label=<<font color="{GREEN}">{_pic(v)}</font><br/>'
                     f'<font color="{RED}">{_pic(d)}</font>>];')
    out = result.rows[result.graph.output]
    lines.append('  out [shape=none, label=""];')
    lines.append(f'  n{out.id} -> out [label=<<font color="{GREEN}">{_pic(out.value)}</font><br/>'
                 f'<font color="{RED}">{_pic(out.grad)}</font>>];')
    lines.append("}")
    return "\n".join(lines) + "\n"


_MAX_DUMMIES = 20_000  # above this many column slots for long edges, draw long edges directly


def _layout(result: GraphResult) -> tuple[dict, dict[tuple[int, int, int], list], int]:
    """Column and row of every node, plus the slots long edges pass through (Sugiyama-style).

    Returns ``(place, waypoints, rows_used)``: ``place[key] = (column, row)`` for node ids and for
    waypoint keys ``("w", edge, column)``; ``waypoints[(i, j, k)]`` lists the waypoint keys of edge
    ``i -> j`` (input index k), left to right. An edge spanning several columns reserves one slot in
    every column it crosses, so it never runs through a box.
    """
    rows = result.rows
    edges = [(i, j, k) for j, r in enumerate(rows) for k, i in enumerate(r.inputs)]
    span = sum(rows[j].stage - rows[i].stage - 1 for i, j, _ in edges)
    columns: dict[int, list] = {}
    preds: dict = {}
    for r in rows:
        columns.setdefault(r.stage, []).append(r.id)
        preds[r.id] = list(r.inputs)
    waypoints: dict[tuple[int, int, int], list] = {}
    for i, j, k in edges:
        keys, prev = [], i
        if span <= _MAX_DUMMIES:
            for col in range(rows[i].stage + 1, rows[j].stage):
                key = ("w", (i, j, k), col)
                columns[col].append(key)
                preds[key] = [prev]
                keys.append(key)
                prev = key
        waypoints[(i, j, k)] = keys
        preds[j] = [prev if p == i and n == k else p for n, p in enumerate(preds[j])]
    # one left-to-right sweep: order each column by the mean row of its predecessors
    row: dict = {}
    for col in sorted(columns):
        entries = columns[col]
        keys = {}
        for n, e in enumerate(entries):
            ps = [row[p] for p in preds[e] if p in row]
            keys[e] = (sum(ps) / len(ps) if ps else n, n)
        entries.sort(key=keys.__getitem__)
        for n, e in enumerate(entries):
            row[e] = n
    tallest = max(len(v) for v in columns.values())
    place = {}
    for col, entries in columns.items():
        offset = (tallest - len(entries)) / 2
        for e in entries:
            place[e] = (col, row[e] + offset)
    return place, waypoints, tallest


def _bezier_at_x(p0, p1, p2, p3, x: float) -> float:
    """y of a cubic Bézier (monotone in x) at the given x, by bisection."""
    lo, hi = 0.0, 1.0
    for _ in range(40):
        t = (lo + hi) / 2
        bx = (1 - t) ** 3 * p0[0] + 3 * (1 - t) ** 2 * t * p1[0] + 3 * (1 - t) * t**2 * p2[0] + t**3 * p3[0]
        lo, hi = (t, hi) if bx < x else (lo, t)
    t = (lo + hi) / 2
    return (1 - t) ** 3 * p0[1] + 3 * (1 - t) ** 2 * t * p1[1] + 3 * (1 - t) * t**2 * p2[1] + t**3 * p3[1]


class _Canvas:
    """Geometry and SVG snippets for one picture: boxes in columns (stages), edges between them."""

    box_w, box_h, col_w, row_h, margin, top = 100, 44, 230, 70, 30, 60

    def __init__(self, result: GraphResult):
        self.result = result
        self.place, self.waypoints, self.tallest = _layout(result)
        self.width = 2 * self.margin + max(c for c, _ in self.place.values()) * self.col_w + self.box_w + 100
        self.height = self.top + self.tallest * self.row_h + 30

    def at(self, key) -> tuple[float, float]:
        col, r = self.place[key]
        return self.margin + col * self.col_w, self.top + r * self.row_h

    @staticmethod
    def text(x, y, s, **attrs) -> str:
        extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
        return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{_xml_escape(s)}</text>'

    def edge_label(self, x, y, v, d) -> list[str]:
        return [self.text(x, y - 5, _pic(v), fill=GREEN, text_anchor="middle"),
                self.text(x, y + 14, _pic(d), fill=RED, text_anchor="middle")]

    def header(self) -> list[str]:
        result = self.result
        title = result.graph.source + "   at " + ", ".join(f"{k} = {_pic(v)}" for k, v in result.values.items())
        w, h = self.width, self.height
        return [
            (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
             f'viewBox="0 0 {w:.0f} {h:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="12">'),
            ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#57606a"/></marker></defs>'),
            '<rect width="100%" height="100%" fill="white"/>',
            self.text(self.margin, 24, title if len(title) < 200 else title[:197] + "...", font_size="14",
                      font_weight="bold"),
            self.text(self.margin, 42, "green: forward value (above each edge)   red: gradient ∂f/∂· (below)",
                      fill="#57606a"),
        ]

    def edge(self, i: int, j: int, k: int, v: float, d: float) -> list[str]:
        """Edge i → j (input k of j), through the slots reserved for it, with its two labels."""
        bw, half = self.box_w, self.box_h / 2
        x0, y0 = self.at(i)
        points = [(x0 + bw, y0 + half)]
        for key in self.waypoints[(i, j, k)]:
            wx, wy = self.at(key)
            points += [(wx, wy + half), (wx + bw, wy + half)]
        x1, y1 = self.at(j)
        nin = len(self.result.rows[j].inputs)
        points.append((x1, y1 + half + (k - (nin - 1) / 2) * 14))
        path = [f"M {points[0][0]:.1f} {points[0][1]:.1f}"]
        for n, ((ax, ay), (bx, by)) in enumerate(zip(points[0::2], points[1::2])):
            if n:  # straight through the reserved slot, then a curve across the gap
                path.append(f"L {ax:.1f} {ay:.1f}")
            cx = (ax + bx) / 2
            path.append(f"C {cx:.1f} {ay:.1f}, {cx:.1f} {by:.1f}, {bx:.1f} {by:.1f}")
        out = [f'<path d="{" ".join(path)}" fill="none" stroke="#57606a" marker-end="url(#arrow)"/>']
        # labels on the last stretch, input k a little further from the box than input k-1
        (ax, ay), (bx, by) = points[-2], points[-1]
        cx = (ax + bx) / 2
        lx = max(bx - 32 - 48 * k, ax + 20)
        return out + self.edge_label(lx, _bezier_at_x((ax, ay), (cx, ay), (cx, by), (bx, by), lx), v, d)

    def box(self, r: NodeRow) -> list[str]:
        """A node's box: what it is and its value (a red outline and a tooltip when it has a note)."""
        x, y = self.at(r.id)
        n = self.result.graph.nodes[r.id]
        fill = "#ddf4ff" if n.op == "input" else "#f6f8fa" if n.op == "const" else "#fff8c5"
        out = [f'<g><rect x="{x:.1f}" y="{y:.1f}" width="{self.box_w}" height="{self.box_h}" rx="8" '
               f'fill="{fill}" stroke="{RED if r.note else "#57606a"}"/>']
        if r.note:
            out.append(f"<title>{_xml_escape(r.note)}</title>")
        out.append(self.text(x + self.box_w / 2, y + 18, _box_title(n), text_anchor="middle", font_weight="bold"))
        sub = _pic(r.value) if n.op in ("input", "const") else f"{r.label} = {_pic(r.value)}"
        out.append(self.text(x + self.box_w / 2, y + 35, sub, text_anchor="middle") + "</g>")
        return out

    def output_arrow(self) -> list[str]:
        out = self.result.rows[self.result.graph.output]
        x, y = self.at(out.id)
        x0, y0 = x + self.box_w, y + self.box_h / 2
        return [f'<path d="M {x0:.1f} {y0:.1f} L {x0 + 80:.1f} {y0:.1f}" stroke="#57606a" '
                f'marker-end="url(#arrow)"/>'] + self.edge_label(x0 + 40, y0, out.value, out.grad)


def to_svg(result: GraphResult) -> str:
    """A standalone SVG picture in the lecture's style, drawn without graphviz.

    Inputs at the left, the output at the right, one column per stage; each box shows the
    operation and the node's value; each edge carries the forward value (green, above) and the
    gradient flowing back along it (red, below). Edges that skip columns are routed through free
    slots of the columns they cross.
    """
    canvas = _Canvas(result)
    parts = canvas.header()
    for edge in _edges(result):
        parts += canvas.edge(*edge)
    for r in result.rows:
        parts += canvas.box(r)
    parts += canvas.output_arrow()
    parts.append("</svg>")
    return "\n".join(parts) + "\n"

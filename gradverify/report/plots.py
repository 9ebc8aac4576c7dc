"""Pictures of a report document: where the gradient is wrong, at a glance.

- ``heatmaps``: for every judged source and every layer, the error/budget ratio of each entry of
  Θk = [bk | Wk] on a log colour scale (green within budget, yellow at the budget, red beyond),
  the bias as column 0 labelled "bias", entries off crossed, ReLU kinks hatched grey;
- ``step_curve``: the finite-difference error against the step size for the worst parameter
  (the V: truncation on the right, round-off on the left), with the judged sources' errors at
  that parameter as horizontal lines;
- ``ratio_histogram`` (suites) and ``score_histogram`` (grading batches).

Every function returns ``Figure`` records holding PNG bytes. matplotlib is imported lazily and
only its object-oriented API is used (no pyplot, no global backend switch); ``missing()`` says
why plots cannot be drawn, and the HTML page shows that instead.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

__all__ = ["Figure", "missing", "heatmaps", "step_curve", "ratio_histogram", "score_histogram", "theta_grid"]

_DPI = 100
_FLOOR = 1e-3  # ratios below this are drawn at this colour (they are all "well within budget")


@dataclass(frozen=True)
class Figure:
    """One picture: a title, a caption (also the HTML alt text) and PNG bytes."""

    key: str
    title: str
    caption: str
    png: bytes
    group: str = ""


def missing() -> str | None:
    """None when plots can be drawn, else what is missing and how to get it."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError as exc:
        return f"the plots need matplotlib, which cannot be imported here ({exc}); install it with pip install matplotlib"
    return None


def _num(x) -> float:
    if isinstance(x, str):
        return {"Infinity": float("inf"), "-Infinity": float("-inf")}.get(x, float("nan"))
    return float(x) if x is not None else float("nan")


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


_NAME = re.compile(r"^([Wb])(\d+)\[(\d+)(?:,(\d+))?\]$")


def theta_grid(section: dict, source: str, field: str = "ratio") -> dict[int, list[list]]:
    """``{layer: rows}`` of one per-parameter field of ``source`` laid out as Θk = [bk | Wk].

    Row i, column 0 is bk[i]; column j + 1 is Wk[i, j]. Entries a row does not have are None.
    """
    sizes = section["problem"]["sizes"]
    grids = {k: [[None] * (1 + sizes[k - 1]) for _ in range(sizes[k])] for k in range(1, len(sizes))}
    for row in section["parameters"]:
        match = _NAME.match(row["name"])
        if not match or source not in row[field]:
            continue
        kind, k, i, j = match[1], int(match[2]), int(match[3]), match[4]
        col = 0 if kind == "b" else int(j) + 1
        grids[k][i][col] = row[field][source]
    return grids


def _grids(section: dict, source: str) -> tuple[dict, dict, dict]:
    """Ratio and status grids per layer, from every parameter row, or from the pooled heatmaps of a large
    problem (then ``blocks`` gives each layer's block size and a block is "off" when its largest ratio is > 1)."""
    pooled = (section.get("heatmaps") or {}).get(source)
    if not pooled or (section.get("parameters_shown") or {}).get("complete", True):
        return theta_grid(section, source, "ratio"), theta_grid(section, source, "status"), {}
    ratios, status, blocks = {}, {}, {}
    for key, layer in pooled.items():
        k = int(key)
        ratios[k] = layer["grid"]
        status[k] = [["off" if _num(r) > 1 else "ok" for r in row] for row in layer["grid"]]
        blocks[k] = layer["block"]
    return ratios, status, blocks


def _fmt_ratio(r: float) -> str:
    if r != r:
        return "nan"
    if r == float("inf"):
        return "inf"
    if r < 0.01:
        return "0" if r == 0 else f"{r:.0e}".replace("e-0", "e-")
    if r < 100:
        return f"{r:.2g}"
    return f"{r:.0e}".replace("e+0", "e").replace("e+", "e")


def heatmaps(section: dict) -> list[Figure]:
    """One heatmap of the error/budget ratio per layer and judged source, in the Θ layout.

    The colour is log₁₀ of the ratio on a scale that is the same below the budget for every
    source (10⁻³ … 1, green to yellow) and stretches above it to the largest ratio (yellow to
    red), so a passing entry never looks like a failing one.
    """
    # Long (~85 lines): one figure's layout (grid, colour scale, labels, the bias column) read top
    # to bottom; split into helpers it would pass a dozen arrays and axes between them.
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import TwoSlopeNorm

    out = []
    sizes = section["problem"]["sizes"]
    cmap = colormaps["RdYlGn_r"].with_extremes(bad="#4d4d4d")  # NaN ratio: the error is unknown
    lo = float(np.log10(_FLOOR))
    for source in section["verdicts"]:
        ratios, status, blocks = _grids(section, source)
        all_r = np.array([_num(r) for rows in ratios.values() for row in rows for r in row if r is not None], dtype=float)
        finite = all_r[np.isfinite(all_r)]
        hi = max(1.0, float(np.log10(finite.max())) if finite.size and finite.max() > 0 else 1.0)
        if np.isinf(all_r).any():
            hi += 1.0
        norm = TwoSlopeNorm(vmin=lo, vcenter=0.0, vmax=hi)
        for k in range(1, len(sizes)):
            grid = np.array([[np.nan if r is None else _num(r) for r in row] for row in ratios[k]], dtype=float)
            st = np.array([[s or "" for s in row] for row in status[k]], dtype=object)
            kink = st == "kink"
            with np.errstate(divide="ignore"):
                logs = np.log10(np.where(np.isinf(grid), 10.0 ** hi, np.clip(grid, _FLOOR, None)))
            shown = np.ma.masked_where(kink | np.isnan(grid), logs)  # kinks are hatched over, NaN is dark grey
            n_rows, n_cols = grid.shape
            small = n_cols <= 24 and n_rows <= 24
            width = min(9.0, 2.4 + 0.5 * n_cols) if small else 8.0
            height = min(7.0, 1.7 + 0.42 * n_rows) if small else 5.0
            fig = _new_figure(width, height)
            ax = fig.add_subplot()
            im = ax.imshow(shown, cmap=cmap, norm=norm, aspect="equal" if small else "auto", interpolation="nearest")
            # the bias column: a heavy separator and a bold tick label
            ax.axvline(0.5, color="black", linewidth=2.0)
            if n_cols <= 24:
                ticks = list(range(n_cols))
            else:
                ticks = [0] + list(range(1, n_cols, max(1, (n_cols - 1) // 8)))
            ax.set_xticks(ticks)
            inp = "x" if k == 1 else "h"
            ax.set_xticklabels(["bias" if t == 0 else f"{inp}{t - 1}" for t in ticks], rotation=0 if n_cols <= 10 else 90)
            ax.get_xticklabels()[0].set_fontweight("bold")
            ax.get_xticklabels()[0].set_color("#1f3f9f")
            rticks = list(range(n_rows)) if n_rows <= 24 else list(range(0, n_rows, max(1, n_rows // 12)))
            ax.set_yticks(rticks)
            ax.set_yticklabels([str(t) for t in rticks])
            ax.set_xlabel(f"column of Θ{k}: bias b{k}, then W{k}[:, j]")
            ax.set_ylabel(f"unit i of layer {k}")
            n_off = int(np.count_nonzero(st == "off"))
            block = blocks.get(k)
            if block:  # a large layer: every cell is the largest ratio of a block of entries
                ax.set_xlabel(f"columns of Θ{k} in blocks of {block[1]} (bias in block 0)")
                ax.set_ylabel(f"units of layer {k} in blocks of {block[0]}")
            ax.set_title(f"{source}: Θ{k} = [b{k} | W{k}], {n_off} of {grid.size} {'blocks' if block else ''} off".replace("  ", " "),
                         fontsize=10)
            for y, x in zip(*np.nonzero(kink)):
                ax.add_patch(_hatch(x, y))
            if small:
                for (y, x), r in np.ndenumerate(grid):
                    if kink[y, x]:
                        continue
                    pos = 1.0 if np.isnan(r) else norm(logs[y, x])
                    ax.text(x, y, _fmt_ratio(r), ha="center", va="center", fontsize=7 if n_cols > 8 else 8,
                            color="white" if pos < 0.15 or pos > 0.85 else "black",
                            fontweight="bold" if st[y, x] == "off" else "normal")
            else:
                ys, xs = np.nonzero(st == "off")
                if 0 < len(ys) <= 2000:
                    ax.scatter(xs, ys, marker="x", s=8, color="black", linewidths=0.6)
            cb = fig.colorbar(im, ax=ax, shrink=0.9)
            step = max(1, int(np.ceil((hi - lo) / 8)))
            cticks = sorted(set(range(int(lo), 1)) | set(range(0, int(np.floor(hi)) + 1, step)))
            cb.set_ticks(cticks)
            cb.set_ticklabels([f"$10^{{{t}}}$" for t in cticks])
            cb.set_label("|error| / budget (≤ 1 passes)")
            cb.ax.axhline(0.0, color="black", linewidth=1.5)
            bias_off = int(np.count_nonzero(st[:, 0] == "off"))
            if block:
                caption = (f"{source}, layer {k}: the largest error/budget ratio in each block of {block[0]}×{block[1]} entries of "
                           f"Θ{k} = [b{k} | W{k}] (bias in the first column of blocks); {n_off} blocks hold an entry off.")
            else:
                caption = (f"{source}, layer {k}: error/budget ratio of every entry of Θ{k} = [b{k} | W{k}] "
                           f"({n_rows}×{n_cols}, bias in column 0); {n_off} entries off"
                           + (f", {bias_off} of them in the bias column" if n_off else "") + ".")
            out.append(Figure(f"heatmap-{source}-{k}", f"{source}, Θ{k}", caption, _png(fig), group=source))
    return out


def _hatch(x: int, y: int):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor="#dddddd", edgecolor="#777777", hatch="///", linewidth=0)


def step_curve(section: dict) -> Figure | None:
    """The finite-difference error against step size for the parameter in ``section["step_curve"]``."""
    data = section.get("step_curve")
    if not data or not data.get("steps"):
        return None
    steps = [_num(s) for s in data["steps"]]
    errors = [_num(e) for e in data["errors"]]
    fig = _new_figure(7.0, 4.2)
    ax = fig.add_subplot()
    ax.loglog(steps, [e if e > 0 else float("nan") for e in errors], "o-", markersize=3, label="|central difference − reference|")
    if data.get("predicted"):
        ax.loglog(steps, [_num(p) for p in data["predicted"]], "--", color="gray", label="model: h²|J'''|/6 + ε·S/h")
    if data.get("best_step") is not None:
        ax.axvline(_num(data["best_step"]), color="gray", linestyle=":", label=f"best step h = {_num(data['best_step']):.1e}")
    row = next((r for r in section.get("parameters", []) if r["name"] == data["name"]), None)
    colors = ["#c0392b", "#8e44ad", "#d35400", "#2c3e50"]
    if row:
        for n, (source, err) in enumerate(row["abs_err"].items()):
            e = _num(err)
            if e > 0 and e == e and e != float("inf"):
                ax.axhline(e, color=colors[n % len(colors)], linewidth=1.5,
                           label=f"{source}'s error at {data['name']} (ratio {_fmt_ratio(_num(row['ratio'][source]))})")
    ax.set_xlabel("step h")
    ax.set_ylabel("absolute error")
    ref = data.get("reference_source")
    ax.set_title(f"finite-difference error vs step, {data['name']}" + (f" (reference: {ref})" if ref else ""), fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    caption = (f"Central-difference error against the step h for {data['name']}: too large a step is truncation "
               "error, too small is round-off; horizontal lines are the judged sources' errors at that parameter.")
    return Figure("step-curve", f"finite differences at {data['name']}", caption, _png(fig))


def ratio_histogram(records: list[dict]) -> Figure | None:
    """Distribution of the worst error/budget ratio over a suite's cases (log scale)."""
    import numpy as np

    if not records:
        return None
    vals = np.array([_num(r["worst_ratio"]) for r in records], dtype=float)
    passed = np.array([r["verdict"] == "pass" for r in records])
    finite = vals[np.isfinite(vals) & (vals > 0)]
    hi = max(np.log10(finite.max()) if finite.size else 1.0, 1.0) + 0.5
    lo = min(np.log10(finite.min()) if finite.size else -3.0, -1.0) - 0.5
    logs = np.log10(np.clip(np.where(np.isfinite(vals), vals, 10 ** hi), 10 ** lo, 10 ** hi))
    bins = np.linspace(lo, hi, 31)
    fig = _new_figure(7.0, 3.8)
    ax = fig.add_subplot()
    ax.hist([logs[passed], logs[~passed]], bins=bins, stacked=True, color=["#27ae60", "#c0392b"], label=["pass", "fail / error"])
    ax.axvline(0.0, color="black", linewidth=1.2, label="budget (ratio 1)")
    ax.set_xlabel("log$_{10}$ of the worst |error| / budget of the case")
    ax.set_ylabel("cases")
    ax.set_title(f"worst ratio over {len(records)} cases", fontsize=11)
    ax.legend(fontsize=8)
    return Figure("ratio-histogram", "worst ratio per case", "Histogram of the worst error/budget ratio of every case; "
                  "right of the black line is beyond the budget.", _png(fig))


def score_histogram(entries: list[dict]) -> Figure | None:
    """Distribution of the scores (as a fraction of the maximum) over a grading batch."""
    import numpy as np

    if not entries:
        return None
    frac = np.array([_num(e["score"]) / _num(e["max_score"]) if _num(e["max_score"]) else 0.0 for e in entries])
    fig = _new_figure(7.0, 3.8)
    ax = fig.add_subplot()
    ax.hist(np.clip(frac * 100, 0, 100), bins=np.linspace(0, 100, 21), color="#2e86c1", edgecolor="white")
    ax.set_xlabel("score (% of the maximum)")
    ax.set_ylabel("submissions")
    ax.set_title(f"scores of {len(entries)} submissions", fontsize=11)
    return Figure("score-histogram", "scores", "Histogram of the submissions' scores.", _png(fig))

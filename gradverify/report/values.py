"""Per-parameter values in proportion: every row for a small problem, a summary for a large one.

A 784-128-10 network has 101,770 partials; a JSON row per partial and per source is about 60 MB
that nobody reads. So a comparison section lists every parameter only up to ``VALUES_LIMIT``;
beyond it, it keeps the rows that matter (every entry off, up to a cap, then the worst of each
judged source, and the first entry of every array) and a per-layer heatmap grid pooled to at most
``GRID`` × ``GRID`` blocks (the largest ratio in each block), and says so. The full arrays go to a
compressed ``.npz`` on request (``write_values``), which NumPy reads back in one line.

This module summarizes what the records hold; it computes no gradient and no error.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from gradverify._io import write_atomic

__all__ = ["VALUES_LIMIT", "GRID", "shown_indices", "proportional_section", "pooled_grids", "write_values"]

#: problems with at most this many parameters list every one
VALUES_LIMIT = 2000
#: rows kept for a larger problem
SHOWN_ROWS = 200
#: the side of a pooled heatmap grid
GRID = 64


def shown_indices(comp, limit: int = SHOWN_ROWS) -> np.ndarray:
    """The parameters a summarized section lists: off entries first (worst first), then the worst judged
    of each source, then one entry per array so every array appears."""
    picked: list[int] = []
    seen: set[int] = set()

    def take(indices) -> None:
        for i in indices:
            i = int(i)
            if i not in seen and len(picked) < limit:
                seen.add(i)
                picked.append(i)

    for v in comp.verdicts.values():
        off = np.flatnonzero(v.status == "off")
        take(off[np.argsort(-np.nan_to_num(v.ratio[off], nan=np.inf), kind="stable")][: limit // 2])
    for v in comp.verdicts.values():
        judged = np.flatnonzero((v.status == "ok") | (v.status == "off"))
        take(judged[np.argsort(-v.ratio[judged], kind="stable")][:10])
    start = 0
    for _, shape in comp.problem.network.param_shapes:
        take([start])
        start += math.prod(shape)
    return np.sort(np.array(picked, dtype=np.int64))


def _rows(comp, indices) -> list[dict]:
    return [comp.parameter_row(int(i)) for i in indices]


def pooled_grids(comp, source: str, grid: int = GRID) -> dict[str, dict]:
    """Per layer, the ratio of ``source`` in the Θ layout ([b | W]) max-pooled to at most ``grid`` × ``grid``.

    Unchecked and kinked entries count as 0 (they are not failures); NaN/inf ratios stay infinite.
    """
    v = comp.verdicts[source]
    ratio = np.where(np.isin(v.status, ("unchecked", "kink")), 0.0, np.nan_to_num(v.ratio, nan=np.inf))
    out: dict[str, dict] = {}
    sizes = comp.problem.network.sizes
    start = 0
    for k in range(1, len(sizes)):
        rows, cols = sizes[k], sizes[k - 1]
        W = ratio[start:start + rows * cols].reshape(rows, cols)
        b = ratio[start + rows * cols:start + rows * cols + rows]
        start += rows * cols + rows
        theta = np.concatenate([b[:, None], W], axis=1)
        br, bc = math.ceil(theta.shape[0] / grid), math.ceil(theta.shape[1] / grid)
        pad = np.full((math.ceil(theta.shape[0] / br) * br, math.ceil(theta.shape[1] / bc) * bc), 0.0)
        pad[:theta.shape[0], :theta.shape[1]] = theta
        pooled = pad.reshape(pad.shape[0] // br, br, pad.shape[1] // bc, bc).max(axis=(1, 3))
        out[str(k)] = {"block": [br, bc], "shape": list(theta.shape), "grid": pooled.tolist()}
    return out


def proportional_section(comp, *, values_file: str | None = None, limit: int = VALUES_LIMIT) -> dict:
    """``comp.to_dict()`` with every parameter row when P ≤ ``limit``, else a summary (see the module docstring)."""
    P = len(comp.names)
    if P <= limit:
        doc = comp.to_dict(values=True)
        doc["parameters_shown"] = {"complete": True, "rows": P, "of": P, "values_file": values_file}
        return doc
    doc = comp.to_dict(values=False)
    idx = shown_indices(comp)
    doc["parameters"] = _rows(comp, idx)
    doc["parameters_shown"] = {
        "complete": False, "rows": int(idx.size), "of": P, "values_file": values_file,
        "rule": f"more than {limit:,} parameters: every entry off (up to {SHOWN_ROWS // 2}), the worst of each source and the "
                "first of every array; heatmaps pooled to blocks" + ("" if values_file else "; --values FILE.npz writes every value")}
    doc["heatmaps"] = {name: pooled_grids(comp, name) for name in comp.verdicts}
    return doc


def write_values(comp, path: str | Path) -> Path:
    """Every per-parameter array of the comparison in one compressed ``.npz`` (written atomically).

    Keys: ``names``; ``value/<source>`` for every source; ``budget/<s>``, ``ratio/<s>``,
    ``abs_err/<s>``, ``rel_err/<s>`` and ``status/<s>`` for every judged source. Read it with
    ``np.load(path)``.
    """
    arrays: dict[str, np.ndarray] = {"names": np.array(comp.names)}
    for name, src in comp.sources.items():
        arrays[f"value/{name}"] = np.asarray(src.grad, dtype=np.float64)
    for name, v in comp.verdicts.items():
        for key in ("budget", "ratio", "abs_err", "rel_err"):
            arrays[f"{key}/{name}"] = np.asarray(getattr(v, key), dtype=np.float64)
        arrays[f"status/{name}"] = np.asarray(v.status).astype("U9")
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return write_atomic(path, buf.getvalue())

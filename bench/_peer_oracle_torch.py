"""Benchmark peer: the exact oracle against PyTorch float64 autograd on random networks (accuracy).

Run by ``bench/run.py`` as ``python bench/_peer_oracle_torch.py TASK.json``; prints one JSON line.
This is the one peer that imports both gradverify and torch: it measures agreement, not time.
For every activation × output pairing, a seeded random network's gradient is computed by
``gradverify.symbolic.exact_gradient`` (SymPy-derived, high precision) and by ``torch.autograd``
of the same cost written the PyTorch way; the table reports max |Δ| / max |g| (normwise) and the
largest per-component relative error |Δ| / max(|a|, |b|).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peer_common import emit, read_task  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from gradverify.params import flatten  # noqa: E402
from gradverify.problems import random_problem  # noqa: E402
from gradverify.spec import parse_spec  # noqa: E402
from gradverify.symbolic import exact_gradient  # noqa: E402

torch.set_default_dtype(torch.float64)
ACT = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "softplus": F.softplus, "identity": lambda a: a}


def torch_grad(problem) -> np.ndarray:
    net = problem.network
    ps = []
    for name, _ in net.param_shapes:
        ps.append(torch.from_numpy(problem.params[name].copy()).requires_grad_(True))
    X, Y = torch.from_numpy(problem.X), torch.from_numpy(problem.Y)
    m, H = X.shape[0], X
    for k in range(net.depth):
        A = F.linear(H, ps[2 * k], ps[2 * k + 1])
        if k < net.depth - 1:
            H = ACT[net.activations[k]](A)
    if net.output == "sigmoid":
        J = F.binary_cross_entropy_with_logits(A, Y, reduction="sum") / m
    elif net.output == "softmax":
        J = -(Y * F.log_softmax(A, dim=1)).sum() / m
    else:
        J = ((A - Y) ** 2).sum() / (2 * m)
    if net.lam:
        c = net.reg_coefficient(m)
        J = J + c * sum((p * p).sum() for (name, _), p in zip(net.param_shapes, ps) if net.is_regularized(name))
    J.backward()
    return np.concatenate([p.grad.numpy().reshape(-1) for p in ps])


def main() -> None:
    task = read_task()
    rows = []
    for act, output in itertools.product(("sigmoid", "tanh", "softplus", "identity", "relu"), ("sigmoid", "softmax", "identity")):
        for seed in range(task.get("oracle_seeds", 3)):
            net = parse_spec(f"6-8-5-4:{act}/{output}", lam=1.0)
            p = random_problem(net, m=8, seed=seed, scale=1.0)
            ex = flatten(exact_gradient(p).grads, net)
            tg = torch_grad(p)
            d = np.abs(ex - tg)
            rows.append({"spec": net.compact, "seed": seed, "normwise": float(d.max() / np.abs(ex).max()),
                         "componentwise": float(np.max(d / np.maximum(np.maximum(np.abs(ex), np.abs(tg)), 1e-300)))})
    emit({"peer": "oracle_torch", "version": torch.__version__, "result": {"rows": rows}})


if __name__ == "__main__":
    main()

"""Batched, branch-free forward kernels: the activations and losses of ``gradverify.functions``
written so one call covers a whole batch of perturbed copies (a leading axis per copy).

Both branches of a function are computed on the half that cannot overflow and selected on the
real part, so each stays analytic (complex step) and finite for |a| ≫ 700. The tests check these
against ``forward.cost``. ``OutputLayer`` holds the in-place rank-1 kernels of the hot path: the
output pre-activations of the last layer changed by dH ⊗ w, for sigmoid and softmax outputs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ACT", "sigmoid", "softplus", "relu", "loss_terms", "loss_rows", "elementwise_rows", "softplus_imag",
           "OutputLayer"]


def _sign_re(z):
    return np.where(z.real >= 0, 1.0, -1.0)


def sigmoid(z):
    if not np.iscomplexobj(z):
        e = np.exp(-np.abs(z))
        r = 1.0 / (1.0 + e)
        return np.where(z >= 0, r, e * r)
    s = _sign_re(z)
    e = np.exp(-s * z)
    r = 1.0 / (1.0 + e)
    return np.where(s > 0, r, e * r)


def softplus(z):
    if not np.iscomplexobj(z):
        return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
    s = _sign_re(z)
    return np.where(s > 0, z, 0) + np.log1p(np.exp(-s * z))


def relu(z):
    return np.where(z.real > 0, z, 0)


ACT = {"sigmoid": sigmoid, "tanh": np.tanh, "softplus": softplus, "relu": relu, "identity": lambda z: z}


def loss_terms(output: str, A, Y):
    """The per-element loss terms of a batch of output pre-activations (…, m, K), not yet / m.

    sigmoid: softplus(a) − y·a, written for real input as ½((1 − 2y)·a + |a|) + log1p(e^(−|a|)):
    for 0/1 targets the first part is exact (0 or |a|), so a saturated unit costs no round-off
    of the size of a; softmax: y·(logΣe^a − a), with logΣ as log1p of the non-maximal terms (a
    well-classified row's loss is small, and log(1 + small) would round it to eps absolute);
    identity: ½(a − y)².
    Also returns, for complex input, the magnitude of the imaginary parts that cancel inside a term
    (identity: of the real part Re a − y that multiplies Im a).
    """
    if output == "sigmoid":
        if not np.iscomplexobj(A):
            absA = np.abs(A)
            return 0.5 * ((1 - 2 * Y) * A + absA) + np.log1p(np.exp(-absA)), None
        sp = softplus(A)
        YA = Y * A
        return sp - YA, np.abs(sp.imag) + np.abs(YA.imag)
    if output == "identity":
        D = A - Y
        if not np.iscomplexobj(A):
            return 0.5 * D * D, None
        # Im ½d² = Re d·Im d, and Re d = Re a − y rounds to eps·(|a| + |y|) when a ≈ y cancels
        return 0.5 * D * D, (np.abs(A.real) + np.abs(Y)) * np.abs(A.imag)
    if output == "softmax":
        idx = np.argmax(A.real, axis=-1)[..., None]
        Z = A - np.take_along_axis(A, idx, axis=-1)          # shift by the max real part: analytic
        E = np.exp(Z)
        np.put_along_axis(E, idx, 0.0, axis=-1)              # e^0 = 1 exactly (Z there is 0 + 0i) …
        lse = np.log1p(E.sum(axis=-1, keepdims=True))        # … so log Σeᶻ = log1p(the rest): no eps·1 loss
        terms = Y * (lse - Z)
        if not np.iscomplexobj(A):
            return terms, None
        # Im z = Im a − Im a_max can cancel: what it rounds is |Im a| + |Im a_max|, not |Im z|
        size = np.abs(A.imag) + np.abs(np.take_along_axis(A.imag, idx, axis=-1))
        return terms, np.abs((Y * lse).imag) + np.abs(Y) * size
    raise KeyError(output)


def loss_rows(output: str, A, Y, want_mag: bool = False):
    """Σ over the last two axes (m, K) of the per-element loss (not yet divided by m).

    Returns (values, magnitude): magnitude (if asked) is Σ|terms| — for complex A, of the
    imaginary parts — the scale of the round-off in the sum.
    """
    terms, imag_parts = loss_terms(output, A, Y)
    val = terms.sum(axis=(-2, -1))
    if not want_mag:
        return val, None
    if np.iscomplexobj(A):
        return val, (imag_parts if imag_parts is not None else np.abs(terms.imag)).sum(axis=(-2, -1))
    return val, np.abs(terms).sum(axis=(-2, -1))


def elementwise_rows(output: str, Z, Y):
    """The loss of each row (last axis = the K outputs) of a batch of output pre-activations."""
    val, _ = loss_rows(output, Z[..., None, :], Y[..., None, :])
    return val


def softplus_imag(X, Yi, yi_bound: float):
    """Im softplus(X + i·Yi), evaluated in complex arithmetic on real arrays (fast, in batches).

    The same branch-free form as ``softplus``: with s = sign(X), softplus(z) = [X ≥ 0]·z +
    log1p(w), w = exp(−s·z) = e^(−|X|)·(cos Yi − i·s·sin Yi) and Im log1p(w) = atan2(Im w, 1 + Re w).
    When every |Yi| < 1e−8 (``yi_bound``; always so in complex step) cos Yi and sin Yi round to
    exactly 1 and Yi in float64, and atan2(v, c) with c ≥ 1, |v/c| < 1e−8 rounds to v/c, so those
    are used; otherwise the functions themselves. Overwrites X.
    """
    pos = X >= 0
    ex = np.abs(X, out=X)
    np.negative(ex, out=ex)
    np.exp(ex, out=ex)                                # e^(−|X|)
    if yi_bound < 1e-8:
        v = ex * Yi                                   # −s·Im w
        ex += 1.0                                     # 1 + Re w
        v /= ex
        return np.where(pos, Yi - v, v)
    u, v = ex * np.cos(Yi), ex * np.sin(Yi)
    return np.where(pos, Yi - np.arctan2(v, 1.0 + u), np.arctan2(v, 1.0 + u))


class OutputLayer:
    """The unperturbed output pre-activations A (m, K), the targets Y, and what the rank-1 kernels
    precompute from them (each row's argmax q for softmax, 1 − 2y for sigmoid)."""

    def __init__(self, A: np.ndarray, Y: np.ndarray):
        self.A, self.Y = A, Y
        self.m = A.shape[0]
        self.one_minus_2y = 1 - 2 * Y
        self.q = np.argmax(A, axis=1)                                   # softmax: each row's argmax
        self.not_q = np.ones_like(Y)
        self.not_q[np.arange(self.m), self.q] = 0.0
        self.sum_y = Y.sum(axis=1)

    def bce_rank1(self, dH: np.ndarray, w: np.ndarray, want_mag: bool):
        """The hot path: sigmoid outputs after the last hidden layer, A_L' = A_L + dH ⊗ w.

        Σ[softplus(z) − y·z] is evaluated as ½Σ((1 − 2y)·z + |z|) + Σ log1p(e^(−|z|)), the form of
        ``loss_terms``, in place with two buffers. For complex dH only the imaginary part of the
        value is computed (complex step needs nothing else); its real part is returned as 0.
        """
        A, Y = self.A, self.Y
        lead = dH.shape[:-1]
        if not np.iscomplexobj(dH):
            Z = dH[..., None] * w
            Z += A
            T = np.abs(Z)
            Z *= self.one_minus_2y
            Z += T
            np.negative(T, out=T)
            np.exp(T, out=T)
            np.log1p(T, out=T)
            val = 0.5 * Z.reshape(*lead, -1).sum(axis=-1) + T.reshape(*lead, -1).sum(axis=-1)
            return val, None
        Xr = dH.real[..., None] * w
        Xr += A
        Yi = dH.imag[..., None] * w
        im = softplus_imag(Xr, Yi, float(np.abs(dH.imag).max(initial=0.0) * np.abs(w).max(initial=0.0)))
        lin = dH.imag @ (Y @ w)                         # Σ Im(y·z), linear in z
        val = im.reshape(*lead, -1).sum(axis=-1) - lin
        mag = None
        if want_mag:
            np.abs(im, out=im)
            mag = im.reshape(*lead, -1).sum(axis=-1) + np.abs(dH.imag) @ (np.abs(Y) @ np.abs(w))
        return 1j * val, mag

    def softmax_rank1(self, dH: np.ndarray, w: np.ndarray, want_mag: bool):
        """Softmax outputs after the last hidden layer, A_L' = A_L + dH ⊗ w, row loss Σₖ yₖ(lse − zₖ).

        Shifted by z at each row's *unperturbed* argmax q (a fixed index, so no per-copy argmax):
        lse = z_q + log1p(Σ_{k≠q} e^(z_k − z_q)), exact algebra and as accurate as ``loss_terms``
        while the perturbation is small against the gaps to the maximum. Σₖ yₖ(zₖ − z_q) is
        linear in dH: its per-copy part is dH·(Y·w − Σy·w_q), its constant is left out.
        For complex dH only the imaginary part is computed (see ``bce_rank1``).
        """
        A, q, mask, sy = self.A, self.q, self.not_q, self.sum_y
        wq = w[q]                                              # (m,)
        c = self.Y @ w - sy * wq
        if not np.iscomplexobj(dH):
            D = dH[..., None] * w
            D += A
            D -= (A[np.arange(self.m), q] + dH * wq)[..., None]
            np.exp(D, out=D)
            D *= mask
            S = D.sum(axis=-1)
            return (sy * np.log1p(S)).sum(axis=-1) - dH @ c, None
        dr, di = dH.real, dH.imag
        Dr = dr[..., None] * w
        Dr += A
        Dr -= (A[np.arange(self.m), q] + dr * wq)[..., None]
        Di = di[..., None] * w
        Di -= (di * wq)[..., None]
        Er = np.exp(Dr, out=Dr)
        Er *= mask
        tiny = float(np.abs(di).max(initial=0.0)) * 2 * float(np.abs(w).max(initial=0.0)) < 1e-8
        Ei = Er * Di if tiny else Er * np.sin(Di)              # e^(Dr)·sin(Di); sin rounds to Di below 1e−8
        if not tiny:
            Er *= np.cos(Di)
        Sr, Si = Er.sum(axis=-1), Ei.sum(axis=-1)
        im_lse = Si / (1.0 + Sr)
        if not (tiny and bool(np.all(np.abs(im_lse) < 1e-8))):
            im_lse = np.arctan2(Si, 1.0 + Sr)                  # Im log1p(S)
        val = (sy * im_lse).sum(axis=-1) - di @ c
        mag = None
        if want_mag:
            np.abs(Ei, out=Ei)
            mag = (np.abs(sy) * Ei.sum(axis=-1) / (1.0 + Sr)).sum(axis=-1) \
                + np.abs(di) @ (np.abs(self.Y) @ np.abs(w) + np.abs(sy) * np.abs(wq))
        return 1j * val, mag

"""Isotonic (non-decreasing) regression of DLT rates and the MTD pick of BOIN.

Pool-adjacent-violators (Barlow et al. 1972) as in BOIN 2.7.2 `select.mtd` (CLINICAL_REFERENCE
7.2): phat = (y + 0.05)/(n + 0.1), weights 1/var with
var = (y + 0.05)(n - y + 0.05) / ((n + 0.1)^2 (n + 1.1)); then i * 1e-10 is added to the i-th
estimate so that among equal estimates the higher dose wins below the target and the lower
above it; the dose with the smallest |phat - target| is the MTD.

`isotonic_batch` fits many trials at once with the max-min formula
fit_i = max_{a <= i} min_{b >= i} mean_w(a..b), which equals PAVA and vectorises over trials.
"""

from __future__ import annotations

import numpy as np

TIE_OFFSET = 1e-10


def pava(values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted pool-adjacent-violators: the non-decreasing fit closest in weighted L2."""
    x = np.asarray(values, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    blocks: list[list[float]] = []  # [mean, weight, count]
    for xi, wi in zip(x, w, strict=True):
        blocks.append([float(xi), float(wi), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            wt = w1 + w2
            blocks.append([(m1 * w1 + m2 * w2) / wt, wt, c1 + c2])
    return np.concatenate([np.full(int(c), m) for m, _, c in blocks]) if blocks else x


def unimodal(values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted unimodal (umbrella) regression: the fit that rises to one peak and then falls,
    closest in weighted L2 (Stout 2008, "Unimodal regression via prefix isotonic regression").

    For each split k the left part 0..k is fitted non-decreasing and the right part k+1.. non-
    increasing; the union over k of these relaxed sets equals the union of the umbrella sets,
    so the split with the smallest weighted error gives the umbrella fit (first split on ties).
    """
    x = np.asarray(values, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    best, best_err = x, np.inf
    for k in range(x.size):
        left = pava(x[: k + 1], w[: k + 1])
        right = pava(x[k + 1:][::-1], w[k + 1:][::-1])[::-1] if k + 1 < x.size else x[:0]
        fit = np.concatenate([left, right])
        err = float(np.sum(w * (x - fit) ** 2))
        if err < best_err - 1e-12:
            best, best_err = fit, err
    return best


def boin_estimates(n: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BOIN's Beta(0.05, 0.05) point estimates and inverse-variance weights."""
    n = np.asarray(n, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    phat = (y + 0.05) / (n + 0.1)
    var = (y + 0.05) * (n - y + 0.05) / ((n + 0.1) ** 2 * (n + 1.1))
    return phat, 1.0 / var


def isotonic_batch(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted isotonic fit of each row of ``values`` (trials x doses); columns with weight 0
    are left out of the fit (returned as NaN)."""
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    k = v.shape[-1]
    vw = v * w
    cw = np.concatenate([np.zeros_like(w[..., :1]), np.cumsum(w, axis=-1)], axis=-1)
    cv = np.concatenate([np.zeros_like(vw[..., :1]), np.cumsum(vw, axis=-1)], axis=-1)
    # mean over [a, b] for all a <= b; empty-weight intervals -> NaN (ignored by fmin/fmax)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = {(a, b): (cv[..., b + 1] - cv[..., a]) / (cw[..., b + 1] - cw[..., a])
                for a in range(k) for b in range(a, k)}
    fit = np.empty_like(v)
    for i in range(k):
        best = None
        for a in range(i + 1):
            inner = mean[(a, i)]
            for b in range(i + 1, k):
                inner = np.fmin(inner, mean[(a, b)])
            best = inner if best is None else np.fmax(best, inner)
        fit[..., i] = best
    fit[w <= 0] = np.nan
    return fit


def closest_to_target(fit: np.ndarray, target: float) -> np.ndarray:
    """0-based index of the dose whose estimate (plus i*1e-10) is closest to ``target``;
    NaN entries are never chosen; -1 where all are NaN. First index wins exact ties."""
    f = np.asarray(fit, dtype=np.float64)
    k = f.shape[-1]
    dist = np.abs(f + TIE_OFFSET * np.arange(1, k + 1) - target)
    dist = np.where(np.isnan(dist), np.inf, dist)
    idx = np.argmin(dist, axis=-1)
    none = np.all(np.isinf(dist), axis=-1)
    return np.where(none, -1, idx)

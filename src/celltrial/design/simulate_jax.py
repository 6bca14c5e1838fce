"""BOIN lockstep simulation under `jax.jit`: runs on a GPU when JAX sees one, else on CPU.

Same algorithm as the numpy lockstep (`celltrial.design.simulate`): per cohort one
inverse-CDF binomial draw per trial, decision by table lookup ``codes[n, y]``, packed
(dose, lowest eliminated dose) state moved by a transition table; per-dose counts are
updated with a one-hot mask (fuses on GPU). JAX runs in float32 by default, so BOIN's
i * 1e-10 tie offset (BOIN 2.7.2 select.mtd) is applied as the rule it encodes: among doses
whose distance to the target ties (within 1e-6), the highest dose whose isotonic estimate is
below the target wins, else the lowest. Trials run in batches (``batch``), each with its own
key ``fold_in(PRNGKey(seed), i)``; sums are reduced on the device (the last batch masks the
trials beyond ``n_trials`` so that one compiled kernel serves every call).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from celltrial.design.data import DoseDesign
from celltrial.errors import invalid


def default_batch() -> int:
    """Trials per jitted call: larger on an accelerator."""
    import jax

    return 1 << 22 if jax.default_backend() in ("gpu", "cuda", "rocm", "tpu") else 1 << 16


@lru_cache(maxsize=32)
def _kernel(k: int, cs: int, n_cohorts: int, max_n: int, n_early: int | None, start: int,
            batch: int) -> Callable[..., Any]:
    import jax
    import jax.numpy as jnp

    k1 = k + 1
    stride = max_n + 1

    def run(key: Any, thr: Any, codes: Any, nxt: Any, early: Any, target: Any,
            n_valid: Any) -> Any:
        u = jax.random.uniform(key, (n_cohorts, batch), dtype=jnp.float32)
        cols = jnp.arange(k1, dtype=jnp.int32)[None, :]
        d = jnp.full((batch,), start - 1, dtype=jnp.int32)
        s = d * k1 + k
        n = jnp.zeros((batch, k1), dtype=jnp.int32)
        y = jnp.zeros((batch, k1), dtype=jnp.int32)
        for c in range(n_cohorts):
            yn = jnp.zeros((batch,), jnp.int32)
            for j in range(cs):
                yn = yn + (u[c] > thr[j][d]).astype(jnp.int32)
            oh = (d[:, None] == cols).astype(jnp.int32)
            n = n + oh * cs
            y = y + oh * yn[:, None]
            nn = (n * oh).sum(axis=1)
            yy = (y * oh).sum(axis=1)
            code = codes[nn * stride + yy].astype(jnp.int32)
            idx = s * 4 + code
            s = nxt[idx].astype(jnp.int32)
            if n_early is not None:
                s = jnp.where(nn >= n_early, early[idx].astype(jnp.int32), s)
            d = s // k1
        elim = s % k1
        nk, yk = n[:, :k], y[:, :k]
        adm = (nk > 0) & (jnp.arange(k)[None, :] < elim[:, None])
        nf, yf = nk.astype(jnp.float32), yk.astype(jnp.float32)
        phat = (yf + 0.05) / (nf + 0.1)
        w = jnp.where(adm, 1.0 / ((yf + 0.05) * (nf - yf + 0.05) / ((nf + 0.1) ** 2 * (nf + 1.1))),
                      0.0)
        cw = jnp.concatenate([jnp.zeros((batch, 1)), jnp.cumsum(w, axis=1)], axis=1)
        cv = jnp.concatenate([jnp.zeros((batch, 1)), jnp.cumsum(w * phat, axis=1)], axis=1)

        def mean(a: int, b: int) -> Any:
            den = cw[:, b + 1] - cw[:, a]
            return jnp.where(den > 0, (cv[:, b + 1] - cv[:, a]) / jnp.where(den > 0, den, 1.0),
                             jnp.nan)

        fits = []
        for i in range(k):
            best = None
            for a in range(i + 1):
                inner = mean(a, i)
                for b in range(i + 1, k):
                    inner = jnp.fmin(inner, mean(a, b))
                best = inner if best is None else jnp.fmax(best, inner)
            fits.append(best)
        fit = jnp.stack(fits, axis=1)
        dist = jnp.where(adm, jnp.abs(fit - target), jnp.inf)
        m = dist.min(axis=1, keepdims=True)
        tied = adm & (dist <= m + 1e-6)
        below = tied & (fit < target)
        idxs = jnp.arange(k)[None, :]
        hi_below = jnp.max(jnp.where(below, idxs, -1), axis=1)
        lo_tied = jnp.min(jnp.where(tied, idxs, k), axis=1)
        sel = jnp.where(below.any(axis=1), hi_below, lo_tied)
        sel = jnp.where((elim == 0) | ~adm.any(axis=1), k, sel)
        valid = (jnp.arange(batch) < n_valid)[:, None]
        selected = ((sel[:, None] == jnp.arange(k1)[None, :]) & valid).sum(axis=0)
        return selected, (nk * valid).sum(axis=0), (yk * valid).sum(axis=0)

    return jax.jit(run)


def simulate_jax_totals(design: DoseDesign, p: np.ndarray, n_trials: int, seed: int, *,
                        batch: int | None = None,
                        progress: Callable[[int], None] | None = None) -> Any:
    """Sums over ``n_trials`` BOIN trials (a `Totals`) computed with JAX."""
    import jax
    import jax.numpy as jnp

    from celltrial.design.boin import BOIN
    from celltrial.design.simulate import Totals, binomial_thresholds, boin_transitions

    if not isinstance(design, BOIN):
        raise invalid("design", type(design).__name__, "BOIN for the jax backend (use numpy)")
    batch = batch or default_batch()
    k = design.n_doses
    fn = _kernel(k, design.cohort_size, design.n_cohorts, design.max_n, design.n_earlystop,
                 design.start_dose, batch)
    thr = jnp.asarray(binomial_thresholds(np.append(p, 0.0), design.cohort_size))
    codes = jnp.asarray(design.codes.ravel().astype(np.int32))
    nxt, early = (jnp.asarray(a.astype(np.int32)) for a in boin_transitions(k))
    root = jax.random.PRNGKey(seed)
    selected = np.zeros(k + 1, dtype=np.int64)
    patients = np.zeros(k, dtype=np.int64)
    dlts = np.zeros(k, dtype=np.int64)
    done = 0
    i = 0
    while done < n_trials:
        take = min(batch, n_trials - done)
        sel, pts, tox = fn(jax.random.fold_in(root, i), thr, codes, nxt, early,
                           jnp.float32(design.target), jnp.int32(take))
        selected += np.asarray(sel, dtype=np.int64)
        patients += np.asarray(pts, dtype=np.int64)
        dlts += np.asarray(tox, dtype=np.int64)
        done += take
        i += 1
        if progress is not None:
            progress(take)
    return Totals(selected, patients, dlts, n_trials)

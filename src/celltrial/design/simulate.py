"""Operating characteristics of a dose-escalation design by simulation.

`simulate(design, p_true, n_trials, seed=...)` runs ``n_trials`` virtual trials under true
DLT probabilities ``p_true`` and returns a `SimulationResult` (selection % per dose, mean
patients and DLTs per dose, % stopped without a selection). Backends:

- ``"numpy"`` (default): lockstep over trials. All trials advance one cohort at a time as
  arrays; per-dose counts are uint8; the DLT count of a cohort is one binomial draw by
  inverse CDF of a float32 uniform; the decision is a lookup ``codes[n, y]`` precomputed from
  the design's boundaries; the (dose, lowest eliminated dose) pair is a packed state moved by
  a transition table; the MTD is the isotonic fit vectorised over trials. Chunks of trials run
  on a thread pool with independent streams spawned from ``seed`` (results do not depend on
  the number of threads). Trials that stop early move to a dummy dose with p = 0.
- ``"jax"``: the same lockstep under ``jax.jit`` (`celltrial.design.simulate_jax`); runs on a
  GPU when JAX sees one, else on CPU.
- ``"python"``: a plain per-trial loop calling the design's own ``next_dose``/``select``;
  the reference for correctness and for the benchmark's speed ratio.
Designs without a lockstep kernel (e.g. BOIN12) use the python loop. Randomness is seeded
(numpy PCG64 from ``seed``); the result records the seed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from celltrial.design.data import DoseDesign, EscalationData, check_probabilities
from celltrial.errors import invalid

if TYPE_CHECKING:
    import pandas as pd

BACKENDS = ("numpy", "jax", "python")
CHUNK = 1 << 16


@dataclass(frozen=True)
class SimulationResult:
    """Operating characteristics of one design under one scenario."""

    selection_pct: tuple[float, ...]
    mean_patients: tuple[float, ...]
    mean_dlts: tuple[float, ...]
    stop_pct: float
    n_trials: int
    seed: int
    p_true: tuple[float, ...] = ()
    design: str = ""
    backend: str = "numpy"
    seconds: float = field(default=0.0, compare=False)

    @property
    def trials_per_second(self) -> float:
        return self.n_trials / self.seconds if self.seconds > 0 else float("nan")

    def selection_se(self) -> tuple[float, ...]:
        """Monte Carlo standard error of each selection % (binomial)."""
        return tuple(100 * np.sqrt((p / 100) * (1 - p / 100) / self.n_trials)
                     for p in self.selection_pct)

    def table(self) -> pd.DataFrame:
        """One row per dose: true DLT probability, selection %, mean patients and DLTs."""
        import pandas as pd

        k = len(self.selection_pct)
        return pd.DataFrame({
            "dose": range(1, k + 1),
            "p_true": list(self.p_true) if self.p_true else [np.nan] * k,
            "selection_pct": self.selection_pct,
            "mean_patients": self.mean_patients,
            "mean_dlts": self.mean_dlts,
        })

    def as_dict(self) -> dict[str, Any]:
        return {"design": self.design, "backend": self.backend, "seed": self.seed,
                "n_trials": self.n_trials, "p_true": list(self.p_true),
                "selection_pct": list(self.selection_pct),
                "mean_patients": list(self.mean_patients), "mean_dlts": list(self.mean_dlts),
                "stop_pct": self.stop_pct, "seconds": self.seconds}


@dataclass(frozen=True)
class Totals:
    """Sums over simulated trials, combinable across chunks."""

    selected: np.ndarray  # (n_doses + 1,) counts; last = no selection
    patients: np.ndarray  # (n_doses,) summed patients
    dlts: np.ndarray      # (n_doses,) summed DLTs
    n_trials: int

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.selected + other.selected, self.patients + other.patients,
                      self.dlts + other.dlts, self.n_trials + other.n_trials)


def _result(t: Totals, design: DoseDesign, p: np.ndarray, seed: int, backend: str,
            seconds: float) -> SimulationResult:
    m = t.n_trials
    return SimulationResult(
        selection_pct=tuple(float(v) for v in 100 * t.selected[:-1] / m),
        mean_patients=tuple(float(v) for v in t.patients / m),
        mean_dlts=tuple(float(v) for v in t.dlts / m),
        stop_pct=float(100 * t.selected[-1] / m), n_trials=m, seed=seed,
        p_true=tuple(float(v) for v in p), design=repr(design), backend=backend,
        seconds=seconds)


def simulate(design: DoseDesign, p_true: Any, n_trials: int, seed: int = 1,
             backend: str = "numpy", *, p_efficacy: Any = None, threads: int | None = None,
             progress: Callable[[int], None] | None = None) -> SimulationResult:
    """Simulate ``n_trials`` trials of ``design`` under true DLT probabilities ``p_true``.

    ``p_efficacy`` (per dose) is needed by efficacy-driven designs (BOIN12/OBD); toxicity and
    efficacy are then drawn independently per patient. ``progress`` is called with the number
    of trials finished since the last call.
    """
    if backend not in BACKENDS:
        raise invalid("backend", backend, f"one of {', '.join(BACKENDS)}")
    if not isinstance(n_trials, int | np.integer) or n_trials < 1:
        raise invalid("n_trials", n_trials, "an integer >= 1")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise invalid("seed", seed, "an integer >= 0")
    p = check_probabilities("p_true", p_true, design.n_doses)
    pe = None if p_efficacy is None else check_probabilities("p_efficacy", p_efficacy,
                                                             design.n_doses)
    start = time.perf_counter()
    if backend == "jax":
        from celltrial.design.simulate_jax import simulate_jax_totals

        totals = simulate_jax_totals(design, p, int(n_trials), int(seed), progress=progress)
    elif backend == "numpy" and lockstep_kernel(design) is not None and pe is None:
        totals = _run_chunks(lockstep_kernel(design), design, p, int(n_trials), int(seed),
                             threads, progress)
    else:
        totals = _python_totals(design, p, pe, int(n_trials), int(seed), progress)
        backend = "python" if backend == "python" else f"{backend}->python"
    return _result(totals, design, p, int(seed), backend, time.perf_counter() - start)


Kernel = Callable[[DoseDesign, np.ndarray, int, np.random.Generator], Totals]


def lockstep_kernel(design: DoseDesign) -> Kernel | None:
    """The numpy lockstep kernel for this design's type, or None (python loop)."""
    from celltrial.design.boin import BOIN
    from celltrial.design.crm import CRM
    from celltrial.design.three_plus_three import ThreePlusThree

    kernels: dict[type, Kernel] = {BOIN: boin_lockstep, ThreePlusThree: three_plus_three_lockstep,
                                   CRM: crm_lockstep}
    return kernels.get(type(design))


def _run_chunks(kernel: Kernel, design: DoseDesign, p: np.ndarray, n_trials: int, seed: int,
                threads: int | None, progress: Callable[[int], None] | None) -> Totals:
    sizes = [CHUNK] * (n_trials // CHUNK) + ([n_trials % CHUNK] if n_trials % CHUNK else [])
    streams = np.random.SeedSequence(seed).spawn(len(sizes))
    workers = max(1, min(threads or (os.cpu_count() or 1), len(sizes)))

    def one(i: int) -> Totals:
        out = kernel(design, p, sizes[i], np.random.Generator(np.random.PCG64(streams[i])))
        if progress is not None:
            progress(sizes[i])
        return out

    if workers == 1:
        parts = [one(i) for i in range(len(sizes))]
    else:
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(one, range(len(sizes))))
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def binomial_thresholds(p: np.ndarray, size: int) -> np.ndarray:
    """float32 CDF thresholds ``t[k, d] = P(Bin(size, p_d) <= k)`` for k < size; a uniform u
    gives the count sum_k (u > t[k, d]) (inverse-CDF binomial draw)."""
    from scipy.stats import binom

    k = np.arange(size)[:, None]
    t = binom.cdf(k, size, np.asarray(p)[None, :]).astype(np.float32)
    return np.minimum(t, np.float32(1.0))


def boin_transitions(n_doses: int) -> tuple[np.ndarray, np.ndarray]:
    """Packed-state transition table of BOIN: state s = d * (K+1) + e with d the 0-based
    current dose (K = dummy dose of stopped trials) and e the lowest eliminated dose (K: none).
    Returns (next_state[s * 4 + code], next_state_if_earlystop[s * 4 + code]) as uint8."""
    from celltrial.design.boundaries import DEESCALATE, ELIMINATE, ESCALATE

    k1 = n_doses + 1
    nxt = np.zeros(k1 * k1 * 4, dtype=np.uint8)
    early = np.zeros_like(nxt)
    for d in range(k1):
        for e in range(k1):
            for code in range(4):
                s = d * k1 + e
                if d == n_doses:  # stopped/finished trials stay put
                    nxt[s * 4 + code] = early[s * 4 + code] = s
                    continue
                e2 = min(e, d) if code == ELIMINATE else e
                if e2 == 0:  # dose 1 eliminated: safety stop, no MTD
                    nxt[s * 4 + code] = early[s * 4 + code] = n_doses * k1 + 0
                    continue
                d2 = d
                if code == ESCALATE and d + 1 < e2 and d < n_doses - 1:
                    d2 = d + 1
                elif code in (DEESCALATE, ELIMINATE) and d > 0:
                    d2 = d - 1
                nxt[s * 4 + code] = d2 * k1 + e2
                early[s * 4 + code] = (n_doses * k1 + e2) if d2 == d else d2 * k1 + e2
    return nxt, early


def boin_lockstep(design: DoseDesign, p: np.ndarray, size: int, rng: np.random.Generator
                  ) -> Totals:
    """``size`` BOIN trials in lockstep (see module docstring)."""
    k = design.n_doses
    k1 = k + 1
    cs = design.cohort_size
    max_n = design.max_n
    codes = design.codes.ravel()  # type: ignore[attr-defined]
    stride = np.intp(max_n + 1)
    nxt, early = boin_transitions(k)
    thr = binomial_thresholds(np.append(p, 0.0), cs)  # dummy dose k: p = 0
    n_early = design.n_earlystop  # type: ignore[attr-defined]
    d = np.full(size, design.start_dose - 1, dtype=np.intp)  # type: ignore[attr-defined]
    s = (d * k1 + k).astype(np.uint8)
    dose_of = (np.arange(k1 * k1) // k1).astype(np.intp)
    counts_n = np.zeros(size * k1, dtype=np.uint8)
    counts_y = np.zeros(size * k1, dtype=np.uint8)
    base = np.arange(size, dtype=np.intp) * k1
    u_all = rng.random((design.n_cohorts, size), dtype=np.float32)  # type: ignore[attr-defined]
    for c in range(design.n_cohorts):  # type: ignore[attr-defined]
        u = u_all[c]
        yn = (u > thr[0][d]).view(np.uint8)
        for j in range(1, cs):
            yn = yn + (u > thr[j][d]).view(np.uint8)
        idx = base + d
        nn = counts_n[idx] + np.uint8(cs)
        counts_n[idx] = nn
        yy = counts_y[idx] + yn
        counts_y[idx] = yy
        code = codes[nn * stride + yy]
        key = s.astype(np.intp) * 4 + code
        s = nxt[key] if n_early is None else np.where(nn >= n_early, early[key], nxt[key])
        d = dose_of[s]
    n_mat = counts_n.reshape(size, k1)[:, :k]
    y_mat = counts_y.reshape(size, k1)[:, :k]
    elim = (s % k1).astype(np.intp)
    sel = boin_select_batch(n_mat, y_mat, elim, design.target)  # type: ignore[attr-defined]
    return Totals(np.bincount(np.where(sel < 0, k, sel), minlength=k1).astype(np.int64),
                  n_mat.sum(axis=0, dtype=np.int64), y_mat.sum(axis=0, dtype=np.int64), size)


def boin_select_batch(n: np.ndarray, y: np.ndarray, elim: np.ndarray, target: float
                      ) -> np.ndarray:
    """0-based MTD per trial (-1: none) by BOIN's isotonic rule, vectorised over trials.
    ``elim`` is the 0-based lowest eliminated dose (n_doses: none)."""
    from celltrial.design.isotonic import boin_estimates, closest_to_target, isotonic_batch

    k = n.shape[1]
    adm = (n > 0) & (np.arange(k)[None, :] < elim[:, None])
    phat, w = boin_estimates(n, y)
    fit = isotonic_batch(phat, np.where(adm, w, 0.0))
    sel = closest_to_target(fit, target)
    return np.where(elim == 0, -1, sel)


def three_plus_three_lockstep(design: DoseDesign, p: np.ndarray, size: int,
                              rng: np.random.Generator) -> Totals:
    """3+3 trials vectorised: each trial draws both cohorts at every dose up front and the
    rule (CLINICAL_REFERENCE 7.1) finds the first dose that stops it."""
    from celltrial.design.three_plus_three import ThreePlusThree

    assert isinstance(design, ThreePlusThree)
    k = design.n_doses
    thr = binomial_thresholds(p, 3)
    u = rng.random((2, size, k), dtype=np.float32)
    y1 = (u[0][None] > thr[:, None, :]).sum(axis=0)
    y2 = (u[1][None] > thr[:, None, :]).sum(axis=0)
    second = y1 == 1
    n_at = np.where(second, 6, 3)
    y_at = np.where(second, y1 + y2, y1)
    fail = y_at >= 2
    any_fail = fail.any(axis=1)
    first_fail = np.where(any_fail, fail.argmax(axis=1), k)  # 0-based, k = none
    treated = np.arange(k)[None, :] <= first_fail[:, None]
    patients = (n_at * treated).sum(axis=0)
    dlts = (y_at * treated).sum(axis=0)
    sel = first_fail - 1  # previous level; -1 = none; k-1 when all doses pass
    return Totals(np.bincount(np.where(sel < 0, k, sel), minlength=k + 1).astype(np.int64),
                  patients.astype(np.int64), dlts.astype(np.int64), size)


def crm_lockstep(design: DoseDesign, p: np.ndarray, size: int, rng: np.random.Generator
                 ) -> Totals:
    """CRM trials in lockstep: the quadrature posterior of every trial is one matrix product
    and the rules are `CRM.decide_batch` / `CRM.select_batch`, the same code as
    `CRM.next_dose` / `CRM.select` (plug-in estimate, no skipping from the current dose,
    coherence after a DLT in the last cohort, safety stop at dose 1)."""
    from celltrial.design.crm import CRM

    assert isinstance(design, CRM)
    block = 16384  # bounds the (states x nodes) posterior matrix to ~60 MB
    if size > block:
        parts = [crm_lockstep(design, p, min(block, size - i), rng)
                 for i in range(0, size, block)]
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total
    k = design.n_doses
    k1 = k + 1
    cs = design.cohort_size
    thr = binomial_thresholds(np.append(p, 0.0), cs)
    d = np.full(size, design.start_dose - 1, dtype=np.intp)
    stopped = np.zeros(size, dtype=bool)
    n = np.zeros((size, k1), dtype=np.int16)
    y = np.zeros((size, k1), dtype=np.int16)
    rows = np.arange(size)
    for c in range(design.n_cohorts):
        u = rng.random(size, dtype=np.float32)
        dd = np.where(stopped, k, d)  # stopped trials park on the dummy dose (p = 0)
        yn = sum((u > thr[j][dd]).astype(np.int16) for j in range(cs))
        n[rows, dd] += cs
        y[rows, dd] += yn
        if c == design.n_cohorts - 1:
            break  # maximum sample size: only the selection follows
        # trials in the same state (counts, current dose, DLT in the last cohort) take the
        # same decision: decide once per distinct state
        key = np.column_stack([n[:, :k], y[:, :k], d, yn > 0]).astype(np.int16)
        uniq, inv = np.unique(key, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        nxt, stop, _ = design.decide_batch(uniq[:, :k], uniq[:, k:2 * k], uniq[:, 2 * k],
                                           uniq[:, 2 * k + 1] > 0)
        stopped |= stop[inv]
        d = np.where(stopped, d, nxt[inv])
    nk = n[:, :k]
    yk = y[:, :k]
    uniq, inv = np.unique(np.column_stack([nk, yk]), axis=0, return_inverse=True)
    sel = np.where(stopped, -1, design.select_batch(uniq[:, :k], uniq[:, k:])[inv.reshape(-1)])
    return Totals(np.bincount(np.where(sel < 0, k, sel), minlength=k1).astype(np.int64),
                  nk.sum(axis=0, dtype=np.int64), yk.sum(axis=0, dtype=np.int64), size)


def _python_totals(design: DoseDesign, p: np.ndarray, pe: np.ndarray | None, n_trials: int,
                   seed: int, progress: Callable[[int], None] | None) -> Totals:
    """Plain per-trial loop through the design's own next_dose/select."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
    k = design.n_doses
    selected = np.zeros(k + 1, dtype=np.int64)
    patients = np.zeros(k, dtype=np.int64)
    dlts = np.zeros(k, dtype=np.int64)
    cs = design.cohort_size
    step = max(1, n_trials // 100)
    for t in range(n_trials):
        data = EscalationData(k)
        decision = design.next_dose(data)
        while decision.action != "stop" and data.n_patients < design.max_n:
            dose = decision.dose
            assert dose is not None
            m = min(cs, design.max_n - data.n_patients)
            tox = [int(v) for v in rng.random(m) < p[dose - 1]]
            eff = None if pe is None else [int(v) for v in rng.random(m) < pe[dose - 1]]
            data = data.add(dose, tox, eff)
            decision = design.next_dose(data)
        sel = design.select(data)
        selected[k if sel.dose is None else sel.dose - 1] += 1
        patients += data.n()
        dlts += data.y()
        if progress is not None and (t + 1) % step == 0:
            progress(step)
    if progress is not None and n_trials % step:
        progress(n_trials % step)
    return Totals(selected, patients, dlts, n_trials)

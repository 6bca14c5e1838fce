"""Operating characteristics of escalation designs on virtual trials of mechanistic patients.

`virtual_oc(bank, designs, n_trials, seed)` runs ``n_trials`` virtual trials of one protocol
for each design (3+3, BOIN, CRM, BOIN12, the protocol's own) and returns, per design and dose,
% selecting the dose (as MTD, or OBD for BOIN12) and as RP2D (`celltrial.design.rp2d` on the
trial's final data), % stopped without a dose, mean patients, DLTs and responders, response
rate and mean AUC0-28d of the patients treated there, and the mean trial duration; the "true"
curves are `PatientBank.truth` (`celltrial.design.virtual_bank`).

How a trial runs (cohort-level lockstep across trials, as `celltrial.design.simulate`):

- every trial starts where the design's ``next_dose`` on no data says;
- each step, every active trial doses one cohort (``cohort_size``, fewer when the design's
  maximum sample size is near) at its current dose: the patients are drawn uniformly with
  replacement from the bank's DLT-evaluable patients of that dose, one independent draw per
  patient (the bank is a sample of the virtual population at that dose; drawing from it is
  drawing from that population with the bank's rates as the truth); DLT, response and
  exposure come together from the same simulated course;
- the decision is the design's own ``next_dose`` on the trial's `EscalationData`, the data it
  would see: the same decision function as real and per-patient virtual trials. Trials in the
  same state take the same decision, so it is computed once per distinct state (per-dose
  counts of the four (DLT, efficacy) outcomes, the current dose, and the outcomes of the last
  cohort, which CRM's coherence rule reads), memoised over the run;
- a trial ends when the design says stop; the selection is the design's ``select``; the
  RP2D is `celltrial.design.rp2d.recommend` on the final counts and exposures.

Duration (calendar, as `celltrial.conduct.virtual_trial`): patients of a cohort are dosed
``STAGGER_DAYS`` apart, the next cohort starts ``REVIEW_DAYS`` + 1 days after the last
patient's DLT window closed; a trial lasts from the first infusion to the close of the last
cohort's DLT window.

Reproducibility: trials run in chunks of ``CHUNK`` trials, chunk i drawing from child i of
``numpy.random.SeedSequence(seed)``; the same seed gives the same result whether chunks run in
this process or on any number of Dask workers (``client`` of `virtual_oc`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from celltrial.design.data import DoseDesign, EscalationData
from celltrial.design.virtual_bank import PatientBank
from celltrial.errors import invalid

CHUNK = 2000
OUTCOMES = 8
"""Outcome code of a patient: 4 * DLT + 2 * efficacy as the design counts it (response, or
BOIN12's exposure credit) + response (0/1)."""


@dataclass(frozen=True)
class TrialTotals:
    """Sums over trials of one design, combinable across chunks (index 0 = dose 1; the last
    entry of ``selected``/``rp2d`` counts trials without a dose)."""

    selected: np.ndarray
    rp2d: np.ndarray
    patients: np.ndarray
    dlts: np.ndarray
    responders: np.ndarray
    auc_sum: np.ndarray
    auc_n: np.ndarray
    days: float
    n_trials: int

    def __add__(self, other: TrialTotals) -> TrialTotals:
        return TrialTotals(self.selected + other.selected, self.rp2d + other.rp2d,
                           self.patients + other.patients, self.dlts + other.dlts,
                           self.responders + other.responders, self.auc_sum + other.auc_sum,
                           self.auc_n + other.auc_n, self.days + other.days,
                           self.n_trials + other.n_trials)


@dataclass
class _Memo:
    """Decisions and selections of one design, one per distinct trial state."""

    design: DoseDesign
    rp2d_rule: Any
    decisions: dict[bytes, int] = field(default_factory=dict)
    selections: dict[bytes, tuple[int, int]] = field(default_factory=dict)


def _data(n_doses: int, counts: np.ndarray, last: np.ndarray, last_dose: int
          ) -> EscalationData:
    """An `EscalationData` with the per-dose outcome counts ``counts`` (K, :data:`OUTCOMES`)
    whose last cohort, at ``last_dose`` (1-based), had outcomes ``last`` enrolled last."""
    c = counts.astype(np.int64).copy()
    for code in last:
        c[last_dose - 1, code] -= 1
    doses: list[int] = []
    codes: list[int] = []
    for d in range(n_doses):
        for code in range(OUTCOMES):
            doses += [d + 1] * int(c[d, code])
            codes += [code] * int(c[d, code])
    doses += [last_dose] * len(last)
    codes += [int(v) for v in last]
    return EscalationData(n_doses, tuple(doses), tuple(v // 4 for v in codes),
                          tuple((v // 2) % 2 for v in codes), None,
                          current_dose=last_dose if doses else None)


def _decide(memo: _Memo, key: bytes, k: int, counts: np.ndarray, last: np.ndarray,
            dose: int) -> int:
    """Next dose (1-based) of a trial in this state, 0 to stop."""
    hit = memo.decisions.get(key)
    if hit is None:
        decision = memo.design.next_dose(_data(k, counts, last, dose))
        hit = 0 if decision.action == "stop" or decision.dose is None else int(decision.dose)
        memo.decisions[key] = hit
    return hit


def _select(memo: _Memo, key: bytes, k: int, counts: np.ndarray, last: np.ndarray, dose: int,
            auc_median: np.ndarray) -> tuple[int, int]:
    """(selected dose, RP2D) of a finished trial, 1-based, 0 for none."""
    hit = memo.selections.get(key)
    if hit is None:
        data = _data(k, counts, last, dose)
        sel = memo.design.select(data)
        n = counts.sum(axis=1)
        dlt = counts[:, 4:].sum(axis=1)
        eff = counts[:, 1::2].sum(axis=1)
        rec = memo.rp2d_rule.choose(n, dlt, eff, auc_median)
        hit = (0 if sel.dose is None else int(sel.dose), 0 if rec is None else rec)
        memo.selections[key] = hit
    return hit


def run_chunk(design: DoseDesign, bank: PatientBank, n_trials: int, seed: Any, *,
              rp2d_rule: Any = None, window_days: int = 28, memo: _Memo | None = None
              ) -> TrialTotals:
    """``n_trials`` virtual trials of ``design`` in lockstep (module docstring)."""
    from celltrial.conduct.virtual_trial import REVIEW_DAYS, STAGGER_DAYS
    from celltrial.design.rp2d import RP2DRule

    k = design.n_doses
    if bank.n_doses != k:
        raise invalid("bank", f"{bank.n_doses} doses", f"{k} (the design's doses)")
    rule = rp2d_rule or RP2DRule()
    memo = memo or _Memo(design, rule)
    tox, eff, auc, _ = bank.arrays(_exposure_threshold(design))
    _, eff_r, _, _ = bank.arrays(None)  # the RP2D counts responses (exposure is its own input)
    code_of = [(4 * t + 2 * e + r).astype(np.int8)
               for t, e, r in zip(tox, eff, eff_r, strict=True)]
    # the RP2D reads exposure per dose from the bank's patients a trial treated; the bank's
    # median AUC of a dose stands for it (exposure does not select doses in the lockstep)
    auc_median = np.array([np.nanmedian(a) if np.isfinite(a).any() else np.nan for a in auc])
    rng = np.random.default_rng(seed)
    cs, max_n = int(design.cohort_size), int(design.max_n)
    counts = np.zeros((n_trials, k, OUTCOMES), dtype=np.int16)
    n_total = np.zeros(n_trials, dtype=np.int64)
    cohorts = np.zeros(n_trials, dtype=np.int64)
    last = np.full((n_trials, cs), -1, dtype=np.int8)
    auc_sum = np.zeros(k)
    auc_n = np.zeros(k)
    start = design.next_dose(EscalationData(k))
    dose = np.full(n_trials, 0 if start.dose is None else int(start.dose), dtype=np.int64)
    active = dose > 0
    days = 0.0
    while active.any():
        active &= n_total < max_n  # a design past its maximum sample size has stopped
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        m = np.minimum(cs, max_n - n_total[idx])
        last[idx] = -1
        for d in np.unique(dose[idx]):
            rows = idx[dose[idx] == d]
            pool = code_of[d - 1]
            draw = rng.integers(0, pool.size, size=(rows.size, cs))
            got = pool[draw]
            got = np.where(np.arange(cs)[None, :] < m[dose[idx] == d][:, None], got, -1)
            last[rows] = got
            for code in range(OUTCOMES):
                counts[rows, d - 1, code] += (got == code).sum(axis=1).astype(np.int16)
            a = auc[d - 1][draw][got >= 0]
            auc_sum[d - 1] += np.nansum(a)
            auc_n[d - 1] += np.isfinite(a).sum()
        n_total[idx] += m
        cohorts[idx] += 1
        days += float(((m - 1) * STAGGER_DAYS + window_days).sum())
        state = np.concatenate([counts[idx].reshape(idx.size, -1),
                                np.sort(last[idx], axis=1).astype(np.int16),
                                dose[idx, None].astype(np.int16)], axis=1)
        uniq, first, inv = np.unique(state, axis=0, return_index=True, return_inverse=True)
        nxt = np.empty(uniq.shape[0], dtype=np.int64)
        for u in range(uniq.shape[0]):
            i = idx[first[u]]
            lc = last[i][last[i] >= 0]
            nxt[u] = _decide(memo, uniq[u].tobytes(), k, counts[i], lc, int(dose[i]))
        new = nxt[inv.reshape(-1)]
        going = new > 0
        days += float(going.sum()) * (REVIEW_DAYS + 1)
        dose[idx] = np.where(going, new, dose[idx])
        active[idx] = going
    selected = np.zeros(k + 1, dtype=np.int64)
    rp2d = np.zeros(k + 1, dtype=np.int64)
    state = np.concatenate([counts.reshape(n_trials, -1), np.sort(last, axis=1).astype(np.int16),
                            dose[:, None].astype(np.int16)], axis=1)
    uniq, first, inv = np.unique(state, axis=0, return_index=True, return_inverse=True)
    picks = np.empty((uniq.shape[0], 2), dtype=np.int64)
    for u in range(uniq.shape[0]):
        i = first[u]
        if n_total[i] == 0:
            picks[u] = (0, 0)
            continue
        lc = last[i][last[i] >= 0]
        picks[u] = _select(memo, b"s" + uniq[u].tobytes(), k, counts[i], lc, int(dose[i]),
                           auc_median)
    per_trial = picks[inv.reshape(-1)]
    selected += np.bincount(np.where(per_trial[:, 0] == 0, k, per_trial[:, 0] - 1),
                            minlength=k + 1)
    rp2d += np.bincount(np.where(per_trial[:, 1] == 0, k, per_trial[:, 1] - 1),
                        minlength=k + 1)
    n_dose = counts.sum(axis=2)
    return TrialTotals(selected, rp2d, n_dose.sum(axis=0).astype(np.int64),
                       counts[:, :, 4:].sum(axis=(0, 2)).astype(np.int64),
                       counts[:, :, 1::2].sum(axis=(0, 2)).astype(np.int64),
                       auc_sum, auc_n, days, n_trials)


def _exposure_threshold(design: Any) -> float | None:
    """BOIN12's exposure credit (AUC0-28d threshold) of a design, looking through wrappers."""
    while design is not None:
        value = getattr(design, "exposure_threshold", None)
        if value is not None:
            return float(value)
        design = getattr(design, "base", None)
    return None


def chunk_seeds(n_trials: int, seed: int, chunk: int = CHUNK
                ) -> list[tuple[int, np.random.SeedSequence]]:
    """(trials, seed sequence) of every chunk, in order."""
    if not isinstance(n_trials, int | np.integer) or n_trials < 1:
        raise invalid("n_trials", n_trials, "an integer >= 1")
    sizes = [chunk] * (n_trials // chunk) + ([n_trials % chunk] if n_trials % chunk else [])
    return list(zip(sizes, np.random.SeedSequence(seed).spawn(len(sizes)), strict=True))


def _design_task(design: DoseDesign, bank: PatientBank, n_trials: int, seed: int,
                 rp2d_rule: Any, window_days: int) -> TrialTotals:
    """Every chunk of one design, in order, sharing one memo of decisions (a Dask task)."""
    memo = _Memo(design, rp2d_rule or _default_rule())
    total = None
    for size, ss in chunk_seeds(n_trials, seed, CHUNK):
        part = run_chunk(design, bank, size, ss, rp2d_rule=rp2d_rule, window_days=window_days,
                         memo=memo)
        total = part if total is None else total + part
    assert total is not None
    return total


def virtual_oc(bank: PatientBank, designs: Mapping[str, DoseDesign], n_trials: int,
               seed: int = 1, *, rp2d_rule: Any = None, window_days: int = 28,
               client: Any = "synchronous",
               progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Long OC table: one row per design x dose (:func:`oc_table`), with the bank's truth.

    ``client``: ``"synchronous"`` (this process), None (a local Dask cluster), a scheduler
    address or a ``distributed.Client``: each design is then one Dask task (its chunks in
    order, sharing one memo of decisions). Every design uses the same ``seed`` (common random
    numbers across designs)."""
    if not designs:
        raise invalid("designs", "none", "at least one design")
    started = time.perf_counter()
    totals: dict[str, TrialTotals] = {}
    seconds: dict[str, float] = {}
    if isinstance(client, str) and client == "synchronous":
        for name, design in designs.items():
            t0 = time.perf_counter()
            memo = _Memo(design, rp2d_rule or _default_rule())
            total = None
            for size, ss in chunk_seeds(n_trials, seed, CHUNK):
                part = run_chunk(design, bank, size, ss, rp2d_rule=rp2d_rule,
                                 window_days=window_days, memo=memo)
                total = part if total is None else total + part
                if progress is not None:
                    progress(size)
            assert total is not None
            totals[name] = total
            seconds[name] = time.perf_counter() - t0
    else:
        totals = _dask_totals(bank, designs, n_trials, seed, rp2d_rule, window_days, client,
                              progress)
        seconds = {name: time.perf_counter() - started for name in designs}
    return oc_table(totals, bank, seconds, seed)


def _default_rule() -> Any:
    from celltrial.design.rp2d import RP2DRule

    return RP2DRule()


def _dask_totals(bank: PatientBank, designs: Mapping[str, DoseDesign], n_trials: int,
                 seed: int, rp2d_rule: Any, window_days: int, client: Any,
                 progress: Callable[[int], None] | None) -> dict[str, TrialTotals]:
    from dask.distributed import as_completed

    from celltrial.design.sweep import dask_client

    with dask_client(client, n_workers=2, threads_per_worker=1, processes=True,
                     dashboard_address=None) as c:
        bank_f = c.scatter(bank, broadcast=True)
        futures = {name: c.submit(_design_task, design, bank_f, n_trials, seed,
                                  rp2d_rule, window_days, pure=False)
                   for name, design in designs.items()}
        if progress is not None:
            for _ in as_completed(list(futures.values())):
                progress(n_trials)
        return {name: fut.result() for name, fut in futures.items()}


OC_COLUMNS = ("design", "dose", "p_dlt_true", "p_response_true", "auc28_true",
              "selection_pct", "rp2d_pct", "stop_pct", "rp2d_none_pct", "mean_patients",
              "mean_dlts", "mean_responders", "response_rate", "auc28_mean", "duration_days",
              "n_trials", "seed", "seconds")


def oc_table(totals: Mapping[str, TrialTotals], bank: PatientBank,
             seconds: Mapping[str, float] | None = None, seed: int = 1) -> pd.DataFrame:
    """One row per design x dose (:data:`OC_COLUMNS`): the truth of the bank, selection % and
    RP2D %, % stopped without a selection (and without an RP2D), mean patients, DLTs and
    responders per trial, response rate and mean AUC0-28d among the patients treated at the
    dose (pooled over trials), mean trial duration in days."""
    truth = bank.truth()
    rows = []
    for name, t in totals.items():
        m = t.n_trials
        for i in range(len(t.patients)):
            rows.append({
                "design": name, "dose": i + 1,
                "p_dlt_true": float(truth["p_dlt"].iloc[i]),
                "p_response_true": float(truth["p_response"].iloc[i]),
                "auc28_true": float(truth["auc28_mean"].iloc[i]),
                "selection_pct": 100 * t.selected[i] / m, "rp2d_pct": 100 * t.rp2d[i] / m,
                "stop_pct": 100 * t.selected[-1] / m, "rp2d_none_pct": 100 * t.rp2d[-1] / m,
                "mean_patients": t.patients[i] / m, "mean_dlts": t.dlts[i] / m,
                "mean_responders": t.responders[i] / m,
                "response_rate": t.responders[i] / t.patients[i] if t.patients[i] else np.nan,
                "auc28_mean": t.auc_sum[i] / t.auc_n[i] if t.auc_n[i] else np.nan,
                "duration_days": t.days / m, "n_trials": m, "seed": int(seed),
                "seconds": float((seconds or {}).get(name, np.nan)),
            })
    return pd.DataFrame(rows, columns=list(OC_COLUMNS))


def comparison_designs(protocol: Any, names: Sequence[str], max_n: int | None = None
                       ) -> dict[str, DoseDesign]:
    """The designs to compare for ``protocol``: each of ``names`` (3+3, boin, crm, boin12,
    or ``protocol`` for the protocol's own) with the protocol's target, cohort size and
    efficacy target, ``max_n`` patients (default: the protocol's enrolment cap); the
    protocol's own design also stops at its enrolment cap (`celltrial.conduct.escalation`)."""
    from celltrial.conduct.escalation import enrolment_cap
    from celltrial.design.compose import StopAtN
    from celltrial.design.live import EscalationSpec, escalation_spec, make_design

    spec = escalation_spec(protocol)
    k = len(protocol.dose_levels)
    cap = enrolment_cap(protocol)
    n = int(max_n or cap)
    out: dict[str, DoseDesign] = {}
    for raw in names:
        name = raw.strip().lower()
        if name == "protocol":
            design = make_design(spec, k)
            out[f"protocol ({spec.design})"] = StopAtN(design, cap) if cap < design.max_n \
                else design
            continue
        if name not in ("3+3", "boin", "crm", "boin12"):
            raise invalid("--designs", raw, "3+3, boin, crm, boin12 or protocol")
        own = EscalationSpec(name, spec.target, spec.cohort_size, n, None,
                             spec.efficacy_target, spec.exposure_threshold, spec.assumed,
                             spec.note)
        design = make_design(own, k)
        out[name] = StopAtN(design, n) if name == "3+3" and n < design.max_n else design
    return out

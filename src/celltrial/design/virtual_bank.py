"""A bank of mechanistic virtual patients per dose level, made by the per-patient path.

Virtual-trial operating characteristics (`celltrial.design.virtual_oc`) need, for every
patient a design doses, the same DLT, response and exposure that the per-patient path
(``celltrial simulate-study``, :mod:`celltrial.conduct.virtual_trial`) would give. Most DLTs
of the virtual patients are not CRS/ICANS but grade 4 cytopenia persisting beyond day 28
(rule D4 of the shipped protocols), which come from the blood-count course, its laboratory
records and their CTCAE grading; a model-only shortcut would miss them. So each patient of
the bank is made exactly as a dosed patient of a virtual study is:

1. referred patients (``kinetics.virtual.draw_patients``) screened against the protocol's
   eligibility (``screen_patient``) until ``n`` are eligible;
2. the mechanistic model for all of them at once, vectorised (``simulate_cohort``: RK4 over
   patients, split-dose hold rules, daily CRS/ICANS grades);
3. every record of each patient (``subject_records``: the one-year course of disease, blood
   counts, infections, labs, kinetics, marrow responses);
4. the derivations real data use: ADSL with the DLT adjudication of the protocol's DLT rules
   (``derive.build_adsl`` / ``derive.dlt.adjudicate`` -> ``clinical.evaluate_dlt``), ADRS best
   overall response (responder = ``design.live.RESPONDER_CATEGORIES``, the categories BOIN12
   counts) and ADPP non-compartmental Cmax and AUC0-28d of the qPCR transgene
   (``derive.build_adpc`` / ``build_adpp``).

The bank is built in chunks (``chunk`` patients of one level per task), each seeded by its own
child of ``numpy.random.SeedSequence(seed)`` in a fixed order, so the bank is the same whether
the chunks run in this process or on any number of Dask workers. Only DLT-evaluable patients
(DLTEVLFL = Y) enter escalation, as in `celltrial.design.live`; the others stay in the bank
table with ``evaluable`` False (a trial replaces them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from celltrial.errors import invalid

BANK_COLUMNS = ("level", "dose", "chunk", "subject", "evaluable", "dlt", "response",
                "cmax", "auc28", "diagnosis")
"""One row per banked patient: dose-level index (0-based) and dose (1-based), the chunk that
made it, DLT-evaluable, DLT (0/1), best overall response in the responder categories (0/1),
Cmax and AUC0-28d of the qPCR transgene (copies/ug gDNA, x day; NaN when not computable)."""

DAY0 = dt.date(2025, 1, 6)


@dataclass(frozen=True)
class PatientBank:
    """Banked virtual patients of one protocol (``table``: :data:`BANK_COLUMNS`)."""

    study: str
    seed: int
    n_per_dose: int
    table: pd.DataFrame

    @property
    def n_doses(self) -> int:
        return int(self.table["dose"].max())

    def pool(self, dose: int) -> pd.DataFrame:
        """DLT-evaluable patients of one dose (1-based), in bank order."""
        t = self.table
        return t[(t["dose"] == dose) & t["evaluable"]].reset_index(drop=True)

    def arrays(self, exposure_threshold: float | None = None
               ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray],
                          list[np.ndarray]]:
        """Per dose (index 0 = dose 1): DLT, efficacy (response, or AUC0-28d >= the
        threshold when given: BOIN12's exposure credit), AUC0-28d and Cmax of the evaluable
        patients."""
        tox, eff, auc, cmax = [], [], [], []
        for d in range(1, self.n_doses + 1):
            p = self.pool(d)
            if p.empty:
                raise invalid("bank", f"dose {d}", "at least one DLT-evaluable patient per dose")
            e = p["response"].to_numpy(np.int8)
            if exposure_threshold is not None:
                e = np.where(p["auc28"].fillna(-np.inf).to_numpy() >= exposure_threshold, 1, e)
            tox.append(p["dlt"].to_numpy(np.int8))
            eff.append(e.astype(np.int8))
            auc.append(p["auc28"].to_numpy(np.float64))
            cmax.append(p["cmax"].to_numpy(np.float64))
        return tox, eff, auc, cmax

    def truth(self) -> pd.DataFrame:
        """The "true" curves of the virtual population: per dose, evaluable patients, DLT rate
        and response rate with exact (Clopper-Pearson) 95% CIs, mean and median AUC0-28d and
        median Cmax (NaN excluded)."""
        from celltrial.design.rp2d import clopper_pearson

        rows = []
        for d in range(1, self.n_doses + 1):
            p = self.pool(d)
            n, y, r = len(p), int(p["dlt"].sum()), int(p["response"].sum())
            lo_t, hi_t = clopper_pearson(y, n)
            lo_r, hi_r = clopper_pearson(r, n)
            rows.append({"dose": d, "n": n, "p_dlt": y / n if n else np.nan,
                         "p_dlt_lo": lo_t, "p_dlt_hi": hi_t,
                         "p_response": r / n if n else np.nan,
                         "p_response_lo": lo_r, "p_response_hi": hi_r,
                         "auc28_mean": float(p["auc28"].mean()),
                         "auc28_median": float(p["auc28"].median()),
                         "cmax_median": float(p["cmax"].median())})
        return pd.DataFrame(rows)


def save_bank(bank: PatientBank, path: Any) -> None:
    """Write the bank as Parquet (its table plus the study, seed and size as columns)."""
    bank.table.assign(study=bank.study, bank_seed=bank.seed,
                      n_per_dose=bank.n_per_dose).to_parquet(path, index=False)


def load_bank(path: Any) -> PatientBank:
    """A bank written by :func:`save_bank`."""
    t = pd.read_parquet(path)
    missing = [c for c in (*BANK_COLUMNS, "study", "bank_seed", "n_per_dose")
               if c not in t.columns]
    if missing:
        raise invalid("bank file", str(path), f"a bank written by celltrial (lacks "
                      f"{', '.join(missing)})")
    return PatientBank(str(t["study"].iloc[0]), int(t["bank_seed"].iloc[0]),
                       int(t["n_per_dose"].iloc[0]), t[list(BANK_COLUMNS)].copy())


def bank_chunk(study: str, level: int, n: int, seed: Any, chunk: int = 0) -> pd.DataFrame:
    """``n`` screened patients of ``study`` dosed at ``level`` (0-based), made by the
    per-patient path and derived as real data are (module docstring). ``seed``: an int or a
    ``numpy.random.SeedSequence``."""
    from celltrial import protocols
    from celltrial.derive import build_adpc, build_adpp, build_adrs, build_adsl
    from celltrial.design.live import efficacy_by_subject
    from celltrial.kinetics.virtual import (
        _Rows, draw_patients, late_days, screen_patient, simulate_cohort, subject_records,
    )

    protocol = protocols.load(study)
    if not 0 <= level < len(protocol.dose_levels):
        raise invalid("level", level, f"a dose-level index 0..{len(protocol.dose_levels) - 1}")
    if n < 1:
        raise invalid("n", n, "a positive number of patients")
    rng = np.random.default_rng(seed)
    eligible: list[pd.Series] = []
    while len(eligible) < n:
        batch = draw_patients(protocol, 2 * n, rng)
        for _, row in batch.iterrows():
            values = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            if screen_patient(protocol, values)[0]:
                eligible.append(row)
            if len(eligible) == n:
                break
    patients = pd.DataFrame(eligible).reset_index(drop=True)
    seeds = rng.integers(0, 2**63 - 1, size=n)
    out = simulate_cohort(protocol, patients, level, rng, late_days(protocol))
    rows = _Rows(protocol.id)
    ids = [f"{protocol.id}-L{level + 1}C{chunk}-{k + 1:04d}" for k in range(n)]
    for k in range(n):
        subject_records(rows, protocol, patients.iloc[k], ids[k], k, DAY0, (True, []),
                        prng=np.random.default_rng(seeds[k]), outcome=out, k=k)
    domains = rows.frames()
    adsl = build_adsl(domains, protocol)
    response = efficacy_by_subject(build_adrs(domains, adsl))
    adpp = build_adpp(build_adpc(domains, adsl))
    expo = {}
    for code in ("CMAX_QPCR", "AUC28_QPCR"):
        part = adpp[adpp["PARAMCD"] == code]
        expo[code] = dict(zip(part["USUBJID"].astype(str),
                              pd.to_numeric(part["AVAL"], errors="coerce"), strict=True))
    a = adsl.set_index("USUBJID")
    return pd.DataFrame({
        "level": level, "dose": level + 1, "chunk": chunk, "subject": ids,
        "evaluable": [str(a.at[u, "DLTEVLFL"]) == "Y" for u in ids],
        "dlt": [int(str(a.at[u, "DLTFL"]) == "Y") for u in ids],
        "response": [int(response.get(u, 0)) for u in ids],
        "cmax": [float(expo["CMAX_QPCR"].get(u, np.nan)) for u in ids],
        "auc28": [float(expo["AUC28_QPCR"].get(u, np.nan)) for u in ids],
        "diagnosis": patients["diagnosis"].astype(str).to_numpy(),
    }, columns=list(BANK_COLUMNS))


def bank_tasks(n_doses: int, n_per_dose: int, seed: int, chunk: int
               ) -> list[tuple[int, int, np.random.SeedSequence, int]]:
    """(level, n, seed sequence, chunk number) of every chunk, in a fixed order: chunk c of
    level L takes child ``L * n_chunks + c`` of ``SeedSequence(seed)``."""
    if n_per_dose < 1:
        raise invalid("n_per_dose", n_per_dose, "a positive number of patients per dose")
    if chunk < 1:
        raise invalid("chunk", chunk, "a positive chunk size")
    sizes = [chunk] * (n_per_dose // chunk) + ([n_per_dose % chunk] if n_per_dose % chunk
                                                else [])
    children = np.random.SeedSequence(seed).spawn(n_doses * len(sizes))
    return [(lv, size, children[lv * len(sizes) + c], c)
            for lv in range(n_doses) for c, size in enumerate(sizes)]


def build_bank(protocol: Any, n_per_dose: int, seed: int = 1, *, chunk: int = 25,
               client: Any = "synchronous", progress: Any = None) -> PatientBank:
    """The bank of ``protocol``: ``n_per_dose`` screened patients at every dose level.

    ``client``: ``"synchronous"`` (this process), None (a local Dask cluster of processes,
    closed afterwards), a scheduler address (``tcp://host:8786``, e.g. a dask-jobqueue SLURM
    cluster) or a ``distributed.Client``. ``progress(k)`` is called with the patients of each
    finished chunk. The result does not depend on where the chunks ran."""
    tasks = bank_tasks(len(protocol.dose_levels), n_per_dose, seed, chunk)
    args = [(protocol.id, lv, size, ss, c) for lv, size, ss, c in tasks]
    if isinstance(client, str) and client == "synchronous":
        parts = []
        for a in args:
            parts.append(bank_chunk(*a))
            if progress is not None:
                progress(a[2])
    else:
        parts = _on_dask(args, client, progress)
    table = pd.concat(parts, ignore_index=True)
    return PatientBank(protocol.id, int(seed), int(n_per_dose), table)


def _on_dask(args: list[tuple[Any, ...]], client: Any, progress: Any) -> list[pd.DataFrame]:
    from dask.distributed import as_completed

    from celltrial.design.sweep import dask_client

    with dask_client(client, n_workers=2, threads_per_worker=1, processes=True,
                     dashboard_address=None) as c:
        futures = [c.submit(bank_chunk, *a, pure=False) for a in args]
        if progress is not None:
            for fut in as_completed(futures):
                progress(int(len(fut.result())))
        return list(c.gather(futures))

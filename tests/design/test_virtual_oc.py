"""Virtual-trial operating characteristics (celltrial.design.virtual_oc) on patient banks.

Synthetic banks (fixed DLT/response/AUC per banked patient) make hand-worked cohort histories;
a per-trial reference loop calling each design's own ``next_dose``/``select`` on the data in
enrolment order checks the lockstep (memoised, one decision per distinct state) trial by
trial; Dask with 1 and 2 workers must give the same table as this process for one seed.
"""

import numpy as np
import pandas as pd
import pytest

from celltrial.design import BOIN, BOIN12, CRM, EscalationData, ThreePlusThree
from celltrial.design.rp2d import RP2DRule
from celltrial.design.virtual_bank import BANK_COLUMNS, PatientBank, load_bank, save_bank
from celltrial.design.virtual_oc import _Memo, run_chunk, virtual_oc


def make_bank(per_dose: list[dict[str, list[float]]], study: str = "synthetic") -> PatientBank:
    """A bank from per-dose lists of dlt, response and auc28 (all evaluable)."""
    rows = []
    for lv, d in enumerate(per_dose):
        for i, (t, r, a) in enumerate(zip(d["dlt"], d["response"], d["auc28"], strict=True)):
            rows.append({"level": lv, "dose": lv + 1, "chunk": 0, "subject": f"L{lv}-{i}",
                         "evaluable": True, "dlt": int(t), "response": int(r), "cmax": a / 8,
                         "auc28": float(a), "diagnosis": "T-ALL"})
    table = pd.DataFrame(rows, columns=list(BANK_COLUMNS))
    return PatientBank(study, 1, max(len(d["dlt"]) for d in per_dose), table)


def fixed(n_doses: int, dlt: list[int], response: list[int] | None = None) -> PatientBank:
    """Every patient of dose d has DLT dlt[d] (and response response[d], default 1)."""
    response = response or [1] * n_doses
    return make_bank([{"dlt": [dlt[d]] * 4, "response": [response[d]] * 4,
                       "auc28": [1000.0 * (d + 1)] * 4} for d in range(n_doses)])


def random_bank(n_doses: int, seed: int, size: int = 25) -> PatientBank:
    rng = np.random.default_rng(seed)
    p_t = np.linspace(0.05, 0.55, n_doses)
    p_e = np.linspace(0.2, 0.6, n_doses)
    return make_bank([{"dlt": list(rng.uniform(size=size) < p_t[d]),
                       "response": list(rng.uniform(size=size) < p_e[d]),
                       "auc28": list(np.exp(rng.normal(10 + 0.3 * d, 1.0, size)))}
                      for d in range(n_doses)])


# ------------------------------------------------------------------ hand-worked histories

def test_three_plus_three_hand_worked():
    # doses 1-2 clear 0/3, dose 3 has 3/3 DLT: stop, recommend dose 2 (Storer 1989)
    t = run_chunk(ThreePlusThree(4), fixed(4, [0, 0, 1, 0]), 50, 7)
    assert list(t.patients) == [150, 150, 150, 0] and list(t.dlts) == [0, 0, 150, 0]
    assert list(t.selected) == [0, 50, 0, 0, 0]
    # 3/3 at dose 1: no dose
    t = run_chunk(ThreePlusThree(4), fixed(4, [1, 0, 0, 0]), 10, 7)
    assert list(t.patients) == [30, 0, 0, 0] and list(t.selected) == [0, 0, 0, 0, 10]


def test_boin_hand_worked():
    # BOIN target 0.3 (lambda_e 0.236, lambda_d 0.358): 0/3 at dose 1 escalates; 3/3 at dose
    # 2 eliminates doses 2-3 (P(p > 0.3 | 3/3, Beta(1,1)) = 1 - 0.3^4 = 0.992 > 0.95) and
    # de-escalates; dose 1 then stays (escalation blocked) for the 8 cohorts left of 10.
    t = run_chunk(BOIN(target=0.3, n_doses=3), fixed(3, [0, 1, 0]), 20, 3)
    assert list(t.patients / 20) == [27, 3, 0] and list(t.dlts / 20) == [0, 3, 0]
    assert list(t.selected) == [20, 0, 0, 0]
    # no DLT anywhere: 3 at dose 1, 3 at dose 2, the other 24 at the top dose, which is chosen
    t = run_chunk(BOIN(target=0.3, n_doses=3), fixed(3, [0, 0, 0]), 20, 3)
    assert list(t.patients / 20) == [3, 3, 24] and list(t.selected) == [0, 0, 20, 0]
    # duration: 10 cohorts of 3 dosed 7 days apart, 28-day windows, 7-day review + 1 day
    assert t.days / 20 == 10 * (2 * 7 + 28) + 9 * 8


def test_crm_hand_worked():
    # no DLT: CRM escalates one dose per cohort (no skipping) and stays at the top
    crm = CRM(skeleton=(0.1, 0.2, 0.3), target=0.3, cohort_size=3, n_cohorts=5)
    t = run_chunk(crm, fixed(3, [0, 0, 0]), 5, 1)
    assert list(t.patients / 5) == [3, 3, 9] and list(t.selected) == [0, 0, 5, 0]


# ------------------------------------------------------------------ lockstep == next_dose

def reference_trial(design, bank, seed, rule):
    """One trial by the plain loop: the design's own next_dose/select on the data in order,
    drawing bank patients exactly as run_chunk does for a single trial."""
    from celltrial.design.virtual_oc import _exposure_threshold

    rng = np.random.default_rng(seed)
    tox, eff, auc, _ = bank.arrays(_exposure_threshold(design))
    _, resp, _, _ = bank.arrays(None)
    k, cs = design.n_doses, design.cohort_size
    data = EscalationData(k)
    responders = np.zeros(k, dtype=int)
    decision = design.next_dose(data)
    while decision.action != "stop" and data.n_patients < design.max_n:
        d = decision.dose
        m = min(cs, design.max_n - data.n_patients)
        draw = rng.integers(0, tox[d - 1].size, size=(1, cs))[0][:m]
        data = data.add(d, [int(v) for v in tox[d - 1][draw]],
                        [int(v) for v in eff[d - 1][draw]])
        responders[d - 1] += int(resp[d - 1][draw].sum())
        decision = design.next_dose(data)
    sel = design.select(data).dose if data.n_patients else None
    med = np.array([np.nanmedian(a) for a in auc])
    rec = rule.recommend(data.n(), data.y(), responders, med).dose
    return sel, rec, data.n(), data.y(), responders


@pytest.mark.parametrize("design", [
    ThreePlusThree(4),
    BOIN(target=0.3, n_doses=4, cohort_size=3, n_cohorts=6),
    CRM(skeleton=(0.05, 0.12, 0.25, 0.4), target=0.3, cohort_size=3, n_cohorts=6),
    BOIN12(n_doses=4, phi_t=0.35, phi_e=0.25, cohort_size=3, n_cohorts=6),
    BOIN12(n_doses=4, phi_t=0.35, phi_e=0.25, cohort_size=3, n_cohorts=6,
           exposure_threshold=30000.0),
], ids=["3+3", "boin", "crm", "boin12", "boin12-exposure"])
def test_lockstep_equals_next_dose_trial_by_trial(design):
    bank = random_bank(4, 11)
    rule = RP2DRule(target=0.3)
    memo = _Memo(design, rule)  # shared: states met in one trial are reused by the next
    for seed in range(40):
        t = run_chunk(design, bank, 1, seed, rp2d_rule=rule, memo=memo)
        sel, rec, n, y, r = reference_trial(design, bank, seed, rule)
        k = design.n_doses
        assert int(np.argmax(t.selected)) == (k if sel is None else sel - 1), seed
        assert int(np.argmax(t.rp2d)) == (k if rec is None else rec - 1), seed
        assert list(t.patients) == list(n) and list(t.dlts) == list(y), seed
        assert list(t.responders) == list(r), seed


# ------------------------------------------------------------------ OC table and truth

def test_oc_table_consistent_with_truth_and_totals():
    bank = random_bank(4, 2, size=40)
    truth = bank.truth()
    pool = bank.table
    for d in range(1, 5):
        part = pool[pool["dose"] == d]
        assert truth.loc[d - 1, "p_dlt"] == pytest.approx(part["dlt"].mean(), abs=1e-12)
        assert truth.loc[d - 1, "p_response"] == pytest.approx(part["response"].mean(),
                                                                abs=1e-12)
    designs = {"3+3": ThreePlusThree(4), "boin": BOIN(target=0.3, n_doses=4)}
    oc = virtual_oc(bank, designs, 2000, seed=5)
    for dn, part in oc.groupby("design"):
        assert part["selection_pct"].sum() + part["stop_pct"].iloc[0] == pytest.approx(100)
        assert part["rp2d_pct"].sum() + part["rp2d_none_pct"].iloc[0] == pytest.approx(100)
    boin = oc[oc["design"] == "boin"]
    assert boin["mean_patients"].sum() <= 30 + 1e-9
    # the patients treated at a dose are bank draws: their DLT rate is the truth within MC
    # error (binomial SE of the pooled patients, 4 SE)
    for row in boin.itertuples():
        n = row.mean_patients * row.n_trials
        if n > 300:
            se = np.sqrt(row.p_dlt_true * (1 - row.p_dlt_true) / n)
            assert abs(row.mean_dlts / row.mean_patients - row.p_dlt_true) < 4 * se + 1e-9


def test_bank_round_trip(tmp_path):
    bank = random_bank(3, 4, size=6)
    save_bank(bank, tmp_path / "b.parquet")
    back = load_bank(tmp_path / "b.parquet")
    assert (back.study, back.seed, back.n_per_dose) == (bank.study, bank.seed, bank.n_per_dose)
    pd.testing.assert_frame_equal(back.table, bank.table, check_dtype=False)


# ------------------------------------------------------------------ reproducibility on Dask

def test_same_seed_same_oc_on_one_and_two_dask_workers(monkeypatch):
    from dask.distributed import Client, LocalCluster

    import celltrial.design.virtual_oc as module

    monkeypatch.setattr(module, "CHUNK", 500)  # small chunks: the same split, a quarter the work
    bank = random_bank(3, 3)
    designs = {"3+3": ThreePlusThree(3), "boin": BOIN(target=0.3, n_doses=3, n_cohorts=6)}
    n = 1100  # three chunks of trials, the last one short
    here = virtual_oc(bank, designs, n, seed=9)
    tables = []
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=False,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            tables.append(virtual_oc(bank, designs, n, seed=9, client=client))
    cols = [c for c in here.columns if c != "seconds"]
    for t in tables:
        pd.testing.assert_frame_equal(t[cols], here[cols])
    other = virtual_oc(bank, designs, n, seed=10)
    assert not other["selection_pct"].equals(here["selection_pct"])


# ------------------------------------------------------------------ bank vs simulate-study

def test_bank_agrees_with_simulate_study_within_mc_error():
    """Patients of the bank and the dosed, DLT-evaluable patients of a virtual study
    (`simulate-study`'s path: conduct loop, screening, calendar) of the same protocol, at the
    same doses: DLT and response counts within 3.5 SE of the bank's rates (binomial SE of the
    study's count plus the bank's own error), log Cmax by a two-sample KS test (p > 0.001)."""
    from scipy.stats import ks_2samp

    from celltrial.conduct.virtual_trial import run_virtual_trial
    from celltrial.derive import build_adpc, build_adpp, build_adrs, build_adsl
    from celltrial.design.live import efficacy_by_subject, exposure_by_subject
    from celltrial.design.virtual_bank import bank_chunk
    from celltrial.protocols import load

    protocol = load("nct04762485")
    trial = run_virtual_trial(protocol, 20, 4)
    adsl = build_adsl(trial.domains, protocol)
    ev = adsl[adsl["DLTEVLFL"] == "Y"]
    resp = efficacy_by_subject(build_adrs(trial.domains, adsl))
    adpp = build_adpp(build_adpc(trial.domains, adsl))
    cmax = exposure_by_subject(adpp, "CMAX_QPCR")
    doses = ev["TRT01AN"].astype(int).to_numpy()
    assert len(ev) >= 10
    bank = pd.concat([bank_chunk(protocol.id, int(d) - 1, 30, 100 + int(d))
                      for d in np.unique(doses)])
    bank = bank[bank["evaluable"]]
    rate = bank.groupby("dose")[["dlt", "response"]].mean()
    n_bank = bank.groupby("dose").size()
    for col, observed in (("dlt", (ev["DLTFL"] == "Y").to_numpy(int)),
                          ("response", np.array([resp.get(u, 0) for u in ev["USUBJID"]]))):
        p = rate.loc[doses, col].to_numpy()
        var = (p * (1 - p)).sum() + sum((p_d * (1 - p_d) / n_bank[d]) * (doses == d).sum() ** 2
                                        for d, p_d in rate[col].items() if d in doses)
        z = (observed.sum() - p.sum()) / np.sqrt(max(var, 1e-9))
        assert abs(z) < 3.5, (col, observed.sum(), p.sum())
    study_cmax = np.log([cmax[u] for u in ev["USUBJID"] if u in cmax])
    bank_cmax = np.log(bank["cmax"].dropna().to_numpy())
    assert ks_2samp(study_cmax, bank_cmax).pvalue > 0.001


def test_bank_same_on_dask_as_in_process():
    """Bank chunks are seeded by their place, not by who runs them."""
    from dask.distributed import Client, LocalCluster

    from celltrial.design.virtual_bank import build_bank
    from celltrial.protocols import load

    protocol = load("cd7-zz-phase1")
    here = build_bank(protocol, 3, seed=2, chunk=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        there = build_bank(protocol, 3, seed=2, chunk=2, client=client)
    assert len(here.table) == 9 and sorted(here.table["dose"].unique()) == [1, 2, 3]
    pd.testing.assert_frame_equal(here.table, there.table)

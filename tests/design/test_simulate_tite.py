"""Calendar-time simulation of the TITE designs (`celltrial.design.simulate_tite`): the observed
data at each decision on a hand-built timeline and inside simulated trials, TITE-BOIN without
pending patients equal to BOIN, and OCs equal to R TITEgBOIN 0.4.0 (frozen fixture + script)
where the rules are the same."""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from celltrial.design import BOIN, simulate
from celltrial.design.data import Decision, EscalationData, Selection
from celltrial.design.simulate_tite import (
    CompleteFollowUp,
    TiteSettings,
    observed_data,
    simulate_tite,
    simulate_trial,
)
from celltrial.design.tite import TITEBOIN, TITECRM
from celltrial.errors import InvalidValue

ANCHOR = json.loads((Path(__file__).parent / "fixtures" / "titegboin_oc.json").read_text())
TITESIM = json.loads((Path(__file__).parent / "fixtures" / "dfcrm_titesim.json").read_text())
PAPER = TiteSettings(window=3.0, accrual=2.0, arrivals="poisson", dlt_time="weibull", late=0.5)
BOIN6 = BOIN(target=0.3, n_doses=6, n_cohorts=12)


def test_observed_data_on_a_hand_built_timeline():
    # window 3 months; A: entry 0, DLT at 1.0; B: entry 0.5, no DLT; C: entry 1.0, DLT at 2.5
    # (study time 3.5); D: entry 3.2, no DLT
    entry = np.array([0.0, 0.5, 1.0, 3.2])
    dose, dlt = np.array([1, 1, 1, 2]), np.array([1, 0, 1, 0])
    onset = np.array([1.0, np.inf, 2.5, np.inf])
    at_34 = observed_data(3, entry[:3], dose[:3], dlt[:3], onset[:3], 3.4, 3.0)
    assert at_34.dlt == (1, 0, 0)  # C's DLT (3.5) not yet seen
    assert at_34.followup == pytest.approx((1.0, 2.9 / 3, 2.4 / 3), abs=1e-12)
    at_4 = observed_data(3, entry, dose, dlt, onset, 4.0, 3.0)
    assert at_4.dlt == (1, 0, 1, 0)
    assert at_4.followup == pytest.approx((1.0, 1.0, 1.0, 0.8 / 3), abs=1e-12)
    assert at_4.current_dose == 2
    # TITE-BOIN on the 4.0 view: D alone at dose 2 and pending (1 of 1 > 1/2): wait
    assert TITEBOIN(BOIN(n_doses=3)).next_dose(at_4).action == "wait"


def test_weibull_onset_puts_the_stated_share_of_dlts_in_each_half_of_the_window():
    rng = np.random.Generator(np.random.PCG64(11))
    dlt, onset = PAPER.outcomes(0.4, 200_000, rng)
    p_hat = dlt.mean()
    late = (onset[dlt == 1] > 1.5).mean()
    assert abs(p_hat - 0.4) < 4 * math.sqrt(0.24 / 200_000)
    assert abs(late - 0.5) < 4 * math.sqrt(0.25 / dlt.sum())
    assert np.all(onset[dlt == 1] <= 3.0) and np.all(np.isinf(onset[dlt == 0]))


@dataclass(frozen=True)
class Recording:
    """The real TITE-BOIN, with every view it is shown kept for inspection."""

    design: TITEBOIN
    views: list

    n_doses = property(lambda self: self.design.n_doses)
    max_n = property(lambda self: self.design.max_n)
    cohort_size = property(lambda self: self.design.cohort_size)

    def next_dose(self, data: EscalationData) -> Decision:
        self.views.append(data)
        return self.design.next_dose(data)

    def select(self, data: EscalationData) -> Selection:
        return self.design.select(data)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_decision_sees_only_what_has_happened(seed):
    rec = Recording(TITEBOIN(BOIN6), [])
    rng = np.random.Generator(np.random.PCG64(seed))
    trial = simulate_trial(rec, (0.10, 0.20, 0.30, 0.45, 0.60, 0.70), PAPER, rng)
    views = rec.views[1:]  # the first is the empty trial (start dose)
    assert len(views) == len(trial.decisions)
    for (t, decision), view in zip(trial.decisions, views, strict=True):
        before = trial.entry < t
        m = int(before.sum())
        assert view.n_patients == m and view.doses == tuple(trial.dose[:m])
        for i in range(m):
            happened = trial.dlt[i] == 1 and trial.entry[i] + trial.onset[i] <= t
            assert view.dlt[i] == int(happened)
            expect = 1.0 if happened else min((t - trial.entry[i]) / 3.0, 1.0)
            assert view.followup[i] == pytest.approx(expect, abs=1e-12)
        # a decision that enrols is the entry time of the next cohort's first patient
        entered = np.flatnonzero(trial.entry == t)
        if decision.action == "wait":
            assert entered.size == 0
        elif decision.action != "stop":
            assert entered.size == 1 and trial.dose[entered[0]] == decision.dose
    # cohorts of 3 share a dose; the trial lasts until the last patient completes the window
    assert all(len(set(trial.dose[i:i + 3])) == 1 for i in range(0, len(trial.dose), 3))
    assert trial.duration == pytest.approx(trial.entry[-1] + 3.0)


def close(a, b, se):
    return abs(a - b) <= 4 * se


def pct_se(a, b, n_a, n_b, floor=0.05):
    p = max((a + b) / 200, floor / 100)
    return 100 * math.sqrt(p * (1 - p) * (1 / n_a + 1 / n_b))


def test_without_pending_patients_tite_boin_is_boin():
    # arrivals every window/0.9: every patient is complete at the next arrival, so no patient
    # is ever pending and no decision waits; the OCs are plain BOIN's
    p = (0.05, 0.12, 0.30, 0.45, 0.60)
    slow = TiteSettings(window=1.0, accrual=0.9, arrivals="fixed", dlt_time="uniform")
    n = 4000
    res = simulate_tite(TITEBOIN(BOIN()), p, n, slow, seed=5)
    ref = simulate(BOIN(), p, 200_000, seed=8)
    assert res.mean_waits == 0
    for ours, theirs in zip(res.selection_pct + (res.stop_pct,),
                            ref.selection_pct + (ref.stop_pct,), strict=True):
        assert close(ours, theirs, pct_se(ours, theirs, n, 200_000)), (ours, theirs)
    for ours, theirs, sd in zip(res.mean_patients, ref.mean_patients, res.sd_patients,
                                strict=True):
        assert close(ours, theirs, sd * math.sqrt(1 / n + 1 / 200_000) + 1e-9), (ours, theirs)
    # one patient every 1/0.9 months, the last followed for the 1-month window
    for seed in range(5):
        trial = simulate_trial(TITEBOIN(BOIN()), p, slow, np.random.Generator(
            np.random.PCG64(seed)))
        assert trial.waits == 0
        assert trial.duration == pytest.approx((len(trial.entry) - 1) / 0.9 + 1.0, abs=1e-9)


def trial(doses, dlt, followup, n_doses=5):
    return EscalationData(n_doses, tuple(doses), tuple(dlt), followup=tuple(followup))


def test_ess_estimator_by_hand():
    # dose 2: 6 treated, 1 DLT, 2 pending at 1/2 and 1/4: y/(n - c + STFT) = 1/4.75
    data = trial((1,) * 3 + (2,) * 6, (0,) * 3 + (1, 0, 0, 0, 0, 0),
                 (1,) * 3 + (1, 1, 1, 1, 0.5, 0.25))
    p_hat, c, stft = TITEBOIN(BOIN(target=0.3), estimator="ess").imputed_rate(data, 2)
    assert (p_hat, c, stft) == (pytest.approx(1 / 4.75, abs=1e-15), 2, 0.75)


def test_tite_boin_waits_at_dose_1_when_toxic_with_patients_pending():
    # dose 1: 2 DLT and 1 without in 3 complete (P(p > 0.3) = 0.916: not eliminated), 1 pending
    # at 1/2: p~ = 2.15/4.5, p^ = (2 + p~ 0.5/(1 - p~/2))/4 = 0.578 >= lambda_d -> wait
    data = trial((1, 1, 1, 1), (1, 1, 0, 0), (1, 1, 1, 0.5))
    assert TITEBOIN().next_dose(data).action == "wait"
    done = trial((1, 1, 1, 1), (1, 1, 0, 0), (1, 1, 1, 1))  # 2/4 complete: stay at dose 1
    assert (TITEBOIN().next_dose(done).action, TITEBOIN().next_dose(done).dose) == ("stay", 1)


def test_elimination_on_complete_or_on_all_treated_patients():
    # dose 1: 3 DLT in 3 complete, 2 pending. Complete: P(p > 0.3 | 3/3) = 0.992 > 0.95 -> stop.
    # All treated (pending as no DLT): P(p > 0.3 | 3/5) = 0.930 -> not eliminated; the imputed
    # rate is far above lambda_d at dose 1 with patients pending -> wait
    data = trial((1,) * 5, (1, 1, 1, 0, 0), (1, 1, 1, 0.6, 0.3))
    assert TITEBOIN().next_dose(data).action == "stop"
    assert TITEBOIN(eliminate_on="treated").next_dose(data).action == "wait"


# TITEgBOIN's rules: ESS estimator, elimination on all treated, no 3-complete rule
ANCHOR_RULES = TITEBOIN(BOIN6, estimator="ess", eliminate_on="treated", min_complete_to_escalate=0)


@pytest.mark.parametrize("name", ["s1", "s4"])
def test_oc_equal_titegboin_where_the_rules_are_the_same(name):
    ref = ANCHOR["scenarios"][name]
    m = ref["titeboin"]["ntrial"]
    n = 2000
    res = simulate_tite(ANCHOR_RULES, ref["p_true"], n, PAPER, seed=17)
    tite = ref["titeboin"]
    for ours, theirs in zip(res.selection_pct + (res.stop_pct,),
                            tite["selection_pct"] + [tite["stop_pct"]], strict=True):
        assert close(ours, theirs, pct_se(ours, theirs, n, m)), (ours, theirs)
    for ours, theirs, sd in zip(res.mean_patients, tite["mean_patients"], res.sd_patients,
                                strict=True):
        assert close(ours, theirs, sd * math.sqrt(1 / n + 1 / m) + 1e-9), (ours, theirs)
    se_dur = math.sqrt(res.sd_duration ** 2 / n + tite["sd_duration"] ** 2 / m)
    assert close(res.mean_duration, tite["mean_duration"], se_dur)


def test_tite_crm_oc_near_dfcrm_titesim():
    # titesim: a decision at every arrival, no suspension, uniform DLT onset, 6 arrivals per
    # 3-month window. Rules that differ (ours: coherence after an observed DLT, MTD among doses
    # tried, first arrival at time 0 instead of after one gap) are below MC error here
    # (benchmarks/RESULTS.md); 4 SE with 300 trials on each side
    ref = TITESIM["scenarios"]["s4"]
    design = TITECRM(skeleton=tuple(TITESIM["skeleton"]), target=0.3, cohort_size=1,
                     n_cohorts=36, max_pending_fraction=1.0)
    settings = TiteSettings(window=3.0, accrual=2.0, arrivals="poisson", dlt_time="uniform")
    n, m = 300, ref["nsim"]
    res = simulate_tite(design, ref["p_true"], n, settings, seed=9)
    for ours, theirs in zip(res.selection_pct, ref["selection_pct"], strict=True):
        assert close(ours, theirs, pct_se(ours, theirs, n, m)), (ours, theirs)
    for ours, theirs, sd in zip(res.mean_patients, ref["mean_patients"], res.sd_patients,
                                strict=True):
        assert close(ours, theirs, sd * math.sqrt(1 / n + 1 / m) + 1e-9), (ours, theirs)
    se_dur = math.sqrt(res.sd_duration ** 2 / n + ref["sd_duration"] ** 2 / m)
    assert close(res.mean_duration, ref["mean_duration"], se_dur)


def test_tite_boin_shortens_the_trial_against_waiting_for_complete_data():
    p = ANCHOR["scenarios"]["s4"]["p_true"]
    tite = simulate_tite(TITEBOIN(BOIN6), p, 300, PAPER, seed=3)
    wait = simulate_tite(CompleteFollowUp(BOIN6), p, 300, PAPER, seed=3)
    # 36 patients at 2 a month take >= 17.5 months plus the 3-month window; waiting for each
    # cohort's window adds about 11 windows of 3 months
    assert 20 < tite.mean_duration < 40 < wait.mean_duration
    assert sum(tite.mean_patients) == pytest.approx(36) == sum(wait.mean_patients)


def test_settings_are_validated():
    with pytest.raises(InvalidValue):
        TiteSettings(window=0)
    with pytest.raises(InvalidValue):
        TiteSettings(late=1.0)
    with pytest.raises(InvalidValue):
        TiteSettings(arrivals="uniform")
    with pytest.raises(InvalidValue):
        TITEBOIN(estimator="mle")

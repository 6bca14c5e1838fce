"""Time-to-event designs (TITE-BOIN, Yuan et al. 2018; TITE-CRM, Cheung & Chappell 2000):
hand-worked pending-patient cases and TITE-CRM estimates equal to R dfcrm ``titecrm``."""

import json
from pathlib import Path

import pytest

from celltrial.design.boin import BOIN
from celltrial.design.data import EscalationData
from celltrial.design.tite import TITEBOIN, TITECRM, complete_only, pending_mask

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "dfcrm_titecrm.json").read_text())


def trial(doses, dlt, followup, n_doses=5):
    return EscalationData(n_doses, tuple(doses), tuple(dlt), followup=tuple(followup))


def test_pending_patients_are_those_inside_the_window_without_dlt():
    data = trial((1, 1, 1), (0, 1, 0), (0.5, 0.2, 1.0))
    assert pending_mask(data).tolist() == [True, False, False]  # a DLT completes a patient
    assert complete_only(data).n_patients == 2


def test_tite_boin_imputation_by_hand():
    # dose 2: 3 complete without DLT... here 6 patients: 1 DLT, 3 complete, 2 pending at 1/2, 1/4
    # p~ = (0.15 + 1) / (1 + 6 - 2 + 0.75) = 0.2; y^ = 0.2*0.5/0.9 + 0.2*0.75/0.95
    data = trial((1,) * 3 + (2,) * 6, (0,) * 3 + (1, 0, 0, 0, 0, 0),
                 (1,) * 3 + (1, 1, 1, 1, 0.5, 0.25))
    p_hat, c, stft = TITEBOIN(BOIN(target=0.3)).imputed_rate(data, 2)
    assert (c, stft) == (2, 0.75)
    assert p_hat == pytest.approx((1 + 0.2 * 0.5 / 0.9 + 0.2 * 0.75 / 0.95) / 6, abs=1e-12)


def test_tite_boin_waits_when_more_than_half_are_pending():
    # 3 treated at dose 2, 2 of them pending: 2/3 > 1/2 -> wait, enrol nobody
    data = trial((1, 1, 1, 2, 2, 2), (0,) * 6, (1, 1, 1, 1, 0.3, 0.1))
    decision = TITEBOIN().next_dose(data)
    assert decision.action == "wait" and decision.dose == 2


def test_tite_boin_escalates_on_imputed_data_once_three_are_complete():
    # 6 at dose 2: 4 complete without DLT, 2 pending at 0.9 and 0.8 -> p^ ~ 0.01 <= lambda_e
    data = trial((1, 1, 1) + (2,) * 6, (0,) * 9, (1,) * 7 + (0.9, 0.8) + ())
    decision = TITEBOIN().next_dose(data)
    assert (decision.action, decision.dose) == ("escalate", 3)


def test_tite_boin_de_escalates_on_a_dlt_while_others_are_pending():
    # dose 2: 2 DLT among 3 complete, 1 pending at 0.5: p^ >= (2/4) >= lambda_d 0.3585
    data = trial((1, 1, 1, 2, 2, 2, 2), (0, 0, 0, 1, 1, 0, 0), (1, 1, 1, 1, 1, 1, 0.5))
    decision = TITEBOIN().next_dose(data)
    assert (decision.action, decision.dose) == ("de-escalate", 1)


def test_tite_boin_stops_when_dose_1_is_eliminated_on_complete_data():
    data = trial((1,) * 4, (1, 1, 1, 0), (1, 1, 1, 0.2))
    decision = TITEBOIN().next_dose(data)
    assert decision.action == "stop"


def test_tite_boin_without_pending_patients_is_boin():
    data = trial((1, 1, 1, 2, 2, 2), (0, 0, 0, 0, 1, 0), (1,) * 6)
    assert TITEBOIN().next_dose(data) == BOIN().next_dose(data)


@pytest.mark.parametrize("case", range(len(FIXTURE["cases"])))
def test_tite_crm_estimate_equals_dfcrm(case):
    ref = FIXTURE["cases"][case]
    design = TITECRM(skeleton=tuple(FIXTURE["skeleton"]), target=FIXTURE["target"])
    data = trial(ref["level"], ref["tox"], [f / FIXTURE["obswin"] for f in ref["followup"]])
    b_hat, ptox = design.estimate(data)
    assert b_hat == pytest.approx(ref["estimate"], abs=1e-9)
    assert ptox == pytest.approx(ref["ptox"], abs=1e-9)


def test_tite_crm_never_escalates_after_a_dlt_in_the_current_cohort():
    # 0/3, 0/3 at doses 1-2, then dose 3 with 1 DLT in the cohort: no escalation to dose 4
    data = trial((1, 1, 1, 2, 2, 2, 3, 3, 3), (0,) * 6 + (1, 0, 0), (1,) * 9)
    decision = TITECRM().next_dose(data)
    assert decision.dose <= 3


def test_tite_crm_does_not_skip_doses():
    data = trial((1, 1, 1), (0, 0, 0), (1, 1, 1))
    assert TITECRM().next_dose(data).dose == 2

"""BOIN decisions and MTD selection on hand-worked trials (Liu & Yuan 2015; BOIN 2.7.2)."""

import pytest

from celltrial.design import BOIN, EscalationData
from celltrial.errors import InvalidValue


def trial(*cohorts, n_doses=5):
    """cohorts: (dose, DLT count, size)"""
    doses, dlt = [], []
    for dose, y, size in cohorts:
        doses += [dose] * size
        dlt += [1] * y + [0] * (size - y)
    return EscalationData(n_doses, tuple(doses), tuple(dlt))


# (cohorts, expected action, expected next dose)
DECISIONS = [
    ((), "stay", 1),
    (((1, 0, 3),), "escalate", 2),
    (((1, 1, 3),), "stay", 1),                      # 1/3 = 0.33 between 0.2365 and 0.3585
    (((1, 0, 3), (2, 2, 3)), "de-escalate", 1),     # 2/3 >= 0.3585
    (((1, 0, 3), (2, 1, 3), (2, 0, 3)), "escalate", 3),  # 1/6 <= 0.2365
    (((1, 0, 3), (2, 1, 3), (2, 2, 3)), "de-escalate", 1),  # 3/6 >= 0.3585
    (((1, 1, 3),) * 1 + ((1, 0, 3),), "escalate", 2),   # 1/6
    (((1, 0, 3), (2, 3, 3)), "de-escalate", 1),     # 3/3: dose 2+ eliminated
    (((1, 2, 3),), "stay", 1),                      # de-escalate impossible at dose 1
    (((1, 3, 3),), "stop", None),                   # dose 1 eliminated
    (((1, 0, 3), (2, 0, 3), (3, 0, 3), (4, 0, 3), (5, 0, 3)), "stay", 5),  # top dose
]


@pytest.mark.parametrize(("cohorts", "action", "dose"), DECISIONS)
def test_next_dose(cohorts, action, dose):
    decision = BOIN().next_dose(trial(*cohorts))
    assert (decision.action, decision.dose) == (action, dose), decision.reason
    assert decision.reason


def test_no_escalation_into_an_eliminated_dose():
    data = trial((1, 0, 3), (2, 3, 3), (1, 0, 3))
    decision = BOIN().next_dose(data)
    assert (decision.action, decision.dose) == ("stay", 1)
    assert "eliminated" in decision.reason


def test_stop_at_maximum_sample_size_and_earlystop():
    data = trial(*[(1, 0, 3)] * 2, n_doses=1)
    assert BOIN(n_doses=1, n_cohorts=2).next_dose(data).action == "stop"
    early = BOIN(n_doses=1, n_earlystop=6).next_dose(data)
    assert early.action == "stop" and "n_earlystop" in early.reason


def test_select_by_isotonic_regression():
    # dose 1 2/6 = 0.33, dose 2 1/6: PAVA pools them (both 0.25), below the target -> dose 2
    data = trial((1, 1, 3), (1, 1, 3), (2, 0, 3), (2, 1, 3), (3, 3, 3))
    sel = BOIN().select(data)
    assert sel.dose == 2
    assert sel.estimates[0] == pytest.approx(sel.estimates[1])
    assert sel.estimates[2] is None  # dose 3 eliminated (3/3)


def test_select_none_when_dose_1_eliminated():
    sel = BOIN().select(trial((1, 3, 3)))
    assert sel.dose is None and "no MTD" in sel.reason


def test_data_validated_at_the_door():
    with pytest.raises(InvalidValue, match="Invalid `dose`: got `6`"):
        EscalationData(5, (6,), (0,))
    with pytest.raises(InvalidValue, match="Invalid `dlt`: got `2`"):
        EscalationData(5, (1,), (2,))
    with pytest.raises(InvalidValue, match="Invalid `data.n_doses`"):
        BOIN(n_doses=4).next_dose(EscalationData(5))
    with pytest.raises(InvalidValue, match="Invalid `n_cohorts`"):
        BOIN(n_cohorts=0)

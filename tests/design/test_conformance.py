"""Every design passes the same interface checks (STYLE.md, Follow 6)."""

import pytest

from celltrial.design import BOIN, CRM, Decision, DoseDesign, EscalationData, Selection
from celltrial.design import ThreePlusThree
from celltrial.design.boin12 import BOIN12

DESIGNS = [BOIN(), ThreePlusThree(5), CRM(), BOIN12()]


@pytest.mark.parametrize("design", DESIGNS, ids=lambda d: type(d).__name__)
def test_interface(design):
    assert isinstance(design, DoseDesign)
    empty = EscalationData(design.n_doses)
    first = design.next_dose(empty)
    assert isinstance(first, Decision) and first.dose == 1 and first.action == "stay"
    data = empty
    decision = first
    while decision.action != "stop" and data.n_patients < design.max_n:
        assert decision.dose is not None and 1 <= decision.dose <= design.n_doses
        assert decision.action in ("escalate", "stay", "de-escalate")
        # never skip: at most one above the current dose
        assert decision.dose <= (data.current_dose or 1) + 1
        data = data.add(decision.dose, [0, 0, 1][: design.cohort_size], [1, 0, 1][: design.cohort_size])
        decision = design.next_dose(data)
    sel = design.select(data)
    assert isinstance(sel, Selection) and sel.reason
    assert sel.dose is None or 1 <= sel.dose <= design.n_doses
    assert len(sel.estimates) == design.n_doses


@pytest.mark.parametrize("design", DESIGNS, ids=lambda d: type(d).__name__)
def test_frozen(design):
    with pytest.raises(AttributeError):
        design.n_doses = 3  # type: ignore[misc]

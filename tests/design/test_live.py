"""Next-cohort decision of a running study from ADSL (TRT01AN, DLTEVLFL, DLTFL, TRTSDTM)."""

from types import SimpleNamespace

import pandas as pd
import pytest

from celltrial.design.live import escalation_data_from_adsl, escalation_spec, live_decision
from celltrial.errors import InvalidValue, NotComputable

LEVELS = [SimpleNamespace(id=f"DL{i}") for i in range(1, 5)]


def adsl(rows):
    """rows: (USUBJID, dose index or None, DLT-evaluable, DLT, first infusion)"""
    return pd.DataFrame({
        "USUBJID": [r[0] for r in rows],
        "TRT01A": [None if r[1] is None else f"DL{r[1]}" for r in rows],
        "TRT01AN": [float("nan") if r[1] is None else float(r[1]) for r in rows],
        "DLTEVLFL": [r[2] for r in rows], "DLTFL": [r[3] for r in rows],
        "TRTSDTM": pd.to_datetime([r[4] for r in rows]),
    })


COHORT_1 = [("S1", 1, "Y", "N", "2024-01-10"), ("S2", 1, "Y", "N", "2024-01-12"),
            ("S3", 1, "Y", "N", "2024-01-14")]


def test_boin_assumed_when_the_protocol_names_no_rule():
    protocol = SimpleNamespace(id="demo", dose_levels=LEVELS)
    result = live_decision(adsl(COHORT_1), protocol)
    assert result.spec.assumed and result.design == "BOIN" and result.spec.target == 0.3
    assert (result.decision.action, result.decision.dose) == ("escalate", 2)
    assert result.counts["n_evaluable"].tolist() == [3, 0, 0, 0]
    assert result.counts["level"].tolist() == ["DL1", "DL2", "DL3", "DL4"]
    assert "assumed" in result.spec.note.lower() or "assumed" in result.as_dict()["note"]


def test_order_by_first_infusion_pending_and_screen_failures():
    rows = COHORT_1 + [
        ("S6", 2, "Y", "Y", "2024-03-05"), ("S4", 2, "Y", "Y", "2024-03-01"),
        ("S5", 2, "N", None, "2024-03-03"),   # inside the DLT window: pending
        ("S7", None, "N", None, None),          # not infused
    ]
    data, counts = escalation_data_from_adsl(adsl(rows), 4)
    assert data.doses == (1, 1, 1, 2, 2) and data.dlt == (0, 0, 0, 1, 1)
    assert data.current_dose == 2
    assert counts["n_pending"].tolist() == [0, 1, 0, 0]
    protocol = SimpleNamespace(id="demo", dose_levels=LEVELS)
    decision = live_decision(adsl(rows), protocol).decision
    assert (decision.action, decision.dose) == ("de-escalate", 1)  # 2/2 >= lambda_d


def test_protocol_escalation_block_picks_the_rule():
    protocol = SimpleNamespace(id="demo", dose_levels=LEVELS,
                               escalation={"design": "3+3", "cohort_size": 3})
    result = live_decision(adsl(COHORT_1), protocol)
    assert result.design == "ThreePlusThree" and not result.spec.assumed
    assert result.decision.action == "escalate"
    with pytest.raises(InvalidValue, match="Invalid `escalation.design`"):
        escalation_spec(SimpleNamespace(escalation={"design": "mtpi"}))


def test_first_cohort_not_yet_evaluable_stays():
    rows = [("S1", 1, "N", None, "2024-01-10")]
    result = live_decision(adsl(rows), SimpleNamespace(id="d", dose_levels=LEVELS))
    assert (result.decision.action, result.decision.dose) == ("stay", 1)
    assert "DLT window" in result.decision.reason


def test_bad_inputs_name_what_is_wrong():
    with pytest.raises(NotComputable, match="no dose levels"):
        live_decision(adsl(COHORT_1), SimpleNamespace(id="d", dose_levels=[]))
    with pytest.raises(NotComputable, match="ADSL lacks DLTFL"):
        escalation_data_from_adsl(adsl(COHORT_1).drop(columns="DLTFL"), 4)
    with pytest.raises(InvalidValue, match="TRT01AN of S1"):
        escalation_data_from_adsl(adsl([("S1", 7, "Y", "N", "2024-01-01")]), 4)


@pytest.mark.parametrize("study", ["cd7-aml-mll", "cd7-tall-phase1", "nct04762485",
                                   "cd7-zz-phase1", "cd7-tall-dlt"])
def test_every_library_protocol_gives_a_decision(study):
    from celltrial import protocols

    protocol = protocols.load(study)
    result = live_decision(adsl(COHORT_1), protocol)
    assert result.decision.action in ("escalate", "stay", "de-escalate", "stop")
    assert result.decision.reason
    assert len(result.counts) == len(protocol.dose_levels)
    assert result.as_dict()["counts"][0]["n_evaluable"] == 3


def test_boin12_reads_response_and_exposure():
    protocol = SimpleNamespace(id="zz", dose_levels=LEVELS[:3], escalation={
        "design": "boin12", "target": 0.35, "efficacy_target": 0.25,
        "exposure_threshold": 1000.0, "cohort_size": 3, "max_n": 9})
    adrs = pd.DataFrame({"USUBJID": ["S1", "S2", "S3"], "PARAMCD": "BOR",
                         "AVALC": ["CR", "NR", "PD"]})
    adpp = pd.DataFrame({"USUBJID": ["S2", "S3"], "PARAMCD": "AUC28_QPCR",
                         "AVAL": [5000.0, 10.0]})
    result = live_decision(adsl(COHORT_1), protocol, adrs, adpp)
    assert result.design == "BOIN12"
    assert result.data.efficacy == (1, 0, 0) and result.data.exposure == (None, 5000.0, 10.0)
    assert result.counts["n_response"].tolist() == [1, 0, 0]
    # 2 of 3 efficacious (CR, and expansion above the threshold): dose 1's desirability
    # P(Beta(1 + 2.4, 1 + 0.6) > 0.705) beats untried dose 2's 0.295 -> stay
    assert (result.decision.action, result.decision.dose) == ("stay", 1)
    # no response and no expansion: dose 1 is undesirable, untried dose 2 wins -> escalate
    flat = live_decision(adsl(COHORT_1), protocol, adrs.assign(AVALC="NR"), adpp.iloc[:0])
    assert (flat.decision.action, flat.decision.dose) == ("escalate", 2)


def tite_adsl(rows, cut):
    """rows: (USUBJID, dose, DLT-evaluable, DLT, first infusion); LSTALVDT = the data cut."""
    frame = adsl(rows)
    frame["TRTSDT"] = frame["TRTSDTM"].dt.normalize()
    frame["LSTALVDT"] = pd.Timestamp(cut)
    frame["DTHFL"], frame["HSCTFL"], frame["EOSSTT"] = "N", "N", "ONGOING"
    return frame


def test_tite_boin_counts_patients_still_inside_the_dlt_window():
    protocol = SimpleNamespace(id="demo", dose_levels=LEVELS, dlt=SimpleNamespace(window_days=28),
                               escalation={"design": "tite-boin", "target": 0.3})
    rows = COHORT_1 + [("S4", 2, "N", None, "2024-02-20"), ("S5", 2, "N", None, "2024-02-22"),
                       ("S6", 2, "N", None, "2024-02-26")]
    # cut 2024-03-01: S4-S6 followed 10, 8 and 4 of 28 days -> 3 of 3 pending: wait
    result = live_decision(tite_adsl(rows, "2024-03-01"), protocol)
    assert result.design == "TITEBOIN"
    assert result.data.followup[3:] == pytest.approx((10 / 28, 8 / 28, 4 / 28))
    assert (result.decision.action, result.decision.dose) == ("wait", 2)
    assert result.counts["n_pending"].tolist() == [0, 3, 0, 0]
    # a DLT in S4 (complete) and S5 evaluable without DLT: 1 of 3 pending, 1 DLT in 2 complete
    rows[3] = ("S4", 2, "Y", "Y", "2024-02-20")
    rows[4] = ("S5", 2, "Y", "N", "2024-02-22")
    result = live_decision(tite_adsl(rows, "2024-03-01"), protocol)
    assert result.decision.action in ("stay", "de-escalate")
    assert result.counts["n_evaluable"].tolist() == [3, 2, 0, 0]

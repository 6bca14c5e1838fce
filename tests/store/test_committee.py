"""The dose-escalation committee: the rules a decision must follow, its quorum of signatures,
and the enrolment that only the signed decision opens (SQLite and PostgreSQL).

The study is the library protocol ``cd7-tall-dlt`` (3+3, cohorts of 3, DL1-DL4, 28-day DLT
window): its first cohort (101-001..003) was infused at DL1 and followed beyond the window
without a DLT, so the design recommends escalating to DL2; 101-004..007 and 102-001 are
screened and wait for enrolment, 101-008 failed screening.
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from celltrial.protocols import load
from celltrial.store import (add_user, audit_trail, count_records, read_domain, verify_audit,
                             write_domains)
from celltrial.store.committee import (
    DecisionRefused,
    EnrolmentRefused,
    decision_problem,
    decisions,
    dose_opened,
    enrol,
    export_decisions_csv,
    opening,
    quorum_met,
    record_decision,
    review_study,
    sign_decision,
)
from celltrial.store.permissions import NotPermitted
from celltrial.store.schema import CommitteeDecision, User
from celltrial.store.signatures import SignatureRefused, set_full_name
from tests.store.conftest import STUDY
from tests.store.oversight import PASSWORD, add_users

COHORT1 = ("101-001", "101-002", "101-003")
SCREENED = ("101-004", "101-005", "101-006", "101-007")


@pytest.fixture(scope="module")
def protocol():
    return load(STUDY)


def _subjects(cohort1_infused: bool) -> dict[str, pd.DataFrame]:
    infused = list(COHORT1) if cohort1_infused else []
    waiting = [*SCREENED, "101-008", "102-001"]
    subjects = infused + waiting
    dm = pd.DataFrame({
        "USUBJID": subjects, "SUBJID": [s[-3:] for s in subjects],
        "SITEID": [s[:3] for s in subjects], "AGE": 40, "SEX": "F",
        "ARMCD": ["DL1"] * len(infused) + [None] * len(waiting),
        "ARM": ["0.5x10^6/kg"] * len(infused) + [None] * len(waiting),
        "RFICDTC": "2024-01-02",
        "RFSTDTC": ["2024-01-10", "2024-01-11", "2024-01-12"][:len(infused)]
        + [None] * len(waiting),
        "RFPENDTC": ["2024-03-01"] * len(infused) + [None] * len(waiting)})
    frames = {"DM": dm, "DS": pd.DataFrame({
        "USUBJID": ["101-008"], "DSSEQ": [1], "DSDECOD": ["SCREEN FAILURE"],
        "DSTERM": ["CD7 < 30%"], "DSSTDTC": ["2024-01-05"]})}
    if infused:
        frames["EX"] = pd.DataFrame({
            "USUBJID": infused, "EXSEQ": 1, "EXTRT": "CD7 CAR-T", "EXDOSE": 5e5,
            "EXDOSU": "cells/kg", "EXSTDTC": ["2024-01-10", "2024-01-11", "2024-01-12"]})
    return frames


def _members(store):
    add_users(store)
    add_user(store, "inv101b", "investigator", PASSWORD, site="101")
    for username, name in (("inv101", "Ana Ruiz"), ("inv101b", "Dev Patel"),
                           ("coord102", "Ben Okafor")):
        set_full_name(store, username, name, by="admin")
    return store


@pytest.fixture()
def trial(store):
    """Cohort 1 infused at DL1 and followed past the DLT window; seven subjects waiting."""
    write_domains(store, STUDY, _subjects(True), user="dm.entry", reason="initial entry")
    return _members(store)


@pytest.fixture()
def fresh(store):
    """Nobody enrolled yet: only screened subjects."""
    write_domains(store, STUDY, _subjects(False), user="dm.entry", reason="initial entry")
    return _members(store)


def _decide(store, protocol, action, level, reason=None, user="inv101", **kw):
    return record_decision(store, protocol, action=action, dose_level=level, reason=reason,
                           user=user, username=user, password=PASSWORD, **kw)


def _armcd(store, usubjid):
    dm = read_domain(store, STUDY, "DM").set_index("USUBJID")
    value = dm.loc[usubjid, "ARMCD"]
    return None if pd.isna(value) else value


def _unchanged(store, before_counts, before_audit):
    assert count_records(store, STUDY) == before_counts
    assert len(audit_trail(store, STUDY)) == before_audit


# ---------------------------------------------------------------- the rules, as tables
@pytest.mark.parametrize(("action", "current", "dose", "allowed"), [
    # action        current  opens  allowed
    ("escalate",    1,       2,     True),
    ("escalate",    1,       3,     False),   # never skips a level
    ("escalate",    1,       1,     False),
    ("escalate",    4,       5,     False),   # beyond the highest of 4 levels
    ("escalate",    4,       4,     False),
    ("stay",        2,       2,     True),
    ("stay",        2,       1,     False),
    ("de-escalate", 3,       2,     True),
    ("de-escalate", 3,       1,     True),
    ("de-escalate", 3,       3,     False),
    ("de-escalate", 1,       1,     False),   # nothing below the lowest
    ("stop",        2,       None,  True),
    ("stop",        2,       2,     False),   # stop opens no level
    ("stay",        2,       None,  False),
    ("pause",       2,       2,     False),   # not an action
])
def test_which_dose_each_action_may_open(action, current, dose, allowed):
    assert (dose_opened(action, current, 4, dose) is None) is allowed


@pytest.mark.parametrize(("action", "dose", "reason", "refused"), [
    # the design recommends escalate to 2
    # action        dose  reason                            refused because
    ("escalate",    2,    None,                             None),
    ("stay",        1,    None,                             "reason"),
    ("stay",        1,    "   ",                            "reason"),
    ("stay",        1,    "grade 2 ICANS in 2 of 3",        None),
    ("stop",        None, "sponsor safety hold",            None),
    ("stop",        None, None,                             "reason"),
    ("escalate",    3,    "no DLT at all",                  "dose"),
])
def test_a_decision_differing_from_the_recommendation_needs_a_reason(action, dose, reason,
                                                                     refused):
    problem = decision_problem(action, dose, reason, current=1, n_doses=4,
                               recommended=("escalate", 2))
    if refused is None:
        assert problem is None
    else:
        assert problem is not None and f"Invalid `{refused}`" in problem


# ---------------------------------------------------------------- the review
def test_the_review_shows_the_cohort_its_adjudications_and_the_recommendation(trial,
                                                                              protocol):
    r = review_study(trial, protocol)
    assert (r.cohort.number, r.cohort.level, r.cohort.subjects) == (1, "DL1", COHORT1)
    assert [p["usubjid"] for p in r.patients] == list(COHORT1)
    assert all(p["dlt_evaluable"] and not p["dlt"] for p in r.patients)
    assert (r.current_dose, r.action, r.dose, r.design) == (1, "escalate", 2, "ThreePlusThree")
    assert r.counts[0]["n_evaluable"] == 3 and r.counts[0]["n_dlt"] == 0


# ---------------------------------------------------------------- quorum and enrolment
def test_a_signed_escalation_opens_only_the_next_level_for_one_cohort(trial, protocol):
    # before any decision the first cohort is full: nothing is open
    assert not opening(trial, protocol).open
    counts, audit = count_records(trial, STUDY), len(audit_trail(trial, STUDY))
    with pytest.raises(EnrolmentRefused, match="No dose level is open"):
        enrol(trial, protocol, "101-004", "DL2", user="inv101")
    _unchanged(trial, counts, audit)

    d = _decide(trial, protocol, "escalate", "DL2", seen=("escalate", 2))
    assert (d.action, d.dose, d.dose_level, d.follows_recommendation) == ("escalate", 2,
                                                                          "DL2", True)
    assert [s.username for s in d.signatures] == ["inv101"] and not d.signed
    assert not opening(trial, protocol).open  # one of two signatures: not in effect
    assert opening(trial, protocol).pending == (d.id,)
    with pytest.raises(SignatureRefused, match="already signed"):
        sign_decision(trial, STUDY, d.id, user="inv101", username="inv101", password=PASSWORD)
    d = sign_decision(trial, STUDY, d.id, user="inv101b", username="inv101b",
                      password=PASSWORD)
    assert d.signed and quorum_met(d.signatures)
    now_open = opening(trial, protocol)
    assert (now_open.level.id, now_open.decision, now_open.slots) == ("DL2", d.id, 3)

    counts, audit = count_records(trial, STUDY), len(audit_trail(trial, STUDY))
    for level in ("DL1", "DL3", "DL9"):
        with pytest.raises(EnrolmentRefused, match="is not open: only DL2"):
            enrol(trial, protocol, "101-004", level, user="inv101")
    _unchanged(trial, counts, audit)
    assert _armcd(trial, "101-004") is None

    for usubjid in SCREENED[:3]:
        enrol(trial, protocol, usubjid, "DL2", user="inv101")
    assert [_armcd(trial, s) for s in SCREENED] == ["DL2", "DL2", "DL2", None]
    with pytest.raises(EnrolmentRefused, match="is enrolled: the committee must"):
        enrol(trial, protocol, SCREENED[3], "DL2", user="inv101")
    assert _armcd(trial, SCREENED[3]) is None
    trail = audit_trail(trial, STUDY, table="dm")
    reasons = trail[trail["field"] == "ARMCD"]["reason"].tolist()
    assert reasons == [f"enrolled at DL2, opened by committee decision {d.id}"] * 3
    assert verify_audit(trial).intact


def test_before_any_decision_only_the_starting_dose_is_open_for_the_first_cohort(fresh,
                                                                                 protocol):
    now_open = opening(fresh, protocol)
    assert (now_open.level.id, now_open.decision, now_open.slots) == ("DL1", None, 3)
    with pytest.raises(EnrolmentRefused, match="only DL1"):
        enrol(fresh, protocol, "101-004", "DL2", user="inv101")
    for usubjid in SCREENED[:3]:
        enrol(fresh, protocol, usubjid, "DL1", user="inv101")
    with pytest.raises(EnrolmentRefused, match="first cohort"):
        enrol(fresh, protocol, "102-001", "DL1", user="coord102")


@pytest.mark.parametrize(("usubjid", "user", "error", "match"), [
    # subject    enrolled by  refused with     because
    ("101-008",  "inv101",    EnrolmentRefused, "failed screening"),
    ("101-001",  "inv101",    EnrolmentRefused, "already enrolled"),
    ("102-001",  "inv101",    NotPermitted,     "not of site 101"),
    ("101-004",  "mon101",    NotPermitted,     "may not enrol"),
    ("101-004",  "dm1",       NotPermitted,     "may not enrol"),
])
def test_who_and_whom_enrolment_refuses(fresh, protocol, usubjid, user, error, match):
    if usubjid == "101-001":
        enrol(fresh, protocol, "101-004", "DL1", user="inv101")
        usubjid = "101-004"
    counts, audit = count_records(fresh, STUDY), len(audit_trail(fresh, STUDY))
    with pytest.raises(error, match=match):
        enrol(fresh, protocol, usubjid, "DL1", user=user)
    _unchanged(fresh, counts, audit)


def test_a_signed_stop_opens_nothing(trial, protocol):
    with pytest.raises(DecisionRefused, match="Invalid `reason`"):
        _decide(trial, protocol, "stop", None)
    d = _decide(trial, protocol, "stop", None, reason="sponsor stops for product supply")
    d = sign_decision(trial, STUDY, d.id, user="inv101b", username="inv101b",
                      password=PASSWORD)
    assert d.signed and not d.follows_recommendation and d.dose is None
    now_open = opening(trial, protocol)
    assert (now_open.open, now_open.level, now_open.decision) == (False, None, d.id)
    with pytest.raises(EnrolmentRefused, match="stopped dose escalation"):
        enrol(trial, protocol, "101-004", "DL1", user="inv101")


def test_a_later_signed_decision_supersedes_and_an_unsigned_one_waits(trial, protocol):
    first = _decide(trial, protocol, "stay", "DL1", reason="ICANS grade 2 in two patients")
    sign_decision(trial, STUDY, first.id, user="inv101b", username="inv101b",
                  password=PASSWORD)
    second = _decide(trial, protocol, "escalate", "DL2")
    now_open = opening(trial, protocol)
    assert (now_open.level.id, now_open.decision, now_open.pending) == ("DL1", first.id,
                                                                        (second.id,))


@pytest.mark.parametrize(("action", "level", "reason", "kw", "match"), [
    ("escalate", "DL3", "fast", {},                            "never skipping"),
    ("escalate", "DL0", None,   {},                            "Invalid `dose_level`"),
    ("escalate", "DL2", None,   {"seen": ("stay", 1)},         "recommendation changed"),
    ("escalate", "DL2", None,   {"user": "coord102"},          "may not record"),
    ("escalate", "DL2", None,   {"user": "mon101"},            "may not record"),
])
def test_a_refused_decision_writes_nothing(trial, protocol, action, level, reason, kw, match):
    counts, audit = count_records(trial, STUDY), len(audit_trail(trial, STUDY))
    with pytest.raises((DecisionRefused, NotPermitted), match=match):
        _decide(trial, protocol, action, level, reason, **kw)
    assert decisions(trial, STUDY) == []
    _unchanged(trial, counts, audit)


def test_a_wrong_password_records_no_decision_and_counts_a_failure(trial, protocol):
    with pytest.raises(SignatureRefused, match="Wrong user name or password"):
        record_decision(trial, protocol, action="escalate", dose_level="DL2", reason=None,
                        user="inv101", username="inv101", password="not it")
    assert decisions(trial, STUDY) == []
    table = User.__table__
    with trial.engine.connect() as connection:
        failures = connection.execute(sa.select(table.c.failed_logins).where(
            table.c.username == "inv101")).scalar_one()
    assert failures == 1


def test_a_decision_changed_in_the_database_is_no_longer_in_effect(trial, protocol):
    d = _decide(trial, protocol, "escalate", "DL2")
    sign_decision(trial, STUDY, d.id, user="inv101b", username="inv101b", password=PASSWORD)
    assert opening(trial, protocol).level.id == "DL2"
    table = CommitteeDecision.__table__
    with trial.engine.begin() as connection:  # tampering outside the application
        connection.execute(table.update().where(table.c.id == d.id).values(
            dose=3, dose_level="DL3"))
    (tampered,) = decisions(trial, STUDY)
    assert not tampered.intact and not tampered.signed
    assert [s.status for s in tampered.signatures] == ["broken", "broken"]
    assert not opening(trial, protocol).open


def test_every_step_is_audited_and_exported(trial, protocol, tmp_path):
    d = _decide(trial, protocol, "stay", "DL1", reason="wait for the day-28 marrow")
    sign_decision(trial, STUDY, d.id, user="inv101b", username="inv101b", password=PASSWORD)
    enrol(trial, protocol, "101-004", "DL1", user="inv101")
    trail = audit_trail(trial, STUDY)
    decided = trail[trail["table"] == "committee_decision"]
    assert (decided["record_key"].tolist(), decided["reason"].tolist()) == (
        [f"decision={d.id}"], ["wait for the day-28 marrow"])
    signed = trail[trail["table"] == "signature"]
    assert signed["user"].tolist() == ["inv101", "inv101b"]
    assert verify_audit(trial).intact
    frame = pd.read_csv(export_decisions_csv(trial, STUDY, tmp_path))
    row = frame.iloc[0]
    assert (row["action"], row["dose_level"], row["recommended_action"]) == ("stay", "DL1",
                                                                            "escalate")
    assert bool(row["signed"]) and not bool(row["follows_recommendation"])
    assert row["signers"] == "Ana Ruiz (inv101), Dev Patel (inv101b)"

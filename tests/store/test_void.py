"""Records "entered in error" are voided, not deleted: kept, audited, out of every analysis."""

from __future__ import annotations

import pytest

from celltrial.errors import StoreError
from celltrial.store import (audit_trail, count_records, read_domain,
                             update_record, void_record, write_domains)
from tests.store.conftest import STUDY

KEY = (STUDY, "101-002", 2)  # the second LB record of 101-002 (MRD)


def test_a_voided_record_leaves_the_analysis_but_not_the_store(filled):
    before = count_records(filled, STUDY)["LB"]
    stored = void_record(filled, "LB", KEY, user="inv01", reason="entered for the wrong "
                         "patient", version=1)
    assert stored["voided"] == "entered for the wrong patient" and stored["version"] == 2
    lb = read_domain(filled, STUDY, "LB")
    assert len(lb) == before - 1
    assert not ((lb["USUBJID"] == "101-002") & (lb["LBSEQ"] == 2)).any()
    assert count_records(filled, STUDY)["LB"] == before  # still stored
    trail = audit_trail(filled, STUDY, record_key="USUBJID=101-002;LBSEQ=2")
    assert trail.iloc[-1][["action", "field", "old_value", "new_value", "user"]].tolist() == [
        "update", "voided", None, "entered for the wrong patient", "inv01"]


def test_a_voided_seq_is_never_given_again(filled):
    void_record(filled, "LB", KEY, user="inv01", reason="duplicate entry")
    new = read_domain(filled, STUDY, "LB").iloc[[0]].drop(columns=["LBSEQ"]).assign(
        USUBJID="101-002")
    write_domains(filled, STUDY, {"LB": new}, user="inv01", reason="entry")
    seqs = read_domain(filled, STUDY, "LB").query("USUBJID == '101-002'")["LBSEQ"].tolist()
    assert seqs == [1.0, 3.0]


@pytest.mark.parametrize(("call", "message"), [
    (lambda s: void_record(s, "LB", KEY, user="inv01", reason="  "), "must say why"),
    (lambda s: void_record(s, "DM", (STUDY, "101-001"), user="inv01", reason="x"),
     "must not be DM"),
    (lambda s: void_record(s, "LB", KEY, user="inv01", reason="x", version=7),
     "version 7"),
])
def test_voiding_is_refused_without_a_reason_for_dm_or_on_a_stale_version(filled, call,
                                                                          message):
    before = audit_trail(filled, STUDY)
    with pytest.raises(StoreError, match=message):
        call(filled)
    assert audit_trail(filled, STUDY).equals(before)


def test_a_voided_record_cannot_be_corrected_or_voided_again(filled):
    void_record(filled, "LB", KEY, user="inv01", reason="wrong patient")
    with pytest.raises(StoreError, match="voided"):
        update_record(filled, "LB", KEY, {"LBSTRESN": 0.001}, user="inv01", reason="x")
    with pytest.raises(StoreError, match="already voided"):
        void_record(filled, "LB", KEY, user="inv01", reason="again")

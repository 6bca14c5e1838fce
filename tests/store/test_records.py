"""Writing, reading and changing clinical records; every change is in the audit trail."""

from __future__ import annotations

import pandas as pd
import pytest

from celltrial.errors import StoreError
from celltrial.store import (
    DOMAINS,
    audit_trail,
    delete_record,
    read_domain,
    read_domains,
    update_record,
    write_domains,
)

from .conftest import STUDY, make_frames


def expected(name: str) -> pd.DataFrame:
    """A hand-made frame as the store returns it: every variable, text as object/None,
    numbers float64, STUDYID filled in."""
    frame = make_frames()[name].assign(STUDYID=STUDY)
    out = {}
    for var in DOMAINS[name].variables:
        values = frame[var.name] if var.name in frame else pd.Series([None] * len(frame))
        if var.type in ("int", "float"):
            out[var.name] = pd.to_numeric(values.astype(object)).astype("float64")
        else:
            out[var.name] = pd.Series([None if pd.isna(v) else v
                                       for v in values.astype(object)], dtype=object)
    return pd.DataFrame(out)


def test_write_read_round_trip(store, frames):
    summary = write_domains(store, STUDY, frames, user="dm.entry", reason="initial entry")
    assert summary.records == {name: len(frame) for name, frame in frames.items()}
    assert summary.sites_added == ("101", "102")
    domains = read_domains(store, STUDY)
    assert list(domains) == list(DOMAINS)
    for name in frames:
        pd.testing.assert_frame_equal(domains[name], expected(name), check_dtype=True)
    assert domains["DM"]["RFSTDTC"].tolist() == ["2024-01-10T10:30", "2024-02-12", None]
    trail = audit_trail(store, STUDY)
    inserts = trail[(trail["action"] == "insert") & ~trail["table"].isin(["site", "study"])]
    assert len(inserts) == summary.total
    assert set(inserts["user"]) == {"dm.entry"}
    assert (inserts.loc[inserts["table"] == "ae", "record_key"].tolist()
            == ["USUBJID=101-001;AESEQ=1", "USUBJID=101-002;AESEQ=1"])
    assert str(trail["at"].dt.tz) == "UTC"


def test_dates_and_numbers_may_come_typed(store, frames):
    frames["DM"]["RFICDTC"] = pd.to_datetime(frames["DM"]["RFICDTC"])
    frames["AE"]["AETOXGR"] = frames["AE"]["AETOXGR"].astype(float)
    write_domains(store, STUDY, frames, user="u", reason="entry")
    dm = read_domain(store, STUDY, "DM")
    assert dm["RFICDTC"].tolist() == ["2024-01-02", "2024-02-01", "2024-03-01"]
    assert read_domain(store, STUDY, "AE")["AETOXGR"].tolist() == [2.0, 3.0]


def test_update_keeps_old_and_new_value_and_reason(filled):
    key = {"STUDYID": STUDY, "USUBJID": "101-002", "AESEQ": 1}
    record = update_record(filled, "AE", key, {"AETOXGR": 4, "AEENDTC": "2024-03-01"},
                           user="monitor1", reason="source data verification")
    assert record["AETOXGR"] == 4
    ae = read_domain(filled, STUDY, "AE")
    assert ae.loc[ae["USUBJID"] == "101-002", "AETOXGR"].tolist() == [4.0]
    trail = audit_trail(filled, STUDY, table="AE", record_key="USUBJID=101-002;AESEQ=1")
    changes = trail[trail["action"] == "update"][["field", "old_value", "new_value", "reason",
                                                   "user"]]
    assert changes.to_dict("records") == [
        {"field": "AETOXGR", "old_value": "3", "new_value": "4",
         "reason": "source data verification", "user": "monitor1"},
        {"field": "AEENDTC", "old_value": None, "new_value": "2024-03-01",
         "reason": "source data verification", "user": "monitor1"},
    ]


@pytest.mark.parametrize(("changes", "message"), [
    ({"AETOXGR": 7}, r"column AETOXGR: Invalid `AETOXGR`: got `7`, must be in \[1, 5\]"),
    ({"AESEQ": 9}, r"must not change key variables"),
    ({"AESTDTC": "12/01/2024"}, r"got `'12/01/2024'`, must be an ISO 8601 date"),
])
def test_update_is_checked_like_an_import(filled, changes, message):
    before = audit_trail(filled)
    with pytest.raises(StoreError, match=message):
        update_record(filled, "AE", (STUDY, "101-001", 1), changes, user="u", reason="fix")
    assert len(audit_trail(filled)) == len(before)


def test_update_and_delete_need_a_reason_and_a_record(filled):
    with pytest.raises(StoreError, match=r"Invalid `reason`"):
        update_record(filled, "AE", (STUDY, "101-001", 1), {"AETOXGR": 1}, user="u",
                      reason=" ")
    with pytest.raises(StoreError, match=r"Invalid `reason`"):
        delete_record(filled, "AE", (STUDY, "101-001", 1), user="u", reason="")
    with pytest.raises(StoreError, match=r"must be a stored AE record"):
        update_record(filled, "AE", (STUDY, "101-001", 99), {"AETOXGR": 1}, user="u",
                      reason="fix")


def test_delete_keeps_the_whole_record_in_the_audit(filled):
    delete_record(filled, "VS", (STUDY, "102-001", 1), user="u", reason="entered twice")
    assert "102-001" not in read_domain(filled, STUDY, "VS")["USUBJID"].tolist()
    row = audit_trail(filled, STUDY, table="vs").iloc[-1]
    assert (row["action"], row["reason"], row["new_value"]) == ("delete", "entered twice", None)
    assert '"VSSTRESN":48.0' in row["old_value"]
    with pytest.raises(StoreError, match=r"Cannot delete DM USUBJID=101-001: other domains"):
        delete_record(filled, "DM", (STUDY, "101-001"), user="u", reason="withdrawn consent")
    assert "101-001" in read_domain(filled, STUDY, "DM")["USUBJID"].tolist()


def test_writes_need_a_user(store, frames):
    with pytest.raises(StoreError, match=r"Invalid `user`"):
        write_domains(store, STUDY, frames, user="", reason="entry")


def test_moving_a_subject_to_a_new_site_adds_the_site(filled):
    update_record(filled, "DM", {"STUDYID": STUDY, "USUBJID": "102-001"}, {"SITEID": "103"},
                  user="admin", reason="site transfer")
    assert read_domain(filled, STUDY, "DM")["SITEID"].tolist() == ["101", "101", "103"]
    assert "103" in audit_trail(filled, STUDY, table="site")["record_key"].tolist()

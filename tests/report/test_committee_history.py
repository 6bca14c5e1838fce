"""The report's escalation history reads the dose-escalation committee's decisions from the
store (issue 15 part 5): ``write_escalation(..., store=)`` copies them with their signers into
``escalation.json`` and Table 12.4 prints them (SQLite)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from celltrial.cli.report import write_escalation
from celltrial.protocols import load
from celltrial.report.committee import TABLE_NUMBER, committee_blocks
from celltrial.report.data import ReportData
from celltrial.report.sections import escalation
from celltrial.store import add_user, init_db, open_store, read_domains, register_study
from celltrial.store import write_domains
from celltrial.store.committee import record_decision, sign_decision
from celltrial.store.signatures import set_full_name

STUDY = "cd7-tall-dlt"
PASSWORD = "correct horse battery"


@pytest.fixture()
def decided(sqlite_url):
    """Cohort 1 infused at DL1, followed past the DLT window; the committee decided to stay
    (against the design's escalate), signed by two investigators; a later escalation awaits
    its second signature."""
    protocol = load(STUDY)
    init_db(sqlite_url)
    store = open_store(sqlite_url)
    register_study(store, protocol)
    cohort = ["01-001", "01-002", "01-003"]
    write_domains(store, STUDY, {
        "DM": pd.DataFrame({"USUBJID": cohort, "SUBJID": ["1", "2", "3"], "SITEID": "01",
                            "AGE": 40, "SEX": "F", "ARMCD": "DL1", "ARM": "0.5x10^6/kg",
                            "RFICDTC": "2024-01-02",
                            "RFSTDTC": ["2024-01-10", "2024-01-11", "2024-01-12"],
                            "RFPENDTC": "2024-03-01"}),
        "EX": pd.DataFrame({"USUBJID": cohort, "EXSEQ": 1, "EXTRT": "CD7 CAR-T",
                            "EXDOSE": 5e5, "EXDOSU": "cells/kg",
                            "EXSTDTC": ["2024-01-10", "2024-01-11", "2024-01-12"]})},
        user="setup", reason="test")
    for username, name in (("inv1", "Ana Ruiz"), ("inv2", "Dev Patel")):
        add_user(store, username, "investigator", PASSWORD, site="01")
        set_full_name(store, username, name, by="setup")
    stay = record_decision(store, protocol, action="stay", dose_level="DL1",
                           reason="ICANS grade 2 in two patients", user="inv1",
                           username="inv1", password=PASSWORD)
    sign_decision(store, STUDY, stay.id, user="inv2", username="inv2", password=PASSWORD)
    record_decision(store, protocol, action="escalate", dose_level="DL2", reason=None,
                    user="inv2", username="inv2", password=PASSWORD)
    yield store, protocol
    store.close()


def test_escalation_json_carries_the_committee_decisions(decided, tmp_path):
    store, protocol = decided
    path = write_escalation(read_domains(store, STUDY), protocol, tmp_path, store=store)
    rows = json.loads(path.read_text(encoding="utf-8"))["committee"]
    assert [(r["action"], r["dose_level"], r["recommended_action"], r["signed"])
            for r in rows] == [("stay", "DL1", "escalate", True),
                               ("escalate", "DL2", "escalate", False)]
    assert rows[0]["signers"] == "Ana Ruiz (inv1), Dev Patel (inv2)"
    assert rows[0]["recorded_at"].endswith("+00:00")

    rd = ReportData(protocol, {}, [], json.loads(path.read_text(encoding="utf-8")))
    (block,) = committee_blocks(rd)
    table = block.table
    assert table.number == TABLE_NUMBER
    cells = [row.cells for row in table.rows]
    assert cells[0][2].startswith("escalate to DL2") and cells[0][3].startswith("stay to DL1")
    assert cells[0][4] == "ICANS grade 2 in two patients"
    assert (cells[0][6], cells[1][6]) == ("signed (quorum)", "awaiting signatures")
    # the report's escalation section carries it after the history and Table 12.3
    printed = [b.table.number for b in escalation(rd) if b.kind == "table"]
    assert printed[0] == "12.1" and printed[-1] == TABLE_NUMBER


def test_without_a_store_or_decisions_the_report_says_so(decided, tmp_path):
    store, protocol = decided
    path = write_escalation(read_domains(store, STUDY), protocol, tmp_path)
    body = json.loads(path.read_text(encoding="utf-8"))
    assert "committee" not in body
    (block,) = committee_blocks(ReportData(protocol, {}, [], body))
    assert "no decision was recorded" in block.text

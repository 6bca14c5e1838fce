"""CM (concomitant/prior medications): validation at the door, the controlled names of the
categories the analysis reads, storage and export on SQLite and PostgreSQL, SDTM CM.

The hand-made frames of conftest hold four CM records (tocilizumab and dexamethasone for
CRS/ICANS, a prior fludarabine, co-trimoxazole prophylaxis), so the CSV, XPT and Dataset-JSON
round trips of test_transport/test_import_files/test_cli_db carry CM too."""

from __future__ import annotations

import pandas as pd
import pytest

from celltrial.clinical.medications import (CONTROLLED_CATEGORIES, controlled_categories,
                                            drug_class, medication_problems, medications)
from celltrial.errors import StoreError
from celltrial.store import read_domain, write_domains
from celltrial.store.domains import DOMAINS
from celltrial.store.sdtm import from_sdtm, to_sdtm
from celltrial.store.sdtm.check import check
from celltrial.store.validate import Problems, Source, check_frame

from .conftest import STUDY, make_frames

GOOD = {"USUBJID": "101-001", "CMSEQ": 1, "CMTRT": "Actemra", "CMDECOD": "TOCILIZUMAB",
        "CMCAT": "CRS/ICANS MANAGEMENT", "CMINDC": "CRS", "CMDOSE": 560.0, "CMDOSU": "mg",
        "CMROUTE": "INTRAVENOUS", "CMSTDTC": "2024-01-12", "CMENDTC": "2024-01-12"}


def _problems(**changes) -> list[str]:
    row = {**GOOD, **changes}
    problems = Problems()
    check_frame(DOMAINS["CM"], pd.DataFrame([row]), STUDY, Source("domain CM"), problems)
    return problems.lines


# (case, changes to a good record, column named, text the message must hold; None = accepted)
CASES = [
    ("the good record", {}, None, None),
    ("no reported name", {"CMTRT": None}, "CMTRT", "required in every CM record"),
    ("end before start", {"CMSTDTC": "2024-01-13", "CMENDTC": "2024-01-12"}, "CMENDTC",
     "on or after CMSTDTC"),
    ("end on the start day, times compared as dates",
     {"CMSTDTC": "2024-01-12T16:00", "CMENDTC": "2024-01-12"}, None, None),
    ("end one minute before start",
     {"CMSTDTC": "2024-01-12T16:00", "CMENDTC": "2024-01-12T15:59"}, "CMENDTC", "on or after"),
    ("open end (ongoing)", {"CMENDTC": None}, None, None),
    ("brand name as standardized name", {"CMDECOD": "ACTEMRA"}, "CMDECOD",
     "a controlled CRS/ICANS MANAGEMENT medication name"),
    ("lower-case standardized name", {"CMDECOD": "tocilizumab"}, "CMDECOD",
     "did you mean `TOCILIZUMAB`"),
    ("no standardized name: the reported one is checked", {"CMDECOD": None}, "CMTRT",
     "controlled CRS/ICANS MANAGEMENT medication name"),
    ("no standardized name, reported name is controlled",
     {"CMDECOD": None, "CMTRT": "DEXAMETHASONE"}, None, None),
    ("an antimicrobial under CRS/ICANS management", {"CMDECOD": "MEROPENEM"}, "CMDECOD",
     "listed under CMCAT `ANTIMICROBIAL`"),
    ("antimicrobial in its category", {"CMCAT": "ANTIMICROBIAL", "CMDECOD": "MEROPENEM"},
     None, None),
    ("IVIG", {"CMCAT": "IMMUNOGLOBULIN", "CMDECOD": "IMMUNOGLOBULIN HUMAN NORMAL",
              "CMDOSU": "g"}, None, None),
    ("uncontrolled category keeps the site's words",
     {"CMCAT": "PRIOR ANTICANCER THERAPY", "CMDECOD": "Nelarabine"}, None, None),
    ("unknown category", {"CMCAT": "STEROIDS"}, "CMCAT", "must be one of"),
    ("unknown route", {"CMROUTE": "IV"}, "CMROUTE", "'INTRAVENOUS'"),
    ("negative dose", {"CMDOSE": -8.0}, "CMDOSE", "in [0, 1e+06]"),
    ("partial date", {"CMSTDTC": "2024-01"}, "CMSTDTC", "ISO 8601"),
]


@pytest.mark.parametrize(("case", "changes", "column", "rule"), CASES, ids=[c[0] for c in CASES])
def test_cm_record_rules(case, changes, column, rule):
    lines = _problems(**changes)
    if column is None:
        assert lines == []
        return
    assert len(lines) == 1, lines
    assert f"column {column}: Invalid `{column}`" in lines[0] and rule in lines[0]


def test_controlled_list_is_complete_and_sourced():
    drugs = medications()
    assert set(CONTROLLED_CATEGORIES) == set(controlled_categories())
    for name in ("TOCILIZUMAB", "DEXAMETHASONE", "METHYLPREDNISOLONE", "ANAKINRA",
                 "IMMUNOGLOBULIN HUMAN NORMAL", "ACICLOVIR", "SULFAMETHOXAZOLE/TRIMETHOPRIM"):
        assert name in drugs
    for drug in drugs.values():
        assert drug.source and len(drug.atc) == 7 and drug.name == drug.name.upper()
    assert drug_class("TOCILIZUMAB") == "IL6_BLOCKADE"
    assert drug_class("METHYLPREDNISOLONE") == "CORTICOSTEROID"
    assert drug_class("ANAKINRA") == "IL1_BLOCKADE"
    assert drug_class("Actemra") is None
    assert medication_problems(None, "ANYTHING", "x") == []


def test_cm_is_stored_read_back_and_refused_whole(store):
    frames = make_frames()
    write_domains(store, STUDY, frames, user="dm.entry", reason="initial entry")
    cm = read_domain(store, STUDY, "CM")
    assert cm["CMDECOD"].tolist() == ["TOCILIZUMAB", "DEXAMETHASONE", None,
                                      "SULFAMETHOXAZOLE/TRIMETHOPRIM"]
    assert cm["CMDOSE"].tolist()[:2] == [560.0, 10.0]
    bad = pd.DataFrame([{**GOOD, "USUBJID": "101-002", "CMSEQ": 2, "CMDECOD": "Toci"}])
    with pytest.raises(StoreError, match=r"domain CM row 1, column CMDECOD.*nothing was written"):
        write_domains(store, STUDY, {"CM": bad}, user="dm.entry", reason="late entry")
    assert len(read_domain(store, STUDY, "CM")) == 4


def test_sdtm_cm_has_class_and_atc_code_and_reads_back():
    from celltrial.store.conform import conform

    stored = {n: conform(n, f.assign(STUDYID=STUDY), n) for n, f in make_frames().items()}
    sdtm = to_sdtm(stored, country="CHN")
    cm = sdtm["CM"]
    assert list(cm["DOMAIN"].unique()) == ["CM"]
    assert cm["CMCLASCD"].tolist() == ["L04AC07", "H02AB02", None, "J01EE01"]
    assert cm["CMCLAS"].tolist()[:2] == ["IL6_BLOCKADE", "CORTICOSTEROID"]
    assert [f for f in check({"CM": cm}) if f.dataset == "CM"] == []
    back = from_sdtm({"CM": cm}, {"CM": "cm.xpt"})["CM"]
    assert "CMCLAS" not in back.columns
    assert back["CMTRT"].tolist() == stored["CM"]["CMTRT"].tolist()

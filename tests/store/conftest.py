"""Hand-made SDTM frames for three subjects, touching every domain of docs/data-model.md."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from celltrial.store import Store, init_db, open_store, register_study

STUDY = "cd7-tall-dlt"
TITLE = "CD7 CAR-T in r/r CD7+ acute leukemia of T origin"
SUBJECTS = ["101-001", "101-002", "102-001"]


def make_frames() -> dict[str, pd.DataFrame]:
    """Three subjects; numbers, text, dates with and without clock time, missing values."""
    dm = pd.DataFrame({
        "STUDYID": STUDY, "USUBJID": SUBJECTS, "SUBJID": ["001", "002", "001"],
        "SITEID": ["101", "101", "102"], "AGE": [34, 51, 16], "AGEU": "YEARS",
        "SEX": ["M", "F", "M"], "DISEASE": ["T-ALL", "ETP-ALL", "T-LBL"],
        "ARMCD": ["DL1", "DL1", "DL2"], "ARM": ["1e6 cells/kg", "1e6 cells/kg", "2e6 cells/kg"],
        "RFICDTC": ["2024-01-02", "2024-02-01", "2024-03-01"],
        "RFSTDTC": ["2024-01-10T10:30", "2024-02-12", None],
        "RFPENDTC": ["2024-07-10", "2024-05-01", "2024-03-20"],
        "DTHDTC": [None, "2024-05-01", None], "DTHFL": [None, "Y", None],
    })
    ex = pd.DataFrame({
        "USUBJID": ["101-001", "101-001", "101-002"], "EXSEQ": [1, 2, 1],
        "EXTRT": "CD7 CAR-T", "EXFRACN": [1, 2, 1], "EXDOSE": [3e5, 7e5, 1e6],
        "EXDOSU": "cells/kg", "EXDOSTOT": [2.1e7, 4.9e7, 6.2e7], "EXVOL": [20.0, 35.5, 50.0],
        "EXBAGN": [1, 2, 3],
        "EXSTDTC": ["2024-01-10T10:30", "2024-01-11T09:00", "2024-02-12"],
    })
    ae = pd.DataFrame({
        "USUBJID": ["101-001", "101-002"], "AESEQ": [1, 1], "AETERM": ["CRS", "pneumonitis"],
        "AEDECOD": ["Cytokine release syndrome", "Pneumonitis"], "AETOXGR": [2, 3],
        "AETOXSCL": ["ASTCT 2019", "CTCAE v5.0"], "AESTDTC": ["2024-01-12", "2024-02-15"],
        "AEENDTC": ["2024-01-15", None], "AESER": ["N", "Y"],
        "AEREL": ["RELATED", "NOT RELATED"], "AEOUT": ["RECOVERED/RESOLVED", "NOT RECOVERED/NOT RESOLVED"],
    })
    lb = pd.DataFrame({
        "USUBJID": ["101-001", "101-001", "101-002", "101-002"], "LBSEQ": [1, 2, 1, 2],
        "LBCAT": ["HEMATOLOGY", "CYTOKINE", "HEMATOLOGY", "MARROW"],
        "LBTESTCD": ["NEUT", "IL6", "NEUT", "MRD"], "LBTEST": ["Neutrophils", "IL-6",
                                                            "Neutrophils", "MRD"],
        "LBSPEC": ["BLOOD", "BLOOD", "BLOOD", "BONE MARROW"],
        "LBORRES": ["1500", "250.5", "0.2", "0.0001"],
        "LBORRESU": ["/uL", "pg/mL", "10^9/L", "fraction"],
        "LBSTRESN": [1.5, 250.5, 0.2, 0.0001], "LBSTRESU": ["10^9/L", "pg/mL", "10^9/L",
                                                           "fraction"],
        "LBORNRLO": [1800.0, None, 1.8, None], "LBORNRHI": [7500.0, None, 7.5, None],
        "LBTOXGR": [1, None, 4, None],
        "LBDTC": ["2024-01-08T08:00", "2024-01-13", "2024-02-20", "2024-03-12"],
        "LBMETHOD": [None, None, None, "FLOW"],
    })
    vs = pd.DataFrame({"USUBJID": ["101-001", "101-001", "102-001"], "VSSEQ": [1, 2, 1],
                       "VSTESTCD": ["WEIGHT", "TEMP", "WEIGHT"], "VSSTRESN": [70.2, 38.9, 48.0],
                       "VSSTRESU": ["kg", "C", "kg"],
                       "VSDTC": ["2024-01-08", "2024-01-12T14:00", "2024-03-01"]})
    xc = pd.DataFrame({"USUBJID": ["101-001"], "XCSEQ": [1], "XCDTC": ["2024-01-12T14:00"],
                       "XCTEMP": [38.9], "XCFEVMSK": ["N"], "XCHYPOT": ["fluids"],
                       "XCOXY": ["low_flow"], "XCICE": [10], "XCLOC": ["alert"],
                       "XCSEIZ": ["none"], "XCMOTOR": ["none"], "XCEDEMA": ["none"],
                       "XCCRSGR": [2], "XCICAGR": [0]})
    rs = pd.DataFrame({"USUBJID": ["101-001", "101-001", "101-002"], "RSSEQ": [1, 2, 1],
                       "RSTESTCD": ["OVRLRESP", "EMRESP", "OVRLRESP"],
                       "RSCAT": ["ALL", "LUGANO 2014", "ALL"], "RSORRES": ["CR", "PR", "NR"],
                       "RSSTRESC": ["CR", "PR", "NR"],
                       "RSDTC": ["2024-02-07", "2024-02-07", "2024-03-11"],
                       "RSEVAL": "INVESTIGATOR"})
    tu = pd.DataFrame({"USUBJID": ["101-001"], "TUSEQ": [1], "TULNKID": ["T01"],
                       "TUTESTCD": ["TUMIDENT"], "TUORRES": ["TARGET"],
                       "TULOC": ["MEDIASTINUM"], "TUDTC": ["2024-01-05"]})
    tr = pd.DataFrame({"USUBJID": ["101-001", "101-001"], "TRSEQ": [1, 2],
                       "TRLNKID": ["T01", "T01"], "TRTESTCD": ["LDIAM", "LDIAM"],
                       "TRSTRESN": [42.0, 18.5], "TRSTRESU": ["mm", "mm"],
                       "TRDTC": ["2024-01-05", "2024-02-07"]})
    pc = pd.DataFrame({"USUBJID": ["101-001"] * 3, "PCSEQ": [1, 2, 3],
                       "PCTESTCD": ["CARTQPCR", "CARTQPCR", "CARTPCT"],
                       "PCSTRESN": [None, 12500.0, 8.25],
                       "PCSTRESU": ["copies/ug gDNA", "copies/ug gDNA", "%"],
                       "PCORRES": ["<LLOQ", "12500", "8.25"], "PCLLOQ": [100.0, 100.0, 0.1],
                       "PCSPEC": "BLOOD",
                       "PCDTC": ["2024-01-10T09:00", "2024-01-17", "2024-01-17"]})
    is_ = pd.DataFrame({"USUBJID": ["101-001", "101-001"], "ISSEQ": [1, 2],
                        "ISTESTCD": "ADACAR", "ISORRES": ["NEGATIVE", "POSITIVE"],
                        "ISSTRESC": ["NEGATIVE", "POSITIVE"], "ISSTRESN": [None, 80.0],
                        "ISDTC": ["2024-01-10", "2024-02-07"]})
    pr = pd.DataFrame({"USUBJID": ["101-001"], "PRSEQ": [1], "PRTRT": ["LYMPHODEPLETION"],
                       "PRSTDTC": ["2024-01-05"]})
    sc = pd.DataFrame({"USUBJID": SUBJECTS, "SCSEQ": [1, 1, 1], "SCTESTCD": "cd7_blast_pct",
                       "SCORRES": ["95", "60", "40"], "SCORRESU": "%",
                       "SCDTC": ["2024-01-03", "2024-02-02", "2024-03-02"]})
    ds = pd.DataFrame({"USUBJID": SUBJECTS, "DSSEQ": [1, 1, 1],
                       "DSDECOD": ["COMPLETED", "DEATH", "SCREEN FAILURE"],
                       "DSTERM": ["completed", "disease progression", "CD7 < 30%"],
                       "DSSTDTC": ["2024-07-10", "2024-05-01", "2024-03-20"]})
    cm = pd.DataFrame({
        "USUBJID": ["101-001", "101-001", "101-001", "101-002"], "CMSEQ": [1, 2, 3, 1],
        "CMTRT": ["Actemra", "dexamethasone", "Fludarabine", "co-trimoxazole"],
        "CMDECOD": ["TOCILIZUMAB", "DEXAMETHASONE", None, "SULFAMETHOXAZOLE/TRIMETHOPRIM"],
        "CMCAT": ["CRS/ICANS MANAGEMENT", "CRS/ICANS MANAGEMENT", "PRIOR ANTICANCER THERAPY",
                  "ANTIMICROBIAL"],
        "CMINDC": ["CRS", "ICANS", "T-ALL", "Pneumocystis prophylaxis"],
        "CMDOSE": [560.0, 10.0, None, 960.0], "CMDOSU": ["mg", "mg", None, "mg"],
        "CMROUTE": ["INTRAVENOUS", "INTRAVENOUS", None, "ORAL"],
        "CMSTDTC": ["2024-01-12T16:00", "2024-01-13", "2023-06-15", "2024-02-12"],
        "CMENDTC": ["2024-01-12T17:00", "2024-01-15", None, None],
    })
    return {"DM": dm, "SC": sc, "EX": ex, "AE": ae, "LB": lb, "VS": vs, "XC": xc, "RS": rs,
            "TU": tu, "TR": tr, "PC": pc, "IS": is_, "PR": pr, "CM": cm, "DS": ds}


@pytest.fixture()
def frames() -> dict[str, pd.DataFrame]:
    return make_frames()


@pytest.fixture()
def store(db_url) -> Iterator[Store]:
    """A migrated, empty store with the study registered (SQLite and PostgreSQL)."""
    init_db(db_url)
    handle = open_store(db_url)
    register_study(handle, STUDY, TITLE)
    yield handle
    handle.close()


@pytest.fixture()
def filled(store, frames) -> Store:
    """The store holding :func:`make_frames`."""
    from celltrial.store import write_domains

    write_domains(store, STUDY, frames, user="dm.entry", reason="initial entry")
    return store


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_url(request, tmp_path_factory) -> Iterator[str]:
    """One database per test module and backend (for tests that write nothing)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'celltrial.db'}"
        return
    from tests.conftest import postgres_schema_url

    with postgres_schema_url() as url:
        yield url


@pytest.fixture(scope="module")
def guarded(module_url) -> Iterator[Store]:
    """A migrated store with the study registered and empty, plus another study holding the
    same frames — shared by the tests of a module that must leave it unchanged."""
    from celltrial.store import write_domains

    init_db(module_url)
    handle = open_store(module_url)
    register_study(handle, STUDY, TITLE)
    register_study(handle, "other-study", "Another study")
    other = {name: frame.assign(STUDYID="other-study") for name, frame in make_frames().items()}
    write_domains(handle, "other-study", other, user="dm.entry", reason="initial entry")
    yield handle
    handle.close()


@pytest.fixture(scope="session")
def virtual_exports(tmp_path_factory):
    """The five protocols' small virtual studies, stored and exported as SDTM XPT and
    Dataset-JSON (tests/store/sdtm_studies.py); once per test process."""
    from .sdtm_studies import export_studies

    return export_studies(tmp_path_factory.mktemp("virtual"))

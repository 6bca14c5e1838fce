"""CSV import -> XPT and Dataset-JSON export (SDTMIG 3.4 datasets) -> read back gives the
stored data (values and types), up to the documented normalisation to CDISC CT."""

from __future__ import annotations

import json

import pandas as pd
import pyreadstat
import pytest

from celltrial.store import (
    DOMAINS,
    export_csv_dir,
    export_dataset_json,
    export_xpt,
    import_csv_dir,
    read_dataset_json_dir,
    read_domains,
    read_xpt_dir,
    register_study,
)

from celltrial.store.sdtm import SDTM

from .conftest import STUDY, make_frames


@pytest.fixture()
def imported(store, tmp_path):
    """The hand-made frames written as CSV files and imported through import_csv_dir."""
    folder = tmp_path / "csv_in"
    folder.mkdir()
    for name, frame in make_frames().items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    summary = import_csv_dir(store, STUDY, folder, user="importer")
    assert summary.records == {name: len(f) for name, f in make_frames().items()}
    return store


def _assert_same(read_back: dict[str, pd.DataFrame], stored: dict[str, pd.DataFrame]):
    """Equal, except what the SDTM export writes in CDISC CT and reads back as the store's
    canonical value: LBTEST named by the CT test name of LBTESTCD, ``/uL`` as ``10^6/L``
    (read back as ``cells/uL``), LBSTNRLO/HI the reference range in the standard unit where
    the store holds only LBORNRLO/HI (1800-7500 /uL is 1.8-7.5 x10^9/L)."""
    assert set(read_back) == set(make_frames())
    expected = {name: frame.copy() for name, frame in stored.items()}
    lb = expected["LB"]
    assert lb["LBTEST"].tolist() == ["Neutrophils", "IL-6", "Neutrophils", "MRD"]
    lb["LBTEST"] = pd.Series(["Neutrophils", "Interleukin 6", "Neutrophils",
                              "Measurable Residual Disease"], dtype=object)
    assert lb["LBORRESU"].tolist() == ["/uL", "pg/mL", "10^9/L", "fraction"]
    lb["LBORRESU"] = pd.Series(["cells/uL", "pg/mL", "10^9/L", "fraction"], dtype=object)
    assert lb["LBSTNRLO"].isna().all() and lb["LBSTNRHI"].isna().all()
    lb["LBSTNRLO"] = [1.8, float("nan"), 1.8, float("nan")]
    lb["LBSTNRHI"] = [7.5, float("nan"), 7.5, float("nan")]
    for name, frame in read_back.items():
        pd.testing.assert_frame_equal(frame, expected[name], check_dtype=True)


SDTM_FILES = sorted([*(n.lower() for n in make_frames()), "suppdm", "suppex", "suppae", "suppis"])


def test_csv_import_then_xpt_round_trip(imported, tmp_path):
    stored = read_domains(imported, STUDY)
    files = export_xpt(imported, STUDY, tmp_path / "xpt")
    assert sorted(f.name for f in files) == [f"{n}.xpt" for n in SDTM_FILES]
    _assert_same(read_xpt_dir(tmp_path / "xpt"), stored)


def test_xpt_is_version_5_with_names_and_labels(imported, tmp_path):
    export_xpt(imported, STUDY, tmp_path / "xpt")
    frame, meta = pyreadstat.read_xport(str(tmp_path / "xpt" / "dm.xpt"))
    assert meta.table_name == "DM" and meta.file_label == "Demographics"
    assert all(len(c) <= 8 for c in frame.columns)
    assert meta.column_names_to_labels["RFSTDTC"] == "Subject Reference Start Date/Time"
    assert list(frame.columns[:3]) == ["STUDYID", "DOMAIN", "USUBJID"]
    assert set(frame["DOMAIN"]) == {"DM"} and "COUNTRY" in frame.columns
    assert (tmp_path / "xpt" / "dm.xpt").read_bytes()[:80].startswith(
        b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!")


def test_csv_import_then_dataset_json_round_trip(imported, tmp_path):
    stored = read_domains(imported, STUDY)
    export_dataset_json(imported, STUDY, tmp_path / "json")
    _assert_same(read_dataset_json_dir(tmp_path / "json"), stored)


def test_dataset_json_metadata(imported, tmp_path):
    export_dataset_json(imported, STUDY, tmp_path / "json")
    document = json.loads((tmp_path / "json" / "ae.json").read_text())
    assert document["datasetJSONVersion"] == "1.1.0"
    assert (document["name"], document["itemGroupOID"], document["records"]) == ("AE", "IG.AE", 2)
    assert "isReferenceData" not in document  # removed in Dataset-JSON 1.1
    by_name = {c["name"]: c for c in document["columns"]}
    assert list(by_name) == list(SDTM["AE"].columns)
    assert by_name["AETOXGR"] == {"itemOID": "IT.AE.AETOXGR", "name": "AETOXGR",
                                  "label": "Standard Toxicity Grade", "dataType": "string",
                                  "length": 1}
    assert by_name["AESEQ"] == {"itemOID": "IT.AE.AESEQ", "name": "AESEQ",
                                "label": "Sequence Number", "dataType": "integer",
                                "keySequence": 3}
    assert by_name["AETERM"]["dataType"] == "string" and by_name["AETERM"]["length"] == 11
    row = dict(zip(by_name, document["rows"][1], strict=True))
    assert (row["DOMAIN"], row["AETOXGR"], row["AEENDTC"], row["AESER"]) == ("AE", "3", None,
                                                                             "Y")
    supp = json.loads((tmp_path / "json" / "suppae.json").read_text())
    assert [c["name"] for c in supp["columns"]] == ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR",
                                                    "IDVARVAL", "QNAM", "QLABEL", "QVAL",
                                                    "QORIG", "QEVAL"]
    assert supp["rows"][1][1:8] == ["AE", "101-002", "AESEQ", "1", "AETOXSCL",
                                    "Toxicity Grading Scale", "CTCAE v5.0"]


def test_csv_export_imports_into_another_study_unchanged(imported, tmp_path):
    export_csv_dir(imported, STUDY, tmp_path / "csv_out")
    register_study(imported, "copy-study", "A copy")
    for file in (tmp_path / "csv_out").glob("*.csv"):
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
        frame.assign(STUDYID="copy-study").to_csv(file, index=False)
    import_csv_dir(imported, "copy-study", tmp_path / "csv_out", user="importer")
    original, copy = read_domains(imported, STUDY), read_domains(imported, "copy-study")
    for name in DOMAINS:
        pd.testing.assert_frame_equal(copy[name].drop(columns="STUDYID"),
                                      original[name].drop(columns="STUDYID"))

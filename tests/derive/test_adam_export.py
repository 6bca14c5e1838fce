"""ADaM export (celltrial.derive.adam_export): XPT v5 read back with pyreadstat equals the
analysis datasets (values, labels, SAS dates), Dataset-JSON validates against the frozen CDISC
Dataset-JSON 1.1 schema, define.xml against the frozen Define-XML 2.1 XSD; undeclared or
over-long names are refused. Datasets come from the hand-made study of conftest.py."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pandas as pd
import pyreadstat
import pytest
from lxml import etree
from typer.testing import CliRunner

from celltrial.derive.adam_export import (
    ALIASES,
    DATASETS,
    VARIABLES,
    adam_frame,
    declared,
    export_adam,
)
from celltrial.derive.analysis import derive_datasets
from celltrial.errors import StoreError
from celltrial.protocols import load

from .conftest import STUDY, make_domains

TESTS = Path(__file__).parents[1]
SCHEMA = json.loads((TESTS / "store" / "fixtures" / "cdisc" / "dataset.schema.json")
                    .read_text(encoding="utf-8"))
XSD = TESTS / "fixtures" / "cdisc-define-2.1" / "cdisc-define-2.1" / "define2-1-0.xsd"
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1",
      "xlink": "http://www.w3.org/1999/xlink"}
SAS_EPOCH = dt.date(1960, 1, 1)


@pytest.fixture(scope="module")
def datasets() -> dict[str, pd.DataFrame]:
    return derive_datasets(make_domains(), load(STUDY))


@pytest.fixture(scope="module")
def exported(datasets, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adam")
    for fmt in ("xpt", "dataset-json"):
        export_adam(datasets, root / fmt, fmt=fmt, study_id=STUDY, title="CD7 test study")
    return {"xpt": root / "xpt", "dataset-json": root / "dataset-json"}


@pytest.fixture(scope="module")
def xsd() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


def _missing(value) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and value != value)


def test_the_label_table_keeps_sas_limits():
    for name, (label, predecessor) in VARIABLES.items():
        assert len(name) <= 8 and name.isupper(), name
        assert 0 < len(label) <= 40, name
        assert predecessor is None or predecessor.split(".")[1] == name
    assert all(len(entry[0]) <= 40 for entry in DATASETS.values())


def test_xpt_reads_back_as_the_datasets(datasets, exported):
    assert sorted(p.stem for p in exported["xpt"].glob("*.xpt")) == sorted(datasets)
    for name, frame in datasets.items():
        data, kinds = adam_frame(name, frame)
        back, meta = pyreadstat.read_xport(str(exported["xpt"] / f"{name}.xpt"))
        assert meta.table_name == name.upper()
        assert list(back.columns) == list(data.columns), name
        assert list(back.columns) == [c.upper() for c in frame.columns if c not in ALIASES]
        assert meta.column_names_to_labels == {v: declared(v)[0] for v in data.columns}
        for var, kind in kinds.items():
            for mine, theirs in zip(data[var], back[var], strict=True):
                if kind == "string":
                    assert (theirs or "") == ("" if _missing(mine) else str(mine)), (name, var)
                elif _missing(mine):
                    assert _missing(theirs), (name, var)
                elif kind == "date":
                    assert meta.original_variable_types[var] == "DATE9."
                    assert theirs == mine.date(), (name, var)
                elif kind == "datetime":
                    assert meta.original_variable_types[var] == "DATETIME20."
                    assert pd.Timestamp(theirs) == pd.Timestamp(mine), (name, var)
                else:
                    assert float(theirs) == pytest.approx(float(mine)), (name, var)


def test_dates_are_sas_day_numbers(datasets, exported):
    raw, _ = pyreadstat.read_xport(str(exported["xpt"] / "adsl.xpt"),
                                   disable_datetime_conversion=True)
    first = datasets["adsl"]["TRTSDT"]
    for number, value in zip(raw["TRTSDT"], first, strict=True):
        if not _missing(value):
            assert number == (value.date() - SAS_EPOCH).days


def test_dataset_json_validates_and_holds_the_values(datasets, exported):
    validator = jsonschema.Draft201909Validator(SCHEMA)
    for name, frame in datasets.items():
        document = json.loads((exported["dataset-json"] / f"{name}.json").read_text("utf-8"))
        assert list(validator.iter_errors(document)) == [], name
        data, kinds = adam_frame(name, frame)
        assert document["records"] == len(data)
        columns = {c["name"]: (i, c) for i, c in enumerate(document["columns"])}
        for var, kind in kinds.items():
            index, column = columns[var]
            assert column["label"] == declared(var)[0]
            assert column["dataType"] == kind
            for row, value in zip(document["rows"], data[var], strict=True):
                if _missing(value):
                    assert row[index] is None
                elif kind == "date":
                    assert row[index] == value.date().isoformat()
                elif kind == "string":
                    assert row[index] == str(value)
    adsl = json.loads((exported["dataset-json"] / "adsl.json").read_text("utf-8"))
    trtsdt = next(c for c in adsl["columns"] if c["name"] == "TRTSDT")
    assert (trtsdt["targetDataType"], trtsdt["displayFormat"]) == ("integer", "DATE9.")
    broken = dict(adsl, columns=[dict(trtsdt, dataType="day")] + adsl["columns"][1:])
    assert list(validator.iter_errors(broken)) != []


def test_define_xml_is_valid_define_2_1_for_adam(datasets, exported, xsd):
    for fmt, suffix in (("xpt", "xpt"), ("dataset-json", "json")):
        doc = etree.parse(str(exported[fmt] / "define.xml"))
        assert xsd.validate(doc), [e.message for e in xsd.error_log]
        root = doc.getroot()
        standard = root.find(".//def:Standard", NS)
        assert (standard.get("Name"), standard.get("Version")) == ("ADaMIG", "1.3")
        groups = {g.get("Name"): g for g in root.iterfind(".//odm:ItemGroupDef", NS)}
        assert set(groups) == {n.upper() for n in datasets}
        assert groups["ADSL"].find("def:Class", NS).get("Name") == \
            "SUBJECT LEVEL ANALYSIS DATASET"
        assert groups["ADAE"].find("def:Class", NS).get("Name") == "OCCURRENCE DATA STRUCTURE"
        assert groups["ADTTE"].find("def:Class", NS).get("Name") == "BASIC DATA STRUCTURE"
        for name, group in groups.items():
            assert group.get("Purpose") == "Analysis"
            href = group.find("def:leaf", NS).get(f"{{{NS['xlink']}}}href")
            assert href == f"{name.lower()}.{suffix}" and (exported[fmt] / href).exists()
        items = {i.get("OID"): i for i in root.iterfind(".//odm:ItemDef", NS)}
        aeterm = items["IT.ADAE.AETERM"].find("def:Origin", NS)
        assert aeterm.get("Type") == "Predecessor"
        assert aeterm.findtext(".//odm:TranslatedText", namespaces=NS) == "AE.AETERM"
        assert items["IT.ADTTE.CNSR"].find("def:Origin", NS).get("Type") == "Derived"
        assert items["IT.ADSL.TRTSDT"].get(f"{{{NS['def']}}}DisplayFormat") == "DATE9."
        longest = max(len(str(v).encode()) for v in datasets["adae"]["AETERM"].dropna())
        assert items["IT.ADAE.AETERM"].get("Length") == str(longest)
        assert items["IT.ADAE.AESTDTC"].get("DataType") == "date"  # ISO text stays ISO
        assert items["IT.ADPC.TIME"].get("DataType") == "float"
        assert items["IT.ADPC.TIME"].get("SignificantDigits") is not None
        assert "SUBJECT LEVEL ANALYSIS DATASET" in (exported[fmt] / "define.html").read_text()
    text = (exported["xpt"] / "define.xml").read_bytes()
    broken = text.replace(b'Name="OCCURRENCE DATA STRUCTURE"', b'Name="OCCURRENCE"')
    assert broken != text and not xsd.validate(etree.fromstring(broken))


def test_define_xml_methods_and_codelists(datasets, exported, xsd):
    """MethodDefs of the key derived variables (ADSL population flags; ADTTE AVAL/CNSR, ADRS
    AVALC, ADPC/ADPP AVAL per PARAMCD as value-level metadata) opening with the protocol
    derivation's description; codelists of PARAMCD (decoded by PARAM), ADRS AVALC, CNSR and
    the Y/N flags (CDISC CT NY with NCI codes)."""
    from celltrial.protocols.derivations import DERIVATIONS

    doc = etree.parse(str(exported["xpt"] / "define.xml"))
    assert xsd.validate(doc), xsd.error_log
    root = doc.getroot()
    text = {m.get("OID"): m.findtext(".//odm:TranslatedText", namespaces=NS)
            for m in root.iterfind(".//odm:MethodDef", NS)}
    refs = {r.get("ItemOID"): r for g in root.iterfind(".//odm:ItemGroupDef", NS)
            for r in g.iterfind("odm:ItemRef", NS)}
    for flag in ("ENRLFL", "SAFFL", "ITTFL", "DLTEVLFL", "DLTFL", "EFFFL"):
        assert text[refs[f"IT.ADSL.{flag}"].get("MethodOID")], flag
    assert text["MT.ADSL.DLTFL"].startswith(DERIVATIONS["dlt_rate"].description)
    items = {i.get("OID"): i for i in root.iterfind(".//odm:ItemDef", NS)}
    lists = {v.get("OID"): v for v in root.iterfind(".//def:ValueListDef", NS)}
    wheres = {w.get("OID"): w.findtext(".//odm:CheckValue", namespaces=NS)
              for w in root.iterfind(".//def:WhereClauseDef", NS)}

    def by_paramcd(dataset: str, var: str) -> dict[str, str]:
        """PARAMCD -> method text of the value-level ItemRefs of ``dataset.var``."""
        vl = items[f"IT.{dataset}.{var}"].find("def:ValueListRef", NS).get("ValueListOID")
        out = {}
        for ref in lists[vl].iterfind("odm:ItemRef", NS):
            code = wheres[ref.find("def:WhereClauseRef", NS).get("WhereClauseOID")]
            out[code] = text[ref.get("MethodOID")]
            assert ref.get("ItemOID") in items
        return out

    adtte = datasets["adtte"]
    for var in ("AVAL", "CNSR"):
        methods = by_paramcd("ADTTE", var)
        assert set(methods) == set(adtte["PARAMCD"])
        for code, derivation in (("OS", "os"), ("PFS", "pfs"), ("EFS", "efs"),
                                 ("PFSSENS", "pfs")):
            if code in methods:
                assert methods[code].startswith(DERIVATIONS[derivation].description), code
        assert "censored" in methods["OS"]
        assert "Sensitivity" in methods.get("PFSSENS", "Sensitivity")
    assert by_paramcd("ADRS", "AVALC")["BOR"].startswith(
        DERIVATIONS["best_response"].description)
    adpp = by_paramcd("ADPP", "AVAL")
    assert set(adpp) == set(datasets["adpp"]["PARAMCD"])
    assert adpp["CMAX_QPCR"].startswith(DERIVATIONS["ck_cmax_qpcr"].description)
    assert all("celltrial.stats.nca" in t for t in adpp.values())
    assert set(by_paramcd("ADPC", "AVAL")) == set(datasets["adpc"]["PARAMCD"].dropna())
    codelists = {c.get("OID"): c for c in root.iterfind(".//odm:CodeList", NS)}
    for name, frame in datasets.items():
        if "PARAMCD" not in frame.columns:
            continue
        upper = name.upper()
        assert items[f"IT.{upper}.PARAMCD"].find("odm:CodeListRef", NS).get(
            "CodeListOID") == f"CL.{upper}.PARAMCD"
        codes = codelists[f"CL.{upper}.PARAMCD"]
        coded = {i.get("CodedValue"): i.findtext(".//odm:TranslatedText", namespaces=NS)
                 for i in codes if i.get("CodedValue")}
        assert set(coded) == {str(c) for c in frame["PARAMCD"].dropna()}, name
        if "PARAM" in frame.columns:
            first = frame.drop_duplicates("PARAMCD").set_index("PARAMCD")["PARAM"]
            assert coded == {str(k): str(v) for k, v in first.items()}, name
    avalc = [i.get("CodedValue") for i in codelists["CL.ADRS.AVALC"]]
    assert set(avalc) == set(datasets["adrs"]["AVALC"].dropna())
    ny = codelists["CL.NY"]
    assert {i.get("CodedValue"): i.find("odm:Alias", NS).get("Name")
            for i in ny.iterfind("odm:EnumeratedItem", NS)} == {"Y": "C49488", "N": "C49487"}
    assert items["IT.ADSL.SAFFL"].find("odm:CodeListRef", NS).get("CodeListOID") == "CL.NY"
    assert [i.get("CodedValue") for i in codelists["CL.CNSR"]] == ["0", "1"]
    html = (exported["xpt"] / "define.html").read_text(encoding="utf-8")
    assert "Algorithm for ADTTE PARAMCD OS" in html and "Overall survival" in html


def test_a_flag_other_than_y_or_n_is_refused(datasets, tmp_path):
    adsl = datasets["adsl"].copy()
    adsl.loc[0, "SAFFL"] = "YES"
    with pytest.raises(StoreError, match=r"ADSL: Invalid `SAFFL`: got `'YES'`, must be Y or N"):
        export_adam({"adsl": adsl}, tmp_path, fmt="xpt")


def test_names_over_eight_characters_are_refused_not_truncated(datasets):
    frame = datasets["adsl"].assign(LONGNAME1=1.0)
    with pytest.raises(StoreError, match="at most 8 characters"):
        adam_frame("adsl", frame)
    with pytest.raises(StoreError, match="undeclared variable"):
        adam_frame("adsl", datasets["adsl"].assign(XYZ=1.0))
    adpc = datasets["adpc"].copy()
    adpc["dose_level"] = adpc["TRT01AN"] + 1
    with pytest.raises(StoreError, match="dose_level"):
        adam_frame("adpc", adpc)


def test_text_over_200_bytes_and_unknown_format_are_refused(datasets, tmp_path):
    adae = datasets["adae"].copy()
    adae.loc[0, "AETERM"] = "x" * 201
    with pytest.raises(StoreError, match="AETERM.*200 bytes"):
        export_adam({"adae": adae}, tmp_path, fmt="xpt")
    with pytest.raises(StoreError, match="xpt or dataset-json"):
        export_adam(datasets, tmp_path, fmt="csv")  # type: ignore[arg-type]


def test_analyze_adam_format_option(tmp_path):
    from celltrial.cli.main import app
    from celltrial.store import init_db, open_store, register_study, write_domains

    url = f"sqlite:///{tmp_path / 'ct.db'}"
    init_db(url)
    store = open_store(url)
    register_study(store, load(STUDY))
    write_domains(store, STUDY, make_domains(), user="test", reason="fixture")
    out = tmp_path / "analysis"
    result = CliRunner().invoke(app, ["analyze", "--study", STUDY, "--db", url, "--out",
                                      str(out), "--adam-format", "dataset-json"])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (out / "adam").iterdir())
    assert "adsl.json" in files and "define.xml" in files and "adlb.json" in files
    bad = CliRunner().invoke(app, ["analyze", "--study", STUDY, "--db", url, "--out",
                                   str(out), "--adam-format", "sas7bdat"])
    assert bad.exit_code == 1 and "adam-format" in bad.output


def test_a_virtual_study_exports_valid_files(tmp_path, xsd):
    """A shipped protocol's simulated study (the simulator's full set of SDTM columns): every
    dataset is declared, the Dataset-JSON files and define.xml validate."""
    from celltrial.conduct.virtual_trial import simulate_study
    from celltrial.store.conform import conform

    protocol = load("cd7-tall-phase1")
    frames = simulate_study(protocol, 4, 7, data_cut=dt.date(2027, 6, 1))
    domains = {name: conform(name, frame, name) for name, frame in frames.items()}
    datasets = derive_datasets(domains, protocol)
    files = export_adam(datasets, tmp_path, fmt="dataset-json", study_id=protocol.id)
    validator = jsonschema.Draft201909Validator(SCHEMA)
    documents = [json.loads(f.read_text("utf-8")) for f in files if f.suffix == ".json"]
    assert {d["name"] for d in documents} >= {"ADSL", "ADAE", "ADRS", "ADTTE", "ADLB"}
    for document in documents:
        assert list(validator.iter_errors(document)) == [], document["name"]
    assert xsd.validate(etree.parse(str(tmp_path / "define.xml"))), xsd.error_log

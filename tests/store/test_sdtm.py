"""SDTMIG 3.4 export: variables, types, CDISC CT membership and the reverse mapping.

The five shipped protocols are conducted as small virtual studies, stored, and exported as XPT
and Dataset-JSON (fixture ``virtual_exports``); the hand-made frames of conftest cover the rest
(IS titre, split infusions, missing values)."""

from __future__ import annotations

import csv
import math
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from celltrial.errors import StoreError
from celltrial.store.conform import conform
from celltrial.store.sdtm import CT_RELEASE, SDTM, dataset_spec, from_sdtm, to_sdtm
from celltrial.store.sdtm import ct, recode
from celltrial.store.sdtm.check import check
from celltrial.store.xpt import read_xpt_dir

from .conftest import STUDY, make_frames


def _xpt(folder):
    """Every dataset of an XPT folder as (frame, meta), by dataset name."""
    out = {}
    for file in sorted(folder.glob("*.xpt")):
        frame, meta = pyreadstat.read_xport(str(file))
        out[meta.table_name] = (frame.replace("", None), meta)
    return out


def _stored():
    """The hand-made frames as read_domains returns them (STUDYID filled, typed)."""
    return {n: conform(n, f.assign(STUDYID=STUDY), n) for n, f in make_frames().items()}


def _sdtm():
    """SDTM datasets of the hand-made frames for the rule tests: subject 102-001, a DS screen
    failure never infused, has no arm, as SDTMIG 3.4 section 5.2 asks of a screen failure
    (the frames give it DL2; SD0014 would report it)."""
    stored = _stored()
    dm = stored["DM"]
    dm.loc[dm["USUBJID"] == "102-001", "ARMCD"] = None
    return to_sdtm(stored, country="CHN")


@pytest.fixture()
def virtual(virtual_exports):
    return virtual_exports


def _virtual_datasets(virtual, study):
    """The SDTM datasets of a virtual study as read back from its XPT files."""
    return {name: frame for name, (frame, _) in _xpt(virtual.folder(study, "xpt")).items()}


def test_every_dataset_of_every_study_passes_the_conformance_rules(virtual):
    """SD0001-SD0018 with each study's protocol (trial design arms, dose levels, split)."""
    from celltrial.protocols import load

    for study in virtual.studies:
        datasets = _virtual_datasets(virtual, study)
        assert {"DM", "EX", "TA", "SUPPEX"} <= set(datasets), study
        assert check(datasets, load(study)) == [], study


def test_every_coded_value_exported_is_in_the_ct_subset(virtual):
    """Cytokine codes, units, response codes, ...: every value of a variable with a codelist
    is a CT submission value of release CT_RELEASE or a declared sponsor extension."""
    seen: dict[str, set[str]] = {}
    for study in virtual.studies:
        for name, (frame, _) in _xpt(virtual.folder(study, "xpt")).items():
            for var in dataset_spec(name).variables:
                if var.codelist:
                    values = {v for v in frame[var.name] if isinstance(v, str)}
                    assert values <= ct.values(var.codelist), (study, name, var.name,
                                                               values - ct.values(var.codelist))
                    seen.setdefault(var.codelist, set()).update(values)
    cytokines = {"INTLK6", "INTLK10", "IFNG", "TNF"}
    assert cytokines <= seen["LBTESTCD"] and not {"IL6", "IL10", "TNFA"} & seen["LBTESTCD"]
    assert {"ng/L", "10^9/L", "fraction of 1", "copies/ug", "10^6/L"} <= seen["UNIT"]
    assert not {"pg/mL", "fraction", "cells/uL", "copies/ug gDNA"} & seen["UNIT"]
    assert "CR" in seen["ONCRSR"] and not {"MLFS", "RELAPSE"} & seen["ONCRSR"]
    # a CT test code is released (has an NCI code), a sponsor one is declared
    released = {t.value for t in ct.terms() if t.codelist == "LBTESTCD" and t.code}
    assert cytokines <= released and "CD7ABS" not in released


def test_ct_subset_is_one_release_with_extensions_only_where_allowed():
    with open(ct.DATA / "ct-sdtm.tsv", encoding="utf-8") as handle:
        assert f"release {CT_RELEASE}" in handle.readline()
    terms = ct.terms()
    assert {t.code for t in terms if t.codelist == "LBTESTCD" and t.value == "INTLK6"} == {
        "C74834"}
    assert ct.test_name("LBTESTCD", "TNF") == "Tumor Necrosis Factor"
    for t in terms:
        if t.code is None:  # sponsor-defined: only extensible codelists or XC's own
            assert t.codelist in ct.SPONSOR_CODELISTS or ct.codelists()[t.codelist][1], t
    assert ct.codelists()["SCTESTCD"] == ("C74559", True)
    assert ct.codelists()["SEX"] == ("C66731", False)
    assert not ct.is_ct("SEX", "Male") and not ct.is_ct("UNIT", "pg/mL")
    for mapping in (recode.UNITS, recode.LBTESTCD, recode.RSTESTCD, recode.RSSTRESC,
                    recode.TRTESTCD, recode.ISTESTCD, recode.METHOD):
        for value in mapping.out.values():
            assert any(t.value == value and t.code for t in terms), value


def test_sdtmig_variables_and_types(virtual):
    datasets = {}
    for study in virtual.studies:
        for name, pair in _xpt(virtual.folder(study, "xpt")).items():
            datasets.setdefault(name, []).append(pair)
    for name, pairs in datasets.items():
        for frame, meta in pairs:
            assert list(frame.columns) == list(dataset_spec(name).columns)
            key = "RDOMAIN" if name.startswith("SUPP") else "DOMAIN"
            assert set(frame[key]) == {name.removeprefix("SUPP")}
    types = {n: t for _, meta in datasets["LB"] for n, t in meta.readstat_variable_types.items()}
    assert {types[v] for v in ("LBTOXGR", "LBORNRLO", "LBORNRHI", "LBSTRESC")} == {"string"}
    ae_types = datasets["AE"][0][1].readstat_variable_types
    assert ae_types["AETOXGR"] == "string" and ae_types["AESEQ"] == "double"
    dm = pd.concat([f for f, _ in datasets["DM"]])
    assert set(dm["COUNTRY"]) == {"CHN"} and "DISEASE" not in dm.columns
    failed = dm[dm["ARMNRS"] == "SCREEN FAILURE"]
    assert len(failed) > 0
    assert failed[["ARMCD", "ARM", "ACTARMCD", "ACTARM"]].isna().all().all()
    assert dm.loc[dm["ARMNRS"].isna(), "ARMCD"].notna().all()
    suppdm = pd.concat([f for f, _ in datasets["SUPPDM"]])
    assert set(suppdm["QNAM"]) == {"DISEASE"} and len(suppdm) == len(dm)
    assert set(pd.concat([f for f, _ in datasets["SUPPEX"]])["QNAM"]) == {
        "EXFRACN", "CARCELLS", "EXVOL", "EXBAGN"}
    assert {"VS", "PC", "SC", "RS", "XC", "LB"} <= set(datasets)  # TU/TR/IS: not every cohort
    for name in {"VS", "TR", "PC", "SC", "RS", "TU", "XC", "IS"} & set(datasets):
        frame = pd.concat([f for f, _ in datasets[name]])
        assert frame[f"{name}TEST"].notna().all(), name
    for name in {"LB", "VS", "PC", "TR"} & set(datasets):
        frame = pd.concat([f for f, _ in datasets[name]])
        numeric = frame[f"{name}STRESN"].notna()
        assert (frame.loc[numeric, f"{name}STRESC"].astype(float)
                == frame.loc[numeric, f"{name}STRESN"]).all(), name
    for name in {"VS", "TR"} & set(datasets):
        frame = pd.concat([f for f, _ in datasets[name]])
        assert (frame[f"{name}ORRES"].astype(float) == frame[f"{name}STRESN"]).all()
    sc = pd.concat([f for f, _ in datasets["SC"]])
    assert sc["SCTESTCD"].str.fullmatch(r"[A-Z][A-Z0-9_]{0,7}").all()


def test_virtual_studies_read_back_from_xpt_and_json_exactly(virtual):
    from celltrial.store.dataset_json import read_dataset_json_dir

    for study in virtual.studies:
        stored = virtual.domains[study]
        for read in (read_xpt_dir(virtual.folder(study, "xpt")),
                     read_dataset_json_dir(virtual.folder(study, "json"))):
            for name, frame in read.items():
                pd.testing.assert_frame_equal(frame, stored[name], check_dtype=True)
            assert {n for n, f in stored.items() if len(f) or n == "DM"} == set(read)


def test_hand_made_frames_keep_supp_values_and_xc_inputs():
    stored = _stored()
    sdtm = to_sdtm(stored, country="CHN")
    assert set(sdtm) >= {"SUPPDM", "SUPPEX", "SUPPAE", "SUPPIS"}
    suppis = sdtm["SUPPIS"]
    assert suppis[["IDVAR", "IDVARVAL", "QNAM", "QVAL"]].values.tolist() == [
        ["ISSEQ", "2", "ISTITER", "80"]]
    xc = sdtm["XC"]
    assert len(xc) == len(recode.XC_TESTS) and xc["XCSEQ"].tolist() == list(range(1, 12))
    temp = xc[xc["XCTESTCD"] == "TEMP"].iloc[0]
    assert (temp["XCSTRESN"], temp["XCSTRESU"], temp["XCGRPID"]) == (38.9, "C", "1")
    ex = sdtm["EX"]
    assert ex["EXDOSE"].tolist() == [0.3, 0.7, 1.0] and set(ex["EXDOSU"]) == {"10^6/kg"}
    back = {n: conform(n, f, n) for n, f in from_sdtm(sdtm, {n: n for n in sdtm}).items()}
    for name in ("DM", "EX", "AE", "XC", "IS", "RS", "SC", "TR", "PC"):
        pd.testing.assert_frame_equal(back[name], stored[name])


@pytest.mark.parametrize(("edit", "rule", "variable"), [
    (lambda d: d["LB"].__setitem__("LBTESTCD", "IL6"), "SD0004", "LBTESTCD"),
    (lambda d: d["LB"].__setitem__("LBSTRESU", "pg/mL"), "SD0004", "LBSTRESU"),
    (lambda d: d["SC"].__setitem__("SCTESTCD", "cd7_blast_pct"), "SD0005", "SCTESTCD"),
    (lambda d: d["DM"].__setitem__("COUNTRY", None), "SD0001", "COUNTRY"),
    (lambda d: d["LB"].__setitem__("LBSEQ", 1.0), "SD0007", "LBSEQ"),
    (lambda d: d["AE"].__setitem__("AESTDTC", "12/01/2024"), "SD0008", "AESTDTC"),
    (lambda d: d["AE"].__setitem__("DOMAIN", "XX"), "SD0003", "DOMAIN"),
    (lambda d: d["DM"].__setitem__("ARMNRS", "SCREEN FAILURE"), "SD0010", "ARMNRS"),
    (lambda d: d["DM"].__setitem__("ACTARM", None), "SD0010", "ARMNRS"),
    (lambda d: d["LB"].__setitem__("LBTOXGR", 1.0), "SD0009", "LBTOXGR"),
])
def test_conformance_rules_find_what_they_name(edit, rule, variable):
    sdtm = _sdtm()
    assert check(sdtm) == []
    edit(sdtm)
    found = {(f.rule, f.variable) for f in check(sdtm)}
    assert (rule, variable) in found


@pytest.mark.parametrize(("edit", "rule", "variable"), [
    (lambda d: d["AE"].__setitem__("AETERM", "x" * 201), "SD0012", "AETERM"),
    (lambda d: d["LB"].__setitem__("LBCAT", "é" * 101), "SD0012", "LBCAT"),  # 202 bytes
    (lambda d: d["DM"].__setitem__("SITEID", "1" * 201), "SD0012", "SITEID"),
    (lambda d: d["LB"].__setitem__("LBSPECIMEN", "BLOOD"), "SD0013", "LBSPECIMEN"),
    (lambda d: d["LB"].__setitem__("lbspec", "BLOOD"), "SD0013", "lbspec"),
])
def test_length_and_name_rules_find_what_they_name(edit, rule, variable):
    """SD0012: a Char value over its declared length (200 bytes of XPT v5 unless the spec says
    less); SD0013: a variable name that XPT v5 cannot hold."""
    sdtm = _sdtm()
    assert check(sdtm) == []
    edit(sdtm)
    found = [f for f in check(sdtm) if f.rule == rule]
    assert [f.variable for f in found][:1] == [variable]


def test_declared_lengths_and_label_limits():
    """The spec declares 8 for codes, 40 for test names, 20 for arm codes, 200 otherwise
    (SD0012), and an over-long label (or a dataset name XPT cannot hold) is SD0013."""
    import dataclasses

    from celltrial.store.sdtm.check import check_dataset
    from celltrial.store.sdtm.spec import max_length

    lengths = {v.name: v.length for name in SDTM for v in dataset_spec(name).variables}
    assert (lengths["LBTESTCD"], lengths["LBTEST"], lengths["ARMCD"], lengths["IETEST"],
            lengths["DOMAIN"], lengths["AETERM"], lengths["AESEQ"]) == (8, 40, 20, 200, 2, 200,
                                                                        None)
    assert max_length("QNAM") == 8 and max_length("TSPARM") == 40
    dm = _sdtm()["DM"]
    spec = dataset_spec("DM")
    long_label = dataclasses.replace(spec, variables=tuple(
        dataclasses.replace(v, label="Subject Reference Start Date/Time of the Study")
        if v.name == "RFSTDTC" else v for v in spec.variables))
    assert check_dataset("DM", dm) == []
    assert [(f.rule, f.variable) for f in check_dataset("DM", dm, long_label)] == [
        ("SD0013", "RFSTDTC")]
    renamed = dataclasses.replace(spec, label="Demographics of every subject screened in study")
    assert [(f.rule, f.value) for f in check_dataset("DM", dm, renamed)] == [
        ("SD0013", renamed.label)]
    assert ("SD0013", "DEMOGRAPHX") in {(f.rule, f.value)
                                        for f in check_dataset("DEMOGRAPHX", dm, spec)}


def test_define_xml_refuses_a_value_outside_ct_naming_it():
    """A coded value neither in CT nor declared cannot be listed in a define.xml codelist:
    one line naming the codelist and the value (and SD0004 of `db validate`)."""
    from celltrial.store.sdtm.define import define_xml

    sdtm = _sdtm()
    sdtm["LB"].loc[0, "LBTESTCD"] = "IL6"  # the store's code, CT has INTLK6
    assert ("SD0004", "LBTESTCD", "IL6") in {(f.rule, f.variable, f.value)
                                            for f in check(sdtm)}
    with pytest.raises(StoreError, match=r"^Invalid `LBTESTCD` value: got `'IL6'`"):
        define_xml(sdtm, STUDY)


def _rows(frame, mask):
    index = frame.index[mask]
    assert len(index), "the virtual study lacks the case"
    return index


def _screen_failure_as_assigned(d):
    dm = d["DM"]
    dm.loc[_rows(dm, dm["ARMNRS"] == "SCREEN FAILURE")[0], "ARMNRS"] = "ASSIGNED, NOT TREATED"


def _screen_failure_not_in_ds(d):
    dm = d["DM"]
    dm.loc[_rows(dm, dm["ARMNRS"] == "SCREEN FAILURE")[0], "ARMNRS"] = "NOT ASSIGNED"


def _treated_without_ex(d):
    dm, ex = d["DM"], d["EX"]
    subject = dm.loc[_rows(dm, dm["ACTARMCD"].notna())[0], "USUBJID"]
    d["EX"] = ex[ex["USUBJID"] != subject].reset_index(drop=True)


def _arm_not_in_ta(d):
    dm = d["DM"]
    dm.loc[_rows(dm, dm["ACTARMCD"].notna())[0], ["ARMCD", "ACTARMCD"]] = "DL99"


def _arm_text_not_ta(d):
    dm = d["DM"]
    dm.loc[_rows(dm, dm["ACTARMCD"].notna())[0], ["ARM", "ACTARM"]] = "1e6 cells/kg"


def _ex_subject_not_in_dm(d):
    d["EX"].loc[0, "USUBJID"] = "NOT-IN-DM"


def _ex_subject_without_arm(d):
    dm, ex = d["DM"], d["EX"]
    failed = dm.loc[_rows(dm, dm["ARMNRS"] == "SCREEN FAILURE")[0], "USUBJID"]
    d["EX"] = pd.concat([ex, ex.iloc[:1].assign(USUBJID=failed, EXDOSE=0.0)],
                        ignore_index=True)


def _dose_in_cells_per_kg(d):
    ex = d["EX"]
    ex.loc[_rows(ex, ex["EXDOSE"] > 0)[0], "EXDOSU"] = "cells/kg"


def _dose_doubled(d):
    ex = d["EX"]
    row = _rows(ex, ex["EXDOSE"] > 0)[0]
    ex.loc[row, "EXDOSE"] = ex.loc[row, "EXDOSE"] * 2


def _fraction_beyond_split(d):
    supp = d["SUPPEX"]
    supp.loc[_rows(supp, supp["QNAM"] == "EXFRACN")[0], "QVAL"] = "9"


@pytest.mark.parametrize(("edit", "rule", "variable", "level"), [
    (_screen_failure_as_assigned, "SD0014", "ARMNRS", "error"),
    (_screen_failure_not_in_ds, "SD0014", "ARMNRS", "error"),
    (_treated_without_ex, "SD0014", "ACTARMCD", "error"),
    (_arm_not_in_ta, "SD0015", "ARMCD", "error"),
    (_arm_text_not_ta, "SD0015", "ARM", "error"),
    (_ex_subject_not_in_dm, "SD0016", "USUBJID", "error"),
    (_ex_subject_without_arm, "SD0016", "USUBJID", "error"),
    (_dose_in_cells_per_kg, "SD0017", "EXDOSU", "error"),
    (_dose_doubled, "SD0018", "EXDOSE", "warning"),
    (_fraction_beyond_split, "SD0018", "EXDOSE", "warning"),
])
def test_arm_and_dose_rules_find_what_they_name(virtual, edit, rule, variable, level):
    """DM/EX arm coding against DS, EX, TA and the protocol's dose levels and split, on a
    virtual study (screen failures, treated subjects, SUPPEX fraction numbers): quiet on the
    exported data, the rule named once the data are broken."""
    from celltrial.protocols import load
    from celltrial.store.sdtm.check import severity

    study = "nct04762485"
    datasets = {n: f.copy() for n, f in _virtual_datasets(virtual, study).items()}
    assert check(datasets, load(study)) == []
    edit(datasets)
    found = [f for f in check(datasets, load(study)) if f.rule == rule]
    assert variable in {f.variable for f in found}
    assert severity(rule) == level
    assert all(f.dataset in ("DM", "EX") and f.row is not None for f in found)


def test_arm_rules_table_follows_sdtmig_armnrs():
    """ARMNRS allowed by (ARMCD given, ACTARMCD given): SDTMIG 3.4 section 5.2."""
    from celltrial.store.sdtm.check import ARMNRS_BY_ARMS

    assert ARMNRS_BY_ARMS[(False, False)] == {"SCREEN FAILURE", "NOT ASSIGNED"}
    assert ARMNRS_BY_ARMS[(True, False)] == {"ASSIGNED, NOT TREATED"}
    assert ARMNRS_BY_ARMS[(True, True)] == {None}
    assert {v for vs in ARMNRS_BY_ARMS.values() for v in vs if v} - ct.values("ARMNULRS") == {
        "UNPLANNED TREATMENT"}  # not in the shipped CT subset: SD0004 would report it too


def test_import_refuses_a_wrong_domain_and_an_unknown_qualifier():
    sdtm = to_sdtm(_stored(), country="CHN")
    origins = {n: f"{n.lower()}.json" for n in sdtm}
    bad = {**sdtm, "AE": sdtm["AE"].assign(DOMAIN=["AE", "LB"])}
    with pytest.raises(StoreError, match=r"^ae.json row 2, column DOMAIN: Invalid `DOMAIN`: "
                                         r"got `'LB'`"):
        from_sdtm(bad, origins)
    supp = sdtm["SUPPAE"].copy()
    supp.loc[0, "QNAM"] = "AETRTEM"
    with pytest.raises(StoreError, match=r"^suppae.json row 1, column QNAM: .*`'AETRTEM'`"):
        from_sdtm({**sdtm, "SUPPAE": supp}, origins)
    assert "AETOXSCL" in from_sdtm({**sdtm, "SUPPAE": supp}, origins, drop_unkept=True)["AE"]


def test_docs_name_every_sdtm_dataset():
    text = (Path(__file__).parents[2] / "docs" / "data-model.md").read_text(encoding="utf-8")
    assert f"CT {CT_RELEASE}" in text and "SDTMIG 3.4" in text
    for name in SDTM:
        assert f"| {name} " in text, name


# --- XPT read by R foreign::read.xport --------------------------------------------------------

R_SCRIPT = Path(__file__).parent / "fixtures" / "read_xpt.R"
R_FROZEN = Path(__file__).parent / "fixtures" / "xpt_by_r"


def _r_mismatches(xpt_folder: Path, r_folder: Path) -> tuple[int, list[str]]:
    """(cells compared, mismatches) between what was written (read back by pyreadstat) and the
    CSVs R foreign::read.xport wrote: numbers exactly (17 digits), text exactly."""
    cells, bad = 0, []
    files = sorted(xpt_folder.glob("*.xpt"))
    assert sorted(f.stem for f in files) == sorted(f.stem for f in r_folder.glob("*.csv"))
    for file in files:
        written, meta = pyreadstat.read_xport(str(file))
        with open(r_folder / f"{file.stem}.csv", encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == len(written) and list(rows[0]) == list(written.columns), file.name
        for column in written.columns:
            numeric = meta.readstat_variable_types[column] == "double"
            for i, (ours, theirs) in enumerate(zip(written[column], (r[column] for r in rows),
                                                   strict=True)):
                cells += 1
                if numeric:
                    same = (theirs == "NA" and math.isnan(ours)) or (
                        theirs != "NA" and float(theirs) == ours)
                else:
                    same = theirs == ours
                if not same:
                    bad.append(f"{file.name} row {i + 1} {column}: {ours!r} vs R {theirs!r}")
    return cells, bad


def test_r_read_xport_reads_the_hand_made_export_as_frozen(tmp_path):
    from celltrial.store.xpt import write_xpt

    for name, frame in to_sdtm(_stored(), country="CHN").items():
        write_xpt(name, frame, tmp_path / f"{name.lower()}.xpt")
    cells, bad = _r_mismatches(tmp_path, R_FROZEN)
    assert bad == [] and cells > 400


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R (Rscript) is not installed")
def test_r_read_xport_reads_every_virtual_study_with_no_mismatch(virtual, tmp_path):
    check_r = subprocess.run(["Rscript", "-e", "library(foreign)"], capture_output=True)
    if check_r.returncode:
        pytest.skip("R package foreign is not installed")
    total = 0
    for study in virtual.studies:
        out = tmp_path / study
        subprocess.run(["Rscript", str(R_SCRIPT), str(virtual.folder(study, "xpt")), str(out)],
                       check=True, capture_output=True)
        cells, bad = _r_mismatches(virtual.folder(study, "xpt"), out)
        assert bad == [], bad[:5]
        total += cells
    assert total > 10_000


def test_trial_design_from_the_protocol():
    from celltrial.protocols import load
    from celltrial.store.sdtm.design import trial_design

    protocol = load("nct04762485")
    design = trial_design(protocol)
    assert check(design) == []
    ta, te, ti = design["TA"], design["TE"], design["TI"]
    levels = [level.id for level in protocol.dose_levels]
    assert ta["ARMCD"].drop_duplicates().tolist() == levels
    assert ta.groupby("ARMCD")["EPOCH"].apply(list).tolist() == [
        ["SCREENING", "TREATMENT", "FOLLOW-UP"]] * len(levels)
    assert set(ta["ETCD"]) == set(te["ETCD"])
    fu = te.set_index("ETCD").loc["FU"]
    assert fu["TEDUR"] == f"P{max(protocol.schedule.followup_days) - protocol.dlt.window_days}D"
    criteria = protocol.eligibility.inclusion + protocol.eligibility.exclusion
    assert ti["IETESTCD"].tolist() == [c.id for c in criteria]
    assert ti["IECAT"].value_counts().to_dict() == {
        "INCLUSION": len(protocol.eligibility.inclusion),
        "EXCLUSION": len(protocol.eligibility.exclusion)}


def test_trial_summary_and_visits_from_the_protocol():
    """TS: SDTMIG 3.4 TS parameters with CT-coded values and their NCI codes; TV: one visit per
    planned assessment day, SDTM study days (no day 0)."""
    from celltrial.protocols import load
    from celltrial.store.sdtm.design import trial_design

    protocol = load("nct04762485")
    dm = to_sdtm(_stored(), country="CHN")["DM"]
    design = trial_design(protocol, dm)
    assert check(design) == []
    ts = design["TS"]
    values = ts.groupby("TSPARMCD")["TSVAL"].apply(list).to_dict()
    assert values["TITLE"] == [protocol.title] and values["REGID"] == ["NCT04762485"]
    assert values["TPHASE"] == ["PHASE I TRIAL"] and values["SDTIGVER"] == ["3.4"]
    assert values["AGEMIN"] == ["P12Y"] and values["AGEMAX"] == ["P65Y"]  # 12 <= age_years <= 65
    assert values["PLANSUB"] == ["20"] and values["NARMS"] == [str(len(protocol.dose_levels))]
    assert values["LENGTH"] == [f"P{max(protocol.schedule.followup_days)}D"]
    assert values["INDIC"] == protocol.conditions
    assert set(values["TTYPE"]) == {"SAFETY", "PHARMACOKINETIC", "DOSE FINDING"}
    enrolled = dm[dm["ARMCD"].notna()]
    assert values["ACTSUB"] == [str(len(enrolled))]
    assert values["SSTDTC"] == [min(enrolled["RFICDTC"])[:10]]
    coded = ts[ts["TSVCDREF"] == "CDISC CT"]
    assert len(coded) >= 10 and (coded["TSVCDVER"] == CT_RELEASE).all()
    for row in coded.itertuples():  # TSVALCD is the NCI code of TSVAL in CT
        assert any(t.value == row.TSVAL and t.code == row.TSVALCD for t in ct.terms()), row
    assert ts.loc[ts["TSPARMCD"] == "TPHASE", "TSVALCD"].tolist() == ["C15600"]
    assert (ts.groupby("TSPARMCD")["TSSEQ"].apply(list).map(
        lambda seq: seq == [float(i) for i in range(1, len(seq) + 1)])).all()
    # a phase the registration does not state: null value with a null flavour
    unstated = trial_design(load("cd7-aml-mll"))["TS"].set_index("TSPARMCD").loc["TPHASE"]
    assert unstated["TSVAL"] is None and unstated["TSVALNF"] == "UNK"
    tv = design["TV"]
    schedule = protocol.schedule
    days = sorted(set(schedule.kinetics_days) | set(schedule.cytokine_days)
                  | set(schedule.cd7_days) | set(schedule.marrow_days)
                  | set(schedule.followup_days))
    assert tv["VISIT"].tolist() == ["SCREENING"] + [f"DAY {d}" for d in days]
    assert tv["VISITNUM"].is_unique and tv["ARMCD"].isna().all()
    by_visit = tv.set_index("VISIT")["VISITDY"]
    assert by_visit["DAY 0"] == 1 and by_visit["DAY 28"] == 29 and by_visit["DAY -7"] == -7


def test_ts_conformance_rules():
    from celltrial.protocols import load
    from celltrial.store.sdtm.design import trial_design

    ts = trial_design(load("nct04762485"))["TS"]
    twice = ts.assign(TSSEQ=1.0)  # INDIC has three values: TSSEQ must number them
    assert {(f.rule, f.variable) for f in check({"TS": twice})} == {("SD0007", "TSSEQ")}
    long = ts.copy()
    long.loc[0, "TSVAL"] = "x" * 201
    long.loc[1, "TSPARMCD"] = "TRIALTTL"
    assert {(f.rule, f.variable) for f in check({"TS": long})} == {
        ("SD0006", "TSVAL"), ("SD0004", "TSPARMCD")}
    coded = ts.copy()
    phase = coded.index[coded["TSPARMCD"] == "TPHASE"][0]
    coded.loc[phase, "TSVALCD"] = "C15601"  # the code of another phase
    blind = coded.index[coded["TSPARMCD"] == "TBLIND"][0]
    coded.loc[blind, "TSVAL"] = "OPEN"  # not a TBLIND term
    title = coded.index[coded["TSPARMCD"] == "TITLE"][0]
    coded.loc[title, "TSVAL"] = None  # a null value without its null flavour
    assert {(f.rule, f.row, f.variable) for f in check({"TS": coded})} == {
        ("SD0011", phase + 1, "TSVALCD"), ("SD0011", blind + 1, "TSVAL"),
        ("SD0011", title + 1, "TSVALNF")}


def test_store_export_adds_trial_design_only_for_a_registered_shipped_protocol(store, tmp_path):
    from celltrial.protocols import load
    from celltrial.store import export_xpt, register_study

    # conftest registers STUDY by id and title: no protocol hash, no trial design
    names = {f.stem for f in export_xpt(store, STUDY, tmp_path / "plain")}
    assert not names & {"ta", "te", "ti", "ts", "tv"}
    register_study(store, load("cd7-zz-phase1"))
    names = {f.stem for f in export_xpt(store, "cd7-zz-phase1", tmp_path / "shipped")}
    assert {"dm", "ta", "te", "ti", "ts", "tv"} <= names
    read = read_xpt_dir(tmp_path / "shipped")  # TE/TA/TI/TS/TV are not kept: ignored on import
    assert set(read) == {"DM"} and read["DM"].empty

"""ADaM export: the analysis datasets of :func:`celltrial.derive.analysis.derive_datasets` as
SAS transport files (XPT v5) or CDISC Dataset-JSON v1.1, with an ADaM define.xml.

Rules and their sources:

- FDA Study Data Technical Conformance Guide (section 3.3): XPT v5, one dataset per file named
  by the dataset in lower case (``adsl.xpt``), dataset and variable names <= 8 characters,
  upper case letters, digits and ``_``, starting with a letter; labels <= 40 characters; text
  values <= 200 bytes.
- ADaMIG 1.3 section 3 (variable conventions): a ``*DT`` variable is a numeric SAS date, a
  ``*DTM`` a numeric SAS datetime (seconds since 1960-01-01), both with a display format
  (``DATE9.``, ``DATETIME20.``); ISO 8601 text stays in ``*DTC`` (character).
- Every exported variable has its label declared in :data:`VARIABLES` (variable -> label and,
  for a variable copied from SDTM, its predecessor ``DOMAIN.VARIABLE``). A column whose
  upper-case name is over 8 characters or not a SAS name is refused, never truncated; an
  undeclared column is refused too, so every label is deliberate. Convenience columns that
  repeat a declared variable (:data:`ALIASES`) are left out after checking they are equal.
- Dataset-JSON v1.1 (cdisc-org/DataExchange-DatasetJson ``schema/dataset.schema.json``): a date
  column is ``dataType`` ``date`` with ``targetDataType`` ``integer`` (ISO 8601 text in JSON,
  SAS date in XPT), a datetime ``datetime`` likewise; text ``string`` with ``length``.
- Define-XML 2.1 with ``def:Standards`` ADaMIG 1.3: ``ItemGroupDef`` Purpose ``Analysis``,
  ``def:Class`` SUBJECT LEVEL ANALYSIS DATASET (ADSL), OCCURRENCE DATA STRUCTURE (ADAE) or
  BASIC DATA STRUCTURE (the others); ``def:Origin`` ``Predecessor`` (copied from SDTM, the
  source variable named) or ``Derived``; ``MethodDef`` of the key derived variables
  (:data:`METHODS`) and, as value-level metadata (``def:ValueListDef`` with a
  ``def:WhereClauseDef`` PARAMCD EQ code), of each parameter's AVAL/CNSR/AVALC
  (:data:`PARAMETER_METHODS`), each opening with the description of the protocol derivation
  it computes (``celltrial.protocols.derivations.DERIVATIONS``); ``CodeList`` of PARAMCD per
  dataset (decoded by PARAM), ADRS AVALC (response categories), CNSR (0 event, 1 censored)
  and the flags (ADaMIG 1.3 section 3.1.4: Y/N, CDISC CT ``NY`` with its NCI codes; a flag
  holding another value is refused). The Define-XML building blocks are those of the SDTM
  define.xml (:mod:`celltrial.store.sdtm.define`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import xml.etree.ElementTree as etree
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from celltrial import __version__
from celltrial.errors import StoreError

ADAMIG_VERSION = "1.3"
MAX_TEXT = 200
SAS_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,7}$")
SAS_EPOCH = dt.date(1960, 1, 1)
Format = Literal["xpt", "dataset-json"]

DATASETS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "ADSL": ("Subject-Level Analysis Dataset", "SUBJECT LEVEL ANALYSIS DATASET",
             "One record per subject", ("USUBJID",)),
    "ADAE": ("Adverse Events Analysis Dataset", "OCCURRENCE DATA STRUCTURE",
             "One record per adverse event per subject", ("USUBJID", "AESEQ")),
    "ADRS": ("Response Analysis Dataset", "BASIC DATA STRUCTURE",
             "One record per parameter per assessment per subject",
             ("USUBJID", "PARAMCD", "ADT")),
    "ADTTE": ("Time-to-Event Analysis Dataset", "BASIC DATA STRUCTURE",
              "One record per parameter per subject", ("USUBJID", "PARAMCD")),
    "ADPC": ("Pharmacokinetic Concentrations Analysis", "BASIC DATA STRUCTURE",
             "One record per analyte per sample per subject", ("USUBJID", "PCSEQ")),
    "ADPP": ("Pharmacokinetic Parameters Analysis", "BASIC DATA STRUCTURE",
             "One record per parameter per subject", ("USUBJID", "PARAMCD")),
    "ADLB": ("Laboratory Analysis Dataset", "BASIC DATA STRUCTURE",
             "One record per lab test per time point per subject", ("USUBJID", "LBSEQ")),
    "ADIS": ("Immunogenicity Analysis Dataset", "BASIC DATA STRUCTURE",
             "One record per test per sample per subject", ("USUBJID", "ISSEQ")),
    "ADTOX": ("Hematotoxicity (ICAHT) Analysis Dataset", "BASIC DATA STRUCTURE",
              "One record per parameter per subject", ("USUBJID", "PARAMCD")),
    "ADEX": ("Exposure Analysis Dataset", "ADAM OTHER",
             "One record per planned infusion fraction per subject", ("USUBJID", "EXFRACN")),
}
"""Dataset -> (label, Define-XML 2.1 def:Class, def:Structure, key variables), ADaMIG 1.3
section 2 (ADSL, OCCDS, BDS) and the ADaM structures of docs/derive.md; ADEX (one row per
planned split fraction, no PARAMCD/AVAL: neither BDS nor OCCDS) is ADAM OTHER."""

VARIABLES: dict[str, tuple[str, str | None]] = {
    # Identifiers and DM/ADSL (ADaMIG 1.3 section 3.2)
    "STUDYID": ("Study Identifier", "DM.STUDYID"),
    "USUBJID": ("Unique Subject Identifier", "DM.USUBJID"),
    "SUBJID": ("Subject Identifier for the Study", "DM.SUBJID"),
    "SITEID": ("Study Site Identifier", "DM.SITEID"),
    "AGE": ("Age", "DM.AGE"),
    "SEX": ("Sex", "DM.SEX"),
    "DISEASE": ("Disease Under Study", "DM.DISEASE"),
    "ARMCD": ("Planned Arm Code", "DM.ARMCD"),
    "TRT01P": ("Planned Treatment for Period 01", None),
    "TRT01A": ("Actual Treatment for Period 01", None),
    "TRT01AN": ("Actual Treatment for Period 01 (N)", None),
    "TRTDOSE": ("Infused Dose (cells/kg)", None),
    "TRTSDT": ("Date of First Exposure to Treatment", None),
    "TRTSDTM": ("Datetime of First Exposure to Treatment", None),
    "ENRLFL": ("Enrolled Population Flag", None),
    "SAFFL": ("Safety Population Flag", None),
    "DLTEVLFL": ("DLT-Evaluable Population Flag", None),
    "DLTFL": ("Dose-Limiting Toxicity Flag", None),
    "EFFFL": ("Efficacy Population Flag", None),
    "ITTFL": ("Intent-To-Treat Population Flag", None),
    "BBLAST": ("Baseline Marrow Blasts (%)", None),
    "BCD7BLST": ("Baseline CD7+ Blasts (%)", None),
    "BWEIGHT": ("Baseline Weight (kg)", None),
    "EMDFL": ("Extramedullary Disease at Baseline Flag", None),
    "DTHFL": ("Subject Death Flag", None),
    "DTHDT": ("Date of Death", None),
    "LSTALVDT": ("Date Last Known Alive", None),
    "HSCTFL": ("Allogeneic HSCT After Infusion Flag", None),
    "HSCTDT": ("Date of Allogeneic HSCT", None),
    "RFICDT": ("Date of Informed Consent", None),
    "EOSSTT": ("End of Study Status", None),
    "TOCIFL": ("Tocilizumab Given Flag", None),
    "TOCISTDY": ("Study Day of First Tocilizumab", None),
    "CORTFL": ("Corticosteroid Given Flag", None),
    "CORTSTDY": ("Study Day of First Corticosteroid", None),
    "EICAHTGR": ("Early ICAHT Grade", None),
    "LICAHTGR": ("Late ICAHT Grade", None),
    "RLCD7PCT": ("CD7+ Blasts at Relapse (%)", None),
    "CD7NRLFL": ("CD7-Negative Relapse Flag", None),
    "DCSREAS": ("Reason for Discontinuation from Study", None),
    "DCSREASP": ("Reason Spec for Discont from Study", None),
    "SCRFCRIT": ("Screen Failure Criteria Not Met", None),
    "PRLINES": ("Number of Prior Lines of Therapy", None),
    "PRHSCTFL": ("Prior Allogeneic HSCT Flag", None),
    "DLTTERM": ("DLT Event(s) and Judged Grade", None),
    "DLTDY": ("Study Day DLT Rule First Met", None),
    "DLTRULE": ("DLT Rule(s) Met", None),
    "MRDSTAT": ("MRD Status in Remission", None),
    # ADAE (ADaM OCCDS 1.1)
    "AETERM": ("Reported Term for the Adverse Event", "AE.AETERM"),
    "AEDECOD": ("Dictionary-Derived Term", "AE.AEDECOD"),
    "AETOXGR": ("Standard Toxicity Grade", "AE.AETOXGR"),
    "AETOXSCL": ("Toxicity Grading Scale", "AE.AETOXSCL"),
    "AESTDTC": ("Start Date/Time of Adverse Event", "AE.AESTDTC"),
    "AEENDTC": ("End Date/Time of Adverse Event", "AE.AEENDTC"),
    "AESER": ("Serious Event", "AE.AESER"),
    "AEREL": ("Causality", "AE.AEREL"),
    "AESEQ": ("Sequence Number", "AE.AESEQ"),
    "AEOUT": ("Outcome of Adverse Event", "AE.AEOUT"),
    "ACAT": ("Analysis Category", None),
    "ATOXGRN": ("Analysis Toxicity Grade (N)", None),
    "ASTDT": ("Analysis Start Date", None),
    "AENDT": ("Analysis End Date", None),
    "ASTDY": ("Analysis Start Relative Day", None),
    "AENDY": ("Analysis End Relative Day", None),
    "ADURN": ("Analysis Duration (N) (days)", None),
    "TRTEMFL": ("Treatment Emergent Analysis Flag", None),
    "AMAXGRFL": ("Maximum Grade Record Flag", None),
    # BDS (ADaMIG 1.3 section 3.3)
    "PARAMCD": ("Parameter Code", None),
    "PARAM": ("Parameter", None),
    "PARCAT1": ("Parameter Category 1", None),
    "AVAL": ("Analysis Value", None),
    "AVALC": ("Analysis Value (C)", None),
    "AVALU": ("Analysis Value Unit", None),
    "ADT": ("Analysis Date", None),
    "ADY": ("Analysis Relative Day", None),
    "ABLFL": ("Baseline Record Flag", None),
    "BASE": ("Baseline Value", None),
    "BASEC": ("Baseline Value (C)", None),
    "CHG": ("Change from Baseline", None),
    "R2BASE": ("Ratio to Baseline", None),
    "ANRLO": ("Analysis Normal Range Lower Limit", None),
    "ANRHI": ("Analysis Normal Range Upper Limit", None),
    "ATOXDSC": ("Analysis Toxicity Description", None),
    "ATOXRSN": ("Analysis Toxicity Grade Reason", None),
    "RSEVAL": ("Evaluator", "RS.RSEVAL"),
    # ADTTE (ADaM BDS for Time-to-Event 1.0)
    "STARTDT": ("Time-to-Event Origin Date for Subject", None),
    "CNSR": ("Censor", None),
    "EVNTTYPE": ("Event Type (0 Censor, 1 Event, 2 Comp.)", None),
    "EVNTDESC": ("Event or Censoring Description", None),
    "HSCTRULE": ("HSCT Handling Rule", None),
    "ANALYTE": ("Analyte", None),
    "LASTQDY": ("Last Quantifiable Sample Day", None),
    # ADPC / ADPP (ADaMIG 1.3; ADNCA)
    "PCTESTCD": ("Pharmacokinetic Test Short Name", "PC.PCTESTCD"),
    "PCSTRESN": ("Numeric Result/Finding in Std Units", "PC.PCSTRESN"),
    "PCSTRESU": ("Standard Units", "PC.PCSTRESU"),
    "PCORRES": ("Result or Finding in Original Units", "PC.PCORRES"),
    "PCLLOQ": ("Lower Limit of Quantitation", "PC.PCLLOQ"),
    "PCSPEC": ("Specimen Material Type", "PC.PCSPEC"),
    "PCDTC": ("Date/Time of Specimen Collection", "PC.PCDTC"),
    "PCSEQ": ("Sequence Number", "PC.PCSEQ"),
    "TIME": ("Time from First Infusion (days)", None),
    "BLQFL": ("Below Lower Limit of Quantitation Flag", None),
    "LLOQ": ("Lower Limit of Quantitation", None),
    "PPTESTCD": ("Parameter Short Name", None),
    "REASON": ("Reason Parameter Not Computed", None),
    "METHOD": ("Computation Method", None),
    "NSAMP": ("Number of Samples Used", None),
    # ADLB (from LB)
    "LBCAT": ("Category for Lab Test", "LB.LBCAT"),
    "LBTESTCD": ("Lab Test or Examination Short Name", "LB.LBTESTCD"),
    "LBTEST": ("Lab Test or Examination Name", "LB.LBTEST"),
    "LBSPEC": ("Specimen Type", "LB.LBSPEC"),
    "LBORRES": ("Result or Finding in Original Units", "LB.LBORRES"),
    "LBORRESU": ("Original Units", "LB.LBORRESU"),
    "LBSTRESN": ("Numeric Result/Finding in Std Units", "LB.LBSTRESN"),
    "LBSTRESU": ("Standard Units", "LB.LBSTRESU"),
    "LBORNRLO": ("Reference Range Lower Limit in Orig Unit", "LB.LBORNRLO"),
    "LBORNRHI": ("Reference Range Upper Limit in Orig Unit", "LB.LBORNRHI"),
    "LBSTNRLO": ("Reference Range Lower Limit-Std Units", "LB.LBSTNRLO"),
    "LBSTNRHI": ("Reference Range Upper Limit-Std Units", "LB.LBSTNRHI"),
    "LBDTC": ("Date/Time of Specimen Collection", "LB.LBDTC"),
    "LBMETHOD": ("Method of Test or Examination", "LB.LBMETHOD"),
    "LBSEQ": ("Sequence Number", "LB.LBSEQ"),
    # ADIS (from IS)
    "ISTESTCD": ("Immunogenicity Test Short Name", "IS.ISTESTCD"),
    "ISORRES": ("Result or Finding in Original Units", "IS.ISORRES"),
    "ISSTRESC": ("Character Result/Finding in Std Format", "IS.ISSTRESC"),
    "ISSTRESN": ("Numeric Result/Finding in Std Units", "IS.ISSTRESN"),
    "ISDTC": ("Date/Time of Collection", "IS.ISDTC"),
    "ISSEQ": ("Sequence Number", "IS.ISSEQ"),
    "TEPOSFL": ("Treatment-Emergent Positive Flag", None),
    # ADEX (celltrial.derive.adex: planned against given dose per split fraction)
    "EXSEQ": ("Sequence Number", "EX.EXSEQ"),
    "EXTRT": ("Name of Treatment", "EX.EXTRT"),
    "EXFRACN": ("Split Infusion Fraction Number", "SUPPEX.EXFRACN"),
    "EXDOSTOT": ("CAR+ Cells Infused in This Fraction", None),
    "EXVOL": ("Infused Volume (mL)", "SUPPEX.EXVOL"),
    "EXBAGN": ("Number of Bags", "SUPPEX.EXBAGN"),
    "FRACPLN": ("Planned Share of the Dose", None),
    "PLANDY": ("Planned Study Day of the Fraction", None),
    "PLDOSE": ("Planned Dose (cells/kg)", None),
    "ADOSE": ("Analysis Dose (cells/kg)", None),
    "DOSERAT": ("Ratio of Given to Planned Dose", None),
    "OUTTOLFL": ("Dose Outside Protocol Tolerance Flag", None),
    "FRSTAT": ("Fraction Status", None),
    "HOLDRL": ("Split-Infusion Hold Rule Applied", None),
    "HOLDRSN": ("Reason the Fraction Was Withheld", None),
    # ADTOX (ICAHT, Rejeski et al. Blood 2023)
    "APLFL": ("Aplasia Flag", None),
    "DAYS05": ("Days with ANC < 0.5 x10^9/L", None),
    "DAYS01": ("Days with ANC < 0.1 x10^9/L", None),
    "DAYSASS": ("Days Assessed", None),
    "ONSETDY": ("Onset Relative Day", None),
    "RECOVDY": ("Recovery Relative Day", None),
    "NADIR": ("Nadir Value", None),
    "THRESH": ("Threshold Value", None),
    "THRSRC": ("Threshold Source", None),
    "CENSDY": ("Censoring Relative Day", None),
    "CENSEVT": ("Censoring Event", None),
}
"""Variable -> (label <= 40 characters, SDTM predecessor ``DOMAIN.VARIABLE`` or None when the
variable is derived); labels from ADaMIG 1.3 / SDTMIG 3.4 where the variable is standard."""

SDTM_DOMAINS = ("DM", "AE", "LB", "PC", "IS", "RS")
"""SDTM domains whose variables the analysis datasets carry over unchanged (predecessors)."""


def declared(var: str) -> tuple[str, str | None] | None:
    """(label, predecessor) of ``var``: from :data:`VARIABLES`, else, for a variable of an
    SDTM domain the analysis datasets copy (``AE``, ``LB``, ``PC``, ``IS``, ``RS`` prefix),
    its SDTMIG 3.4 label with that domain's variable as predecessor; None when undeclared."""
    if var in VARIABLES:
        return VARIABLES[var]
    from celltrial.store.sdtm.spec import dataset_spec

    for domain in SDTM_DOMAINS:
        if var.startswith(domain) or domain == "DM":
            names = {v.name: v for v in dataset_spec(domain).variables}
            if var in names:
                return names[var].label[:40], f"{domain}.{var}"
    return None


ALIASES: dict[str, str] = {"dose_level": "TRT01AN", "dose_cells_per_kg": "TRTDOSE",
                           "baseline_cd7_blast_pct": "BCD7BLST", "disease": "DISEASE"}
"""Lower-case convenience columns of ADPC (kinetics model input) -> the declared variable they
repeat; left out of the export once checked equal."""


def _label(var: str) -> str:
    return (declared(var) or (var, None))[0]


def _missing(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _kind(name: str, column: pd.Series) -> str:
    """``date``, ``datetime``, ``integer``, ``double`` or ``string`` (ADaMIG 1.3 section 3)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return "datetime" if name.endswith("DTM") else "date"
    values = [v for v in column.tolist() if not _missing(v)]
    if pd.api.types.is_bool_dtype(column):
        return "string"
    if pd.api.types.is_integer_dtype(column):
        return "integer"
    if pd.api.types.is_numeric_dtype(column):
        return "double"
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "double"
    return "string"


def adam_frame(name: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The export form of one analysis dataset: upper-case declared variables (aliases
    dropped), and each variable's kind. StoreError on an undeclared or non-SAS name."""
    upper = name.upper()
    if upper not in DATASETS:
        raise StoreError(f"Invalid `dataset`: got `{name!r}`, must be one of "
                         f"{', '.join(DATASETS)}")
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        if column in ALIASES:
            target = ALIASES[column]
            same = frame[column].astype(object).where(frame[column].notna(), None).equals(
                frame[target].astype(object).where(frame[target].notna(), None)) \
                if target in frame.columns else False
            if not same:
                raise StoreError(f"{upper}: Invalid `{column}`: got values differing from "
                                 f"`{target}`, must repeat it to be left out of the export")
            continue
        var = str(column).upper()
        if not SAS_NAME.match(var):
            raise StoreError(f"{upper}: Invalid variable `{column}`: got `{var!r}`, must be a "
                             "SAS name of at most 8 characters (letters, digits, _)")
        if declared(var) is None:
            raise StoreError(f"{upper}: Invalid variable `{var}`: got an undeclared variable, "
                             "must have a label in celltrial.derive.adam_export.VARIABLES "
                             "or be an SDTMIG variable of its domain")
        out[var] = frame[column]
    kinds = {var: _kind(var, out[var]) for var in out.columns}
    return out.reset_index(drop=True), kinds


def _text_column(upper: str, var: str, column: pd.Series) -> pd.Series:
    text = column.astype(object).map(lambda v: "" if _missing(v) else str(v))
    too_long = text.map(lambda v: len(v.encode("utf-8")) > MAX_TEXT)
    if too_long.any():
        row = int(too_long.to_numpy().argmax()) + 1
        raise StoreError(f"{upper} row {row}, column {var}: Invalid `{var}`: got "
                         f"`{text.iloc[row - 1]!r}`, must be at most {MAX_TEXT} bytes for XPT v5")
    return text


def write_adam_xpt(name: str, frame: pd.DataFrame, file: Path) -> None:
    """One analysis dataset as an XPT v5 file: ``*DT`` as SAS dates (DATE9.), ``*DTM`` as SAS
    datetimes (DATETIME20.), text blank when missing."""
    import pyreadstat

    upper = name.upper()
    data, kinds = adam_frame(name, frame)
    formats = {}
    for var, kind in kinds.items():
        if kind == "date":
            data[var] = data[var].map(lambda v: None if _missing(v) else v.date())
            formats[var] = "DATE9."
        elif kind == "datetime":
            formats[var] = "DATETIME20."
        elif kind == "string":
            data[var] = _text_column(upper, var, data[var])
        else:
            data[var] = pd.to_numeric(data[var], errors="raise").astype(float)
    pyreadstat.write_xport(data, str(file), file_label=DATASETS[upper][0],
                           column_labels=[_label(v) for v in data.columns],
                           table_name=upper, file_format_version=5, variable_format=formats)


def _cell(value: Any, kind: str) -> Any:
    if _missing(value):
        return None
    if kind == "integer":
        return int(value)
    if kind == "double":
        return float(value)
    if kind == "date":
        return pd.Timestamp(value).date().isoformat()
    if kind == "datetime":
        return pd.Timestamp(value).isoformat(timespec="seconds")
    return str(value)


def adam_dataset_json(study_id: str, name: str, frame: pd.DataFrame) -> dict[str, Any]:
    """The Dataset-JSON v1.1 document of one analysis dataset."""
    upper = name.upper()
    data, kinds = adam_frame(name, frame)
    keys = DATASETS[upper][3]
    columns = []
    for var, kind in kinds.items():
        column: dict[str, Any] = {"itemOID": f"IT.{upper}.{var}", "name": var,
                                  "label": _label(var), "dataType": kind}
        if kind in ("date", "datetime"):
            column["targetDataType"] = "integer"
            column["displayFormat"] = "DATE9." if kind == "date" else "DATETIME20."
        if kind == "string":
            column["length"] = max([len(str(v)) for v in data[var] if not _missing(v)] + [1])
        if var in keys:
            column["keySequence"] = keys.index(var) + 1
        columns.append(column)
    rows = [[_cell(v, kinds[var]) for v, var in zip(row, data.columns, strict=True)]
            for row in data.itertuples(index=False, name=None)]
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {
        "datasetJSONCreationDateTime": stamp, "datasetJSONVersion": "1.1.0",
        "fileOID": f"celltrial/{study_id}/{upper}", "originator": "celltrial",
        "sourceSystem": {"name": "celltrial", "version": __version__},
        "studyOID": study_id,
        "metaDataVersionOID": f"MDV.{study_id}.ADaMIG.{ADAMIG_VERSION}",
        "itemGroupOID": f"IG.{upper}", "records": len(rows), "name": upper,
        "label": DATASETS[upper][0], "columns": columns, "rows": rows,
    }


def _item_type(var: str, kind: str, column: pd.Series) -> dict[str, Any]:
    """Define-XML 2.1 DataType/Length/SignificantDigits of one variable, read from its values
    as the SDTM define.xml does (ISO 8601 ``*DTC`` text: ``date``/``datetime``); a SAS date or
    datetime is ``integer`` with its ``def:DisplayFormat``."""
    from celltrial.store.sdtm.define import data_type

    if kind in ("date", "datetime"):
        return {"DataType": "integer", "Length": 8,
                "def_DisplayFormat": "DATE9." if kind == "date" else "DATETIME20."}
    values = [v if kind == "string" else float(v) for v in column.tolist() if not _missing(v)]
    if kind == "string":
        values = [str(v) for v in values if str(v).strip()]  # blank text is missing in XPT
    return data_type(var, "Char" if kind == "string" else "Num", values)


# --- define.xml methods and codelists ---------------------------------------------------------

Method = tuple[str | None, str]
"""(key of the derivation in ``celltrial.protocols.derivations.DERIVATIONS`` whose
description opens the method, or None; the rule of the analysis dataset)."""

METHODS: dict[tuple[str, str], Method] = {
    ("ADSL", "ENRLFL"): (None, "Y when the subject is in DM and not a screen failure (DS "
                               "DSDECOD SCREEN FAILURE), else N."),
    ("ADSL", "SAFFL"): (None, "Safety set = infused: Y when at least one CAR-T fraction was "
                              "given (EX), else N."),
    ("ADSL", "ITTFL"): (None, "Intention-to-treat (ICH E9): Y when enrolled (ENRLFL Y) and "
                              "assigned to one of the protocol's dose levels (ARMCD), infused "
                              "or not, else N."),
    ("ADSL", "DLTEVLFL"): ("dlt_rate", "DLT-evaluable: Y when infused and either had a DLT or "
                                       "was followed through the whole DLT window (last known "
                                       "alive >= first infusion + window, or died after it) "
                                       "without being censored inside it by an event the "
                                       "protocol's dlt.censored_by lists, else N."),
    ("ADSL", "DLTFL"): ("dlt_rate", "Y when a treatment-emergent event met one of the "
                                    "protocol's DLT rules within the DLT window (AEs, blood "
                                    "count and daily CRS/ICANS grade courses), N when "
                                    "infused without one, null when not infused."),
    ("ADSL", "EFFFL"): (None, "Efficacy-evaluable: Y when infused and with at least one "
                              "post-infusion overall response assessment (RS OVRLRESP, not "
                              "NE), or died before the first one (a failure), else N."),
    ("ADTTE", "AVAL"): (None, "AVAL = ADT - STARTDT in days; STARTDT the origin of the "
                              "parameter (value-level methods by PARAMCD), ADT the date of the "
                              "event or of the censoring."),
    ("ADTTE", "CNSR"): (None, "0 = event, 1 = censored; the event and censoring rules of each "
                              "PARAMCD are its value-level methods."),
    ("ADRS", "AVALC"): (None, "The RS RSSTRESC of the assessment as a response category of "
                              "CR > CRh > CRi > MLFS > PR > SD > NR > PD > RELAPSE > NE (ELN "
                              "2022, BBMT 2010, Lugano 2014); BOR derived (value-level)."),
    ("ADPC", "AVAL"): (None, "PCSTRESN of the sample, missing when BLQ (BLQFL Y: result "
                             "missing, reported <LLOQ or below PCLLOQ)."),
    ("ADPC", "TIME"): (None, "Days from the first infusion, to the minute when the sample and "
                             "the first infusion carry a clock time, else whole days."),
    ("ADPP", "AVAL"): (None, "Non-compartmental analysis (celltrial.stats.nca, PKNCA "
                             "definitions, linear-up/log-down) of the subject's post-infusion "
                             "blood samples of one analyte (ADPC), time 0 = first infusion; "
                             "missing with REASON when it cannot be computed."),
}
"""(dataset, variable) -> method of the key derived variables of the ADaM datasets; the rules
of celltrial.derive.adsl/adtte/adrs/adpc (docs/derive.md)."""

_TRANSPLANT = (" Allogeneic HSCT (HSCTRULE): CENSOR AT HSCT censors at the HSCT date when it "
               "comes before the event; IGNORE HSCT does not. The protocol's "
               "options.censor_at_transplant is the plain PARAMCD, the other rule <PARAMCD>SENS.")
_LOSS = ("Origin the first infusion, post-infusion blood samples before an allogeneic HSCT and "
         "up to death. Event (CNSR 0): the first of the confirming BLQ samples after the last "
         "quantifiable one; censored (CNSR 1) at the last quantifiable sample, EVNTTYPE 2 death "
         "or 3 HSCT before a loss was seen, 0 still detectable at the last sample.")

PARAMETER_METHODS: dict[str, dict[str, Method]] = {
    "ADTTE": {
        "OS": ("os", "Origin the first infusion (ADSL TRTSDT). Event (CNSR 0): death from any "
                     "cause; censored (CNSR 1) at the last date known alive."),
        "PFS": ("pfs", "Origin the first infusion. Event: the first RELAPSE or PD response "
                       "(overall, marrow or extramedullary) or death; censored at the last "
                       "response assessment (day 0 if none)." + _TRANSPLANT),
        "EFS": ("efs", "Origin the first infusion. Event: no CR/CRh/CRi by the landmark (an "
                       "event at day 0, ELN 2022), relapse after remission, or death; censored "
                       "at day 0 if alive and never assessed, else at the last assessment."
                + _TRANSPLANT),
        "DOR": ("dor", "Responders (the protocol's ORR categories). Origin the first response. "
                       "Event: relapse/progression or death; censored at the last response "
                       "assessment." + _TRANSPLANT),
        "CIR": ("cir", "Subjects in remission (CR/CRh/CRi). Origin the first remission. Event "
                       "EVNTTYPE 1 relapse; death in remission EVNTTYPE 2, competing (a "
                       "censoring when the protocol's options.death_in_remission_competing is "
                       "false); censored at the last response assessment." + _TRANSPLANT),
        "LOSS_QPCR": ("ck_persistence_qpcr", _LOSS),
        "LOSS_FLOW": ("ck_persistence_flow", _LOSS),
    },
    "ADRS": {
        "BOR": ("best_response", "The best OVRLRESP on or after day 1 up to the time frame, "
                                 "in the order of AVALC; a relapse after a remission does not "
                                 "lower it."),
    },
    "ADPC": {
        "CARTQPCR_QPCR": ("ck_expansion_qpcr", "AVAL = PCSTRESN (copies/ug gDNA)."),
        "CARTABS_FLOW": ("ck_expansion_flow", "AVAL = PCSTRESN (CAR+ cells/uL)."),
        "CARTPCT_FLOW": ("ck_expansion_flow", "AVAL = PCSTRESN (% of CD3+ T cells)."),
    },
    "ADPP": {
        "CMAX_QPCR": ("ck_cmax_qpcr", ""), "CMAX_FLOW": ("ck_cmax_flow", ""),
        "TMAX_QPCR": ("ck_tmax_qpcr", ""), "TMAX_FLOW": ("ck_tmax_flow", ""),
        "AUC28_QPCR": ("ck_auc_0_28d_qpcr", ""), "AUC28_FLOW": ("ck_auc_0_28d_flow", ""),
    },
}
"""Dataset -> parameter key (:func:`parameter_key`) -> method of AVAL (and CNSR, AVALC) of
the rows of that parameter; ADPP parameters without a derivation are described by their NCA
label (``celltrial.derive.adpc.NCA_PARAMETERS``)."""

VALUE_LEVEL: dict[str, tuple[str, ...]] = {"ADTTE": ("AVAL", "CNSR"), "ADRS": ("AVALC",),
                                           "ADPC": ("AVAL",), "ADPP": ("AVAL",)}
"""Variables described per PARAMCD (def:ValueListDef with a WhereClauseDef PARAMCD EQ code)."""


def parameter_key(dataset: str, paramcd: str) -> str:
    """The :data:`PARAMETER_METHODS` key of a PARAMCD: ADTTE ``<code>SENS`` as ``<code>``,
    persistence ``LOSS<analyte>`` as ``LOSS_QPCR``/``LOSS_FLOW``; ADPC ``<PCTESTCD>_QPCR``/
    ``_FLOW`` and ADPP ``<PPTESTCD>_QPCR``/``_FLOW`` by the analyte's method (qPCR or flow)."""
    from celltrial.derive.adpc import ANALYTES

    def method(analyte: str) -> str:
        return "QPCR" if analyte == "QPCR" else "FLOW"

    if dataset == "ADTTE":
        if paramcd.startswith("LOSS"):
            return f"LOSS_{method(paramcd[4:])}"
        return paramcd.removesuffix("SENS")
    if dataset == "ADPC":
        return f"{paramcd}_{method(ANALYTES.get(paramcd, paramcd))}"
    if dataset == "ADPP":
        test, _, analyte = paramcd.partition("_")
        return f"{test}_{method(analyte)}"
    return paramcd


def method_text(dataset: str, variable: str, paramcd: str | None = None) -> str | None:
    """The MethodDef description of a variable (``paramcd`` None) or of its rows of one
    parameter: the declared derivation's description, then the dataset's rule; None when
    neither is declared."""
    from celltrial.protocols.derivations import DERIVATIONS

    if paramcd is None:
        declared_method = METHODS.get((dataset, variable))
    else:
        declared_method = PARAMETER_METHODS.get(dataset, {}).get(parameter_key(dataset, paramcd))
        if declared_method is None and dataset == "ADPP":
            from celltrial.derive.adpc import NCA_PARAMETERS

            test = paramcd.partition("_")[0]
            label = next((p.label for p in NCA_PARAMETERS if p.pptestcd == test), None)
            declared_method = None if label is None else (None, f"{label}.")
    if declared_method is None:
        return None
    key, rule = declared_method
    parts = [DERIVATIONS[key].description + "." if key else "", rule]
    if paramcd is not None and dataset in ("ADPC", "ADPP"):
        parts.append(METHODS[(dataset, "AVAL")][1])
    if paramcd is not None and paramcd.endswith("SENS") and dataset == "ADTTE":
        parts.append("Sensitivity: the HSCT rule opposite to the protocol's.")
    return " ".join(p for p in parts if p)


def _flags(upper: str, data: pd.DataFrame) -> list[str]:
    """The flag variables (``*FL``) of a dataset; StoreError when one holds a value other than
    Y or N (ADaMIG 1.3 section 3.1.4: flags are Y/N, or Y/null)."""
    out = []
    for var in data.columns:
        if not var.endswith("FL"):
            continue
        values = {str(v) for v in data[var].tolist() if not _missing(v) and str(v).strip()}
        wrong = sorted(values - {"Y", "N"})
        if wrong:
            raise StoreError(f"{upper}: Invalid `{var}`: got `{wrong[0]!r}`, must be Y or N "
                             "(an ADaM flag)")
        out.append(var)
    return out


def _codes(data: pd.DataFrame, var: str) -> list[str]:
    return sorted({str(v) for v in data[var].tolist() if not _missing(v) and str(v).strip()})


def adam_define_xml(datasets: Mapping[str, pd.DataFrame], study_id: str, *,
                    fmt: Format = "xpt", title: str | None = None) -> bytes:
    """Define-XML 2.1 (ADaMIG 1.3) of the analysis ``datasets`` as :func:`export_adam` writes
    them; ``def:leaf`` points at ``<name>.xpt`` or ``<name>.json``. Key derived variables
    carry a MethodDef (:data:`METHODS`), per PARAMCD where :data:`VALUE_LEVEL` says
    (def:ValueListDef, :data:`PARAMETER_METHODS`); PARAMCD has a codelist per dataset decoded
    by PARAM, ADRS AVALC one of the response categories, ADTTE CNSR 0/1, flags CDISC CT NY."""
    from celltrial.derive.adrs import RESPONSE_ORDER
    from celltrial.store.sdtm import ct
    from celltrial.store.sdtm.define import (
        DEF, ct_codelist, define_skeleton, describe, item_def, method_def, sub, where_clause,
    )

    root, mdv = define_skeleton(study_id, package="ADAM", ig=("ADaMIG", ADAMIG_VERSION),
                                purpose="analysis", title=title)
    standards = sub(mdv, "Standards", DEF)
    sub(standards, "Standard", DEF, OID="STD.ADAMIG", Name="ADaMIG", Type="IG",
        Version=ADAMIG_VERSION, Status="Final")
    sub(standards, "Standard", DEF, OID="STD.CT", Name="CDISC/NCI", Type="CT",
        PublishingSet="SDTM", Version=ct.CT_RELEASE, Status="Final")
    frames = {name.upper(): adam_frame(name, frame) for name, frame in datasets.items()}
    methods: dict[str, tuple[str, str]] = {}  # OID -> (name, description)
    value_items: list[Any] = []
    wheres: dict[str, Any] = {}  # OID -> def:WhereClauseDef, shared by the variables
    value_lists: dict[tuple[str, str], str] = {}
    for upper, (data, kinds) in frames.items():
        if "PARAMCD" not in data.columns:
            continue
        for var in VALUE_LEVEL.get(upper, ()):
            if var not in data.columns or not _codes(data, "PARAMCD"):
                continue
            vl_oid = f"VL.{upper}.{var}"
            value_list = sub(mdv, "ValueListDef", DEF, OID=vl_oid)
            value_lists[(upper, var)] = vl_oid
            for order, code in enumerate(_codes(data, "PARAMCD"), start=1):
                oid: str | None = None
                if own := method_text(upper, var, code):  # one method per parameter's rows
                    oid, methods[f"MT.{upper}.{code}"] = f"MT.{upper}.{code}", (
                        f"{upper} PARAMCD {code}", own)
                elif generic := method_text(upper, var):
                    oid, methods[f"MT.{upper}.{var}"] = f"MT.{upper}.{var}", (
                        f"{upper} {var}", generic)
                ref = sub(value_list, "ItemRef", ItemOID=f"IT.{upper}.{var}.{code}",
                          OrderNumber=order, Mandatory="No", MethodOID=oid)
                where_oid, where = where_clause(upper, "PARAMCD", code)
                sub(ref, "WhereClauseRef", DEF, WhereClauseOID=where_oid)
                wheres.setdefault(where_oid, where)
                rows = data[data["PARAMCD"].astype(str) == code]
                item = item_def(f"IT.{upper}.{var}.{code}", var,
                                _item_type(var, kinds[var], rows[var]),
                                f"{_label(var)} of {code}")
                sub(item, "Origin", DEF, Type="Derived", Source="Sponsor")
                value_items.append(item)
    for where in wheres.values():
        mdv.append(where)
    item_defs: list[Any] = []
    codelists: dict[str, tuple[str, str, list[tuple[str, str | None]]]] = {}
    flags_used: set[str] = set()
    suffix = "xpt" if fmt == "xpt" else "json"
    for upper, (data, kinds) in frames.items():
        label, klass, structure, keys = DATASETS[upper]
        group = sub(mdv, "ItemGroupDef", OID=f"IG.{upper}", Name=upper,
                    Repeating="No" if upper == "ADSL" else "Yes", IsReferenceData="No",
                    SASDatasetName=upper, Purpose="Analysis", def_Structure=structure,
                    def_ArchiveLocationID=f"LF.{upper}", def_StandardOID="STD.ADAMIG")
        describe(group, label)
        flags = _flags(upper, data)
        for order, var in enumerate(data.columns, start=1):
            text = method_text(upper, var)
            if text:
                methods[f"MT.{upper}.{var}"] = (f"{upper} {var}", text)
            sub(group, "ItemRef", ItemOID=f"IT.{upper}.{var}", OrderNumber=order,
                Mandatory="Yes" if var in keys or var in ("STUDYID",) else "No",
                KeySequence=keys.index(var) + 1 if var in keys else None,
                MethodOID=f"MT.{upper}.{var}" if text else None)
            var_label, predecessor = declared(var) or (var, None)
            item = item_def(f"IT.{upper}.{var}", var, _item_type(var, kinds[var], data[var]),
                            var_label)
            codelist = None
            if not _codes(data, var):  # no value to list (an empty dataset): no codelist
                pass
            elif var == "PARAMCD":
                decodes = {}
                if "PARAM" in data.columns:
                    for code, param in zip(data["PARAMCD"], data["PARAM"], strict=True):
                        if not _missing(param):
                            decodes.setdefault(str(code), str(param))
                codelist = f"CL.{upper}.PARAMCD"
                codelists[codelist] = (f"{upper} Parameter Code", "text", [
                    (c, decodes.get(c)) for c in _codes(data, var)])
            elif (upper, var) == ("ADRS", "AVALC"):
                rank = {c: i for i, c in enumerate(RESPONSE_ORDER)}
                codelist = "CL.ADRS.AVALC"
                codelists[codelist] = ("ADRS Response Category", "text", [
                    (c, None) for c in sorted(_codes(data, var),
                                              key=lambda c: (rank.get(c, len(rank)), c))])
            elif var == "CNSR" and set(_codes(data, var)) <= {"0", "1"}:
                codelist = "CL.CNSR"
                codelists[codelist] = ("Censor", "integer", [("0", "Event"), ("1", "Censored")])
            elif var in flags:
                codelist = "CL.NY"
                flags_used.update(_codes(data, var))
            if codelist:
                sub(item, "CodeListRef", CodeListOID=codelist)
            if predecessor:
                origin = sub(item, "Origin", DEF, Type="Predecessor")
                describe(origin, predecessor)
            else:
                sub(item, "Origin", DEF, Type="Derived", Source="Sponsor")
            if (upper, var) in value_lists:
                sub(item, "ValueListRef", DEF, ValueListOID=value_lists[(upper, var)])
            item_defs.append(item)
        sub(group, "Class", DEF, Name=klass)
        leaf = sub(group, "leaf", DEF, ID=f"LF.{upper}",
                   xlink_href=f"{upper.lower()}.{suffix}")
        sub(leaf, "title", DEF).text = f"{upper.lower()}.{suffix}"
    for item in item_defs + value_items:
        mdv.append(item)
    for oid, (name, data_kind, terms) in codelists.items():
        node = sub(mdv, "CodeList", OID=oid, Name=name, DataType=data_kind)
        decoded = any(d is not None for _, d in terms)
        for code, decode in terms:
            if decoded:
                translated = sub(sub(sub(node, "CodeListItem", CodedValue=code), "Decode"),
                                 "TranslatedText")
                translated.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
                translated.text = decode if decode is not None else code
            else:
                sub(node, "EnumeratedItem", CodedValue=code)
    if flags_used:
        ct_codelist(mdv, "NY", flags_used)
    for oid, (name, text) in methods.items():
        method_def(mdv, oid, f"Algorithm for {name}", text)
    etree.indent(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def export_adam(datasets: Mapping[str, pd.DataFrame], out_dir: str | Path, *,
                fmt: Format = "xpt", study_id: str | None = None,
                title: str | None = None) -> list[Path]:
    """Write every analysis dataset of :data:`DATASETS` present in ``datasets`` (keys in any
    case) as ``<name>.xpt`` or ``<name>.json``, then ``define.xml`` and ``define.html``
    beside them; returns the files. ``study_id`` defaults to the datasets' STUDYID."""
    from celltrial.store.sdtm.define import define_html

    if fmt not in ("xpt", "dataset-json"):
        raise StoreError(f"Invalid `format`: got `{fmt!r}`, must be xpt or dataset-json")
    chosen = {name: frame for name, frame in datasets.items()
              if name.upper() in DATASETS and frame is not None}
    if not chosen:
        raise StoreError("Invalid `datasets`: got none of "
                         f"{', '.join(DATASETS)}, must hold at least one")
    if study_id is None:
        ids = {str(v) for f in chosen.values() if "STUDYID" in f.columns
               for v in f["STUDYID"].dropna().unique()}
        study_id = next(iter(sorted(ids)), "STUDY")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in chosen.items():
        if fmt == "xpt":
            file = out / f"{name.lower()}.xpt"
            write_adam_xpt(name, frame, file)
        else:
            file = out / f"{name.lower()}.json"
            file.write_text(json.dumps(adam_dataset_json(study_id, name, frame),
                                       ensure_ascii=False), encoding="utf-8")
        written.append(file)
    xml = adam_define_xml(chosen, study_id, fmt=fmt, title=title)
    (out / "define.xml").write_bytes(xml)
    (out / "define.html").write_text(define_html(xml), encoding="utf-8")
    return written + [out / "define.xml", out / "define.html"]

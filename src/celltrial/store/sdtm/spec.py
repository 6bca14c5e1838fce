"""SDTMIG 3.4 metadata of the datasets the store exports, declared once as data.

Each dataset lists its variables in SDTMIG order: name, label (the IG's label, <= 40
characters), SAS type (``Char``/``Num``), core (``Req``/``Exp``/``Perm``, SDTMIG 3.4 section
2.5), the CDISC Controlled Terminology codelist that constrains it (short name, e.g.
``UNIT``), if any, and, for a Char variable, its declared maximum length in bytes
(:data:`MAX_LENGTHS`). The XPT and Dataset-JSON writers, the conformance rules
(:mod:`celltrial.store.sdtm.check`) and docs/data-model.md are read from this table.

Sources: CDISC SDTM Implementation Guide 3.4 (2021), domain specification tables of DM, SC,
EX, AE, LB, VS, RS, TU, TR, PC, IS, PR, CM, DS, TE, TA, TI, TS, TV and section 8.4 (SUPP--
datasets); the custom findings domain XC follows section 2.6 (new domains take the Findings
class structure and a name starting with X, Y or Z).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

SasType = Literal["Char", "Num"]
Core = Literal["Req", "Exp", "Perm"]

SDTMIG_VERSION = "3.4"

XPT_MAX_NAME = 8
XPT_MAX_LABEL = 40
XPT_MAX_TEXT = 200
"""SAS transport (XPORT) version 5 limits the FDA asks for (Study Data Technical Conformance
Guide section 3.3.2): dataset and variable names <= 8 characters, labels <= 40 characters,
character values <= 200 bytes."""

MAX_LENGTHS: tuple[tuple[str, int, str], ...] = (
    (r"IETEST|TSVAL", 200, "SDTMIG 3.4 section 7.5 (IETEST) and 7.6 (TSVAL, longer text in "
     "TSVAL1-n)"),
    (r"..TESTCD|QNAM|TSPARMCD|IDVAR|ETCD", 8,
     "SDTMIG 3.4 4.5.3.1 (--TESTCD), 8.4.1 (QNAM), 7.6 (TSPARMCD), 7.2 (ETCD); IDVAR names "
     "a variable"),
    (r"..TEST|QLABEL|TSPARM", 40, "SDTMIG 3.4 4.5.3.1 (--TEST), 8.4.1 (QLABEL), 7.6 (TSPARM)"),
    (r"ARMCD|ACTARMCD", 20, "SDTMIG 3.4 section 5.2 DM and 7.2.1 TA: ARMCD at most 20"),
    (r"DOMAIN|RDOMAIN", 2, "SDTMIG 3.4 section 2.2: two-character domain codes"),
)
"""Declared maximum length (bytes) of Char variables by name (full match, first row that
matches wins), with its source; every other Char variable has :data:`XPT_MAX_TEXT`."""


def max_length(name: str) -> int:
    """The declared maximum length of the Char variable ``name`` (:data:`MAX_LENGTHS`)."""
    for pattern, length, _ in MAX_LENGTHS:
        if re.fullmatch(pattern, name):
            return length
    return XPT_MAX_TEXT


@dataclass(frozen=True)
class SdtmVariable:
    """One variable of an SDTM dataset."""

    name: str
    label: str
    type: SasType
    core: Core
    codelist: str | None = None
    length: int | None = None
    """Declared maximum length in bytes of a Char variable (None for Num)."""


@dataclass(frozen=True)
class SdtmDataset:
    """One SDTM dataset: name, label, class, key variables and variables in IG order."""

    name: str
    label: str
    klass: str
    key: tuple[str, ...]
    variables: tuple[SdtmVariable, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Variable names in IG order."""
        return tuple(v.name for v in self.variables)

    def variable(self, name: str) -> SdtmVariable:
        """The variable called ``name`` (KeyError when none)."""
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)


def _v(name: str, label: str, kind: SasType = "Char", core: Core = "Perm",
       codelist: str | None = None) -> SdtmVariable:
    return SdtmVariable(name, label, kind, core, codelist,
                        max_length(name) if kind == "Char" else None)


def _ids(domain: str) -> tuple[SdtmVariable, ...]:
    return (_v("STUDYID", "Study Identifier", core="Req"),
            _v("DOMAIN", "Domain Abbreviation", core="Req", codelist="DOMAIN"),
            _v("USUBJID", "Unique Subject Identifier", core="Req"),
            _v(f"{domain}SEQ", "Sequence Number", "Num", "Req"))


def _ds(name: str, label: str, klass: str, rest: list[SdtmVariable],
        key: tuple[str, ...] | None = None) -> SdtmDataset:
    head = _ids(name) if name != "DM" else _ids("DM")[:3]
    return SdtmDataset(name, label, klass, key or ("STUDYID", "USUBJID", f"{name}SEQ"),
                       head + tuple(rest))


def _finding_results(d: str, *, orres: bool = True, stresn: bool = True) -> list[SdtmVariable]:
    out = []
    if orres:
        out += [_v(f"{d}ORRES", "Result or Finding in Original Units", core="Exp"),
                _v(f"{d}ORRESU", "Original Units", core="Exp", codelist="UNIT")]
    out.append(_v(f"{d}STRESC", "Character Result/Finding in Std Format", core="Exp"))
    if stresn:
        out += [_v(f"{d}STRESN", "Numeric Result/Finding in Standard Units", "Num", "Exp"),
                _v(f"{d}STRESU", "Standard Units", core="Exp", codelist="UNIT")]
    return out


SDTM: dict[str, SdtmDataset] = {d.name: d for d in (
    _ds("DM", "Demographics", "Special-Purpose", [
        _v("SUBJID", "Subject Identifier for the Study", core="Req"),
        _v("RFSTDTC", "Subject Reference Start Date/Time", core="Exp"),
        _v("RFENDTC", "Subject Reference End Date/Time", core="Exp"),
        _v("RFXSTDTC", "Date/Time of First Study Treatment", core="Exp"),
        _v("RFXENDTC", "Date/Time of Last Study Treatment", core="Exp"),
        _v("RFICDTC", "Date/Time of Informed Consent", core="Exp"),
        _v("RFPENDTC", "Date/Time of End of Participation", core="Exp"),
        _v("DTHDTC", "Date/Time of Death", core="Exp"),
        _v("DTHFL", "Subject Death Flag", core="Exp", codelist="NY"),
        _v("SITEID", "Study Site Identifier", core="Req"),
        _v("AGE", "Age", "Num", "Exp"),
        _v("AGEU", "Age Units", core="Exp", codelist="AGEU"),
        _v("SEX", "Sex", core="Req", codelist="SEX"),
        _v("ARMCD", "Planned Arm Code", core="Exp"),
        _v("ARM", "Description of Planned Arm", core="Exp"),
        _v("ACTARMCD", "Actual Arm Code", core="Exp"),
        _v("ACTARM", "Description of Actual Arm", core="Exp"),
        _v("ARMNRS", "Reason Arm and/or Actual Arm is Null", core="Exp", codelist="ARMNULRS"),
        _v("COUNTRY", "Country", core="Req"),
    ], key=("STUDYID", "USUBJID")),
    _ds("SC", "Subject Characteristics", "Findings", [
        _v("SCTESTCD", "Subject Characteristic Short Name", core="Req", codelist="SCTESTCD"),
        _v("SCTEST", "Subject Characteristic", core="Req", codelist="SCTEST"),
        _v("SCORRES", "Result or Finding in Original Units", core="Exp"),
        _v("SCORRESU", "Original Units", codelist="UNIT"),
        _v("SCSTRESC", "Character Result/Finding in Std Format", core="Exp"),
        _v("SCDTC", "Date/Time of Collection"),
    ]),
    _ds("EX", "Exposure", "Interventions", [
        _v("EXTRT", "Name of Treatment", core="Req"),
        _v("EXDOSE", "Dose", "Num", "Exp"),
        _v("EXDOSU", "Dose Units", core="Exp", codelist="UNIT"),
        _v("EXDOSFRM", "Dose Form", core="Exp", codelist="FRM"),
        _v("EXROUTE", "Route of Administration", codelist="ROUTE"),
        _v("EXADJ", "Reason for Dose Adjustment"),
        _v("EXSTDTC", "Start Date/Time of Treatment", core="Exp"),
    ]),
    _ds("AE", "Adverse Events", "Events", [
        _v("AETERM", "Reported Term for the Adverse Event", core="Req"),
        _v("AEDECOD", "Dictionary-Derived Term", core="Req"),
        _v("AESER", "Serious Event", core="Exp", codelist="NY"),
        _v("AEREL", "Causality", core="Exp"),
        _v("AEOUT", "Outcome of Adverse Event", codelist="OUT"),
        _v("AETOXGR", "Standard Toxicity Grade"),
        _v("AESTDTC", "Start Date/Time of Adverse Event", core="Exp"),
        _v("AEENDTC", "End Date/Time of Adverse Event", core="Exp"),
    ]),
    _ds("LB", "Laboratory Test Results", "Findings", [
        _v("LBTESTCD", "Lab Test or Examination Short Name", core="Req", codelist="LBTESTCD"),
        _v("LBTEST", "Lab Test or Examination Name", core="Req", codelist="LBTEST"),
        _v("LBCAT", "Category for Lab Test", core="Exp"),
        _v("LBORRES", "Result or Finding in Original Units", core="Exp"),
        _v("LBORRESU", "Original Units", core="Exp", codelist="UNIT"),
        _v("LBORNRLO", "Reference Range Lower Limit in Orig Unit", core="Exp"),
        _v("LBORNRHI", "Reference Range Upper Limit in Orig Unit", core="Exp"),
        *_finding_results("LB", orres=False),
        _v("LBSTNRLO", "Reference Range Lower Limit-Std Units", "Num", "Exp"),
        _v("LBSTNRHI", "Reference Range Upper Limit-Std Units", "Num", "Exp"),
        _v("LBSPEC", "Specimen Type", codelist="SPECTYPE"),
        _v("LBMETHOD", "Method of Test or Examination", codelist="METHOD"),
        _v("LBTOXGR", "Standard Toxicity Grade"),
        _v("LBDTC", "Date/Time of Specimen Collection", core="Exp"),
    ]),
    _ds("VS", "Vital Signs", "Findings", [
        _v("VSTESTCD", "Vital Signs Test Short Name", core="Req", codelist="VSTESTCD"),
        _v("VSTEST", "Vital Signs Test Name", core="Req", codelist="VSTEST"),
        *_finding_results("VS"),
        _v("VSDTC", "Date/Time of Measurements", core="Exp"),
    ]),
    _ds("XC", "CRS/ICANS Observations", "Findings", [
        _v("XCGRPID", "Group ID"),
        _v("XCTESTCD", "CRS/ICANS Test Short Name", core="Req", codelist="XCTESTCD"),
        _v("XCTEST", "CRS/ICANS Test Name", core="Req", codelist="XCTEST"),
        *_finding_results("XC"),
        _v("XCSTAT", "Completion Status", codelist="ND"),
        _v("XCDTC", "Date/Time of Observation", core="Exp"),
    ]),
    _ds("RS", "Disease Response and Clin Classification", "Findings", [
        _v("RSTESTCD", "Assessment Short Name", core="Req", codelist="ONCRTSCD"),
        _v("RSTEST", "Assessment Name", core="Req", codelist="ONCRTS"),
        _v("RSCAT", "Category for Assessment"),
        _v("RSORRES", "Result or Finding in Original Units", core="Exp"),
        _v("RSSTRESC", "Character Result/Finding in Std Format", core="Exp", codelist="ONCRSR"),
        _v("RSEVAL", "Evaluator", codelist="EVAL"),
        _v("RSDRVFL", "Derived Flag", codelist="NY"),
        _v("RSDTC", "Date/Time of Assessment", core="Exp"),
    ]),
    _ds("TU", "Tumor/Lesion Identification", "Findings", [
        _v("TULNKID", "Link ID", core="Exp"),
        _v("TUTESTCD", "Tumor/Lesion ID Short Name", core="Req", codelist="TUTESTCD"),
        _v("TUTEST", "Tumor/Lesion ID Test Name", core="Req", codelist="TUTEST"),
        _v("TUORRES", "Tumor/Lesion ID Result", core="Exp"),
        _v("TUSTRESC", "Tumor/Lesion ID Result Std. Format", core="Exp", codelist="TUIDRS"),
        _v("TULOC", "Location of the Tumor/Lesion", core="Exp"),
        _v("TUDTC", "Date/Time of Tumor/Lesion Identification", core="Exp"),
    ]),
    _ds("TR", "Tumor/Lesion Results", "Findings", [
        _v("TRLNKID", "Link ID", core="Exp"),
        _v("TRTESTCD", "Tumor/Lesion Assessment Short Name", core="Req", codelist="TRTESTCD"),
        _v("TRTEST", "Tumor/Lesion Assessment Test Name", core="Req", codelist="TRTEST"),
        *_finding_results("TR"),
        _v("TRDTC", "Date/Time of Tumor/Lesion Measurement", core="Exp"),
    ]),
    _ds("PC", "Pharmacokinetics Concentrations", "Findings", [
        _v("PCTESTCD", "Pharmacokinetic Test Short Name", core="Req"),
        _v("PCTEST", "Pharmacokinetic Test Name", core="Req"),
        *_finding_results("PC"),
        _v("PCSPEC", "Specimen Material Type", core="Exp", codelist="SPECTYPE"),
        _v("PCLLOQ", "Lower Limit of Quantitation", "Num", "Exp"),
        _v("PCDTC", "Date/Time of Specimen Collection", core="Exp"),
    ]),
    _ds("IS", "Immunogenicity Specimen Assessments", "Findings", [
        _v("ISTESTCD", "Immunogenicity Test/Exam Short Name", core="Req", codelist="ISTESTCD"),
        _v("ISTEST", "Immunogenicity Test or Examination Name", core="Req", codelist="ISTEST"),
        _v("ISORRES", "Result or Finding in Original Units", core="Exp"),
        _v("ISSTRESC", "Character Result/Finding in Std Format", core="Exp"),
        _v("ISDTC", "Date/Time of Collection", core="Exp"),
    ]),
    _ds("PR", "Procedures", "Interventions", [
        _v("PRTRT", "Reported Name of Procedure", core="Req"),
        _v("PRSTDTC", "Start Date/Time of Procedure", core="Exp"),
    ]),
    _ds("CM", "Concomitant/Prior Medications", "Interventions", [
        _v("CMTRT", "Reported Name of Drug, Med, or Therapy", core="Req"),
        _v("CMDECOD", "Standardized Medication Name"),
        _v("CMCAT", "Category for Medication"),
        _v("CMINDC", "Indication"),
        _v("CMCLAS", "Medication Class"),
        _v("CMCLASCD", "Medication Class Code"),
        _v("CMDOSE", "Dose per Administration", "Num"),
        _v("CMDOSU", "Dose Units", codelist="UNIT"),
        _v("CMROUTE", "Route of Administration", codelist="ROUTE"),
        _v("CMSTDTC", "Start Date/Time of Medication"),
        _v("CMENDTC", "End Date/Time of Medication"),
    ]),
    _ds("DS", "Disposition", "Events", [
        _v("DSTERM", "Reported Term for the Disposition Event", core="Req"),
        _v("DSDECOD", "Standardized Disposition Term", core="Req", codelist="NCOMPLT"),
        _v("DSCAT", "Category for Disposition Event", core="Exp", codelist="DSCAT"),
        _v("DSSTDTC", "Start Date/Time of Disposition Event", core="Exp"),
    ]),
)}

SDTM.update({d.name: d for d in (
    SdtmDataset("TE", "Trial Elements", "Trial Design", ("STUDYID", "ETCD"), (
        _v("STUDYID", "Study Identifier", core="Req"),
        _v("DOMAIN", "Domain Abbreviation", core="Req", codelist="DOMAIN"),
        _v("ETCD", "Element Code", core="Req"),
        _v("ELEMENT", "Description of Element", core="Req"),
        _v("TESTRL", "Rule for Start of Element", core="Req"),
        _v("TEENRL", "Rule for End of Element"),
        _v("TEDUR", "Planned Duration of Element"))),
    SdtmDataset("TA", "Trial Arms", "Trial Design", ("STUDYID", "ARMCD", "TAETORD"), (
        _v("STUDYID", "Study Identifier", core="Req"),
        _v("DOMAIN", "Domain Abbreviation", core="Req", codelist="DOMAIN"),
        _v("ARMCD", "Planned Arm Code", core="Req"),
        _v("ARM", "Description of Planned Arm", core="Req"),
        _v("TAETORD", "Planned Order of Element within Arm", "Num", "Req"),
        _v("ETCD", "Element Code", core="Req"),
        _v("ELEMENT", "Description of Element"),
        _v("TABRANCH", "Branch", core="Exp"),
        _v("TATRANS", "Transition Rule", core="Exp"),
        _v("EPOCH", "Epoch", core="Req", codelist="EPOCH"))),
    SdtmDataset("TI", "Trial Inclusion/Exclusion Criteria", "Trial Design",
                ("STUDYID", "IETESTCD"), (
        _v("STUDYID", "Study Identifier", core="Req"),
        _v("DOMAIN", "Domain Abbreviation", core="Req", codelist="DOMAIN"),
        _v("IETESTCD", "Incl/Excl Criterion Short Name", core="Req"),
        _v("IETEST", "Inclusion/Exclusion Criterion", core="Req"),
        _v("IECAT", "Inclusion/Exclusion Category", core="Req", codelist="IECAT"),
        _v("TIVERS", "Protocol Criteria Versions"))),
    SdtmDataset("TS", "Trial Summary", "Trial Design", ("STUDYID", "TSPARMCD", "TSSEQ"), (
        _v("STUDYID", "Study Identifier", core="Req"),
        _v("DOMAIN", "Domain Abbreviation", core="Req", codelist="DOMAIN"),
        _v("TSSEQ", "Sequence Number", "Num", "Req"),
        _v("TSPARMCD", "Trial Summary Parameter Short Name", core="Req", codelist="TSPARMCD"),
        _v("TSPARM", "Trial Summary Parameter", core="Req", codelist="TSPARM"),
        _v("TSVAL", "Parameter Value", core="Exp"),
        _v("TSVALNF", "Parameter Null Flavor"),
        _v("TSVALCD", "Parameter Value Code", core="Exp"),
        _v("TSVCDREF", "Name of the Reference Terminology", core="Exp", codelist="DICTNAM"),
        _v("TSVCDVER", "Version of the Reference Terminology", core="Exp"))),
    SdtmDataset("TV", "Trial Visits", "Trial Design", ("STUDYID", "ARMCD", "VISITNUM"), (
        _v("STUDYID", "Study Identifier", core="Req"),
        _v("DOMAIN", "Domain Abbreviation", core="Req", codelist="DOMAIN"),
        _v("VISITNUM", "Visit Number", "Num", "Req"),
        _v("VISIT", "Visit Name"),
        _v("VISITDY", "Planned Study Day of Visit", "Num"),
        _v("ARMCD", "Planned Arm Code", core="Exp"),
        _v("ARM", "Description of Planned Arm"),
        _v("TVSTRL", "Visit Start Rule", core="Req"),
        _v("TVENRL", "Visit End Rule"))),
)})
"""Trial design datasets (SDTMIG 3.4 section 7), built from the protocol
(:mod:`celltrial.store.sdtm.design`)."""

SUPP_VARIABLES: tuple[SdtmVariable, ...] = (
    _v("STUDYID", "Study Identifier", core="Req"),
    _v("RDOMAIN", "Related Domain Abbreviation", core="Req", codelist="DOMAIN"),
    _v("USUBJID", "Unique Subject Identifier", core="Req"),
    _v("IDVAR", "Identifying Variable", core="Exp"),
    _v("IDVARVAL", "Identifying Variable Value", core="Exp"),
    _v("QNAM", "Qualifier Variable Name", core="Req"),
    _v("QLABEL", "Qualifier Variable Label", core="Req"),
    _v("QVAL", "Data Value", core="Req"),
    _v("QORIG", "Origin", core="Req"),
    _v("QEVAL", "Evaluator", core="Exp"),
)


def supp_dataset(domain: str) -> SdtmDataset:
    """The SUPP-- dataset of ``domain`` (SDTMIG 3.4 section 8.4.1)."""
    return SdtmDataset(f"SUPP{domain}", f"Supplemental Qualifiers for {domain}", "Relationship",
                       ("STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"),
                       SUPP_VARIABLES)


def dataset_spec(name: str) -> SdtmDataset:
    """The spec of ``name`` (a domain or ``SUPP<domain>``); KeyError when unknown."""
    if name.startswith("SUPP") and name[4:] in SDTM:
        return supp_dataset(name[4:])
    return SDTM[name]

"""The SDTM-shaped domains the store keeps, declared once as data (docs/data-model.md).

Each domain is a row: name, label, sequence variable and its variables (name, type, label).
The SQL tables, the validation at the door, the DataFrame/CSV/XPT/Dataset-JSON columns and
their labels are all built from this table; a new variable is a new row here plus a migration.

Variable types:

- ``text``  — character; stored as TEXT; ``None`` when missing.
- ``date``  — ISO 8601 text, ``YYYY-MM-DD`` or ``YYYY-MM-DDThh:mm[:ss]`` (SDTM --DTC); kept as
  text so the precision the site recorded is kept exactly.
- ``int``   — whole numbers (sequence numbers, grades, counts); returned as float like every
  number.
- ``float`` — real numbers (results in standard units, doses).

Labels follow the SDTM IG 3.4 variable labels (<= 40 characters, as SAS XPT v5 allows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

VarType = Literal["text", "date", "int", "float"]


@dataclass(frozen=True)
class Variable:
    """One SDTM variable of a domain."""

    name: str
    type: VarType
    label: str


@dataclass(frozen=True)
class Domain:
    """One SDTM domain: its table, label, key and variables (STUDYID, USUBJID first)."""

    name: str
    label: str
    seq: str | None  # the --SEQ variable; None for DM (one row per subject)
    variables: tuple[Variable, ...]

    @property
    def table(self) -> str:
        """SQL table name (the domain name in lower case)."""
        return self.name.lower()

    @property
    def columns(self) -> tuple[str, ...]:
        """Variable names in SDTM order."""
        return tuple(v.name for v in self.variables)

    @property
    def key(self) -> tuple[str, ...]:
        """The record key within a study: USUBJID (DM) or USUBJID + --SEQ."""
        return ("USUBJID",) if self.seq is None else ("USUBJID", self.seq)

    def variable(self, name: str) -> Variable:
        """The variable called ``name`` (KeyError when the domain has none)."""
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)


_ID = (Variable("STUDYID", "text", "Study Identifier"),
       Variable("USUBJID", "text", "Unique Subject Identifier"))


def _domain(name: str, label: str, seq: str | None,
            rows: list[tuple[str, VarType, str]]) -> Domain:
    return Domain(name, label, seq, _ID + tuple(Variable(*r) for r in rows))


DOMAINS: dict[str, Domain] = {d.name: d for d in (
    _domain("DM", "Demographics", None, [
        ("SUBJID", "text", "Subject Identifier for the Study"),
        ("SITEID", "text", "Study Site Identifier"),
        ("AGE", "float", "Age"),
        ("AGEU", "text", "Age Units"),
        ("SEX", "text", "Sex"),
        ("DISEASE", "text", "Disease (SUPPDM)"),
        ("ARMCD", "text", "Planned Arm Code"),
        ("ARM", "text", "Description of Planned Arm"),
        ("RFICDTC", "date", "Date/Time of Informed Consent"),
        ("RFSTDTC", "date", "Subject Reference Start Date/Time"),
        ("RFPENDTC", "date", "Date/Time of End of Participation"),
        ("DTHDTC", "date", "Date/Time of Death"),
        ("DTHFL", "text", "Subject Death Flag"),
    ]),
    _domain("SC", "Subject Characteristics", "SCSEQ", [
        ("SCSEQ", "int", "Sequence Number"),
        ("SCTESTCD", "text", "Subject Characteristic Short Name"),
        ("SCORRES", "text", "Result or Finding in Original Units"),
        ("SCORRESU", "text", "Original Units"),
        ("SCDTC", "date", "Date/Time of Collection"),
    ]),
    _domain("EX", "Exposure", "EXSEQ", [
        ("EXSEQ", "int", "Sequence Number"),
        ("EXTRT", "text", "Name of Treatment"),
        ("EXFRACN", "int", "Split Infusion Fraction Number"),
        ("EXDOSE", "float", "Dose"),
        ("EXDOSU", "text", "Dose Units"),
        ("EXDOSTOT", "float", "CAR+ Cells in This Fraction"),
        ("EXVOL", "float", "Infused Volume (mL)"),
        ("EXBAGN", "int", "Number of Bags"),
        ("EXSTDTC", "date", "Start Date/Time of Treatment"),
        ("EXADJ", "text", "Reason for Dose Adjustment"),
    ]),
    _domain("AE", "Adverse Events", "AESEQ", [
        ("AESEQ", "int", "Sequence Number"),
        ("AETERM", "text", "Reported Term for the Adverse Event"),
        ("AEDECOD", "text", "Dictionary-Derived Term"),
        ("AETOXGR", "int", "Standard Toxicity Grade"),
        ("AETOXSCL", "text", "Toxicity Grading Scale"),
        ("AESTDTC", "date", "Start Date/Time of Adverse Event"),
        ("AEENDTC", "date", "End Date/Time of Adverse Event"),
        ("AESER", "text", "Serious Event"),
        ("AEREL", "text", "Causality"),
        ("AEOUT", "text", "Outcome of Adverse Event"),
    ]),
    _domain("LB", "Laboratory Test Results", "LBSEQ", [
        ("LBSEQ", "int", "Sequence Number"),
        ("LBCAT", "text", "Category for Lab Test"),
        ("LBTESTCD", "text", "Lab Test or Examination Short Name"),
        ("LBTEST", "text", "Lab Test or Examination Name"),
        ("LBSPEC", "text", "Specimen Type"),
        ("LBORRES", "text", "Result or Finding in Original Units"),
        ("LBORRESU", "text", "Original Units"),
        ("LBSTRESN", "float", "Numeric Result/Finding in Standard Units"),
        ("LBSTRESU", "text", "Standard Units"),
        ("LBORNRLO", "float", "Reference Range Lower Limit in Orig Unit"),
        ("LBORNRHI", "float", "Reference Range Upper Limit in Orig Unit"),
        ("LBSTNRLO", "float", "Reference Range Lower Limit-Std Units"),
        ("LBSTNRHI", "float", "Reference Range Upper Limit-Std Units"),
        ("LBTOXGR", "int", "Standard Toxicity Grade"),
        ("LBDTC", "date", "Date/Time of Specimen Collection"),
        ("LBMETHOD", "text", "Method of Test or Examination"),
    ]),
    _domain("VS", "Vital Signs", "VSSEQ", [
        ("VSSEQ", "int", "Sequence Number"),
        ("VSTESTCD", "text", "Vital Signs Test Short Name"),
        ("VSSTRESN", "float", "Numeric Result/Finding in Standard Units"),
        ("VSSTRESU", "text", "Standard Units"),
        ("VSDTC", "date", "Date/Time of Measurements"),
    ]),
    _domain("XC", "CRS/ICANS Observations", "XCSEQ", [
        ("XCSEQ", "int", "Sequence Number"),
        ("XCDTC", "date", "Date/Time of Observation"),
        ("XCTEMP", "float", "Temperature (C)"),
        ("XCFEVMSK", "text", "Fever Masked by Antipyretics/Cytokine Tx"),
        ("XCHYPOT", "text", "Hypotension Management"),
        ("XCOXY", "text", "Oxygen Support"),
        ("XCICE", "int", "ICE Score"),
        ("XCLOC", "text", "Level of Consciousness"),
        ("XCSEIZ", "text", "Seizure"),
        ("XCMOTOR", "text", "Motor Findings"),
        ("XCEDEMA", "text", "Cerebral Edema"),
        ("XCCRSGR", "int", "CRS Grade (ASTCT 2019)"),
        ("XCICAGR", "int", "ICANS Grade (ASTCT 2019)"),
    ]),
    _domain("RS", "Disease Response", "RSSEQ", [
        ("RSSEQ", "int", "Sequence Number"),
        ("RSTESTCD", "text", "Assessment Short Name"),
        ("RSCAT", "text", "Category for Assessment"),
        ("RSORRES", "text", "Result or Finding in Original Units"),
        ("RSSTRESC", "text", "Character Result/Finding in Std Format"),
        ("RSDTC", "date", "Date/Time of Assessment"),
        ("RSEVAL", "text", "Evaluator"),
    ]),
    _domain("TU", "Tumor/Lesion Identification", "TUSEQ", [
        ("TUSEQ", "int", "Sequence Number"),
        ("TULNKID", "text", "Link ID"),
        ("TUTESTCD", "text", "Tumor Identification Short Name"),
        ("TUORRES", "text", "Tumor Identification Result"),
        ("TULOC", "text", "Location of the Tumor"),
        ("TUDTC", "date", "Date/Time of Tumor Identification"),
    ]),
    _domain("TR", "Tumor/Lesion Results", "TRSEQ", [
        ("TRSEQ", "int", "Sequence Number"),
        ("TRLNKID", "text", "Link ID"),
        ("TRTESTCD", "text", "Tumor Assessment Short Name"),
        ("TRSTRESN", "float", "Numeric Result/Finding in Standard Units"),
        ("TRSTRESU", "text", "Standard Units"),
        ("TRDTC", "date", "Date/Time of Tumor Measurement"),
    ]),
    _domain("PC", "CAR-T Cellular Kinetics", "PCSEQ", [
        ("PCSEQ", "int", "Sequence Number"),
        ("PCTESTCD", "text", "Pharmacokinetic Test Short Name"),
        ("PCSTRESN", "float", "Numeric Result/Finding in Standard Units"),
        ("PCSTRESU", "text", "Standard Units"),
        ("PCORRES", "text", "Result or Finding in Original Units"),
        ("PCLLOQ", "float", "Lower Limit of Quantitation"),
        ("PCSPEC", "text", "Specimen Material Type"),
        ("PCDTC", "date", "Date/Time of Specimen Collection"),
    ]),
    _domain("IS", "Immunogenicity Specimen Assessments", "ISSEQ", [
        ("ISSEQ", "int", "Sequence Number"),
        ("ISTESTCD", "text", "Immunogenicity Test/Exam Short Name"),
        ("ISORRES", "text", "Result or Finding in Original Units"),
        ("ISSTRESC", "text", "Character Result/Finding in Std Format"),
        ("ISSTRESN", "float", "Numeric Result/Finding in Standard Units"),
        ("ISDTC", "date", "Date/Time of Collection"),
    ]),
    _domain("PR", "Procedures", "PRSEQ", [
        ("PRSEQ", "int", "Sequence Number"),
        ("PRTRT", "text", "Reported Name of Procedure"),
        ("PRSTDTC", "date", "Start Date/Time of Procedure"),
    ]),
    _domain("CM", "Concomitant/Prior Medications", "CMSEQ", [
        ("CMSEQ", "int", "Sequence Number"),
        ("CMTRT", "text", "Reported Name of Drug, Med, or Therapy"),
        ("CMDECOD", "text", "Standardized Medication Name"),
        ("CMCAT", "text", "Category for Medication"),
        ("CMINDC", "text", "Indication"),
        ("CMDOSE", "float", "Dose per Administration"),
        ("CMDOSU", "text", "Dose Units"),
        ("CMROUTE", "text", "Route of Administration"),
        ("CMSTDTC", "date", "Start Date/Time of Medication"),
        ("CMENDTC", "date", "End Date/Time of Medication"),
    ]),
    _domain("DS", "Disposition", "DSSEQ", [
        ("DSSEQ", "int", "Sequence Number"),
        ("DSDECOD", "text", "Standardized Disposition Term"),
        ("DSTERM", "text", "Reported Term for the Disposition Event"),
        ("DSSTDTC", "date", "Start Date/Time of Disposition Event"),
    ]),
)}


def domain_of(name: str) -> Domain:
    """The domain called ``name`` (case-insensitive); StoreError naming the known ones if none."""
    from celltrial.errors import StoreError

    found = DOMAINS.get(str(name).upper())
    if found is None:
        raise StoreError(f"Invalid `domain`: got `{name!r}`, must be one of "
                         f"{', '.join(DOMAINS)}")
    return found

"""What the store refuses at the door as impossible, declared as data.

Five tables:

- :data:`VOCABULARIES` — closed code lists of docs/data-model.md (SEX, AESER, RSSTRESC, the
  ASTCT observation vocabulary of XC, ...). Open lists (DISEASE "other", DSDECOD, LBTESTCD)
  are not closed here.
- :data:`COLUMN_RANGES` — physically possible ranges of single variables (age, grades, ICE
  score, doses, volumes).
- :data:`TEST_RANGES` — per test code, the standard unit the data model fixes and the range a
  living patient's value can take in that unit. A result whose unit is not the declared one is
  refused (e.g. ANC in cells/uL where 10^9/L is expected), and so is a result outside the range
  (e.g. a negative weight, or ANC 1500 "10^9/L", which is an ANC in /uL mislabelled).

- :data:`REQUIRED` — variables every row of a domain must have: the SDTMIG 3.4 topic
  variable ("Req" core) and, for AE, what the web form requires (grade, start, seriousness,
  relatedness), so that a short or truncated row is refused, never stored with nulls.
- :data:`DATE_ORDER` — start/end pairs where the end cannot precede the start (SDTMIG 3.4
  section 4.4: --ENDTC is the end of the observation that began at --STDTC).

These are plausibility limits, not reference ranges or toxicity grades: they catch unit and
entry errors, and are deliberately wide (hyperleukocytosis in acute leukemia reaches
WBC > 100 x 10^9/L; cytokine peaks in grade 4 CRS reach 10^4-10^5 pg/mL).
Units: CDISC SDTM IG 3.4 standard units as chosen in docs/data-model.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Vocabulary:
    """A closed code list for one variable."""

    domain: str
    variable: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class ColumnRange:
    """A physically possible range for one numeric variable."""

    domain: str
    variable: str
    low: float
    high: float
    unit: str


@dataclass(frozen=True)
class TestRange:
    """The standard unit and possible range of one test code's numeric result."""

    domain: str
    testcd: str
    unit: str
    low: float
    high: float


CM_CATEGORIES = ("CRS/ICANS MANAGEMENT", "ANTIMICROBIAL", "IMMUNOGLOBULIN",
                 "PRIOR ANTICANCER THERAPY", "LYMPHODEPLETION", "GVHD MANAGEMENT",
                 "SUPPORTIVE CARE", "OTHER")
"""CMCAT of the store (sponsor-defined; SDTMIG 3.4 CM leaves CMCAT to the sponsor). The drug
names of the categories the analysis reads are controlled
(:mod:`celltrial.clinical.medications`)."""

_RESPONSES = ("CR", "CRh", "CRi", "MLFS", "PR", "SD", "NR", "PD", "RELAPSE", "NE")

VOCABULARIES: tuple[Vocabulary, ...] = (
    Vocabulary("DM", "SEX", ("M", "F", "U")),
    Vocabulary("DM", "AGEU", ("YEARS", "MONTHS")),
    Vocabulary("DM", "DTHFL", ("Y",)),
    Vocabulary("AE", "AESER", ("Y", "N")),
    Vocabulary("AE", "AEREL", ("RELATED", "NOT RELATED")),
    Vocabulary("AE", "AETOXSCL", ("CTCAE v5.0", "ASTCT 2019", "MAGIC 2016")),
    Vocabulary("EX", "EXDOSU", ("cells/kg",)),
    Vocabulary("RS", "RSTESTCD", ("OVRLRESP", "MARROW", "EMRESP")),
    Vocabulary("RS", "RSSTRESC", _RESPONSES),
    Vocabulary("PC", "PCTESTCD", ("CARTQPCR", "CARTPCT", "CARTABS")),
    Vocabulary("IS", "ISSTRESC", ("POSITIVE", "NEGATIVE")),
    Vocabulary("TU", "TUORRES", ("TARGET", "NON-TARGET", "NEW")),
    Vocabulary("TR", "TRTESTCD", ("LDIAM", "SDIAM")),
    Vocabulary("XC", "XCFEVMSK", ("Y", "N")),
    Vocabulary("XC", "XCHYPOT", ("none", "fluids", "one_vasopressor", "multiple_vasopressors")),
    Vocabulary("XC", "XCOXY", ("none", "low_flow", "high_flow", "positive_pressure")),
    Vocabulary("XC", "XCLOC", ("alert", "awakens_spontaneously", "awakens_to_voice",
                               "awakens_to_touch", "unarousable")),
    Vocabulary("XC", "XCSEIZ", ("none", "rapidly_resolving", "prolonged")),
    Vocabulary("XC", "XCMOTOR", ("none", "focal_weakness")),
    Vocabulary("XC", "XCEDEMA", ("none", "focal", "diffuse")),
    Vocabulary("CM", "CMCAT", CM_CATEGORIES),
    Vocabulary("CM", "CMROUTE", ("INTRAVENOUS", "ORAL", "SUBCUTANEOUS", "INTRAMUSCULAR")),
)

COLUMN_RANGES: tuple[ColumnRange, ...] = (
    ColumnRange("DM", "AGE", 0, 120, "years"),
    ColumnRange("AE", "AETOXGR", 1, 5, "grade (CTCAE v5.0 / ASTCT 2019)"),
    ColumnRange("LB", "LBTOXGR", 0, 5, "grade (CTCAE v5.0)"),
    ColumnRange("EX", "EXFRACN", 1, 10, "fraction number"),
    ColumnRange("EX", "EXDOSE", 0, 1e10, "cells/kg"),
    ColumnRange("EX", "EXDOSTOT", 0, 1e13, "cells"),
    ColumnRange("EX", "EXVOL", 0, 2000, "mL"),
    ColumnRange("EX", "EXBAGN", 0, 50, "bags"),
    ColumnRange("XC", "XCTEMP", 25, 45, "C"),
    ColumnRange("XC", "XCICE", 0, 10, "ICE points"),
    ColumnRange("XC", "XCCRSGR", 0, 5, "grade (ASTCT 2019)"),
    ColumnRange("XC", "XCICAGR", 0, 5, "grade (ASTCT 2019)"),
    ColumnRange("PC", "PCLLOQ", 0, 1e9, "in the test's unit"),
    ColumnRange("IS", "ISSTRESN", 0, 1e9, "titre"),
    ColumnRange("TR", "TRSTRESN", 0, 1000, "mm"),
    ColumnRange("CM", "CMDOSE", 0, 1e6, "in CMDOSU"),
)

TEST_RANGES: tuple[TestRange, ...] = (
    # vital signs
    TestRange("VS", "WEIGHT", "kg", 0.3, 400),
    TestRange("VS", "HEIGHT", "cm", 20, 260),
    TestRange("VS", "TEMP", "C", 25, 45),
    TestRange("VS", "SYSBP", "mmHg", 20, 300),
    TestRange("VS", "OXYSAT", "%", 0, 100),
    # hematology (10^9/L; ANC in /uL would be 1000x larger)
    TestRange("LB", "NEUT", "10^9/L", 0, 200),
    TestRange("LB", "LYM", "10^9/L", 0, 1000),
    TestRange("LB", "WBC", "10^9/L", 0, 1500),
    TestRange("LB", "PLAT", "10^9/L", 0, 5000),
    TestRange("LB", "HGB", "g/L", 10, 250),
    TestRange("LB", "FIBRINO", "g/L", 0, 20),
    # chemistry
    TestRange("LB", "ALT", "U/L", 0, 50000),
    TestRange("LB", "AST", "U/L", 0, 50000),
    TestRange("LB", "BILI", "umol/L", 0, 2000),
    TestRange("LB", "CREAT", "umol/L", 0, 5000),
    TestRange("LB", "K", "mmol/L", 0.5, 15),
    TestRange("LB", "SODIUM", "mmol/L", 80, 220),
    TestRange("LB", "CA", "mmol/L", 0.3, 7),
    TestRange("LB", "CACORR", "mmol/L", 0.3, 7),
    TestRange("LB", "CAION", "mmol/L", 0.1, 4),
    TestRange("LB", "PHOS", "mmol/L", 0.05, 12),
    TestRange("LB", "ALB", "g/L", 5, 80),
    TestRange("LB", "CRP", "mg/L", 0, 1000),
    TestRange("LB", "FERRITIN", "ug/L", 0, 1e6),
    # marrow, immunophenotype, cytokines
    TestRange("LB", "BLAST", "%", 0, 100),
    TestRange("LB", "MRD", "fraction", 0, 1),
    TestRange("LB", "CD7ABS", "cells/uL", 0, 2e6),
    TestRange("LB", "CD7PCT", "%", 0, 100),
    TestRange("LB", "CD7BLAST", "%", 0, 100),
    # lymphocyte subsets by flow cytometry (absolute counts; celltrial.clinical.aplasia)
    TestRange("LB", "CD3ABS", "cells/uL", 0, 1e5),
    TestRange("LB", "CD4ABS", "cells/uL", 0, 1e5),
    TestRange("LB", "CD8ABS", "cells/uL", 0, 1e5),
    TestRange("LB", "NKABS", "cells/uL", 0, 1e5),
    TestRange("LB", "IL6", "pg/mL", 0, 1e6),
    TestRange("LB", "IL10", "pg/mL", 0, 1e6),
    TestRange("LB", "IFNG", "pg/mL", 0, 1e6),
    TestRange("LB", "TNFA", "pg/mL", 0, 1e6),
    # CAR-T kinetics
    TestRange("PC", "CARTQPCR", "copies/ug gDNA", 0, 1e9),
    TestRange("PC", "CARTPCT", "%", 0, 100),
    TestRange("PC", "CARTABS", "cells/uL", 0, 2e6),
)

@dataclass(frozen=True)
class Required:
    """Variables that must hold a value in every row of ``domain``, and where the rule is
    written."""

    domain: str
    variables: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class DateOrder:
    """``end`` may not be before ``start`` in a row of ``domain``."""

    domain: str
    start: str
    end: str


REQUIRED: tuple[Required, ...] = (
    Required("AE", ("AETERM", "AETOXGR", "AESTDTC", "AESER", "AEREL"),
             "SDTMIG 3.4 and the web form"),
    Required("LB", ("LBTESTCD", "LBDTC"), "SDTMIG 3.4 and the web form"),
    Required("VS", ("VSTESTCD",), "SDTMIG 3.4"),
    Required("PC", ("PCTESTCD",), "SDTMIG 3.4"),
    Required("SC", ("SCTESTCD",), "SDTMIG 3.4"),
    Required("RS", ("RSTESTCD",), "SDTMIG 3.4"),
    Required("TU", ("TUTESTCD",), "SDTMIG 3.4"),
    Required("TR", ("TRTESTCD",), "SDTMIG 3.4"),
    Required("IS", ("ISTESTCD",), "SDTMIG 3.4"),
    Required("EX", ("EXTRT",), "SDTMIG 3.4"),
    Required("PR", ("PRTRT",), "SDTMIG 3.4"),
    Required("DS", ("DSDECOD",), "SDTMIG 3.4"),
    Required("XC", ("XCDTC",), "the web form (an observation has a date)"),
    Required("CM", ("CMTRT",), "SDTMIG 3.4"),
)

DATE_ORDER: tuple[DateOrder, ...] = (
    DateOrder("AE", "AESTDTC", "AEENDTC"),
    DateOrder("CM", "CMSTDTC", "CMENDTC"),
)

# Which variables carry the test code, the numeric result and its unit, per findings domain.
FINDINGS: dict[str, tuple[str, str, str]] = {
    "LB": ("LBTESTCD", "LBSTRESN", "LBSTRESU"),
    "VS": ("VSTESTCD", "VSSTRESN", "VSSTRESU"),
    "PC": ("PCTESTCD", "PCSTRESN", "PCSTRESU"),
}


def vocabularies(domain: str) -> dict[str, tuple[str, ...]]:
    """Closed code lists of ``domain`` by variable."""
    return {v.variable: v.values for v in VOCABULARIES if v.domain == domain}


def column_ranges(domain: str) -> dict[str, ColumnRange]:
    """Possible ranges of ``domain``'s numeric variables."""
    return {r.variable: r for r in COLUMN_RANGES if r.domain == domain}


def test_ranges(domain: str) -> dict[str, TestRange]:
    """Standard unit and possible range by test code for a findings domain."""
    return {r.testcd: r for r in TEST_RANGES if r.domain == domain}


def required(domain: str) -> dict[str, str]:
    """Required variables of ``domain`` -> the source of the rule."""
    return {v: r.source for r in REQUIRED if r.domain == domain for v in r.variables}


def date_order(domain: str) -> tuple[DateOrder, ...]:
    """Start/end pairs of ``domain``."""
    return tuple(d for d in DATE_ORDER if d.domain == domain)

"""Build the shipped subset of CDISC SDTM Controlled Terminology from an NCI EVS release file.

Usage (the release file is NCI EVS ``SDTM Terminology.txt``, tab-separated, as published at
https://evs.nci.nih.gov/ftp1/CDISC/SDTM/)::

    python -m celltrial.store.sdtm.ct_subset "SDTM Terminology.txt" 2025-03-28

writes ``data/ct-sdtm.tsv``: one row per codelist used (empty ``code``), then every term the
SDTM export can write (:data:`NEEDED`), with, for each test code, the paired test name (same
NCI code in the TEST codelist). A term missing from the release stops the build naming it.
Sponsor-defined terms of extensible codelists are not taken from the release: they are
declared in ``data/ct-extensions.tsv``.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"

NEEDED: dict[str, tuple[str, ...]] = {
    "DOMAIN": ("DM", "SC", "EX", "AE", "LB", "VS", "RS", "TU", "TR", "PC", "IS", "PR", "CM",
               "DS", "TE", "TA", "TI", "TS", "TV"),
    "EPOCH": ("SCREENING", "TREATMENT", "FOLLOW-UP"),
    "IECAT": ("INCLUSION", "EXCLUSION"),
    "SEX": ("M", "F", "U"),
    "AGEU": ("YEARS", "MONTHS"),
    "NY": ("Y", "N"),
    "ND": ("NOT DONE",),
    "ARMNULRS": ("SCREEN FAILURE", "NOT ASSIGNED", "ASSIGNED, NOT TREATED"),
    "OUT": ("RECOVERED/RESOLVED", "RECOVERING/RESOLVING", "NOT RECOVERED/NOT RESOLVED",
            "RECOVERED/RESOLVED WITH SEQUELAE", "FATAL", "UNKNOWN"),
    "NCOMPLT": ("COMPLETED", "DEATH", "WITHDRAWAL BY SUBJECT", "LOST TO FOLLOW-UP",
                "SCREEN FAILURE"),
    "DSCAT": ("DISPOSITION EVENT",),
    "SPECTYPE": ("BLOOD", "BONE MARROW"),
    "METHOD": ("FLOW CYTOMETRY", "MICROSCOPY", "REAL-TIME POLYMERASE CHAIN REACTION ASSAY"),
    "FRM": ("SUSPENSION",),
    "ROUTE": ("INTRAVENOUS", "ORAL", "SUBCUTANEOUS", "INTRAMUSCULAR"),
    "UNIT": ("10^9/L", "10^6/L", "g/L", "U/L", "umol/L", "mmol/L", "mg/L", "ug/L", "ng/L", "%",
             "fraction of 1", "C", "mmHg", "kg", "cm", "mm", "copies/ug", "10^6/kg", "mg/dL",
             "YEARS", "mg", "ug"),
    "LBTESTCD": ("WBC", "NEUT", "LYM", "PLAT", "HGB", "ALT", "AST", "BILI", "CREAT", "FIBRINO",
                 "K", "SODIUM", "CA", "CACRALB", "CAION", "PHOS", "ALB", "CRP", "FERRITIN",
                 "BLAST", "INTLK6", "INTLK10", "IFNG", "TNF"),
    "VSTESTCD": ("TEMP", "SYSBP", "WEIGHT", "HEIGHT", "OXYSAT"),
    "ONCRTSCD": ("OVRLRESP", "BMRRESP", "EMDRESP"),
    "ONCRSR": ("CR", "CRh", "CRi", "MORPHOLOGIC LEUKEMIA-FREE STATE", "PR", "SD", "NR", "PD",
               "RELAPSED DISEASE", "NE"),
    "EVAL": ("INVESTIGATOR",),
    "TUTESTCD": ("TUMIDENT",),
    "TUIDRS": ("TARGET", "NON-TARGET", "NEW"),
    "TRTESTCD": ("LDIAM", "LPERP"),
    "ISTESTCD": ("ADA_BAB",),
    # TS (trial summary) parameters and the CT responses of its coded values
    "TSPARMCD": ("TITLE", "REGID", "SDTIGVER", "STYPE", "TPHASE", "TTYPE", "INTMODEL",
                 "INTTYPE", "TRT", "NARMS", "PLANSUB", "ACTSUB", "AGEMIN", "AGEMAX", "SEXPOP",
                 "HLTSUBJI", "RANDOM", "TBLIND", "TCNTRL", "LENGTH", "INDIC", "OUTMSPRI",
                 "OUTMSSEC", "SSTDTC", "DOSFRM", "ROUTE"),
    "STYPE": ("INTERVENTIONAL",),
    "TPHASE": ("PHASE I TRIAL", "PHASE I/II TRIAL", "PHASE II TRIAL"),
    "TTYPE": ("SAFETY", "EFFICACY", "DOSE FINDING", "PHARMACOKINETIC"),
    "INTMODEL": ("SINGLE GROUP",),
    "INTTYPE": ("GENETIC",),
    "SEXPOP": ("BOTH",),
    "TBLIND": ("OPEN LABEL",),
    "TCNTRL": ("NONE",),
    "DICTNAM": ("CDISC CT",),
}
"""Codelist short name -> submission values the export writes."""

TEST_PAIRS = {"LBTESTCD": "LBTEST", "VSTESTCD": "VSTEST", "ONCRTSCD": "ONCRTS",
              "TUTESTCD": "TUTEST", "TRTESTCD": "TRTEST", "ISTESTCD": "ISTEST",
              "TSPARMCD": "TSPARM"}
"""Test code codelist -> its test name codelist (terms paired by NCI code)."""

LISTS_ONLY = ("SCTESTCD", "SCTEST")
"""Codelists written without terms (only sponsor extensions of them are used)."""

COLUMNS = ("codelist_code", "codelist", "extensible", "code", "submission_value",
           "preferred_term")


def build(release_file: Path, release: str, out: Path = DATA / "ct-sdtm.tsv") -> int:
    """Write the subset; returns the number of terms. KeyError naming a term not released."""
    with open(release_file, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))[1:]
    lists = {r[4]: (r[0], r[2]) for r in rows if not r[1]}
    terms = {(r[1], r[4]): r for r in rows if r[1]}
    by_code = {(r[1], r[0]): r for r in rows if r[1]}
    picked: list[tuple[str, ...]] = []
    for name in (*NEEDED, *(TEST_PAIRS[n] for n in NEEDED if n in TEST_PAIRS), *LISTS_ONLY):
        list_code, ext = lists[name]
        picked.append((list_code, name, ext, "", "", ""))  # the codelist itself
    for name, values in NEEDED.items():
        list_code, ext = lists[name]
        for value in values:
            row = terms.get((list_code, value))
            if row is None:
                raise KeyError(f"{name} {value!r} is not in the {release} release")
            picked.append((list_code, name, ext, row[0], value, row[7]))
            if name in TEST_PAIRS:
                pair_code, pair_ext = lists[TEST_PAIRS[name]]
                pair = by_code[(pair_code, row[0])]
                picked.append((pair_code, TEST_PAIRS[name], pair_ext, pair[0], pair[4], pair[7]))
    with open(out, "w", encoding="utf-8", newline="") as handle:
        handle.write(f"# CDISC SDTM Controlled Terminology, release {release} (NCI EVS "
                     "'SDTM Terminology.txt'); subset used by celltrial's SDTM export.\n"
                     "# Built by `python -m celltrial.store.sdtm.ct_subset`; do not edit.\n")
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(sorted(set(picked), key=lambda r: (r[1], r[4])))
    return len(set(picked))


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    print(build(Path(sys.argv[1]), sys.argv[2]), "terms written")

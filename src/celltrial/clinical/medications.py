"""Controlled medication names for the CM categories the analysis reads.

Why: tocilizumab and corticosteroid exposure, anakinra for IEC-HS and ICANS, IVIG for
hypogammaglobulinaemia and the antimicrobials of an infection are what the analysis reads
(ADSL TOCIFL/CORTFL by :func:`celltrial.derive.adtox.medication_flags`). A free-text "Toci" or
"dexa" would be missed by those flags, so in the categories :data:`CONTROLLED_CATEGORIES`
the standardized name ``CMDECOD`` (or the reported ``CMTRT`` when no standardized name is
given) must be one of the names of ``data/cm_drugs.csv``:

- ``name``: the INN in upper case, as WHO Drug writes standardized medication names;
- ``class``: what the flags read (:data:`CLASSES`);
- ``category``: the ``CMCAT`` it is allowed under;
- ``atc``: the WHO ATC code (WHO Collaborating Centre for Drug Statistics Methodology, ATC/DDD
  Index 2024), so that a reviewer can check the class;
- ``source``: the guideline that makes the drug part of CAR-T care (EBMT/JACIE/EHA 2021
  best-practice recommendations, Hayden PJ et al. Ann Oncol 2022;33:259-275; ASTCT 2019 and
  2023; ECIL-4/6/7).

Other categories (prior anticancer therapy, lymphodepletion, supportive care, ...) are
reported as the site wrote them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

__all__ = ["CLASSES", "CONTROLLED_CATEGORIES", "Medication", "drug_class", "medication",
           "medication_problems", "medications"]

CLASSES = ("IL6_BLOCKADE", "CORTICOSTEROID", "IL1_BLOCKADE", "JAK_INHIBITOR",
           "HLH_CHEMOTHERAPY", "IMMUNOGLOBULIN", "ANTIBACTERIAL", "ANTIVIRAL", "ANTIFUNGAL",
           "ANTIPROTOZOAL")
"""Drug classes of the controlled list."""

ANTIMICROBIAL_CLASSES = ("ANTIBACTERIAL", "ANTIVIRAL", "ANTIFUNGAL", "ANTIPROTOZOAL")


@dataclass(frozen=True)
class Medication:
    """One controlled medication name."""

    name: str
    klass: str
    category: str
    atc: str
    source: str


@cache
def medications() -> dict[str, Medication]:
    """The controlled names of ``data/cm_drugs.csv``, by name."""
    text = files("celltrial.clinical").joinpath("data/cm_drugs.csv").read_text("utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    out: dict[str, Medication] = {}
    for row in csv.DictReader(lines):
        if row["class"] not in CLASSES:
            raise ValueError(f"cm_drugs.csv: class {row['class']!r} of {row['name']} is not "
                             f"one of {', '.join(CLASSES)}")
        out[row["name"]] = Medication(row["name"], row["class"], row["category"], row["atc"],
                                      row["source"])
    return out


@cache
def controlled_categories() -> tuple[str, ...]:
    """The CMCAT values whose drug names are controlled (those of the list)."""
    return tuple(sorted({m.category for m in medications().values()}))


CONTROLLED_CATEGORIES = ("ANTIMICROBIAL", "CRS/ICANS MANAGEMENT", "IMMUNOGLOBULIN")
"""CMCAT values whose drug names must be on the list (the categories the analysis reads)."""


def medication(name: str | None) -> Medication | None:
    """The controlled medication called ``name`` exactly (None when not on the list)."""
    return None if name is None else medications().get(name)


def drug_class(name: str | None) -> str | None:
    """The class of ``name`` (:data:`CLASSES`), None when it is not on the list."""
    found = medication(name)
    return None if found is None else found.klass


def medication_problems(category: str | None, decod: str | None, trt: str | None
                        ) -> list[tuple[str, str]]:
    """``(field, rule)`` for one CM record whose name breaks the controlled list: in a
    controlled category the standardized name (``CMDECOD``, else ``CMTRT``) is a listed name
    of that category. Empty when the record is acceptable."""
    if category not in CONTROLLED_CATEGORIES:
        return []
    field, name = ("CMDECOD", decod) if decod is not None else ("CMTRT", trt)
    if name is None:
        return []  # CMTRT is required: check_required names it
    allowed = sorted(m.name for m in medications().values() if m.category == category)
    found = medication(name)
    if found is None:
        folded = {m.upper(): m for m in medications()}
        hint = (f" (did you mean `{folded[name.strip().upper()]}`? names are upper case)"
                if name.strip().upper() in folded else "")
        return [(field, f"a controlled {category} medication name{hint}: one of "
                        f"{', '.join(allowed)} (celltrial/clinical/data/cm_drugs.csv)")]
    if found.category != category:
        return [(field, f"a {category} medication ({name} is listed under CMCAT "
                        f"`{found.category}`; celltrial/clinical/data/cm_drugs.csv)")]
    return []

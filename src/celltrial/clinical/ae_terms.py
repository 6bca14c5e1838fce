"""Adverse-event terms and the grades each term has: CTCAE v5.0 and the ASTCT 2019 syndromes.

Sources:

- NCI, Common Terminology Criteria for Adverse Events (CTCAE) v5.0, 27 Nov 2017: 837 terms,
  each with its MedDRA SOC and code and a description per grade; a grade NCI writes as "-"
  does not exist for that term (``data/ctcae_v5_terms.csv``, made by ``tools/ctcae_terms.py``
  from NCI's ``CTCAE_v5.0.xlsx``). Examples: "Neutrophil count decreased" has grades 1-4 (no
  grade 5), "Headache" grades 1-3, "Sepsis" grades 3-5.
- CTCAE v5.0, "Grade" definitions: grade 5 is death related to the AE.
- Lee DW et al., ASTCT consensus grading for CRS and neurologic toxicity, Biol Blood Marrow
  Transplant 2019;25:625-638: CRS and ICANS are graded 1-4; a death caused by either is
  recorded as grade 5, as CTCAE does.
- Harris AC et al., International, multicenter standardization of acute graft-versus-host
  disease clinical data collection (MAGIC), Biol Blood Marrow Transplant 2016;22:4-10:
  overall acute GVHD grade I-IV (CTCAE v5.0 has no GVHD term); a death caused by GVHD is
  recorded as grade 5, as CTCAE does.
- CDISC SDTMIG 3.4, AE domain: ``AETERM`` is the verbatim term as reported, ``AEDECOD`` the
  dictionary-derived term (here the CTCAE or ASTCT term, spelled exactly), ``AEOUT`` from the
  CDISC CT code list OUT (C66768), ``AESER`` Y/N.

:func:`ae_problems` is the one rule the store (every import and the web form), the web form's
messages and the tests use.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

CTCAE = "CTCAE v5.0"
ASTCT = "ASTCT 2019"
MAGIC = "MAGIC 2016"
SCALES = (CTCAE, ASTCT, MAGIC)

OUTCOMES = ("RECOVERED/RESOLVED", "RECOVERING/RESOLVING", "NOT RECOVERED/NOT RESOLVED",
            "RECOVERED/RESOLVED WITH SEQUELAE", "FATAL", "UNKNOWN")
"""CDISC Controlled Terminology, code list OUT (C66768), Outcome of Event."""


@dataclass(frozen=True)
class AETerm:
    """One term of a grading scale with the description of each grade it has."""

    term: str
    scale: str
    soc: str
    meddra_code: str | None
    grades: dict[int, str]
    """Grade -> the scale's description; grades the scale does not define are absent."""

    @property
    def allowed_grades(self) -> tuple[int, ...]:
        return tuple(sorted(self.grades))


ASTCT_TERMS: tuple[AETerm, ...] = (
    AETerm("Cytokine release syndrome", ASTCT, "Immune system disorders", "10052015",
           {1: "Fever >= 38 C", 2: "Fever with hypotension not requiring vasopressors and/or "
            "hypoxia requiring low-flow oxygen", 3: "Fever with hypotension requiring one "
            "vasopressor and/or hypoxia requiring high-flow oxygen, face mask or Venturi mask",
            4: "Fever with hypotension requiring multiple vasopressors and/or hypoxia "
            "requiring positive pressure", 5: "Death"}),
    AETerm("Immune effector cell-associated neurotoxicity syndrome", ASTCT,
           "Nervous system disorders", None,
           {1: "ICE 7-9; awakens spontaneously", 2: "ICE 3-6; awakens to voice",
            3: "ICE 0-2; awakens only to tactile stimulus; any clinical seizure that resolves "
            "rapidly; focal/local edema on neuroimaging", 4: "ICE 0 (unarousable); "
            "life-threatening prolonged seizure; deep focal motor weakness; diffuse cerebral "
            "edema", 5: "Death"}),
)
"""The two ASTCT 2019 syndromes (Lee 2019, Tables 2 and 5; grade descriptions abridged)."""

MAGIC_TERMS: tuple[AETerm, ...] = (
    AETerm("Graft versus host disease", MAGIC, "Immune system disorders", None,
           {1: "Overall grade I: skin stage 1-2, no liver or GI involvement",
            2: "Overall grade II: skin stage 3 and/or liver stage 1 and/or GI stage 1",
            3: "Overall grade III: liver stage 2-3 and/or lower GI stage 2-3",
            4: "Overall grade IV: skin stage 4, liver stage 4 or lower GI stage 4",
            5: "Death"}),
)
"""Acute GVHD by the MAGIC overall grade (Harris 2016, Table 2; grade 5 as CTCAE)."""


@cache
def ctcae_terms() -> dict[str, AETerm]:
    """CTCAE v5.0 terms by their exact spelling (837)."""
    text = files("celltrial.clinical").joinpath("data/ctcae_v5_terms.csv").read_text("utf-8")
    out: dict[str, AETerm] = {}
    for row in csv.DictReader(text.splitlines()):
        grades = {g: row[f"grade_{g}"] for g in range(1, 6) if row[f"grade_{g}"]}
        out[row["term"]] = AETerm(row["term"], CTCAE, row["soc"], row["meddra_code"], grades)
    return out


def terms(scale: str) -> dict[str, AETerm]:
    """The terms of ``scale`` (one of :data:`SCALES`) by exact spelling."""
    if scale == CTCAE:
        return ctcae_terms()
    if scale in (ASTCT, MAGIC):
        return {t.term: t for t in (ASTCT_TERMS if scale == ASTCT else MAGIC_TERMS)}
    raise ValueError(f"unknown grading scale {scale!r}: one of {', '.join(SCALES)}")


def scale_of(term: str) -> str:
    """The scale a dictionary term is graded by: ASTCT 2019 for CRS and ICANS, MAGIC 2016 for
    GVHD, else CTCAE v5.0."""
    for scale in (ASTCT, MAGIC):
        if term in terms(scale):
            return scale
    return CTCAE


def lookup(term: str, scale: str | None = None) -> AETerm | None:
    """The term spelled exactly so in ``scale`` (default: the scale the term belongs to)."""
    return terms(scale or scale_of(term)).get(term)


def _spelling_hint(term: str, scale: str) -> str:
    lowered = term.strip().lower()
    same = [t for t in terms(scale) if t.lower() == lowered]
    if same:
        return f"; did you mean {same[0]!r}?"
    near = [t for t in terms(scale) if lowered and lowered in t.lower()][:3]
    return f"; close terms: {', '.join(repr(t) for t in near)}" if near else ""


def ae_problems(*, term: str | None, grade: int | None, scale: str | None = None,
                serious: str | None = None, outcome: str | None = None
                ) -> list[tuple[str, str]]:
    """What is wrong with one AE's coded fields, as ``(field, message)`` pairs (none: fine).

    ``term`` is the dictionary-derived term (SDTM ``AEDECOD``), ``scale`` ``AETOXSCL``,
    ``serious`` ``AESER`` ("Y"/"N"), ``outcome`` ``AEOUT``. Rules:

    1. the term is a term of its scale, spelled exactly (CTCAE v5.0 term list; ASTCT 2019 for
       CRS and ICANS; MAGIC 2016 for GVHD);
    2. the grade is one the term has (CTCAE v5.0: the grades not written "-");
    3. grade 5 (death related to the AE, CTCAE v5.0) is serious (SDTMIG 3.4 AESDTH implies
       AESER = "Y"; ICH E2A: results in death) and its outcome is FATAL, and an outcome
       FATAL is grade 5;
    4. the outcome is a term of CDISC CT code list OUT.
    """
    problems: list[tuple[str, str]] = []
    scale = scale or (scale_of(term) if term else None)
    entry = None
    if term is not None and scale in SCALES:
        entry = lookup(term, scale)
        if entry is None:
            problems.append(("AEDECOD", f"a {scale} term spelled as the scale spells it "
                             f"(got {term!r}{_spelling_hint(term, scale)})"))
    if entry is not None and grade is not None and grade not in entry.grades:
        have = ", ".join(str(g) for g in entry.allowed_grades)
        problems.append(("AETOXGR", f"a grade that {scale} defines for {entry.term!r} "
                         f"({have}); got {grade}"))
    if outcome is not None and outcome not in OUTCOMES:
        problems.append(("AEOUT", f"one of {', '.join(OUTCOMES)} (got {outcome!r})"))
    if grade == 5:
        if serious is not None and serious != "Y":
            problems.append(("AESER", "Y for a grade 5 (fatal) event"))
        if outcome is not None and outcome != "FATAL":
            problems.append(("AEOUT", f"FATAL for a grade 5 event (got {outcome!r})"))
    elif outcome == "FATAL" and grade is not None:
        problems.append(("AETOXGR", f"5 for an event whose outcome is FATAL (got {grade})"))
    return problems

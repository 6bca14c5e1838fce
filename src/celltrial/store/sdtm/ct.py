"""The CDISC Controlled Terminology the SDTM export writes: the shipped subset of one CT
release (``data/ct-sdtm.tsv``, built by :mod:`celltrial.store.sdtm.ct_subset`) and the declared
sponsor extensions (``data/ct-extensions.tsv``).

A value is in CT for a codelist when the release lists it as a submission value of that
codelist, or when the codelist is extensible (or sponsor-defined, for the custom domain XC) and
the extensions file declares it with its reason.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data"
CT_RELEASE = "2025-03-28"
"""CDISC SDTM Controlled Terminology quarterly release of the shipped subset."""

SPONSOR_CODELISTS = frozenset({"XCTESTCD", "XCTEST"})
"""Codelists with no CDISC release row in the subset (custom domain, sponsor test names)."""


@dataclass(frozen=True)
class Term:
    """One term: codelist short name, submission value, NCI code (None when sponsor-defined),
    whether the codelist is extensible, and the decode (NCI preferred term or sponsor's)."""

    codelist: str
    value: str
    code: str | None
    extensible: bool
    decode: str


def _rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name, encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


@cache
def codelists() -> dict[str, tuple[str, bool]]:
    """Codelists of the subset: short name -> (NCI code, extensible)."""
    return {r["codelist"]: (r["codelist_code"], r["extensible"] == "Yes")
            for r in _rows("ct-sdtm.tsv")}


@cache
def terms() -> tuple[Term, ...]:
    """Every CT term of the subset, then every declared extension."""
    rows = _rows("ct-sdtm.tsv")
    extensible = {name: ext for name, (_, ext) in codelists().items()}
    released = [Term(r["codelist"], r["submission_value"], r["code"], r["extensible"] == "Yes",
                     r["preferred_term"]) for r in rows if r["code"]]
    extended = []
    for r in _rows("ct-extensions.tsv"):
        name = r["codelist"]
        if name not in SPONSOR_CODELISTS and not extensible.get(name, False):
            raise ValueError(f"ct-extensions.tsv extends {name}, which is not an extensible "
                             "codelist of the subset")
        extended.append(Term(name, r["submission_value"], None, True, r["decode"]))
    return tuple(released + extended)


@cache
def values(codelist: str) -> frozenset[str]:
    """Submission values allowed for ``codelist`` (release terms and declared extensions)."""
    return frozenset(t.value for t in terms() if t.codelist == codelist)


def is_ct(codelist: str, value: str) -> bool:
    """Whether ``value`` is allowed in ``codelist``."""
    return value in values(codelist)


@cache
def test_name(codelist: str, code: str) -> str:
    """The test name of test code ``code`` of ``codelist`` (e.g. LBTESTCD ``INTLK6`` ->
    ``Interleukin 6``): the paired CT term (same NCI code) or the declared extension decode.
    KeyError when neither exists."""
    pairs = {"LBTESTCD": "LBTEST", "VSTESTCD": "VSTEST", "ONCRTSCD": "ONCRTS",
             "TUTESTCD": "TUTEST", "TRTESTCD": "TRTEST", "ISTESTCD": "ISTEST",
             "SCTESTCD": "SCTEST", "XCTESTCD": "XCTEST", "TSPARMCD": "TSPARM"}
    for t in terms():
        if t.codelist == codelist and t.value == code:
            if t.code is None:
                return t.decode
            for p in terms():
                if p.codelist == pairs[codelist] and p.code == t.code:
                    return p.value
    raise KeyError(f"{codelist} {code!r} is neither in CT {CT_RELEASE} nor a declared extension")

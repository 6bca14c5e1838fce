"""The visit timeline of a subject (the protocol's schedule of assessments against what was
captured) and the site dashboard built on it (issue 10 part 2).

Study day 0 is the first infusion (DM.RFSTDTC), as in the protocol's ``schedule``
(:class:`celltrial.protocols.schema.Schedule`: days relative to the first infusion, negative
before it). Each scheduled assessment is *done* when a record of its kind is dated within its
window, *overdue* when the window has passed without one, *due* while the window is open,
*planned* before it, and *not expected* after the subject left the study (a disposition
event). Before day 0 is known only the pre-infusion assessments are listed.

Windows: the protocols register no visit windows; assumed here (and stated on the page):
+-1 day up to day 14, +-3 days up to day 90, +-7 days later; a pre-infusion assessment is
done by any record between consent and the day before the first infusion.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from celltrial.store import Store
from celltrial.store.schema import TABLES
from celltrial.web.forms import day_of

Found = tuple[str, str | None, str | None, str | None]
"""A dated record reduced to (domain, test code, specimen, date)."""


@dataclass(frozen=True)
class Assessment:
    """One kind of scheduled assessment: the schedule's list, its name, what counts."""

    days: str
    text: str
    matches: Callable[[Found], bool]


_CYTOKINES = frozenset({"IL6", "IL10", "IFNG", "TNFA"})
ASSESSMENTS: tuple[Assessment, ...] = (
    Assessment("marrow_days", "Bone marrow (blasts, response)",
               lambda f: f[0] == "RS" or (f[0] == "LB" and f[2] == "BONE MARROW")),
    Assessment("kinetics_days", "CAR-T kinetics sample (qPCR, flow)", lambda f: f[0] == "PC"),
    Assessment("cytokine_days", "Cytokines (IL-6, IL-10, IFN-g, TNF-a)",
               lambda f: f[0] == "LB" and f[1] in _CYTOKINES),
    Assessment("cd7_days", "CD7+ cell counts", lambda f: f[0] == "LB" and f[1] in (
        "CD7ABS", "CD7PCT")),
    Assessment("ada_days", "Anti-CAR antibodies", lambda f: f[0] == "IS"),
    Assessment("followup_days", "Follow-up visit (labs)",
               lambda f: f[0] == "LB" and f[2] != "BONE MARROW"),
)

WINDOW_NOTE = ("visit windows assumed (none registered): ±1 day to day 14, ±3 days to "
               "day 90, ±7 days later; pre-infusion: consent to day -1")


def window(day: int) -> int:
    """Days either side of a scheduled study day (see the module docstring)."""
    return 1 if day <= 14 else 3 if day <= 90 else 7


@dataclass(frozen=True)
class Visit:
    day: int
    date: dt.date | None
    text: str
    status: str  # done | due | overdue | planned | not expected
    done_on: dt.date | None = None


def timeline(schedule: Any, dm: Mapping[str, Any], found: Iterable[Found],
             end: str | None, today: dt.date) -> list[Visit]:
    """The scheduled assessments of one subject with their status (module docstring)."""
    records = [(f, day_of(f[3])) for f in found]
    records = [(f, d) for f, d in records if d is not None]
    day0 = day_of(dm.get("RFSTDTC"))
    consent = day_of(dm.get("RFICDTC"))
    stop = day_of(end)
    out: list[Visit] = []
    for item in ASSESSMENTS:
        for day in getattr(schedule, item.days, None) or ():
            if day < 0:
                hits = [d for f, d in records if item.matches(f)
                        and (consent is None or d >= consent)
                        and (day0 is None or d < day0)]
                due = day0 + dt.timedelta(days=day) if day0 else None
                status = "done" if hits else ("overdue" if day0 else "due")
                out.append(Visit(day, due, item.text, status, max(hits) if hits else None))
                continue
            if day0 is None:
                continue
            due = day0 + dt.timedelta(days=day)
            w = dt.timedelta(days=window(day))
            hits = [d for f, d in records if item.matches(f) and due - w <= d <= due + w]
            if hits:
                status = "done"
            elif stop is not None and due - w > stop:
                status = "not expected"
            elif today > due + w:
                status = "overdue"
            elif today >= due - w:
                status = "due"
            else:
                status = "planned"
            out.append(Visit(day, due, item.text, status,
                             min(hits, key=lambda d: abs((d - due).days)) if hits else None))
    return sorted(out, key=lambda v: (v.day, v.text))


_DATED = {"LB": ("LBTESTCD", "LBSPEC", "LBDTC"), "PC": ("PCTESTCD", None, "PCDTC"),
          "RS": ("RSTESTCD", None, "RSDTC"), "IS": ("ISTESTCD", None, "ISDTC")}


def found_records(store: Store, study_id: str, usubjid: str | None = None
                  ) -> dict[str, list[Found]]:
    """The dated records the timeline counts, by subject (one subject or the study), those
    entered in error left out."""
    out: dict[str, list[Found]] = {}
    with store.engine.connect() as connection:
        for domain, (test, spec, date) in _DATED.items():
            table = TABLES[domain]
            where = [table.c.STUDYID == study_id, table.c.voided.is_(None)]
            if usubjid is not None:
                where.append(table.c.USUBJID == usubjid)
            spec_column = table.c[spec] if spec else sa.null()
            for row in connection.execute(sa.select(
                    table.c.USUBJID, table.c[test], spec_column, table.c[date]).where(*where)):
                out.setdefault(row[0], []).append((domain, row[1], row[2], row[3]))
    return out


def counts(visits: list[Visit]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in visits:
        out[v.status] = out.get(v.status, 0) + 1
    return out

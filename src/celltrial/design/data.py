"""What every dose-escalation design reads and returns.

`EscalationData` holds the patients of a trial in order of enrolment (dose index 1-based, DLT
0/1, optional efficacy 0/1 and optional exposure such as AUC0-28d) with the dose currently
being given. A design (`DoseDesign`) is a frozen specification; `next_dose` and `select` are
pure functions of the data and return small frozen results (`Decision`, `Selection`),
keeping specification apart from result (STYLE.md, Follow 2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from celltrial.errors import invalid

Action = Literal["escalate", "stay", "de-escalate", "stop", "wait"]
ACTIONS: tuple[str, ...] = ("escalate", "stay", "de-escalate", "stop", "wait")
"""``wait``: enrol nobody now (time-to-event designs, too many patients still inside the DLT
window); ``dose`` is where enrolment resumes unless the complete data say otherwise."""


@dataclass(frozen=True)
class EscalationData:
    """Patients of one dose-escalation trial, in order of enrolment.

    ``doses`` are 1-based dose indices, ``dlt`` 0/1 per patient; ``efficacy`` (0/1) and
    ``exposure`` (e.g. CAR-T AUC0-28d, copies/ug gDNA x day) are optional and may hold
    ``None`` for a patient not yet evaluable. ``followup`` (optional) is the fraction of the
    DLT window each patient has been observed (1 or None: complete); a patient with DLT 0 and
    followup < 1 is pending (`celltrial.design.tite`). ``current_dose`` is the dose the last
    cohort received (defaults to the last patient's dose; ``start_dose`` when nobody is
    enrolled).
    """

    n_doses: int
    doses: tuple[int, ...] = ()
    dlt: tuple[int, ...] = ()
    efficacy: tuple[int | None, ...] | None = None
    exposure: tuple[float | None, ...] | None = None
    current_dose: int | None = None
    followup: tuple[float | None, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.n_doses, int | np.integer) or self.n_doses < 1:
            raise invalid("n_doses", self.n_doses, "an integer >= 1")
        object.__setattr__(self, "doses", tuple(int(d) for d in self.doses))
        object.__setattr__(self, "dlt", tuple(int(y) for y in self.dlt))
        if len(self.doses) != len(self.dlt):
            raise invalid("dlt", f"{len(self.dlt)} values", f"one per patient ({len(self.doses)})")
        for d in self.doses:
            if not 1 <= d <= self.n_doses:
                raise invalid("dose", d, f"a dose index in 1..{self.n_doses}")
        for y in self.dlt:
            if y not in (0, 1):
                raise invalid("dlt", y, "0 or 1")
        for name in ("efficacy", "exposure"):
            values = getattr(self, name)
            if values is None:
                continue
            values = tuple(values)
            if len(values) != len(self.doses):
                raise invalid(name, f"{len(values)} values", f"one per patient ({len(self.doses)})")
            if name == "efficacy":
                bad = [v for v in values if v not in (0, 1, None)]
                if bad:
                    raise invalid("efficacy", bad[0], "0, 1 or None")
                values = tuple(None if v is None else int(v) for v in values)
            else:
                for v in values:
                    if v is not None and (not math.isfinite(float(v)) or float(v) < 0):
                        raise invalid("exposure", v, "a finite number >= 0 or None")
                values = tuple(None if v is None else float(v) for v in values)
            object.__setattr__(self, name, values)
        if self.followup is not None:
            values = tuple(None if v is None else float(v) for v in self.followup)
            if len(values) != len(self.doses):
                raise invalid("followup", f"{len(values)} values",
                              f"one per patient ({len(self.doses)})")
            for v in values:
                if v is not None and (not math.isfinite(v) or v < 0):
                    raise invalid("followup", v, "a fraction of the DLT window >= 0 or None")
            object.__setattr__(self, "followup", values)
        if self.current_dose is None:
            if self.doses:
                object.__setattr__(self, "current_dose", self.doses[-1])
        elif not 1 <= int(self.current_dose) <= self.n_doses:
            raise invalid("current_dose", self.current_dose, f"a dose index in 1..{self.n_doses}")

    @property
    def n_patients(self) -> int:
        return len(self.doses)

    def n(self) -> np.ndarray:
        """Patients treated per dose (index 0 = dose 1)."""
        return np.bincount(np.asarray(self.doses, dtype=np.int64) - 1,
                           minlength=self.n_doses)[: self.n_doses] if self.doses else np.zeros(
            self.n_doses, dtype=np.int64)

    def y(self) -> np.ndarray:
        """DLTs per dose (index 0 = dose 1)."""
        if not self.doses:
            return np.zeros(self.n_doses, dtype=np.int64)
        return np.bincount(np.asarray(self.doses) - 1, weights=np.asarray(self.dlt),
                           minlength=self.n_doses).astype(np.int64)

    def add(self, dose: int, dlt: Sequence[int], efficacy: Sequence[int | None] | None = None,
            exposure: Sequence[float | None] | None = None) -> EscalationData:
        """A new `EscalationData` with one more cohort treated at ``dose``."""
        eff = None
        if self.efficacy is not None or efficacy is not None:
            eff = (self.efficacy or (None,) * self.n_patients) + tuple(
                efficacy if efficacy is not None else (None,) * len(dlt))
        exp = None
        if self.exposure is not None or exposure is not None:
            exp = (self.exposure or (None,) * self.n_patients) + tuple(
                exposure if exposure is not None else (None,) * len(dlt))
        fup = None if self.followup is None else self.followup + (None,) * len(dlt)
        return EscalationData(self.n_doses, self.doses + (dose,) * len(dlt),
                              self.dlt + tuple(dlt), eff, exp, dose, fup)


@dataclass(frozen=True)
class Decision:
    """The next cohort: ``action`` relative to the current dose and the 1-based ``dose``
    (None when the trial stops), with the rule applied in words."""

    action: Action
    dose: int | None
    reason: str


@dataclass(frozen=True)
class Selection:
    """The dose recommended at the end (MTD, or OBD/RP2D for utility designs), or None with
    the reason; ``estimates`` are the design's per-dose estimates (e.g. isotonic DLT rates),
    None where a dose has no data."""

    dose: int | None
    reason: str
    estimates: tuple[float | None, ...] = ()


@runtime_checkable
class DoseDesign(Protocol):
    """The interface every dose-escalation design shares (3+3, BOIN, CRM, BOIN12)."""

    n_doses: int

    def next_dose(self, data: EscalationData) -> Decision:
        """Decision for the next cohort from the data so far."""
        ...

    def select(self, data: EscalationData) -> Selection:
        """Dose recommended from the data at the end of the trial."""
        ...

    @property
    def max_n(self) -> int:
        """Maximum sample size of the trial."""
        ...

    @property
    def cohort_size(self) -> int:
        ...


def check_probabilities(what: str, values: Sequence[float], n_doses: int | None = None
                        ) -> np.ndarray:
    """Validate a vector of probabilities (one per dose)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise invalid(what, values, "a non-empty sequence of probabilities, one per dose")
    if n_doses is not None and arr.size != n_doses:
        raise invalid(what, tuple(values), f"{n_doses} probabilities (one per dose)")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise invalid(what, tuple(values), "probabilities in [0, 1]")
    return arr

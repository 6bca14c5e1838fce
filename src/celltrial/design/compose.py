"""Wrappers that add a stopping rule to any design (escalation's selector chaining; STYLE.md,
Follow 6). Each wraps a `DoseDesign` and is itself one."""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import beta as beta_dist

from celltrial.design.data import Decision, DoseDesign, EscalationData, Selection
from celltrial.errors import invalid


@dataclass(frozen=True)
class StopAtN:
    """Stop the trial once ``n`` patients are treated (then ``select`` as the base design)."""

    base: DoseDesign
    n: int

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n < 1:
            raise invalid("n", self.n, "an integer >= 1")

    @property
    def n_doses(self) -> int:
        return self.base.n_doses

    @property
    def cohort_size(self) -> int:
        return self.base.cohort_size

    @property
    def max_n(self) -> int:
        return min(self.n, self.base.max_n)

    def next_dose(self, data: EscalationData) -> Decision:
        if data.n_patients >= self.n:
            return Decision("stop", None, f"{data.n_patients} patients treated: stop at n = {self.n}")
        return self.base.next_dose(data)

    def select(self, data: EscalationData) -> Selection:
        return self.base.select(data)


@dataclass(frozen=True)
class StopWhenTooToxic:
    """Stop with no recommendation when P(DLT rate at ``dose`` > ``target`` | data) exceeds
    ``probability`` under a Beta(1, 1) prior, once ``min_n`` patients are treated there
    (the BOIN / BOIN12 elimination rule applied to the lowest dose by default)."""

    base: DoseDesign
    target: float = 0.3
    probability: float = 0.95
    dose: int = 1
    min_n: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.target < 1:
            raise invalid("target", self.target, "a DLT probability in (0, 1)")
        if not 0 < self.probability < 1:
            raise invalid("probability", self.probability, "in (0, 1)")

    @property
    def n_doses(self) -> int:
        return self.base.n_doses

    @property
    def cohort_size(self) -> int:
        return self.base.cohort_size

    @property
    def max_n(self) -> int:
        return self.base.max_n

    def _too_toxic(self, data: EscalationData) -> float | None:
        n, y = int(data.n()[self.dose - 1]), int(data.y()[self.dose - 1])
        if n < self.min_n:
            return None
        prob = float(beta_dist.sf(self.target, 1 + y, 1 + n - y))
        return prob if prob > self.probability else None

    def next_dose(self, data: EscalationData) -> Decision:
        prob = self._too_toxic(data)
        if prob is not None:
            return Decision("stop", None, f"P(DLT rate at dose {self.dose} > {self.target:g}) = "
                            f"{prob:.3f} > {self.probability:g}: stop, no dose recommended")
        return self.base.next_dose(data)

    def select(self, data: EscalationData) -> Selection:
        if self._too_toxic(data) is not None:
            return Selection(None, f"dose {self.dose} too toxic: no dose recommended",
                             self.base.select(data).estimates)
        return self.base.select(data)

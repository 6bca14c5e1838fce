"""Eligibility screening: every criterion of the protocol, met / not met / missing data.

The rules are the protocol's (``celltrial.protocols``: ``eligibility.inclusion`` and
``eligibility.exclusion``, each a :class:`~celltrial.protocols.Criterion` whose ``rule`` is
evaluated by :func:`celltrial.protocols.criteria.evaluate` with three-valued logic).

- An inclusion criterion is *met* when its rule is true.
- An exclusion criterion's rule describes the excluding condition; the criterion is *met*
  (the patient passes it) when the rule is false, *not met* when it is true.
- *missing data* when the answer depends on a value the patient record does not have.
- The patient is eligible only when every criterion is met; with no criterion failed but
  some data missing the decision is ``incomplete`` (not eligible until the data are in).

Patient values are checked against the protocol's variables first (type, physically
possible range, category list); an unknown variable or an impossible value raises
:class:`~celltrial.errors.InvalidValue` naming it. The keys ``id`` and ``subject_id`` are
allowed as identifiers and not screened.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from celltrial.errors import invalid

__all__ = ["CriterionResult", "ScreeningResult", "screen"]

Status = Literal["met", "not met", "missing data"]
_IDENTIFIERS = frozenset({"id", "subject_id"})


@dataclass(frozen=True)
class CriterionResult:
    """One criterion's outcome with the rule and the values it read."""

    id: str
    kind: Literal["inclusion", "exclusion"]
    text: str
    rule: str
    status: Status
    values: Mapping[str, Any] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    reading: str | None = None
    assumed: bool = False

    @property
    def finding(self) -> str:
        """What was found, in the words a coordinator reads on a screening log: an inclusion
        criterion is "satisfied" or "not satisfied"; an exclusion criterion's condition is
        "absent" (the patient may go on) or "present" (excluded); "missing data" either way.
        ``status`` says whether the criterion allows enrolment ("met"), which for an exclusion
        criterion means its condition is absent."""
        if self.status == "missing data":
            return "missing data"
        if self.kind == "inclusion":
            return "satisfied" if self.status == "met" else "not satisfied"
        return "absent" if self.status == "met" else "present"


@dataclass(frozen=True)
class ScreeningResult:
    """Screening of one patient: eligible only when every criterion is met."""

    protocol_id: str
    eligible: bool
    decision: Literal["eligible", "not eligible", "incomplete"]
    criteria: tuple[CriterionResult, ...]

    @property
    def failed(self) -> tuple[CriterionResult, ...]:
        return tuple(c for c in self.criteria if c.status == "not met")

    @property
    def incomplete(self) -> tuple[CriterionResult, ...]:
        return tuple(c for c in self.criteria if c.status == "missing data")

    def as_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol_id, "eligible": self.eligible,
                "decision": self.decision,
                "criteria": [{"id": c.id, "kind": c.kind, "text": c.text, "rule": c.rule,
                              "status": c.status, "finding": c.finding,
                              "values": dict(c.values),
                              "missing": list(c.missing), "reading": c.reading,
                              "assumed": c.assumed} for c in self.criteria]}


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _check_patient(protocol: Any, patient: Mapping[str, Any]) -> None:
    if not isinstance(patient, Mapping):
        raise invalid("patient", patient, "a mapping of variable name -> value")
    variables = protocol.variables
    for name, value in patient.items():
        if name in _IDENTIFIERS:
            continue
        var = variables.get(name)
        if var is None:
            raise invalid("patient variable", name,
                          f"one of the variables of `{protocol.id}`: {sorted(variables)}")
        if _is_missing(value):
            continue
        if var.type == "bool":
            if not isinstance(value, bool):
                raise invalid(name, value, "true or false")
        elif var.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                raise invalid(name, value, "a number" + (f" in {var.unit}" if var.unit else ""))
            lo = -math.inf if var.min is None else var.min
            hi = math.inf if var.max is None else var.max
            if not lo <= value <= hi:
                raise invalid(name, value, f"a possible value in [{var.min}, {var.max}]"
                              + (f" {var.unit}" if var.unit else ""))
        elif value not in (var.categories or []):
            raise invalid(name, value, f"one of {var.categories}")


def screen(protocol: Any, patient: Mapping[str, Any]) -> ScreeningResult:
    """Screen ``patient`` (variable -> value) against every criterion of ``protocol``."""
    from celltrial.protocols.criteria import evaluate, variables_of

    _check_patient(protocol, patient)
    results: list[CriterionResult] = []
    for kind, criteria in (("inclusion", protocol.eligibility.inclusion),
                           ("exclusion", protocol.eligibility.exclusion)):
        for c in criteria:
            names = sorted(variables_of(c.rule))
            used = {n: patient.get(n) for n in names if not _is_missing(patient.get(n))}
            missing = tuple(n for n in names if n not in used)
            value = evaluate(c.rule, patient)
            if value is None:
                status: Status = "missing data"
            elif kind == "inclusion":
                status = "met" if value else "not met"
            else:
                status = "not met" if value else "met"
            results.append(CriterionResult(
                c.id, kind, c.text, c.rule, status, used,  # type: ignore[arg-type]
                missing if value is None else (), c.reading, c.assumed))
    failed = any(r.status == "not met" for r in results)
    incomplete = any(r.status == "missing data" for r in results)
    decision = "not eligible" if failed else "incomplete" if incomplete else "eligible"
    return ScreeningResult(protocol.id, decision == "eligible",
                           decision, tuple(results))  # type: ignore[arg-type]

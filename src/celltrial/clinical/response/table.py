"""Response criteria as data: categories made of comparisons, evaluated in order.

A :class:`CriteriaTable` lists categories from best to worst; the first category whose
conditions all hold is the response. Conditions are three-valued (a missing field is
unknown): a category whose conditions are unknown is skipped and named in the reasons
("CR not assessable: platelets missing"), so nothing is guessed. Readings of one criteria
document (e.g. ELN 2022 vs a protocol's own wording, ">= 1.0" vs "> 1.0") are two tables.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["AnyOf", "Category", "Cond", "CriteriaTable", "ResponseResult", "evaluate_table"]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne}


@dataclass(frozen=True)
class Cond:
    """``field <op> value``; unknown (None) when the field is missing."""

    field: str
    op: str
    value: Any

    def test(self, data: Mapping[str, Any]) -> bool | None:
        got = data.get(self.field)
        return None if got is None else _OPS[self.op](got, self.value)

    def __str__(self) -> str:
        return f"{self.field} {self.op} {self.value}"


@dataclass(frozen=True)
class AnyOf:
    """At least one of the conditions holds (Kleene or)."""

    conds: tuple[Cond, ...]

    def test(self, data: Mapping[str, Any]) -> bool | None:
        results = [c.test(data) for c in self.conds]
        if any(r is True for r in results):
            return True
        return None if any(r is None for r in results) else False

    def __str__(self) -> str:
        return "(" + " or ".join(str(c) for c in self.conds) + ")"


@dataclass(frozen=True)
class Category:
    """A response category: all conditions hold; ``context`` restricts it to patients in or
    not in remission (relapse needs a prior remission)."""

    code: str
    all_of: tuple[Cond | AnyOf, ...]
    context: Literal["any", "in_remission", "not_in_remission"] = "any"
    needs_baseline: bool = False


@dataclass(frozen=True)
class CriteriaTable:
    name: str
    source: str
    categories: tuple[Category, ...]
    fallback: str
    required: tuple[str, ...]


@dataclass(frozen=True)
class ResponseResult:
    """One assessment's response: category code, why, and MRD flags where they apply."""

    category: str
    reasons: tuple[str, ...] = ()
    criteria: str = ""
    mrd_negative: bool | None = None
    molecular_remission: bool | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.category} MRD-" if self.mrd_negative else self.category


def evaluate_table(table: CriteriaTable, data: Mapping[str, Any], *, in_remission: bool,
                   has_baseline: bool) -> tuple[str, list[str]]:
    """The first category met, and the reasons (what was met, what could not be assessed)."""
    missing = [f for f in table.required if data.get(f) is None]
    if missing:
        return "NE", [f"not evaluable: {', '.join(missing)} missing ({table.source})"]
    reasons: list[str] = []
    for cat in table.categories:
        if cat.context == "in_remission" and not in_remission:
            continue
        if cat.context == "not_in_remission" and in_remission:
            continue
        if cat.needs_baseline and not has_baseline:
            reasons.append(f"{cat.code} not assessable: no baseline (pretreatment) assessment")
            continue
        results = [(c, c.test(data)) for c in cat.all_of]
        if any(r is False for _, r in results):
            continue
        unknown = [str(c) for c, r in results if r is None]
        if unknown:
            reasons.append(f"{cat.code} not assessable: unknown {'; '.join(unknown)}")
            continue
        reasons.insert(0, f"{cat.code}: " + "; ".join(str(c) for c in cat.all_of)
                       + f" ({table.source})")
        return cat.code, reasons
    reasons.insert(0, f"{table.fallback}: no other category met ({table.source})")
    return table.fallback, reasons

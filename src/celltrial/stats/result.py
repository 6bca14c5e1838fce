"""Results that are either a number or a reason: the shared value type of analysis outputs.

Every derived value is a number (:class:`Estimate`) or a missing value that carries why it
could not be computed (:class:`Missing`), after PKNCA's convention of returning a missing
value with its reason attached ("n must be > 2"). Reports print the reason. Both share the
attributes ``value``, ``status`` (``"ok"`` / ``"missing"``) and ``reason``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Estimate:
    """A computed number, with its unit where one applies.

    >>> Estimate(24000.0, unit="copies/ug gDNA").value
    24000.0
    """

    value: float
    unit: str | None = None
    status: Literal["ok"] = "ok"
    reason: str | None = None

    def __float__(self) -> float:
        return float(self.value)


@dataclass(frozen=True, slots=True)
class Missing:
    """A value that could not be computed; ``reason`` says why (a sentence a reader can act on).

    ``float(Missing(...))`` is NaN so arrays and tables can hold it.

    >>> Missing("no quantifiable sample").status
    'missing'
    """

    reason: str
    value: None = None
    status: Literal["missing"] = "missing"

    def __float__(self) -> float:
        return math.nan

    def __bool__(self) -> bool:
        return False


Value = float | Estimate | Missing
"""What an analysis function returns for one parameter: a number or a reason."""


def is_missing(item: object) -> bool:
    """True for a :class:`Missing` value (or a NaN/None number)."""
    if isinstance(item, Missing) or item is None:
        return True
    if isinstance(item, Estimate):
        return not math.isfinite(item.value)
    try:
        return math.isnan(float(item))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True


def value_of(item: object) -> float:
    """The number held by ``item``; NaN for a missing value."""
    if isinstance(item, Missing) or item is None:
        return math.nan
    return float(item)  # type: ignore[arg-type]


def reason_of(item: object) -> str | None:
    """The reason a value is missing, or None when it is a number."""
    if isinstance(item, Missing):
        return item.reason
    return None

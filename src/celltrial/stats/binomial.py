"""Confidence intervals for a proportion x/n (response rate, DLT rate, ADA-positive rate).

- :func:`clopper_pearson`: the exact (Clopper & Pearson 1934) interval, equal to the interval of
  R's ``binom.test(x, n, conf.level = level)``: lower = Beta quantile ``alpha/2`` with shape
  ``(x, n - x + 1)`` (0 when x = 0), upper = Beta quantile ``1 - alpha/2`` with shape
  ``(x + 1, n - x)`` (1 when x = n).
- :func:`wilson`: the Wilson (1927) score interval without continuity correction, equal to the
  interval of R's ``prop.test(x, n, conf.level = level, correct = FALSE)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from celltrial.errors import invalid


class Interval(NamedTuple):
    """A two-sided confidence interval (unpacks as ``lower, upper``)."""

    lower: float
    upper: float


def _check(x: int, n: int, level: float) -> tuple[int, int, float]:
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise invalid("n", n, "a whole number >= 1")
    if isinstance(x, bool) or int(x) != x or not 0 <= x <= n:
        raise invalid("x", x, f"a whole number in [0, n = {int(n)}]")
    if not 0.0 < float(level) < 1.0:
        raise invalid("level", level, "in (0, 1), e.g. 0.95")
    return int(x), int(n), float(level)


def clopper_pearson(x: int, n: int, level: float = 0.95) -> Interval:
    """Exact Clopper-Pearson interval for x successes in n trials (R ``binom.test``).

    >>> lo, hi = clopper_pearson(3, 10)
    >>> round(lo, 4), round(hi, 4)
    (0.0667, 0.6525)
    """
    from scipy.special import betaincinv

    x, n, level = _check(x, n, level)
    alpha = 1.0 - level
    lower = 0.0 if x == 0 else float(betaincinv(x, n - x + 1, alpha / 2))
    upper = 1.0 if x == n else float(betaincinv(x + 1, n - x, 1.0 - alpha / 2))
    return Interval(lower, upper)


def wilson(x: int, n: int, level: float = 0.95) -> Interval:
    """Wilson score interval, no continuity correction (R ``prop.test(correct = FALSE)``).

    Formula as R's ``prop.test`` computes it: with p = x/n, z = qnorm((1 + level)/2),
    z22n = z^2/(2n): (p + z22n -/+ z sqrt(p(1-p)/n + z22n/(2n))) / (1 + 2 z22n), and the
    lower limit 0 when x = 0, the upper 1 when x = n.

    >>> lo, hi = wilson(3, 10)
    >>> round(lo, 4), round(hi, 4)
    (0.1078, 0.6032)
    """
    from scipy.special import ndtri

    x, n, level = _check(x, n, level)
    p = x / n
    z = float(ndtri((1.0 + level) / 2.0))
    z22n = z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z22n / (2 * n))
    lower = (p + z22n - half) / (1 + 2 * z22n) if x > 0 else 0.0
    upper = (p + z22n + half) / (1 + 2 * z22n) if x < n else 1.0
    return Interval(max(lower, 0.0), min(upper, 1.0))

"""BOIN escalation / de-escalation boundaries and the decision table.

Liu S, Yuan Y. Bayesian optimal interval designs for phase I clinical trials. JRSS C
2015;64:507-523; as coded in the R package BOIN 2.7.2 `get.boundary` (CLINICAL_REFERENCE 7.2):

    lambda_e = ln((1-phi1)/(1-phi)) / ln(phi(1-phi1) / (phi1(1-phi)))
    lambda_d = ln((1-phi)/(1-phi2)) / ln(phi2(1-phi) / (phi(1-phi2)))

with phi1 = 0.6 phi and phi2 = 1.4 phi by default. With n patients at a dose: escalate if
DLT <= floor(lambda_e n), de-escalate if DLT >= ceil(lambda_d n) (lambda_d n + 1 when
lambda_d n is an integer), eliminate if P(p > phi | y, n) > cutoff under a Beta(1, 1) prior
(n >= 3); the de-escalation count is capped at the elimination count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import beta as beta_dist

from celltrial.errors import invalid

if TYPE_CHECKING:
    import pandas as pd

# Decision codes used by the decision tables (rows: n, columns: DLT count).
ESCALATE, STAY, DEESCALATE, ELIMINATE = 0, 1, 2, 3
DECISION_NAMES = ("escalate", "stay", "de-escalate", "eliminate")


def _check_interval(target: float, phi1: float, phi2: float) -> None:
    if not (isinstance(target, int | float) and 0 < target < 1):
        raise invalid("target", target, "a DLT probability in (0, 1)")
    if not 0 < phi1 < target:
        raise invalid("phi1", phi1, f"in (0, target = {target})")
    if not target < phi2 < 1:
        raise invalid("phi2", phi2, f"in (target = {target}, 1)")


def boin_boundaries(target: float, phi1: float | None = None, phi2: float | None = None
                    ) -> tuple[float, float]:
    """(lambda_e, lambda_d) of the BOIN design (Liu & Yuan 2015, eq. in section 2.2).

    >>> [round(v, 4) for v in boin_boundaries(0.3)]
    [0.2365, 0.3585]
    """
    phi1 = 0.6 * target if phi1 is None else phi1
    phi2 = 1.4 * target if phi2 is None else phi2
    _check_interval(target, phi1, phi2)
    lam_e = math.log((1 - phi1) / (1 - target)) / math.log(
        target * (1 - phi1) / (phi1 * (1 - target)))
    lam_d = math.log((1 - target) / (1 - phi2)) / math.log(
        phi2 * (1 - target) / (target * (1 - phi2)))
    return lam_e, lam_d


def elimination_count(n: int, target: float, cutoff: float = 0.95) -> int | None:
    """Smallest DLT count y with P(p > target | y, n) > cutoff under Beta(1,1); None if n < 3
    or no count reaches it (BOIN get.boundary)."""
    if n < 3:
        return None
    for y in range(1, n + 1):
        if beta_dist.sf(target, y + 1, n - y + 1) > cutoff:
            return y
    return None


@dataclass(frozen=True)
class BoundaryRow:
    """One column of the BOIN decision table: counts at ``n`` patients."""

    n: int
    escalate_at_most: int
    deescalate_at_least: int
    eliminate_at_least: int | None


def boundary_rows(target: float, max_n: int = 30, phi1: float | None = None,
                  phi2: float | None = None, cutoff: float = 0.95) -> list[BoundaryRow]:
    """The decision table n = 1..max_n as rows (BOIN get.boundary, full table)."""
    if not isinstance(max_n, int) or max_n < 1:
        raise invalid("max_n", max_n, "an integer >= 1")
    if not 0.5 <= cutoff < 1:
        raise invalid("cutoff", cutoff, "in [0.5, 1)")
    lam_e, lam_d = boin_boundaries(target, phi1, phi2)
    rows = []
    for n in range(1, max_n + 1):
        b_e = math.floor(lam_e * n)
        x = lam_d * n
        b_d = round(x) + 1 if abs(round(x) - x) < 1e-12 else math.ceil(x)
        elim = elimination_count(n, target, cutoff)
        if elim is not None and b_d > elim:
            b_d = elim
        rows.append(BoundaryRow(n, b_e, b_d, elim))
    return rows


def decision_table(target: float, max_n: int = 30, phi1: float | None = None,
                   phi2: float | None = None, cutoff: float = 0.95) -> pd.DataFrame:
    """BOIN decision table for n = 1..max_n as a DataFrame (one row per n), exportable as CSV.

    Columns: ``n``, ``escalate_if_dlt_le``, ``deescalate_if_dlt_ge``, ``eliminate_if_dlt_ge``
    (empty where no count eliminates).
    """
    import pandas as pd

    rows = boundary_rows(target, max_n, phi1, phi2, cutoff)
    return pd.DataFrame({
        "n": [r.n for r in rows],
        "escalate_if_dlt_le": [r.escalate_at_most for r in rows],
        "deescalate_if_dlt_ge": [r.deescalate_at_least for r in rows],
        "eliminate_if_dlt_ge": pd.array([r.eliminate_at_least for r in rows], dtype="Int64"),
    })


def write_decision_table_csv(path: str | Path, target: float, max_n: int = 30,
                             phi1: float | None = None, phi2: float | None = None,
                             cutoff: float = 0.95) -> Path:
    """Write :func:`decision_table` as CSV and return the path."""
    out = Path(path)
    decision_table(target, max_n, phi1, phi2, cutoff).to_csv(out, index=False)
    return out


def decision_codes(target: float, max_n: int, phi1: float | None = None,
                   phi2: float | None = None, cutoff: float = 0.95) -> np.ndarray:
    """Lookup array ``code[n, y]`` (uint8, shape (max_n+1, max_n+1)) of the decision at n
    patients with y DLTs: ESCALATE, STAY, DEESCALATE or ELIMINATE (ELIMINATE implies
    de-escalation). Row n = 0 and impossible y > n are STAY. Used by the simulators."""
    table = np.full((max_n + 1, max_n + 1), STAY, dtype=np.uint8)
    for r in boundary_rows(target, max_n, phi1, phi2, cutoff):
        for y in range(r.n + 1):
            if r.eliminate_at_least is not None and y >= r.eliminate_at_least:
                table[r.n, y] = ELIMINATE
            elif y >= r.deescalate_at_least:
                table[r.n, y] = DEESCALATE
            elif y <= r.escalate_at_most:
                table[r.n, y] = ESCALATE
    return table

"""Adult ALL response (T-ALL/T-LBL, MPAL lymphoid) per the BBMT 2010 consensus table.

Source: ../shared/CLINICAL_REFERENCE.md 3.2 [R6] (BBMT 2010 consensus response table) and
[R7] for MRD (MRD-negative = MRD < 0.01% = 1e-4 by flow; store method and sensitivity).

- CR: marrow blasts < 5% (M1), no circulating blasts, ANC >= 1.0, platelets >= 100
  (x10^9/L), no extramedullary disease. (The ">= 4 weeks without recurrence" confirmation
  is a per-patient rule, not applied to a single assessment.)
- CRi: CR criteria without the blood counts (ANC < 1.0 or platelets < 100).
- PR: >= 50% decrease in marrow blasts from baseline, marrow blasts <= 25%, ANC >= 1.0,
  platelets >= 100. (The table's >= 50% decrease of blood blasts and EMD is not applied:
  those measurements are not in the assessment vocabulary.)
- PD: >= 25% increase of marrow or blood blasts from baseline, or new EMD.
- Relapse (after CR/CRi): marrow blasts >= 5%, blasts in blood, or EMD (isolated
  extramedullary relapse counts).
- SD: none of the above; "refractory" = no CR/CRi by the protocol's landmark (per patient).

Assessment fields as for AML, plus ``mrd_flow`` (fraction of nucleated cells, e.g. 5e-5) and
``mrd_molecular_negative`` (bool, where measured).
"""

from __future__ import annotations

from celltrial.clinical.response.table import AnyOf, Category, Cond, CriteriaTable

__all__ = ["BBMT2010", "MRD_NEGATIVE_BELOW", "REMISSION"]

MRD_NEGATIVE_BELOW = 1e-4
"""ALL MRD negativity by flow: MRD < 0.01% (1e-4) [R7]."""

REMISSION = frozenset({"CR", "CRi"})

_BM = Cond("bm_blasts_pct", "<", 5.0)
_NO_PB = Cond("circulating_blasts", "==", False)
_NO_EMD = Cond("emd", "==", False)

BBMT2010 = CriteriaTable("all_bbmt2010", "BBMT 2010 adult ALL consensus", (
    Category("RELAPSE", (AnyOf((Cond("bm_blasts_pct", ">=", 5.0),
                                Cond("circulating_blasts", "==", True),
                                Cond("emd", "==", True))),), context="in_remission"),
    Category("CR", (_BM, _NO_PB, _NO_EMD, Cond("anc", ">=", 1.0), Cond("platelets", ">=", 100.0))),
    Category("CRi", (_BM, _NO_PB, _NO_EMD,
                     AnyOf((Cond("anc", "<", 1.0), Cond("platelets", "<", 100.0))))),
    Category("PR", (Cond("bm_blast_reduction_pct", ">=", 50.0), Cond("bm_blasts_pct", "<=", 25.0),
                    Cond("anc", ">=", 1.0), Cond("platelets", ">=", 100.0)), needs_baseline=True),
    Category("PD", (AnyOf((Cond("bm_blast_increase_pct", ">=", 25.0),
                           Cond("pb_blast_increase_pct", ">=", 25.0),
                           Cond("new_emd", "==", True))),),
             context="not_in_remission", needs_baseline=True),
), fallback="SD", required=("bm_blasts_pct",))

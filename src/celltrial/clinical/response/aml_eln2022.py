"""AML response per ELN 2022, and the NCT04762485 registration's own wording, as tables.

Source: Döhner H et al. Diagnosis and management of AML in adults: 2022 recommendations from
an international expert panel on behalf of the ELN. Blood 2022;140:1345-1377, response table
(../shared/CLINICAL_REFERENCE.md 3.1 [R1]). PD (not an ELN 2022 category): increase >= 50% of
marrow or blood blasts over baseline, or new extramedullary disease, as summarised in [R2].
Relapse after remission: marrow blasts >= 5%, reappearance of blasts in blood, or new EMD
[R4].

Assessment fields: ``bm_blasts_pct`` (required), ``circulating_blasts`` (bool), ``emd``
(bool, extramedullary disease present), ``anc`` and ``platelets`` (x10^9/L),
``marrow_adequate`` (bool: spicules, >= 200 cells or cellularity >= 10%; MLFS needs it),
``auer_rods`` (bool; the registration's wording), ``pb_blasts_pct``, ``mrd_negative``
(bool). Derived from the baseline (pretreatment) assessment: ``bm_blast_reduction_pct``,
``bm_blast_increase_pct``, ``pb_blast_increase_pct``, ``new_emd``.

Readings (tables):
- ``ELN2022``: CR ANC >= 1.0 and platelets >= 100; CRh ANC >= 0.5 and platelets >= 50 (only
  patients not in CR); CRi = CR except residual neutropenia < 1.0 *or* thrombocytopenia
  < 100 with the other count recovered; MLFS when neither count has recovered (no recovery
  required) and the marrow is not merely aplastic. (ELN's "neutropenia or thrombocytopenia"
  is read as one of the two; ``ELN2022_CRI_EITHER`` is the reading where CRi also covers
  both counts low, so MLFS is left only to patients whose counts are not known.)
- ``NCT04762485``: the registration's text wins where it says so: CR ANC > 1.0 and
  platelets > 100 (strict), no blasts with Auer rods; CRi neutropenia < 1.0 or
  thrombocytopenia < 100; MLFS without the circulating-blast and marrow-adequacy criteria;
  no CRh (ORR = CR + CRi + MLFS + PR). Consequence: ANC exactly 1.0 is neither CR (> 1.0)
  nor CRi (< 1.0) in that text; such a patient falls to MLFS.
"""

from __future__ import annotations

from celltrial.clinical.response.table import AnyOf, Category, Cond, CriteriaTable

__all__ = ["ELN2022", "ELN2022_CRI_EITHER", "NCT04762485", "REMISSION", "READINGS"]

REMISSION = frozenset({"CR", "CRh", "CRi"})
"""Remission categories after which relapse is assessed (ELN 2022 RFS/CIR population)."""

_BM = Cond("bm_blasts_pct", "<", 5.0)
_NO_PB = Cond("circulating_blasts", "==", False)
_NO_EMD = Cond("emd", "==", False)
_NO_AUER = Cond("auer_rods", "==", False)
_PD = Category("PD", (AnyOf((Cond("bm_blast_increase_pct", ">=", 50.0),
                             Cond("pb_blast_increase_pct", ">=", 50.0),
                             Cond("new_emd", "==", True))),),
               context="not_in_remission", needs_baseline=True)
_RELAPSE = Category("RELAPSE", (AnyOf((Cond("bm_blasts_pct", ">=", 5.0),
                                       Cond("circulating_blasts", "==", True),
                                       Cond("emd", "==", True))),), context="in_remission")
_SOURCE = "ELN 2022 (Döhner 2022)"


def _eln(cri_needs_one_recovered: bool) -> CriteriaTable:
    recovered = (AnyOf((Cond("anc", ">=", 1.0), Cond("platelets", ">=", 100.0))),)
    return CriteriaTable("aml_eln2022", _SOURCE, (
        _RELAPSE,
        Category("CR", (_BM, _NO_PB, _NO_EMD, Cond("anc", ">=", 1.0),
                        Cond("platelets", ">=", 100.0))),
        Category("CRh", (_BM, _NO_PB, _NO_EMD, Cond("anc", ">=", 0.5),
                         Cond("platelets", ">=", 50.0))),
        Category("CRi", (_BM, _NO_PB, _NO_EMD,
                         AnyOf((Cond("anc", "<", 1.0), Cond("platelets", "<", 100.0))),
                         *(recovered if cri_needs_one_recovered else ()))),
        Category("MLFS", (_BM, _NO_PB, _NO_EMD, Cond("marrow_adequate", "==", True))),
        Category("PR", (Cond("anc", ">=", 1.0), Cond("platelets", ">=", 100.0),
                        Cond("bm_blasts_pct", ">=", 5.0), Cond("bm_blasts_pct", "<=", 25.0),
                        Cond("bm_blast_reduction_pct", ">=", 50.0)), needs_baseline=True),
        _PD,
    ), fallback="NR", required=("bm_blasts_pct",))


ELN2022 = _eln(True)
ELN2022_CRI_EITHER = _eln(False)

NCT04762485 = CriteriaTable("aml_eln2022", "NCT04762485 registration response definitions", (
    _RELAPSE,
    Category("CR", (_BM, _NO_PB, _NO_AUER, _NO_EMD, Cond("anc", ">", 1.0),
                    Cond("platelets", ">", 100.0))),
    Category("CRi", (_BM, _NO_PB, _NO_AUER, _NO_EMD,
                     AnyOf((Cond("anc", "<", 1.0), Cond("platelets", "<", 100.0))))),
    Category("MLFS", (_BM, _NO_AUER, _NO_EMD)),
    Category("PR", (Cond("anc", ">", 1.0), Cond("platelets", ">", 100.0),
                    Cond("bm_blasts_pct", ">=", 5.0), Cond("bm_blasts_pct", "<=", 25.0),
                    Cond("bm_blast_reduction_pct", ">=", 50.0)), needs_baseline=True),
    _PD,
), fallback="NR", required=("bm_blasts_pct",))

READINGS = {"eln2022": ELN2022, "eln2022_cri_either": ELN2022_CRI_EITHER,
            "nct04762485": NCT04762485}

"""The derivation vocabulary: every key an endpoint may name, declared once as data.

Each protocol endpoint names one key; ``celltrial.derive`` implements every key listed
here. ``schedule`` names the visit list (``Schedule`` field) the derivation needs data
from, so lint can warn when a protocol asks for an endpoint it never samples for.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DERIVATIONS", "Derivation"]


@dataclass(frozen=True)
class Derivation:
    """One derivation key: what it computes, its parameters and the samples it needs."""

    key: str
    description: str
    params: tuple[str, ...] = ()
    schedule: str | None = None  # Schedule field whose visits feed it (None: event data)


_ROWS: tuple[Derivation, ...] = (
    Derivation("ae_incidence", "Number of AEs, patients with >= 1 AE (incidence) and maximum "
               "CTCAE v5.0 / ASTCT grade, CRS and ICANS included, within the time frame",
               ("categories",)),
    Derivation("crs_icans_incidence", "Incidence and maximum ASTCT 2019 grade of CRS and of ICANS "
               "within the time frame"),
    Derivation("dlt_rate", "Patients with >= 1 dose-limiting toxicity within the DLT window, per "
               "dose level (protocol DLT definition)"),
    Derivation("remission_rate", "Proportion reaching remission within the time frame; default "
               "CR + CRi", ("categories", "at_day")),
    Derivation("orr", "Overall response rate: best response within the time frame (or at `at_day`) "
               "in `categories` (default CR, CRh, CRi, MLFS, PR)", ("at_day", "categories"),
               "marrow_days"),
    Derivation("mrd_negative_rate", "Proportion with MRD-negative remission (flow cytometry) within "
               "the time frame (params: method FLOW|QPCR, threshold as a fraction of cells)",
               ("method", "threshold"), "marrow_days"),
    Derivation("molecular_remission_rate", "Proportion with molecular (qPCR) remission where a "
               "marker is applicable (param: threshold)", ("threshold",), "marrow_days"),
    Derivation("em_response_rate", "Extramedullary response (Lugano 2014: CR/PR/SD/PD) rate",
               ("categories",)),
    Derivation("best_response", "Best overall response per patient and its distribution "
               "(CR, CRi, MRD+/-, relapse/progression)", ("categories",), "marrow_days"),
    Derivation("os", "Overall survival: infusion to death from any cause (Kaplan-Meier)"),
    Derivation("pfs", "Progression-free survival: infusion to progression/relapse or death"),
    Derivation("efs", "Event-free survival (ELN 2022): failure, relapse or death"),
    Derivation("dor", "Duration of response: first CR/PR to relapse/progression or death"),
    Derivation("cir", "Cumulative incidence of relapse from remission, death without relapse "
               "competing (Aalen-Johansen, Gray)"),
    Derivation("ck_cmax_qpcr", "Cmax of CAR transgene copies/ug gDNA (qPCR)", (), "kinetics_days"),
    Derivation("ck_cmax_flow", "Cmax of CAR+ cells by flow cytometry (cells/uL where measured; "
               "% of CD3+ secondary)",
               ("analyte",), "kinetics_days"),
    Derivation("ck_tmax_qpcr", "Tmax (days from first infusion) of qPCR transgene level", (),
               "kinetics_days"),
    Derivation("ck_tmax_flow", "Tmax (days from first infusion) of CAR+ cells by flow",
               ("analyte",), "kinetics_days"),
    Derivation("ck_auc_0_28d_qpcr", "AUC day 0-28 of qPCR transgene level (trapezoid)", (),
               "kinetics_days"),
    Derivation("ck_auc_0_28d_flow", "AUC day 0-28 of CAR+ cells by flow (trapezoid)",
               ("analyte",), "kinetics_days"),
    Derivation("ck_persistence_qpcr", "Persistence: time to loss of detectable qPCR transgene "
               "(Kaplan-Meier; death or HSCT before a loss is seen censored)",
               ("confirm_blq_samples",), "kinetics_days"),
    Derivation("ck_persistence_flow", "Persistence: time to loss of detectable CAR+ cells by "
               "flow (Kaplan-Meier; death or HSCT before a loss is seen censored)",
               ("analyte", "confirm_blq_samples"), "kinetics_days"),
    Derivation("ck_expansion_qpcr", "Concentration-time summary of qPCR transgene copies per "
               "visit (expansion profile)", (), "kinetics_days"),
    Derivation("ck_expansion_flow", "Concentration-time summary of CAR+ cells by flow per visit "
               "(expansion profile)", ("analyte",), "kinetics_days"),
    Derivation("cytokine_profile", "IL-6, IL-10, IFN-gamma, TNF-alpha (pg/mL) per visit: summary "
               "and peak", ("analytes",), "cytokine_days"),
    Derivation("cd7_abs_timecourse", "Absolute CD7+ cells/uL in peripheral blood per visit", (),
               "cd7_days"),
    Derivation("cd7_pct_timecourse", "Proportion (%) of CD7+ cells in peripheral blood per visit",
               (), "cd7_days"),
    Derivation("cd7_clearance", "Clearance of peripheral-blood CD7+ cells (time to and depth of "
               "CD7+ depletion; param: threshold)", ("threshold",), "cd7_days"),
    Derivation("ada_positive_rate", "Positive rate of anti-CAR antibodies at each visit", (),
               "ada_days"),
)

DERIVATIONS: dict[str, Derivation] = {row.key: row for row in _ROWS}

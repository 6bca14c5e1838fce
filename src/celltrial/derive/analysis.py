"""Orchestration: SDTM frames -> analysis datasets -> endpoints -> files.

``analyze(domains, protocol)`` is pure (frames in, datasets and results out);
``write_analysis(analysis, out_dir)`` writes every dataset as ``<name>.parquet`` and
``<name>.csv``, ``endpoints.json`` (``{"study", "protocol_version", "options",
"endpoints": [...]}``, one entry per protocol endpoint, with ``rp2d``, ``cd7_safety`` and
``persistence``) and ``summary.md``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from celltrial.derive.adae import build_adae
from celltrial.derive.adex import build_adex
from celltrial.derive.adis import build_adis
from celltrial.derive.adlb import build_adlb
from celltrial.derive.adpc import build_adpc, build_adpp
from celltrial.derive.adrs import build_adrs
from celltrial.derive.adsl import build_adsl, with_mrd_status
from celltrial.derive.adtte import build_adtte, options_of
from celltrial.derive.adtox import (
    CD7_NEGATIVE_AT_OR_BELOW_PCT, GVHD_TERM, build_adtox, cd7_at_relapse, gvhd_incidence,
    infection_density_by_window, with_icaht,
)
from celltrial.derive.endpoints import EndpointResult, compute_endpoints
from celltrial.derive.persistence import EVENT_TYPES, build_persistence, never_quantifiable
from celltrial.derive.timeline import Domains
from celltrial.store.spreadsheet import neutralise_frame

DATASET_ORDER = ("adsl", "adae", "adrs", "adtte", "adpc", "adpp", "adlb", "adis", "adtox",
                 "adex")


@dataclass(frozen=True)
class Analysis:
    """Analysis datasets (lower-case name -> DataFrame) and one result per protocol endpoint."""

    study: str
    datasets: dict[str, pd.DataFrame]
    endpoints: tuple[EndpointResult, ...]
    options: dict[str, Any]
    protocol_version: str = ""
    rp2d: dict[str, Any] | None = None
    """The recommended phase II dose by the protocol's rule (`celltrial.design.rp2d`): dose
    (1-based) or None, the dose level id, the reason, the per-dose table, the rule and whether
    it is assumed; None when the protocol has no dose levels."""
    cd7_safety: dict[str, Any] | None = None
    """:func:`cd7_safety` of the datasets and the protocol (None: computed from the datasets
    when written, without the protocol's product origin)."""
    persistence: dict[str, Any] | None = None
    """:func:`persistence_summary` of the datasets (None: computed when written)."""


def recommend_phase2_dose(protocol: Any, datasets: dict[str, pd.DataFrame]
                          ) -> dict[str, Any] | None:
    """The RP2D of the study from its analysis datasets (`celltrial rp2d` reads the same):
    ``recommend_from_adam`` with the protocol's rule (`rule_of`), as a JSON-ready dict."""
    if not getattr(protocol, "dose_levels", None):
        return None
    from celltrial.design.rp2d import recommend_from_adam, rule_of

    rec = recommend_from_adam(protocol, datasets["adsl"], datasets["adrs"], datasets["adpp"])
    rule, assumed, note = rule_of(protocol)
    out = rec.as_dict()
    levels = [lv.id for lv in protocol.dose_levels]
    for row in out["doses"]:
        row["level"] = levels[int(row["dose"]) - 1]
    out.update(level=None if rec.dose is None else levels[rec.dose - 1], assumed=assumed,
               note=note, rule={k: v for k, v in vars(rule).items()})
    return json.loads(json.dumps(out, default=lambda v: v.item() if hasattr(v, "item")
                                 else str(v)))


def derive_datasets(domains: Domains, protocol: Any) -> dict[str, pd.DataFrame]:
    """All analysis datasets from the SDTM domains, in ``DATASET_ORDER``."""
    adsl = build_adsl(domains, protocol)
    adrs = build_adrs(domains, adsl)
    adpc = build_adpc(domains, adsl)
    adtox = build_adtox(domains, adsl, adrs, product_origin=getattr(
        getattr(protocol, "intervention", None), "product_origin", None))
    adtte = build_adtte(adsl, adrs, protocol)
    persistence = build_persistence(adpc, adsl)
    if len(persistence):  # time to loss of detectable CAR-T: LOSSQPCR, LOSSABS, LOSSPCT
        adtte = pd.concat([adtte, persistence], ignore_index=True)
    adlb = build_adlb(domains, adsl)
    full = with_mrd_status(with_icaht(adsl, adtox, cd7_at_relapse(domains, adsl, adrs)),
                           adrs, adlb)
    return {
        "adsl": full,
        "adae": build_adae(domains, adsl),
        "adrs": adrs,
        "adtte": adtte,
        "adpc": adpc,
        "adpp": build_adpp(adpc),
        "adlb": adlb,
        "adis": build_adis(domains, adsl),
        "adtox": adtox,
        "adex": build_adex(domains, adsl, protocol),
    }


def analyze(domains: Domains, protocol: Any) -> Analysis:
    """Datasets and every endpoint of ``protocol`` from the study's SDTM domains."""
    datasets = derive_datasets(domains, protocol)
    options = options_of(protocol)
    return Analysis(
        study=protocol.id, datasets=datasets,
        endpoints=tuple(compute_endpoints(datasets, protocol)),
        options={"censor_at_transplant": options.censor_at_transplant,
                 "death_in_remission_competing": options.death_in_remission_competing,
                 "efs_landmark_days": options.efs_landmark_days,
                 "orr_categories": list(options.orr_categories)},
        protocol_version=str(getattr(protocol, "version", "")),
        rp2d=recommend_phase2_dose(protocol, datasets),
        cd7_safety=cd7_safety(datasets, protocol),
        persistence=persistence_summary(datasets),
    )


def _for_files(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates as ISO text-compatible datetime; object columns of mixed types as text."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            kinds = {type(v) for v in out[column].dropna()}
            if len(kinds) > 1 or (kinds and not kinds <= {str}):
                out[column] = out[column].map(lambda v: None if v is None or
                                              (isinstance(v, float) and v != v) else str(v))
    return out


def summary_markdown(analysis: Analysis) -> str:
    """A readable summary: one section per outcome measure (estimate, CI, n, or the reason)."""
    lines = [f"# {analysis.study}: outcome measures", ""]
    adsl = analysis.datasets["adsl"]
    counts = {flag: int((adsl[flag] == "Y").sum()) if flag in adsl.columns else 0
              for flag in ("ENRLFL", "ITTFL", "SAFFL", "DLTEVLFL", "EFFFL")}
    lines += ["Analysis sets: enrolled {ENRLFL}, intention-to-treat {ITTFL}, infused (safety) "
              "{SAFFL}, DLT-evaluable {DLTEVLFL}, efficacy-evaluable {EFFFL}.".format(**counts),
              "",
              f"Censoring options: {json.dumps(analysis.options)}", ""]
    for r in analysis.endpoints:
        lines.append(f"## {r.name}" + (f" ({r.id})" if r.id else ""))
        lines.append(f"- Time frame: {r.time_frame} ({r.time_frame_days} days); "
                     f"derivation `{r.derivation}`")
        if r.status == "ok":
            est = "NA" if r.estimate is None else f"{r.estimate:.4g}"
            ci = "" if not r.ci or r.ci[0] is None else f" (95% CI {r.ci[0]:.4g} to {r.ci[1]:.4g})"
            lines.append(f"- Estimate: {est} {r.unit}{ci}; n = {r.n}")
            lines.append(f"- {r.summary}")
            lines.append(f"- Method: {r.method}")
            if r.sensitivity:
                s = r.sensitivity
                est_s = s.get("estimate")
                if est_s is None and isinstance(s.get("relapse"), dict):
                    est_s = s["relapse"].get("estimate")
                est_text = "NA" if est_s is None else f"{est_s:.4g}"
                lines.append(f"- Sensitivity ({s.get('rule', '')}): estimate {est_text}, "
                             f"n = {s.get('n')}")
        else:
            lines.append(f"- Not computable: {r.reason}")
        lines.append("")
    lines += cd7_safety_lines(analysis.cd7_safety if analysis.cd7_safety is not None
                              else cd7_safety(analysis.datasets))
    if analysis.rp2d is not None:
        r = analysis.rp2d
        lines += ["## Recommended phase II dose",
                  f"- RP2D: {r['level'] or 'none'}; {r['reason']}",
                  f"- Rule: {r['note']}", ""]
    return "\n".join(lines)


def cd7_safety(datasets: dict[str, pd.DataFrame], protocol: Any = None) -> dict[str, Any]:
    """CD7-specific safety of the infused set, not registered as outcome measures (issue 13):
    early/late ICAHT grade distribution (ADSL EICAHTGR/LICAHTGR), T/NK aplasia per marker
    (ADTOX APL*: patients below the threshold, Kaplan-Meier median duration with ongoing
    aplasia censored, so that an aplasia still running at the last count is not dropped),
    tocilizumab and corticosteroid use (ADSL TOCIFL/CORTFL), CD7-negative relapses, infection
    density, and acute GVHD (``adtox.gvhd_incidence``: any grade and MAGIC grade II-IV by day
    100, relapse, death and HSCT competing) when the protocol's product is donor-derived (or of
    unknown origin with a GVHD AE recorded); for an autologous product GVHD is not attributed
    to it (a GVHD AE then follows an allogeneic HSCT). Empty when nobody was infused."""
    from celltrial.stats import kaplan_meier

    adsl, adtox = datasets["adsl"], datasets.get("adtox")
    infused = adsl[adsl["SAFFL"] == "Y"]
    if infused.empty:
        return {}
    out: dict[str, Any] = {"infused": len(infused)}
    for column, key in (("EICAHTGR", "early_icaht"), ("LICAHTGR", "late_icaht")):
        grades = infused[column].dropna() if column in infused.columns else pd.Series(
            dtype=float)
        out[key] = {"assessed": len(grades),
                    "by_grade": {str(g): int((grades == g).sum()) for g in range(5)},
                    "grade_3_or_more": int((grades >= 3).sum())}
    aplasia: dict[str, Any] = {}
    if adtox is not None and len(adtox):
        for paramcd, rows in adtox[adtox["PARAMCD"].str.startswith("APL")].groupby("PARAMCD"):
            aplastic = rows[rows["APLFL"] == "Y"]
            entry: dict[str, Any] = {
                "param": str(rows["PARAM"].iloc[0]), "threshold_per_ul": float(
                    rows["THRESH"].iloc[0]), "source": str(rows["THRSRC"].iloc[0]),
                "with_counts": len(rows), "aplastic": len(aplastic),
                "recovered": int((aplastic["CNSR"] == 0).sum()), "median_days": None}
            if len(aplastic):
                fit = kaplan_meier(aplastic["AVAL"].to_numpy(float),
                                   (aplastic["CNSR"] == 0).to_numpy(int))
                median = float(fit.median)
                entry["median_days"] = median if math.isfinite(median) else None
            aplasia[str(paramcd)] = entry
    out["aplasia"] = aplasia
    for column, key in (("TOCIFL", "tocilizumab"), ("CORTFL", "corticosteroids")):
        if column in infused.columns:
            out[key] = int((infused[column] == "Y").sum())
    if "adae" in datasets:
        out["infection_density"] = infection_density_by_window(datasets["adae"], adsl)
    origin = str(getattr(getattr(protocol, "intervention", None), "product_origin", "unknown"))
    adae = datasets.get("adae")
    gvhd_aes = 0 if adae is None or adae.empty else int(
        (adae["AEDECOD"].astype(str).str.strip().str.lower() == GVHD_TERM).sum())
    if origin.startswith("donor") or (origin == "unknown" and gvhd_aes):
        out["gvhd"] = {"product_origin": origin, "gvhd_aes": gvhd_aes,
                       "any_grade": gvhd_incidence(adae, adsl, datasets["adrs"]),
                       "grade_2_to_4": gvhd_incidence(adae, adsl, datasets["adrs"],
                                                      min_grade=2)}
    else:
        out["gvhd"] = {"product_origin": origin, "gvhd_aes": gvhd_aes,
                       "reason": f"not assessed: {origin} product (GVHD AEs recorded: "
                                 f"{gvhd_aes}, e.g. after an allogeneic HSCT)"}
    if "CD7NRLFL" in infused.columns:
        flags = infused["CD7NRLFL"]
        out["cd7_at_relapse"] = {"with_result": int(flags.isin(["Y", "N"]).sum()),
                                 "cd7_negative": int((flags == "Y").sum()),
                                 "negative_at_or_below_pct": CD7_NEGATIVE_AT_OR_BELOW_PCT}
    return out


def _km(rows: pd.DataFrame) -> dict[str, Any]:
    """n, events, median and its log-type 95% CI (None where not reached / not estimable) of
    Kaplan-Meier on ADTTE-shaped rows (``celltrial.stats.kaplan_meier``, R survfit rules)."""
    from celltrial.stats import kaplan_meier

    fit = kaplan_meier(rows["AVAL"].to_numpy(float), (rows["CNSR"] == 0).to_numpy(int),
                       conf_type="log")

    def finite(value: float) -> float | None:
        return float(value) if math.isfinite(value) else None

    lo, hi = (float(v) for v in fit.median_ci)
    return {"n": len(rows), "events": int((rows["CNSR"] == 0).sum()),
            "median": finite(float(fit.median)), "median_ci": [finite(lo), finite(hi)]}


def _censoring(rows: pd.DataFrame) -> dict[str, int]:
    """Censored rows per reason (EVNTDESC of ``persistence.EVENT_TYPES``), every reason listed."""
    censored = rows.loc[rows["CNSR"] == 1, "EVNTTYPE"].astype(int)
    return {EVENT_TYPES[k]: int((censored == k).sum()) for k in sorted(EVENT_TYPES) if k != 1}


PERSISTENCE_ANALYTES = ("CARTQPCR", "CARTABS", "CARTPCT")
"""The analytes of ``celltrial.derive.persistence`` in report order: the CAR transgene by
qPCR first (the registered kinetics measure of the shipped protocols), then flow."""


def persistence_summary(datasets: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Persistence of CAR-T cells as time to loss of detectable CAR-T, per analyte, whether
    or not an outcome measure asks for it: the Kaplan-Meier median with its log-type 95% CI
    of the ADTTE ``LOSS*`` rows (``celltrial.derive.persistence``: the loss is the first BLQ
    sample after the last quantifiable one; death and allogeneic HSCT while detectable are
    censored at the last quantifiable sample, samples after HSCT not read), overall and per
    dose level, the censoring reasons (EVNTDESC) and the infused patients sampled but never
    quantifiable (not in the set). Empty when nobody has a quantifiable sample."""
    adtte, adpc, adsl = datasets.get("adtte"), datasets.get("adpc"), datasets["adsl"]
    if adtte is None or adtte.empty or "ANALYTE" not in adtte.columns:
        return {}
    out: dict[str, Any] = {}
    for analyte in PERSISTENCE_ANALYTES:
        rows = adtte[(adtte["ANALYTE"] == analyte) & adtte["PARAMCD"].astype(str)
                     .str.startswith("LOSS") & adtte["AVAL"].notna()]
        if rows.empty:
            continue
        by_level = {str(level): {**_km(g), "censoring": _censoring(g)} for level, g in
                    rows.sort_values("TRT01AN").groupby("TRT01A", sort=False)}
        out[analyte] = {"paramcd": str(rows["PARAMCD"].iloc[0]), **_km(rows),
                        "censoring": _censoring(rows), "by_dose_level": by_level,
                        "never_quantifiable": never_quantifiable(adpc, adsl, analyte, rows)
                        if adpc is not None else 0}
    return out


def cd7_safety_lines(summary: dict[str, Any]) -> list[str]:
    """The summary.md section of :func:`cd7_safety`."""
    if not summary:
        return []
    n = summary["infused"]
    lines = ["## CD7 CAR-T safety: ICAHT, T/NK aplasia, supportive drugs (not registered)"]
    for key, label in (("early_icaht", "Early ICAHT (EHA/EBMT 2023)"),
                       ("late_icaht", "Late ICAHT (EHA/EBMT 2023)")):
        s = summary[key]
        if not s["assessed"]:
            lines.append(f"- {label}: not assessed (no post-infusion ANC)")
            continue
        dist = ", ".join(f"grade {g}: {c}" for g, c in s["by_grade"].items())
        lines.append(f"- {label}: {s['assessed']} assessed of {n} infused; {dist}; grade >= 3 "
                     f"{s['grade_3_or_more']}/{s['assessed']}")
    for e in summary["aplasia"].values():
        median = ("not reached" if e["median_days"] is None else f"{e['median_days']:g} days")
        lines.append(f"- {e['param'].replace(' duration (days)', '')} below "
                     f"{e['threshold_per_ul']:g}/uL: {e['aplastic']}/{e['with_counts']} with "
                     f"counts; {e['recovered']} recovered; median duration (Kaplan-Meier, "
                     f"ongoing censored) {median}" if e["aplastic"] else
                     f"- {e['param'].replace(' duration (days)', '')} below "
                     f"{e['threshold_per_ul']:g}/uL: 0/{e['with_counts']} with counts")
    for key in ("tocilizumab", "corticosteroids"):
        if key in summary:
            lines.append(f"- Received {key} from the infusion on: {summary[key]}/{n}")
    if "cd7_at_relapse" in summary:
        r = summary["cd7_at_relapse"]
        lines.append(f"- CD7-negative relapse (CD7+ blasts <= "
                     f"{r['negative_at_or_below_pct']:g}% at relapse): {r['cd7_negative']}/"
                     f"{r['with_result']} relapses with a CD7 result")
    gvhd = summary.get("gvhd", {})
    if "any_grade" in gvhd:
        for key, label in (("any_grade", "any grade"), ("grade_2_to_4", "MAGIC grade II-IV")):
            g = gvhd[key]
            lines.append(f"- Acute GVHD ({label}), {gvhd['product_origin']} product: cumulative "
                         f"incidence {g['estimate']:.3g} by day {g['landmark_day']:g} "
                         f"({g['events']['GVHD']}/{g['n']}; relapse, death and HSCT competing)")
    elif gvhd:
        lines.append(f"- Acute GVHD: {gvhd['reason']} ({gvhd['product_origin']})")
    for w in summary.get("infection_density", []):
        rate = w["per_100_patient_days"]
        lines.append(f"- Infections (CTCAE SOC Infections and infestations), days "
                     f"{w['window'][0]}-{w['window'][1]}: {w['infections']} in "
                     f"{w['patient_days']:g} patient-days ("
                     + ("no patient-days" if rate is None else f"{rate:.3g} per 100 "
                        "patient-days") + "; Hill 2018 windows)")
    return [*lines, ""]


def write_analysis(analysis: Analysis, out_dir: Path) -> list[Path]:
    """Write datasets (parquet + CSV), ``endpoints.json`` and ``summary.md``; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in DATASET_ORDER:
        frame = _for_files(analysis.datasets[name])
        frame.attrs = {}
        parquet, csv = out_dir / f"{name}.parquet", out_dir / f"{name}.csv"
        frame.to_parquet(parquet, index=False)
        neutralise_frame(frame).to_csv(csv, index=False)  # no formula cells (CSV injection)
        written += [parquet, csv]
    payload = {"study": analysis.study, "protocol_version": analysis.protocol_version,
               "options": analysis.options,
               "endpoints": [r.to_dict() for r in analysis.endpoints],
               "rp2d": analysis.rp2d,
               "cd7_safety": analysis.cd7_safety if analysis.cd7_safety is not None
               else cd7_safety(analysis.datasets),
               "persistence": analysis.persistence if analysis.persistence is not None
               else persistence_summary(analysis.datasets)}
    endpoints_file = out_dir / "endpoints.json"
    endpoints_file.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    summary_file = out_dir / "summary.md"
    summary_file.write_text(summary_markdown(analysis), encoding="utf-8")
    return [*written, endpoints_file, summary_file]

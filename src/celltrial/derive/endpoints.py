"""Every protocol outcome measure from the analysis datasets: one function per derivation key.

``DERIVATION_FUNCTIONS`` maps each key of ``celltrial.protocols.DERIVATIONS`` to a function
``(datasets, endpoint, protocol) -> EndpointResult``. A function that cannot compute its outcome
raises :class:`~celltrial.errors.NotComputable` with the reason, and :func:`compute_endpoint`
turns it into an entry with status ``not computable`` — no outcome is silently missing.

Statistics: rates with exact Clopper-Pearson intervals; survival by Kaplan-Meier (Greenwood,
log-type interval as R's survfit) at the time-frame landmark with the median and its interval;
cumulative incidence of relapse by Aalen-Johansen with ``cmprsk::cuminc`` variance and a
log(-log) interval; kinetics as geometric mean, geometric CV%, median and range of ADPP values
(``celltrial.stats``). Populations: safety = SAFFL, DLT-evaluable = DLTEVLFL, efficacy =
EFFFL (docs/derive.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from celltrial.derive.adrs import ORR_DEFAULT, REMISSION, best_response, first_day_in
from celltrial.derive.adrs import response_at_day
from celltrial.errors import NotComputable

Datasets = Mapping[str, pd.DataFrame]
OK, NOT_COMPUTABLE = "ok", "not computable"
CONF_LEVEL = 0.95


@dataclass(frozen=True)
class EndpointResult:
    """One outcome measure: identity as registered, then a value with CI and n, or the reason."""

    id: str
    name: str
    derivation: str | None
    time_frame: str
    time_frame_days: int | None
    status: str
    measure: int | None = None
    kind: str = ""
    estimate: float | None = None
    ci: tuple[float, float] | None = None
    n: int | None = None
    unit: str = ""
    method: str = ""
    summary: str = ""
    reason: str = ""
    estimates: dict[str, Any] = field(default_factory=dict)
    sensitivity: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (NaN becomes None)."""
        return _clean(asdict(self))


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value


def _result(endpoint: Any, **fields: Any) -> EndpointResult:
    return EndpointResult(
        id=endpoint.id, name=endpoint.name, derivation=endpoint.derivation,
        time_frame=endpoint.time_frame, time_frame_days=endpoint.time_frame_days,
        measure=getattr(endpoint, "measure", None), kind=getattr(endpoint, "kind", ""),
        status=fields.pop("status", OK), **fields)


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "NA"
    return f"{x:.{digits}g}"


def _dataset(datasets: Datasets, name: str) -> pd.DataFrame:
    frame = datasets.get(name)
    if frame is None:
        raise NotComputable(f"no {name.upper()} dataset")
    return frame


def _population(datasets: Datasets, flag: str, label: str) -> pd.DataFrame:
    adsl = _dataset(datasets, "adsl")
    pop = adsl[adsl[flag] == "Y"]
    if pop.empty:
        raise NotComputable(f"no patient in the {label} ({flag} = Y)")
    return pop


# --- rates ---------------------------------------------------------------------------------

def _cp(x: int, n: int) -> tuple[float, float]:
    from celltrial.stats import clopper_pearson

    lower, upper = clopper_pearson(int(x), int(n), level=CONF_LEVEL)
    return float(lower), float(upper)


def _rate_by_level(pop: pd.DataFrame, hit: pd.Series) -> dict[str, Any]:
    levels: dict[str, Any] = {}
    for level, group in pop.groupby(pop["TRT01A"].astype(object).fillna("not dosed"), sort=False):
        x, n = int(hit.reindex(group["USUBJID"]).fillna(False).sum()), len(group)
        levels[str(level)] = {"x": x, "n": n, "rate": x / n, "ci": _cp(x, n)}
    order = pop.drop_duplicates("TRT01A").sort_values("TRT01AN")["TRT01A"].astype(object).fillna("not dosed")
    return {str(k): levels[str(k)] for k in order if str(k) in levels}


def _rate(endpoint: Any, pop: pd.DataFrame, hit: pd.Series, what: str, population: str,
          **extra: Any) -> EndpointResult:
    """A proportion of ``pop`` (hit indexed by USUBJID) with its Clopper-Pearson CI."""
    hit = hit.astype(bool)
    x, n = int(hit.reindex(pop["USUBJID"]).fillna(False).sum()), len(pop)
    lower, upper = _cp(x, n)
    estimates = {"x": x, "by_dose_level": _rate_by_level(pop, hit), **extra.pop("estimates", {})}
    return _result(endpoint, estimate=x / n, ci=(lower, upper), n=n, unit="proportion",
                   method="proportion with exact Clopper-Pearson 95% CI",
                   summary=f"{x}/{n} {population} ({100 * x / n:.1f}%) {what}"
                   + extra.pop("suffix", ""), estimates=estimates, **extra)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dict("records")


def _treatment_emergent(datasets: Datasets, pop: pd.DataFrame, days: int) -> pd.DataFrame:
    adae = _dataset(datasets, "adae")
    return adae[(adae["TRTEMFL"] == "Y") & (adae["ASTDY"] <= days)
                & adae["USUBJID"].isin(pop["USUBJID"])]


def ae_incidence(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """Patients with >= 1 treatment-emergent AE (days 0..time frame) in the safety set; number
    of events, worst grade per patient, and patients by term and worst grade by dose level
    (``celltrial.stats.safety.ae_incidence``; CTCAE v5.0 / ASTCT 2019 grades as recorded).
    Params ``categories`` restrict to DLT categories (crs, icans, hematologic, non_hematologic)."""
    from celltrial.stats.safety import ae_incidence as incidence_table

    pop = _population(datasets, "SAFFL", "safety set")
    events = _treatment_emergent(datasets, pop, endpoint.time_frame_days)
    categories = endpoint.params.get("categories")
    if categories:
        events = events[events["ACAT"].isin(categories)]
    worst = events.groupby("USUBJID")["ATOXGRN"].max()
    grade_counts = {f"grade_{g}": int((worst == g).sum()) for g in range(1, 6)}
    g3 = int((worst >= 3).sum())
    return _rate(endpoint, pop, pd.Series(True, index=worst.index),
                 "with at least one adverse event", "patients",
                 suffix=f"; {len(events)} events; {g3} patients with grade >= 3",
                 estimates={"events": int(len(events)), "patients_grade_3_plus": g3,
                            "worst_grade": grade_counts,
                            "by_term": _records(incidence_table(events, pop))})


def crs_icans_incidence(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """Incidence of CRS (estimate) and ICANS in the safety set within the time frame, by worst
    ASTCT 2019 grade and dose level, with onset and duration of the episodes
    (``celltrial.stats.safety.crs_icans_summary``)."""
    from celltrial.stats.safety import crs_icans_summary

    pop = _population(datasets, "SAFFL", "safety set")
    events = _treatment_emergent(datasets, pop, endpoint.time_frame_days)
    table = crs_icans_summary(events[events["ACAT"].isin(("crs", "icans"))], pop)
    overall = table[table["level"] == "All"].set_index("syndrome")
    texts = []
    for syndrome in ("CRS", "ICANS"):
        row = overall.loc[syndrome]
        texts.append(f"{syndrome} {int(row['n_any'])}/{int(row['N'])} "
                     f"({row['pct_any']:.1f}%), grade >= 3: {int(row['n_grade_3plus'])}")
    crs = events.loc[events["ACAT"] == "crs", "USUBJID"].unique()
    icans = events.loc[events["ACAT"] == "icans", "USUBJID"].unique()
    x_icans, n = len(icans), len(pop)
    return _rate(endpoint, pop, pd.Series(True, index=crs), "with CRS", "patients",
                 suffix="; " + "; ".join(texts),
                 estimates={"icans": {"x": x_icans, "n": n, "rate": x_icans / n,
                                      "ci": _cp(x_icans, n)},
                            "by_syndrome_and_level": _records(table)})


def dlt_rate(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """DLT rate in the DLT-evaluable set (protocol DLT window and rules), by dose level."""
    pop = _population(datasets, "DLTEVLFL", "DLT-evaluable set")
    hit = pd.Series((pop["DLTFL"] == "Y").to_numpy(), index=pop["USUBJID"].to_numpy())
    return _rate(endpoint, pop, hit, "with a dose-limiting toxicity", "DLT-evaluable patients")


def _responders(datasets: Datasets, endpoint: Any, categories: tuple[str, ...]
                ) -> tuple[pd.DataFrame, pd.Series, str]:
    pop = _population(datasets, "EFFFL", "efficacy-evaluable set")
    adrs, adsl = _dataset(datasets, "adrs"), _dataset(datasets, "adsl")
    at_day = endpoint.params.get("at_day")
    if at_day is not None:
        status = response_at_day(adrs, adsl, float(at_day))
        rule = f"response at day {at_day} (latest assessment up to day {at_day} + 14)"
    else:
        status = best_response(adrs, endpoint.time_frame_days)
        rule = f"best response up to day {endpoint.time_frame_days}"
    return pop, status.isin(categories), rule


def _itt_rate(datasets: Datasets, hit: pd.Series) -> dict[str, Any] | None:
    """The same responders over the intention-to-treat set (ADSL ITTFL): a patient enrolled
    and assigned a dose level but never infused, or infused and not evaluable, counts as a
    non-responder (ICH E9 intention-to-treat). None when ADSL has no ITTFL or nobody in it."""
    adsl = _dataset(datasets, "adsl")
    if "ITTFL" not in adsl.columns or not (adsl["ITTFL"] == "Y").any():
        return None
    itt = adsl.loc[adsl["ITTFL"] == "Y", "USUBJID"]
    x = int(hit.astype(bool).reindex(itt).fillna(False).sum())
    n = len(itt)
    return {"x": x, "n": n, "rate": x / n, "ci": _cp(x, n),
            "not_infused": int((adsl.loc[adsl["ITTFL"] == "Y", "SAFFL"] != "Y").sum())}


def remission_rate(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """Remission (default CR + CRi; params ``categories``, ``at_day``) among efficacy-evaluable;
    the rate over the intention-to-treat set in ``estimates["itt"]``."""
    categories = tuple(endpoint.params.get("categories") or ("CR", "CRi"))
    pop, hit, rule = _responders(datasets, endpoint, categories)
    return _rate(endpoint, pop, hit, f"in {'/'.join(categories)} ({rule})",
                 "efficacy-evaluable patients", estimates={"itt": _itt_rate(datasets, hit)})


def orr(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """Overall response rate (default CR, CRh, CRi, MLFS, PR; params ``categories``, ``at_day``)
    among efficacy-evaluable; the rate over the intention-to-treat set in
    ``estimates["itt"]``."""
    categories = tuple(endpoint.params.get("categories") or ORR_DEFAULT)
    pop, hit, rule = _responders(datasets, endpoint, categories)
    return _rate(endpoint, pop, hit, f"responding ({'/'.join(categories)}; {rule})",
                 "efficacy-evaluable patients", estimates={"itt": _itt_rate(datasets, hit)})


def mrd_threshold(disease: object, params: Mapping[str, Any]) -> float:
    """MRD-negative threshold as a fraction of cells: params ``threshold``, else 1e-3 (0.1%) for
    AML/MPAL by flow (ELN MRD working party 2021 [R5]) and 1e-4 (0.01%) for ALL/LBL [R7]."""
    if params.get("threshold") is not None:
        return float(params["threshold"])
    return 1e-3 if str(disease).upper() in ("AML", "MPAL") else 1e-4


def _mrd_rate(datasets: Datasets, endpoint: Any, method: str, label: str) -> EndpointResult:
    pop = _population(datasets, "EFFFL", "efficacy-evaluable set")
    adrs, adlb = _dataset(datasets, "adrs"), _dataset(datasets, "adlb")
    mrd = adlb[(adlb["PARAMCD"] == "MRD") & adlb["AVAL"].notna() & (adlb["ADY"] > 0)
               & (adlb["ADY"] <= endpoint.time_frame_days)
               & (adlb["LBMETHOD"].astype(str).str.upper() == method)]
    if mrd.empty:
        raise NotComputable(f"no post-infusion MRD results by {method} (ADLB PARAMCD MRD, "
                            f"LBMETHOD {method}) within the time frame")
    remission = first_day_in(adrs, REMISSION, up_to_day=endpoint.time_frame_days)
    disease = pop.set_index("USUBJID")["DISEASE"]
    threshold = mrd["USUBJID"].map(lambda u: mrd_threshold(disease.get(u), endpoint.params))
    in_remission = mrd["ADY"] >= mrd["USUBJID"].map(remission) - 7
    negative = mrd[(mrd["AVAL"] < threshold) & in_remission.fillna(False)]
    hit = pd.Series(True, index=negative["USUBJID"].unique())
    return _rate(endpoint, pop, hit, f"in CR/CRh/CRi with {label}", "efficacy-evaluable patients",
                 estimates={"patients_with_mrd_results": int(mrd["USUBJID"].nunique())})


def mrd_negative_rate(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """MRD-negative remission by flow cytometry (params ``method``, ``threshold``)."""
    method = str(endpoint.params.get("method", "FLOW")).upper()
    return _mrd_rate(datasets, endpoint, method, f"MRD below threshold by {method}")


def molecular_remission_rate(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """Molecular remission: remission with qPCR MRD below threshold (where a marker exists)."""
    return _mrd_rate(datasets, endpoint, "QPCR", "molecular (qPCR) MRD below threshold")


def em_response_rate(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """Extramedullary response (Lugano 2014; default CR or PR) among patients with EM disease
    (ADSL EMDFL, baseline TU lesions, or post-infusion EMRESP assessments), best within the
    time frame."""
    adsl, adrs = _dataset(datasets, "adsl"), _dataset(datasets, "adrs")
    categories = tuple(endpoint.params.get("categories") or ("CR", "PR"))
    em = adrs[(adrs["PARAMCD"] == "EMRESP") & (adrs["ADY"] > 0)
              & (adrs["ADY"] <= endpoint.time_frame_days)]
    pop = adsl[(adsl["SAFFL"] == "Y") & (adsl["USUBJID"].isin(em["USUBJID"])
                                         | (adsl["EMDFL"] == "Y"))]
    if pop.empty:
        raise NotComputable("no infused patient with extramedullary disease (no EMRESP "
                            "assessments or TU lesions)")
    hit = em.groupby("USUBJID")["AVALC"].agg(lambda s: bool(s.isin(categories).any()))
    return _rate(endpoint, pop, hit, f"with extramedullary {'/'.join(categories)}",
                 "patients with extramedullary disease")


def _mrd_status(datasets: Datasets, endpoint: Any, subjects: pd.Series) -> pd.Series:
    """Per remitting subject: ``MRD-`` (any flow/qPCR MRD below threshold from 7 days before the
    first remission), ``MRD+`` (MRD results, none below), absent when no MRD result."""
    adlb, adrs = datasets.get("adlb"), _dataset(datasets, "adrs")
    if adlb is None or adlb.empty:
        return pd.Series(dtype=object)
    remission = first_day_in(adrs, REMISSION, up_to_day=endpoint.time_frame_days)
    mrd = adlb[(adlb["PARAMCD"] == "MRD") & adlb["AVAL"].notna() & (adlb["ADY"] > 0)
               & (adlb["ADY"] <= endpoint.time_frame_days) & adlb["USUBJID"].isin(subjects)]
    mrd = mrd[mrd["ADY"] >= mrd["USUBJID"].map(remission) - 7]
    adsl = _dataset(datasets, "adsl").set_index("USUBJID")
    threshold = mrd["USUBJID"].map(lambda u: mrd_threshold(adsl["DISEASE"].get(u), endpoint.params))
    negative = (mrd["AVAL"] < threshold).groupby(mrd["USUBJID"]).any()
    return negative.map({True: "MRD-", False: "MRD+"}).astype(object)


def best_response_summary(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """Best overall response up to the time frame among efficacy-evaluable patients (NE where no
    assessment): estimate = proportion in remission (CR/CRh/CRi); the distribution counts every
    category, and the ``categories`` param's extra labels: ``MRD-``/``MRD+`` (remitters by MRD
    status) and ``RELAPSE``/``PD`` (patients with that event after infusion)."""
    pop = _population(datasets, "EFFFL", "efficacy-evaluable set")
    adrs = _dataset(datasets, "adrs")
    best = best_response(adrs, endpoint.time_frame_days)
    bor = pop["USUBJID"].map(best).astype(object).fillna("NE")
    counts: dict[str, int] = {str(k): int(v) for k, v in bor.value_counts().items()}
    remitters = pop.loc[bor.isin(REMISSION).to_numpy(), "USUBJID"]
    mrd = _mrd_status(datasets, endpoint, remitters)
    events = adrs[(adrs["ADY"] > 0) & (adrs["ADY"] <= endpoint.time_frame_days)
                  & adrs["USUBJID"].isin(pop["USUBJID"])]
    categories = tuple(endpoint.params.get("categories") or ())
    requested: dict[str, int] = {}
    for category in categories:
        if category in ("MRD-", "MRD+"):
            requested[category] = int((mrd == category).sum())
        elif category in ("RELAPSE", "PD"):
            requested[category] = int(events.loc[events["AVALC"] == category, "USUBJID"].nunique())
        else:
            requested[category] = counts.get(category, 0)
    hit = pd.Series(bor.isin(REMISSION).to_numpy(), index=pop["USUBJID"].to_numpy())
    shown = requested or counts
    text = ", ".join(f"{k} {v}" for k, v in shown.items())
    return _rate(endpoint, pop, hit, "with best response CR/CRh/CRi",
                 "efficacy-evaluable patients", suffix=f"; {text}",
                 estimates={"best_response": counts, "categories": requested,
                            "remitters_without_mrd_result": int(len(remitters) - len(mrd))})


# --- time to event --------------------------------------------------------------------------

def _km_summary(adtte: pd.DataFrame, paramcd: str, days: int) -> dict[str, Any]:
    from celltrial.stats import kaplan_meier

    rows = adtte[adtte["PARAMCD"] == paramcd]
    if rows.empty:
        raise NotComputable(f"no patient in the {paramcd} population")
    time, event = rows["AVAL"].to_numpy(float), (rows["CNSR"] == 0).to_numpy(int)
    fit = kaplan_meier(time, event, conf_type="log")
    median_ci = tuple(float(v) for v in fit.median_ci)
    out: dict[str, Any] = {"n": len(rows), "events": int(event.sum()),
                           "median": float(fit.median), "median_ci": median_ci,
                           "max_follow_up": float(time.max()), "landmark_day": days}
    if time.max() >= days:
        at = fit.at([float(days)])
        out.update(estimate=float(at["surv"].iloc[0]),
                   ci=(float(at["lower"].iloc[0]), float(at["upper"].iloc[0])))
    else:
        out.update(estimate=None, ci=None)
    return out


def _tte(datasets: Datasets, endpoint: Any, paramcd: str, label: str) -> EndpointResult:
    adtte = _dataset(datasets, "adtte")
    main = _km_summary(adtte, paramcd, endpoint.time_frame_days)
    days = endpoint.time_frame_days
    sensitivity = None
    if (adtte["PARAMCD"] == paramcd + "SENS").any():
        sens = _km_summary(adtte, paramcd + "SENS", days)
        rule = adtte.loc[adtte["PARAMCD"] == paramcd + "SENS", "HSCTRULE"].iloc[0]
        sensitivity = {"rule": rule, **sens}
    median = (f"median {_fmt(main['median'])} days (95% CI {_fmt(main['median_ci'][0])}-"
              f"{_fmt(main['median_ci'][1])}), {main['events']} events / {main['n']}")
    if main["estimate"] is None:
        raise NotComputable(f"no patient followed to day {days} (longest follow-up "
                            f"{main['max_follow_up']:g} days); {median}")
    lo, hi = main["ci"]
    return _result(endpoint, estimate=main["estimate"], ci=(lo, hi), n=main["n"],
                   unit="probability", estimates={k: v for k, v in main.items()
                                                  if k not in ("estimate", "ci")},
                   method="Kaplan-Meier, Greenwood variance, log-type 95% CI (R survfit)",
                   summary=f"{label} at day {days}: {_fmt(main['estimate'])} (95% CI {_fmt(lo)}-"
                   f"{_fmt(hi)}); {median}", sensitivity=sensitivity)


def os_(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """Overall survival from first infusion (ADTTE OS)."""
    return _tte(datasets, endpoint, "OS", "OS")


def pfs(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """Progression-free survival from first infusion (ADTTE PFS; sensitivity PFSSENS)."""
    return _tte(datasets, endpoint, "PFS", "PFS")


def efs(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """Event-free survival, ELN 2022 (ADTTE EFS; sensitivity EFSSENS)."""
    return _tte(datasets, endpoint, "EFS", "EFS")


def dor(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """Duration of response among responders (ADTTE DOR; sensitivity DORSENS): the median
    duration in days with its CI (Kaplan-Meier, R survfit rule); the probability of remaining in
    response at the time frame goes with it when follow-up reaches it. A median that is not
    reached is a result ("not reached"): no estimate, the lower CI limit, counts and
    follow-up in the summary."""
    adtte = _dataset(datasets, "adtte")
    if not (adtte["PARAMCD"] == "DOR").any():
        raise NotComputable("no responder: duration of response needs at least one response")
    days = endpoint.time_frame_days
    main = _km_summary(adtte, "DOR", days)
    sensitivity = None
    if (adtte["PARAMCD"] == "DORSENS").any():
        rule = adtte.loc[adtte["PARAMCD"] == "DORSENS", "HSCTRULE"].iloc[0]
        sensitivity = {"rule": rule, **_km_summary(adtte, "DORSENS", days)}
        sensitivity["estimate"] = sensitivity["median"]
    landmark = ("" if main["estimate"] is None else
                f"; in response at day {days}: {_fmt(main['estimate'])}")
    counts = (f"{main['events']} relapses/progressions or deaths among {main['n']} responders, "
              f"longest follow-up {main['max_follow_up']:g} days")
    lo, hi = main["median_ci"]
    if not math.isfinite(main["median"]):
        return _result(endpoint, estimate=None, ci=(lo, hi) if math.isfinite(lo) else None,
                       n=main["n"], unit="days",
                       estimates={k: v for k, v in main.items() if k not in ("estimate", "ci")}
                       | {"in_response_at_time_frame": main["estimate"],
                          "in_response_at_time_frame_ci": main["ci"]},
                       method="Kaplan-Meier median (R survfit print rule), log-type 95% CI",
                       reason="median not reached",
                       summary=f"median duration of response not reached (95% CI "
                       f"{_fmt(lo)}-NA); {counts}{landmark}", sensitivity=sensitivity)
    return _result(endpoint, estimate=main["median"], ci=(lo, hi), n=main["n"], unit="days",
                   estimates={k: v for k, v in main.items() if k not in ("estimate", "ci")}
                   | {"in_response_at_time_frame": main["estimate"],
                      "in_response_at_time_frame_ci": main["ci"]},
                   method="Kaplan-Meier median (R survfit print rule), log-type 95% CI",
                   summary=f"median duration of response {_fmt(main['median'])} days (95% CI "
                   f"{_fmt(lo)}-{_fmt(hi)}); {counts}{landmark}", sensitivity=sensitivity)


def _cif_summary(adtte: pd.DataFrame, paramcd: str, days: int) -> dict[str, Any]:
    from celltrial.stats import cumulative_incidence

    rows = adtte[adtte["PARAMCD"] == paramcd]
    if rows.empty:
        raise NotComputable("no patient in remission (CR/CRh/CRi): cumulative incidence of "
                            "relapse needs at least one")
    time, cause = rows["AVAL"].to_numpy(float), rows["EVNTTYPE"].to_numpy(int)
    # No relapse and no death in remission: the Aalen-Johansen estimate is 0 for both causes
    # with variance 0 (cmprsk::cuminc refuses such data, so there is no fit to ask).
    fit = cumulative_incidence(time, cause) if (cause != 0).any() else None
    landmark = min(float(days), float(time.max()))
    out: dict[str, Any] = {"n": len(rows), "relapses": int((cause == 1).sum()),
                           "deaths_in_remission": int((cause == 2).sum()),
                           "max_follow_up": float(time.max()), "time_frame_day": days,
                           "landmark_day": landmark}
    z = 1.959963984540054
    for code, label in ((1, "relapse"), (2, "death_in_remission")):
        est, var = _cif_at(fit, code, landmark)
        out[label] = {"estimate": est, "variance": var, "ci": _loglog_ci(est, var, z)}
    return out


def _cif_at(fit: Any, cause: int, time: float) -> tuple[float, float]:
    """Estimate and variance of the CIF of ``cause`` at ``time`` (cuminc/timepoints semantics:
    the step function's value at ``time``; 0 before the first event)."""
    if fit is None:
        return 0.0, 0.0
    table = fit.at([time])
    rows = table[table["cause"].astype(str) == str(cause)]
    if rows.empty:
        return 0.0, 0.0
    return float(rows["est"].iloc[0]), float(rows["var"].iloc[0])


def _loglog_ci(est: float, var: float, z: float) -> tuple[float, float] | None:
    """log(-log) interval for a cumulative incidence (as tidycmprsk/Stata stcompet):
    est^exp(+-z*sd/(est*log(est)))."""
    if not (0 < est < 1) or not math.isfinite(var):
        return None
    scale = z * math.sqrt(var) / (est * math.log(est))
    a, b = est ** math.exp(scale), est ** math.exp(-scale)
    return min(a, b), max(a, b)


RELAPSE_COVARIATES: tuple[tuple[str, str, float], ...] = (
    ("TRT01AN", "dose level (per level)", 1.0),
    ("BBLAST", "baseline blasts (per 10%)", 10.0),
)
"""ADSL covariates of the Fine-Gray regression of relapse: (column, label, unit divisor)."""


def relapse_regression(adtte: pd.DataFrame, adsl: pd.DataFrame, paramcd: str = "CIR"
                       ) -> dict[str, Any]:
    """Fine-Gray subdistribution hazard regression of relapse (EVNTTYPE 1) with death in
    remission competing (2) on :data:`RELAPSE_COVARIATES` (``celltrial.stats.finegray``,
    equal to R ``cmprsk::crr``): coefficients, SEs, subdistribution hazard ratios with Wald
    95% CIs and p-values. Complete cases only; a covariate constant among them is dropped and
    named. Not computable (``reason``) with fewer than 2 relapses, no varying covariate, fewer
    than 3 subjects per covariate, or a fit that does not converge."""
    from scipy import stats as sps

    from celltrial.stats.finegray import fine_gray

    columns = [c for c, _, _ in RELAPSE_COVARIATES]
    rows = adtte.loc[adtte["PARAMCD"] == paramcd,
                     [c for c in adtte.columns if c not in columns]].merge(
        adsl[["USUBJID", *columns]], on="USUBJID", how="left")
    complete = rows.dropna(subset=columns)
    out: dict[str, Any] = {"method": "Fine-Gray subdistribution hazards (R cmprsk::crr), "
                                     "death in remission competing; Wald 95% CI",
                           "n": len(complete), "missing_covariates": len(rows) - len(complete)}
    used = [(c, label, div) for c, label, div in RELAPSE_COVARIATES
            if complete[c].nunique() > 1]
    kept = {c for c, _, _ in used}
    out["dropped_constant"] = [label for c, label, _ in RELAPSE_COVARIATES if c not in kept]
    relapses = int((complete["EVNTTYPE"] == 1).sum())
    out["relapses"], out["competing"] = relapses, int((complete["EVNTTYPE"] == 2).sum())
    if relapses < 2 or not used or len(complete) < 3 * len(used):
        out["reason"] = (f"{relapses} relapses, {len(complete)} complete cases, {len(used)} "
                         "varying covariates: too few to fit")
        return out
    z = np.column_stack([complete[c].to_numpy(float) / div for c, _, div in used])
    try:
        fit = fine_gray(complete["AVAL"].to_numpy(float), complete["EVNTTYPE"].to_numpy(int),
                        z, names=[label for _, label, _ in used])
    except NotComputable as exc:
        out["reason"] = exc.message
        return out
    q = float(sps.norm.ppf(1 - (1 - CONF_LEVEL) / 2))
    out["coefficients"] = [
        {"covariate": name, "coef": float(b), "se": float(se), "shr": math.exp(b),
         "shr_ci": (math.exp(b - q * se), math.exp(b + q * se)),
         "p": float(2 * sps.norm.sf(abs(b / se))) if se > 0 else None}
        for name, b, se in zip(fit.names, fit.coef, fit.se)]
    return out


def cir(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """Cumulative incidence of relapse (Aalen-Johansen, death in remission competing;
    cmprsk::cuminc variance; log(-log) 95% CI), with the CIF of death in remission.

    Landmark: the time frame in days from remission, or the longest follow-up from remission
    when shorter (remission comes weeks after the infusion the time frame counts from, so a
    "2-year" study rarely follows anyone 2 years from remission); the summary names the day."""
    adtte = _dataset(datasets, "adtte")
    days = endpoint.time_frame_days
    main = _cif_summary(adtte, "CIR", days)
    sensitivity = None
    if (adtte["PARAMCD"] == "CIRSENS").any():
        rule = adtte.loc[adtte["PARAMCD"] == "CIRSENS", "HSCTRULE"].iloc[0]
        sensitivity = {"rule": rule, **_cif_summary(adtte, "CIRSENS", days)}
        sensitivity["estimate"] = sensitivity["relapse"]["estimate"]
    main["fine_gray"] = relapse_regression(adtte, _dataset(datasets, "adsl"))
    rel, landmark = main["relapse"], main["landmark_day"]
    lo, hi = rel["ci"] if rel["ci"] else (None, None)
    when = (f"by day {landmark:g} after remission" if landmark == days else
            f"by day {landmark:g} after remission (longest follow-up; time frame {days} days)")
    return _result(endpoint, estimate=rel["estimate"], ci=rel["ci"], n=main["n"],
                   unit="probability", estimates=main, sensitivity=sensitivity,
                   method="Aalen-Johansen cumulative incidence (cmprsk::cuminc variance), "
                   "log(-log) 95% CI; death in remission competing",
                   summary=f"relapse {when}: {_fmt(rel['estimate'])} (95% CI {_fmt(lo)}-"
                   f"{_fmt(hi)}); death in remission {_fmt(main['death_in_remission']['estimate'])}"
                   f"; {main['relapses']} relapses, {main['deaths_in_remission']} deaths in "
                   f"remission / {main['n']}")


# --- kinetics and pharmacodynamics ----------------------------------------------------------

FLOW_ANALYTE = "CARTPCT"
QPCR_ANALYTE = "CARTQPCR"


def _distribution(values: np.ndarray) -> dict[str, Any]:
    """n, geometric mean with t-based 95% CI, geometric CV%, median, min, max."""
    from scipy import stats as sps

    values = values[np.isfinite(values)]
    out: dict[str, Any] = {"n": int(len(values))}
    if len(values) == 0:
        return out
    out.update(median=float(np.median(values)), min=float(values.min()), max=float(values.max()),
               mean=float(values.mean()))
    positive = values[values > 0]
    if len(positive) == len(values) and len(values) >= 1:
        logs = np.log(values)
        out["geometric_mean"] = float(np.exp(logs.mean()))
        if len(values) >= 2:
            sd = float(logs.std(ddof=1))
            half = float(sps.t.ppf(0.975, len(values) - 1)) * sd / math.sqrt(len(values))
            out["geometric_mean_ci"] = (float(np.exp(logs.mean() - half)),
                                        float(np.exp(logs.mean() + half)))
            out["geometric_cv_pct"] = float(100 * math.sqrt(math.expm1(sd ** 2)))
    return out


def _adpp_param(datasets: Datasets, endpoint: Any, pptestcd: str, analyte: str,
                central: str) -> EndpointResult:
    adpp = _dataset(datasets, "adpp")
    rows = adpp[(adpp["PPTESTCD"] == pptestcd) & (adpp["ANALYTE"] == analyte)]
    if rows.empty:
        raise NotComputable(f"no {analyte} kinetics samples (ADPC) for any infused patient")
    values = rows["AVAL"].to_numpy(float)
    dist = _distribution(values)
    if dist["n"] == 0:
        reasons = "; ".join(sorted(set(rows["REASON"].astype(str)) - {""}))
        raise NotComputable(f"{pptestcd} of {analyte} missing for all {len(rows)} patients: "
                            f"{reasons}")
    by_level = {str(level): _distribution(g["AVAL"].to_numpy(float))
                for level, g in rows.sort_values("TRT01AN").groupby("TRT01A", sort=False)}
    unit = str(rows["AVALU"].iloc[0])
    if central == "geometric_mean" and "geometric_mean" in dist:
        estimate, ci = dist["geometric_mean"], dist.get("geometric_mean_ci")
        head = f"geometric mean {_fmt(estimate)} {unit}"
        if "geometric_cv_pct" in dist:
            head += f" (CV {dist['geometric_cv_pct']:.0f}%)"
    else:
        estimate, ci = dist["median"], None
        head = f"median {_fmt(estimate)} {unit}"
    missing = len(rows) - dist["n"]
    return _result(endpoint, estimate=estimate, ci=ci, n=dist["n"], unit=unit,
                   method=f"NCA ({rows['METHOD'].iloc[0]}) per patient, ADPP {pptestcd} of "
                   f"{analyte}; {central.replace('_', ' ')} across patients",
                   summary=f"{head}; median {_fmt(dist['median'])}, range {_fmt(dist['min'])}-"
                   f"{_fmt(dist['max'])}; n = {dist['n']}"
                   + (f" ({missing} without a value)" if missing else ""),
                   estimates={**dist, "by_dose_level": by_level,
                              "missing_reasons": sorted(set(rows["REASON"].astype(str)) - {""})})


FLOW_ABSOLUTE = "CARTABS"


def _flow_analyte(endpoint: Any, datasets: Datasets | None = None) -> str:
    """The flow analyte: params ``analyte``, else CAR+ cells/uL (CARTABS) where the study has
    a quantifiable absolute count, else % CAR+ of CD3+ (CARTPCT). A concentration is a count
    per volume; the % of CD3+ rises when CD3+ T cells fall (lymphodepletion, CD7 fratricide)
    without more CAR-T cells, so it is the secondary measure (issue 13)."""
    if "analyte" in endpoint.params:
        return str(endpoint.params["analyte"])
    adpc = (datasets or {}).get("adpc")
    if adpc is not None and len(adpc) and "PARAMCD" in adpc.columns:
        absolute = adpc[(adpc["PARAMCD"] == FLOW_ABSOLUTE) & adpc["AVAL"].notna()]
        if len(absolute):
            return FLOW_ABSOLUTE
    return FLOW_ANALYTE


def _kinetic(pptestcd: str, flow: bool, central: str) -> Callable[..., EndpointResult]:
    def derive(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
        analyte = _flow_analyte(endpoint, datasets) if flow else QPCR_ANALYTE
        result = _adpp_param(datasets, endpoint, pptestcd, analyte, central)
        if flow and analyte == FLOW_ABSOLUTE and "analyte" not in endpoint.params:
            try:
                other = _adpp_param(datasets, endpoint, pptestcd, FLOW_ANALYTE, central)
            except NotComputable as exc:
                secondary: dict[str, Any] = {"analyte": FLOW_ANALYTE, "reason": exc.message}
            else:
                secondary = {"analyte": FLOW_ANALYTE, "estimate": other.estimate,
                             "ci": other.ci, "n": other.n, "unit": other.unit,
                             "summary": other.summary}
            result = replace(result, estimates={**result.estimates,
                                                "secondary_pct_of_cd3": secondary})
        return result

    analyte_text = ("flow cytometry (CAR+ cells/uL where measured, % CAR+ of CD3+ as the "
                    "secondary; params analyte)") if flow else "qPCR"
    derive.__doc__ = f"ADPP {pptestcd} by {analyte_text}: {central.replace('_', ' ')}, range."
    return derive


def _persistence(flow: bool) -> Callable[..., EndpointResult]:
    def derive(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
        from celltrial.derive.persistence import EVENT_TYPES, build_persistence
        from celltrial.derive.persistence import never_quantifiable

        analyte = _flow_analyte(endpoint, datasets) if flow else QPCR_ANALYTE
        adpc, adsl = _dataset(datasets, "adpc"), _dataset(datasets, "adsl")
        confirm = endpoint.params.get("confirm_blq_samples", 1)
        rows = build_persistence(adpc, adsl, confirm=confirm)
        rows = rows[rows["ANALYTE"] == analyte]
        never = never_quantifiable(adpc, adsl, analyte, rows)
        if rows.empty:
            raise NotComputable(f"no infused patient with a quantifiable post-infusion "
                                f"{analyte} sample ({never} sampled, never quantifiable)")
        days = endpoint.time_frame_days
        main = _km_summary(rows, str(rows["PARAMCD"].iloc[0]), days)
        reasons = {EVENT_TYPES[k]: int(v) for k, v in rows["EVNTTYPE"].value_counts().items()}
        tlast = _dataset(datasets, "adpp")
        tlast = tlast[(tlast["PPTESTCD"] == "TLST") & (tlast["ANALYTE"] == analyte)]["AVAL"]
        tlast = tlast.to_numpy(float)
        tlast = tlast[np.isfinite(tlast)]
        by_level = {}
        for level, g in rows.sort_values("TRT01AN").groupby("TRT01A", sort=False):
            fit = _km_summary(g, str(g["PARAMCD"].iloc[0]), days)
            by_level[str(level)] = {k: fit[k] for k in ("n", "events", "median", "median_ci")}
        unit = "days"
        lo, hi = main["median_ci"]
        censored = ", ".join(f"{n} {d.lower()}" for d, n in sorted(reasons.items())
                             if d != EVENT_TYPES[1]) or "none"
        counts = (f"{main['events']} losses / {main['n']} patients with quantifiable "
                  f"{analyte}; censored: {censored}; {never} never quantifiable (not in the set)")
        landmark = ("" if main["estimate"] is None else
                    f"; still detectable at day {days}: {_fmt(main['estimate'])}")
        estimates = {k: v for k, v in main.items() if k not in ("estimate", "ci")} | {
            "analyte": analyte, "censoring": reasons, "never_quantifiable": never,
            "confirm_blq_samples": confirm, "detectable_at_time_frame": main["estimate"],
            "detectable_at_time_frame_ci": main["ci"], "by_dose_level": by_level,
            "median_tlast_biased": float(np.median(tlast)) if len(tlast) else None}
        method = ("Kaplan-Meier of time to loss of detectable CAR-T (event: first BLQ sample "
                  "after the last quantifiable one; death, HSCT and end of sampling while "
                  "detectable censored at the last quantifiable sample); median with log-type "
                  "95% CI (R survfit)")
        if not math.isfinite(main["median"]):
            return _result(endpoint, estimate=None, ci=(lo, hi) if math.isfinite(lo) else None,
                           n=main["n"], unit=unit, estimates=estimates, method=method,
                           reason="median not reached",
                           summary=f"median time to loss of detectable {analyte} not reached "
                           f"(95% CI {_fmt(lo)}-NA); {counts}{landmark}")
        return _result(endpoint, estimate=main["median"], ci=(lo, hi), n=main["n"], unit=unit,
                       estimates=estimates, method=method,
                       summary=f"median time to loss of detectable {analyte} "
                       f"{_fmt(main['median'])} days (95% CI {_fmt(lo)}-{_fmt(hi)}); "
                       f"{counts}{landmark}")

    derive.__doc__ = ("Persistence as time to loss of detectable CAR-T by "
                      + ("flow cytometry" if flow else "qPCR") + ": Kaplan-Meier median "
                      "(celltrial.derive.persistence has the event and censoring rules).")
    return derive


def _expansion(flow: bool) -> Callable[..., EndpointResult]:
    def derive(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
        analyte = _flow_analyte(endpoint, datasets) if flow else QPCR_ANALYTE
        adpc = _dataset(datasets, "adpc")
        pop = _population(datasets, "SAFFL", "safety set")
        rows = adpc[(adpc["PARAMCD"] == analyte) & (adpc["TIME"] > 0)
                    & (adpc["TIME"] <= endpoint.time_frame_days)
                    & adpc["USUBJID"].isin(pop["USUBJID"])
                    & (adpc["PCSPEC"].astype(object).fillna("BLOOD").astype(str).str.upper() == "BLOOD")]
        if rows.empty:
            raise NotComputable(f"no post-infusion {analyte} samples within the time frame")
        sampled = pop[pop["USUBJID"].isin(rows["USUBJID"])]
        quantifiable = rows[rows["AVAL"].notna() & (rows["AVAL"] > 0)]
        hit = pd.Series(True, index=quantifiable["USUBJID"].unique())
        per_day = []
        for day, group in rows.groupby("ADY"):
            dist = _distribution(group["AVAL"].dropna().to_numpy(float))
            per_day.append({"day": float(day), "samples": int(len(group)),
                            "quantifiable": int(group["AVAL"].notna().sum()), **dist})
        unit = str(rows["AVALU"].dropna().iloc[0]) if rows["AVALU"].notna().any() else ""
        return _rate(endpoint, sampled, hit, f"with quantifiable {analyte} (expansion)",
                     "sampled patients", estimates={"unit": unit, "per_day": per_day})

    derive.__doc__ = ("Expansion: patients with quantifiable CAR-T in blood after infusion "
                      "(Clopper-Pearson), and the concentration-time summary per study day.")
    return derive


CYTOKINES = ("IL6", "IL10", "IFNG", "TNFA")
CD7_CLEARANCE_THRESHOLD = {"CD7ABS": 10.0, "CD7PCT": 1.0}
"""Level at or below which peripheral CD7+ cells count as cleared (assumption; params
``threshold``): 10 cells/uL and 1% of lymphocytes. Published CD7 CAR-T reports describe
depletion to near zero without a cut-off."""


def _lab_window(datasets: Datasets, endpoint: Any, tests: tuple[str, ...]) -> pd.DataFrame:
    adlb = _dataset(datasets, "adlb")
    pop = _population(datasets, "SAFFL", "safety set")
    rows = adlb[adlb["PARAMCD"].isin(tests) & adlb["AVAL"].notna()
                & adlb["USUBJID"].isin(pop["USUBJID"]) & (adlb["ADY"] <= endpoint.time_frame_days)]
    if not (rows["ADY"] > 0).any():
        raise NotComputable(f"no post-infusion {'/'.join(tests)} results within the time frame")
    return rows


def _per_day(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return [{"day": float(d), **_distribution(g["AVAL"].to_numpy(float))}
            for d, g in rows.groupby("ADY")]


def cytokine_profile(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """Cytokines (params ``analytes``, default IL-6, IL-10, IFN-gamma, TNF-alpha; pg/mL): per
    patient peak after infusion within the time frame, day of peak, fold change from baseline
    (``celltrial.stats.pharmacodynamics.cytokine_table``); estimate = median peak of the first
    analyte; per-day summaries in ``estimates``."""
    from celltrial.stats.pharmacodynamics import cytokine_table

    analytes = tuple(endpoint.params.get("analytes") or CYTOKINES)
    rows = _lab_window(datasets, endpoint, analytes)
    table = cytokine_table(rows, analytes)
    estimates: dict[str, Any] = {}
    texts = []
    for analyte in analytes:
        per = table[table["PARAMCD"] == analyte] if not table.empty else table
        if per.empty or per["peak"].isna().all():
            estimates[analyte] = {"n": 0, "reason": "no post-infusion results"}
            texts.append(f"{analyte}: no post-infusion results")
            continue
        estimates[analyte] = {
            "peak": _distribution(per["peak"].to_numpy(float)),
            "day_of_peak": _distribution(per["peak_day"].to_numpy(float)),
            "fold_change_from_baseline": _distribution(per["fold_change"].to_numpy(float)),
            "per_day": _per_day(rows[rows["PARAMCD"] == analyte]),
        }
        texts.append(f"{analyte} peak median {_fmt(float(per['peak'].median()))} pg/mL "
                     f"(day {float(per['peak_day'].median()):g}), fold change median "
                     f"{_fmt(float(per['fold_change'].median()))}")
    first = estimates[analytes[0]]
    if "peak" not in first:
        raise NotComputable(f"no post-infusion {analytes[0]} results; " + "; ".join(texts))
    return _result(endpoint, estimate=first["peak"]["median"], n=first["peak"]["n"],
                   unit="pg/mL", method="per-patient peak after day 0, day of peak and fold "
                   "change from baseline (last value on or before day 0); medians across "
                   "patients", summary="; ".join(texts), estimates=estimates)


def _cd7(datasets: Datasets, endpoint: Any, paramcd: str) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                    float]:
    from celltrial.stats.pharmacodynamics import cd7_table

    threshold = float(endpoint.params.get("threshold", CD7_CLEARANCE_THRESHOLD[paramcd]))
    rows = _lab_window(datasets, endpoint, (paramcd,))
    table = cd7_table(rows, {paramcd: threshold})
    return rows, table[table["nadir"].notna()], threshold


def _cd7_course(paramcd: str, unit: str) -> Callable[..., EndpointResult]:
    def derive(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
        rows, table, _ = _cd7(datasets, endpoint, paramcd)
        nadir = table["nadir"].to_numpy(float)
        base = table["baseline"].to_numpy(float)
        return _result(endpoint, estimate=float(np.median(nadir)), n=len(table), unit=unit,
                       method="per-patient nadir after day 0 (celltrial.stats."
                       "pharmacodynamics); median across patients; per-day summaries",
                       summary=f"median nadir {_fmt(float(np.median(nadir)))} {unit} (median "
                       f"day {float(table['nadir_day'].median()):g}); baseline median "
                       f"{_fmt(float(np.nanmedian(base)) if np.isfinite(base).any() else None)}"
                       f" {unit}; {rows['ADY'].nunique()} study days",
                       estimates={"nadir": _distribution(nadir),
                                  "nadir_day": _distribution(table["nadir_day"].to_numpy(float)),
                                  "baseline": _distribution(base),
                                  "per_day": _per_day(rows)})

    derive.__doc__ = (f"{paramcd} ({unit}) time course: per-patient nadir after infusion and "
                      "per-day summary within the time frame.")
    return derive


def cd7_clearance(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """Clearance of blood CD7+ cells: patients with CD7ABS <= ``threshold`` (default 10
    cells/uL) after infusion within the time frame (Clopper-Pearson), day of clearance, depth
    (nadir / baseline) and recovery to half the baseline (celltrial.stats.pharmacodynamics)."""
    rows, table, threshold = _cd7(datasets, endpoint, "CD7ABS")
    pop = _population(datasets, "SAFFL", "safety set")
    sampled = pop[pop["USUBJID"].isin(table["USUBJID"])]
    cleared = table[table["clearance_day"].notna()]
    depth = (table["nadir"] / table["baseline"].where(table["baseline"] > 0)).to_numpy(float)
    return _rate(endpoint, sampled, pd.Series(True, index=cleared["USUBJID"].to_numpy()),
                 f"with CD7+ cells <= {threshold:g}/uL", "sampled patients",
                 suffix="; median day of clearance "
                 f"{_fmt(float(cleared['clearance_day'].median()) if len(cleared) else None)}",
                 estimates={"threshold_cells_per_ul": threshold,
                            "day_of_clearance": _distribution(
                                cleared["clearance_day"].to_numpy(float)),
                            "nadir_over_baseline": _distribution(depth),
                            "day_of_recovery": _distribution(
                                table["recovery_day"].to_numpy(float))})


def ada_positive_rate(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """Anti-CAR antibodies: treatment-emergent positive patients among those with a
    post-infusion result (estimate, Clopper-Pearson), and the positive rate per study day
    (``celltrial.stats.immunogenicity.ada_summary``)."""
    from celltrial.stats.immunogenicity import ada_summary

    adis = _dataset(datasets, "adis")
    pop = _population(datasets, "SAFFL", "safety set")
    rows = adis[(adis["PARAMCD"] == "ADACAR") & adis["AVALC"].notna()
                & adis["USUBJID"].isin(pop["USUBJID"]) & (adis["ADY"] <= endpoint.time_frame_days)]
    summary = ada_summary(rows[["USUBJID", "ADY", "AVALC", "AVAL"]])
    if summary.n_evaluable == 0:
        raise NotComputable("no post-infusion anti-CAR antibody (IS ADACAR) results")
    subjects = summary.subjects
    sampled = pop[pop["USUBJID"].isin(subjects["USUBJID"])]
    emergent = pd.Series(subjects["emergent"].to_numpy(bool), index=subjects["USUBJID"].to_numpy())
    return _rate(endpoint, sampled, emergent, "treatment-emergent anti-CAR antibody positive",
                 "patients with a post-infusion sample",
                 estimates={"per_day": _records(summary.by_day),
                            "induced": int(subjects["induced"].sum()),
                            "boosted": int(subjects["boosted"].sum())})


DERIVATION_FUNCTIONS: dict[str, Callable[[Datasets, Any, Any], EndpointResult]] = {
    "ae_incidence": ae_incidence,
    "crs_icans_incidence": crs_icans_incidence,
    "dlt_rate": dlt_rate,
    "remission_rate": remission_rate,
    "orr": orr,
    "mrd_negative_rate": mrd_negative_rate,
    "molecular_remission_rate": molecular_remission_rate,
    "em_response_rate": em_response_rate,
    "best_response": best_response_summary,
    "os": os_,
    "pfs": pfs,
    "efs": efs,
    "dor": dor,
    "cir": cir,
    "ck_cmax_qpcr": _kinetic("CMAX", False, "geometric_mean"),
    "ck_cmax_flow": _kinetic("CMAX", True, "geometric_mean"),
    "ck_tmax_qpcr": _kinetic("TMAX", False, "median"),
    "ck_tmax_flow": _kinetic("TMAX", True, "median"),
    "ck_auc_0_28d_qpcr": _kinetic("AUC28", False, "geometric_mean"),
    "ck_auc_0_28d_flow": _kinetic("AUC28", True, "geometric_mean"),
    "ck_persistence_qpcr": _persistence(False),
    "ck_persistence_flow": _persistence(True),
    "ck_expansion_qpcr": _expansion(False),
    "ck_expansion_flow": _expansion(True),
    "cytokine_profile": cytokine_profile,
    "cd7_abs_timecourse": _cd7_course("CD7ABS", "cells/uL"),
    "cd7_pct_timecourse": _cd7_course("CD7PCT", "%"),
    "cd7_clearance": cd7_clearance,
    "ada_positive_rate": ada_positive_rate,
}
"""Derivation key -> function; covers every key of ``celltrial.protocols.DERIVATIONS``."""


def compute_endpoint(datasets: Datasets, endpoint: Any, protocol: Any) -> EndpointResult:
    """The endpoint's result, or an entry saying why it cannot be computed."""
    function = DERIVATION_FUNCTIONS.get(endpoint.derivation or "")
    if function is None:
        return _result(endpoint, status=NOT_COMPUTABLE,
                       reason=f"no derivation for key `{endpoint.derivation}`")
    try:
        return function(datasets, endpoint, protocol)
    except NotComputable as exc:
        return _result(endpoint, status=NOT_COMPUTABLE, reason=exc.message)


def compute_endpoints(datasets: Datasets, protocol: Any) -> list[EndpointResult]:
    """One result per endpoint of the protocol, in protocol order."""
    return [compute_endpoint(datasets, endpoint, protocol) for endpoint in protocol.endpoints]

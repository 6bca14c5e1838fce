"""Endpoints: every derivation key of every protocol gives an entry; values worked out by hand."""

from __future__ import annotations

import pytest

from celltrial.derive import DERIVATION_FUNCTIONS, analyze, compute_endpoint, derive_datasets
from celltrial.protocols import DERIVATIONS, list_ids, load

from .conftest import make_domains


def test_every_derivation_key_has_a_function():
    assert set(DERIVATION_FUNCTIONS) == set(DERIVATIONS)


@pytest.mark.parametrize("study", list_ids())
def test_every_outcome_measure_has_an_entry(study):
    protocol = load(study)
    results = analyze(make_domains(), protocol).endpoints
    assert [r.id for r in results] == [e.id for e in protocol.endpoints]
    assert [r.name for r in results] == [e.name for e in protocol.endpoints]
    for r in results:
        assert r.status in ("ok", "not computable")
        if r.status == "ok":
            assert r.n is not None and r.n > 0 and r.summary
        else:
            assert r.reason, f"{r.id} has no reason"


# (study, endpoint id): x / n of a proportion, worked out from the frames in conftest.py
RATES = {
    ("cd7-zz-phase1", "dlt"): (1, 5),              # S2 of S1-S5 (S7 not DLT-evaluable)
    ("cd7-zz-phase1", "ae"): (3, 6),               # S1 CRS, S2, S4; S1's day -3 AE excluded
    ("cd7-zz-phase1", "orr_3mo"): (2, 6),          # S1 CR d90, S3 CR d28 (latest by d104)
    ("cd7-zz-phase1", "orr_6mo"): (1, 6),          # S1 CR d180; S3 relapsed d120
    ("cd7-zz-phase1", "immunogenicity"): (1, 2),   # S1 negative -> positive
    ("cd7-tall-phase1", "response_morphologic"): (4, 6),
    ("cd7-tall-phase1", "response_flow_negative"): (1, 6),   # S1 MRD 1e-5 < 1e-4 (T-ALL)
    ("cd7-tall-phase1", "best_response"): (4, 6),
    ("cd7-aml-mll", "crs_icans"): (2, 6),          # CRS in S1 and S4
    ("cd7-aml-mll", "remission"): (4, 6),
    ("cd7-aml-mll", "em_response"): (1, 1),        # S3: baseline lesion, EM CR
    ("cd7-aml-mll", "pd_cd7_clearance"): (1, 2),   # S1 nadir 2/uL < 10; S2 nadir 50
    ("cd7-aml-mll", "expansion_qpcr"): (1, 1),
}


@pytest.fixture(scope="module")
def results():
    out = {}
    for study in {s for s, _ in RATES} | {"cd7-zz-phase1"}:
        for r in analyze(make_domains(), load(study)).endpoints:
            out[(study, r.id)] = r
    return out


@pytest.mark.parametrize("key", sorted(RATES))
def test_rates(results, key):
    x, n = RATES[key]
    r = results[key]
    assert r.status == "ok"
    assert (r.estimates["x"], r.n) == (x, n)
    assert r.estimate == pytest.approx(x / n)
    assert r.ci[0] <= r.estimate <= r.ci[1]


def test_dlt_by_dose_level(results):
    levels = results[("cd7-zz-phase1", "dlt")].estimates["by_dose_level"]
    assert {k: (v["x"], v["n"]) for k, v in levels.items()} == {"DL1": (1, 2), "DL2": (0, 3)}


def test_best_response_distribution(results):
    r = results[("cd7-tall-phase1", "best_response")]
    assert r.estimates["best_response"] == {"CR": 3, "CRi": 1, "NR": 1, "NE": 1}
    assert r.estimates["categories"] == {"CR": 3, "CRi": 1, "MRD+": 1, "MRD-": 1,
                                         "RELAPSE": 2, "PD": 1}


def test_reasons(results):
    assert results[("cd7-tall-phase1", "response_molecular")].reason.startswith(
        "no post-infusion MRD results by QPCR")
    assert "CD7PCT" in results[("cd7-zz-phase1", "pd_cd7_pct")].reason
    # follow-up in the frames ends long before two years
    assert "no patient followed to day 730" in results[("cd7-zz-phase1", "os")].reason


def _endpoint(study, endpoint_id, **changes):
    protocol = load(study)
    endpoint = next(e for e in protocol.endpoints if e.id == endpoint_id)
    return protocol, endpoint.model_copy(update=changes)


def test_overall_survival_by_hand(results):
    """Deaths on days 10, 70, 100 among 6; censored 150, 200, 365: S(365) = 5/6 * 4/5 * 3/4."""
    r = results[("cd7-tall-phase1", "os")]
    assert r.estimate == pytest.approx(0.5)
    assert r.estimates["median"] == 100
    assert r.estimates["events"] == 3


def test_pfs_landmark_and_transplant_sensitivity():
    """PFS at day 100: events 10, 60, 60, 70 among 6 -> S = 5/6 * 3/5 * 2/3 = 1/3 whatever the
    HSCT rule (S3's HSCT on day 45 makes it censored at 45 in the sensitivity analysis:
    S = 5/6 * 4/5 * 2/4 * 1/2 ... computed below from the risk sets)."""
    protocol, endpoint = _endpoint("cd7-zz-phase1", "pfs", time_frame_days=100)
    datasets = derive_datasets(make_domains(), protocol)
    r = compute_endpoint(datasets, endpoint, protocol)
    assert r.estimate == pytest.approx(5 / 6 * 3 / 5 * 2 / 3)
    # sensitivity: S3 censored at 45 -> at 60 the risk set is 4 with 2 events, at 70 2 with 1
    assert r.sensitivity["rule"] == "CENSOR AT HSCT"
    assert r.sensitivity["estimate"] == pytest.approx(5 / 6 * 2 / 4 * 1 / 2)


def test_cumulative_incidence_of_relapse_by_hand():
    """CIR data: relapse 32, death in remission 42, relapse 92, censored 152 (4 patients).
    Aalen-Johansen: F1(32) = 1/4; S = 3/4; F2(42) = 3/4 * 1/3; S = 1/2; F1(92) += 1/2 * 1/2."""
    protocol, endpoint = _endpoint("nct04762485", "cir", time_frame_days=100)
    datasets = derive_datasets(make_domains(), protocol)
    r = compute_endpoint(datasets, endpoint, protocol)
    assert r.status == "ok"
    assert r.estimate == pytest.approx(0.5)
    assert r.estimates["death_in_remission"]["estimate"] == pytest.approx(0.25)
    assert r.n == 4
    lo, hi = r.ci
    assert 0 < lo < 0.5 < hi < 1
    # censoring at HSCT: S3 censored on day 17, before any event; 3 at risk on day 32:
    # F1(32) = 1/3, S = 2/3; death on day 42 with 2 at risk: F2 = 1/3; no later relapse
    assert r.sensitivity["relapse"]["estimate"] == pytest.approx(1 / 3)
    assert r.sensitivity["death_in_remission"]["estimate"] == pytest.approx(1 / 3)


def test_cir_with_every_remission_censored_is_zero():
    """No relapse and no death in remission: the cumulative incidence is 0 (not an error), with
    no confidence interval (a log(-log) interval is undefined at 0)."""
    domains = {k: v[v["USUBJID"].isin(["S1", "S5"])] for k, v in make_domains().items()}
    protocol, endpoint = _endpoint("nct04762485", "cir", time_frame_days=100)
    r = compute_endpoint(derive_datasets(domains, protocol), endpoint, protocol)
    assert r.status == "ok"
    assert r.estimate == 0.0 and r.ci is None
    assert r.n == 1
    assert r.estimates["relapses"] == 0 and r.estimates["deaths_in_remission"] == 0
    assert r.estimates["death_in_remission"]["estimate"] == 0.0


def test_no_responder_gives_reasons():
    domains = make_domains()
    rs = domains["RS"]
    domains["RS"] = rs.assign(RSSTRESC="NR", RSORRES="NR")
    protocol = load("cd7-zz-phase1")
    by_id = {r.id: r for r in analyze(domains, protocol).endpoints}
    assert by_id["dor"].status == "not computable"
    assert "no responder" in by_id["dor"].reason
    assert by_id["orr_3mo"].estimate == 0.0


def test_duration_of_response_median_by_hand():
    """DOR: events 32, 42, 92; censored 152 (4 responders). S = 3/4 after 32, 1/2 after 42
    and flat until 92: R's print(survfit) takes the middle of the flat part, (42 + 92) / 2."""
    protocol, endpoint = _endpoint("cd7-zz-phase1", "dor", time_frame_days=100)
    r = compute_endpoint(derive_datasets(make_domains(), protocol), endpoint, protocol)
    assert r.status == "ok" and r.unit == "days"
    assert r.estimate == 67
    assert r.n == 4
    assert r.estimates["in_response_at_time_frame"] == pytest.approx(0.25)


def test_cir_at_longest_follow_up_when_shorter_than_time_frame(results):
    """Two-year time frame, longest follow-up from remission 152 days: the CIF is given at 152."""
    protocol = load("nct04762485")
    r = {x.id: x for x in analyze(make_domains(), protocol).endpoints}["cir"]
    assert r.status == "ok"
    assert r.estimates["landmark_day"] == 152
    assert r.estimate == pytest.approx(0.5)
    assert "longest follow-up" in r.summary


def test_dor_median_not_reached_is_a_result():
    """Only S1 responds (censored at 152) once the others' assessments are removed: S stays 1,
    R prints the median as NA."""
    domains = make_domains()
    rs = domains["RS"]
    domains["RS"] = rs[~rs["USUBJID"].isin(["S2", "S3", "S4"])]
    protocol = load("cd7-zz-phase1")
    r = {x.id: x for x in analyze(domains, protocol).endpoints}["dor"]
    assert r.status == "ok" and r.estimate is None
    assert r.reason == "median not reached"
    assert "not reached" in r.summary


@pytest.mark.parametrize("kept", [(), ("DM",), ("DM", "EX")])
@pytest.mark.parametrize("study", list_ids())
def test_sparse_studies_still_give_every_entry(study, kept):
    """No domains, demographics only, or infusions only: every outcome has an entry, and
    those that cannot be computed say why."""
    domains = {k: v for k, v in make_domains().items() if k in kept}
    protocol = load(study)
    results = analyze(domains, protocol).endpoints
    assert len(results) == len(protocol.endpoints)
    assert all(r.status == "ok" or r.reason for r in results)
    if "EX" not in kept:
        assert all(r.status == "not computable" for r in results)

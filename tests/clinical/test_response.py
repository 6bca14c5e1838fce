"""Response criteria tables: ELN 2022 AML (and NCT04762485's wording), BBMT 2010 ALL,
Lugano 2014 extramedullary, overall response and per-patient summaries."""

from __future__ import annotations

import pytest

from celltrial.clinical import (
    assess_response,
    best_overall_response,
    first_response_day,
    overall_response,
    relapse_day,
)
from celltrial.errors import InvalidValue
from celltrial.protocols import load

CLEAR = {"circulating_blasts": False, "emd": False, "auer_rods": False, "marrow_adequate": True}
BASE = {"bm_blasts_pct": 60.0, "emd": False}


def _m(bm, anc, plt, **extra):
    return {"bm_blasts_pct": bm, "anc": anc, "platelets": plt, **CLEAR, **extra}


# (assessment, ELN 2022 category, NCT04762485-text category)
AML_ROWS = [
    (_m(4.9, 1.0, 100), "CR", "MLFS"),       # ELN >= 1.0 / >= 100; registration > 1.0 / > 100
    (_m(4.9, 1.01, 100.1), "CR", "CR"),
    (_m(5.0, 1.5, 150), "PR", "PR"),          # 5% blasts is not < 5%; 60 -> 5 is a 92% fall
    (_m(4.9, 0.99, 150), "CRh", "CRi"),       # no CRh in the registration
    (_m(4.9, 0.5, 50), "CRh", "CRi"),
    (_m(4.9, 0.49, 150), "CRi", "CRi"),
    (_m(4.9, 1.2, 49.9), "CRi", "CRi"),
    (_m(4.9, 0.49, 49.9), "MLFS", "CRi"),     # ELN: no count recovered -> MLFS
    (_m(4.9, 0.3, 20, marrow_adequate=False), "NR", "CRi"),
    (_m(4.9, 1.5, 150, circulating_blasts=True), "NR", "MLFS"),  # text's MLFS omits PB blasts
    (_m(4.9, 1.5, 150, emd=True), "PD", "PD"),  # new EMD (baseline had none)
    (_m(4.9, 1.5, 150, auer_rods=True), "CR", "NR"),
    (_m(25.0, 1.5, 150), "PR", "PR"),
    (_m(25.1, 1.5, 150), "NR", "NR"),
    (_m(20.0, 0.9, 150), "NR", "NR"),         # PR needs the CR blood counts
    (_m(89.9, 0.5, 20), "NR", "NR"),          # +49.8% over baseline 60
    (_m(90.0, 0.5, 20), "PD", "PD"),          # +50%
    (_m(50.0, 0.5, 20, emd=True), "PD", "PD"),  # new EMD
]


@pytest.mark.parametrize(("assessment", "eln", "text"), AML_ROWS)
def test_aml_eln2022_and_registration_text(assessment, eln, text):
    assert assess_response("aml_eln2022", assessment, baseline=BASE).category == eln
    assert assess_response("aml_eln2022", assessment, baseline=BASE,
                           reading="nct04762485").category == text


def test_pr_needs_half_of_baseline():
    a = _m(20.0, 1.5, 150)
    assert assess_response("aml_eln2022", a, baseline={"bm_blasts_pct": 40.0}).category == "PR"
    assert assess_response("aml_eln2022", a, baseline={"bm_blasts_pct": 39.9}).category == "NR"
    r = assess_response("aml_eln2022", a)
    assert r.category == "NR" and any("no baseline" in x for x in r.reasons)


def test_crh_optional_and_cri_reading():
    a = _m(2.0, 1.2, 60)
    assert assess_response("aml_eln2022", a).category == "CRh"
    assert assess_response("aml_eln2022", a, crh=False).category == "CRi"
    b = _m(2.0, 0.3, 20)
    assert assess_response("aml_eln2022", b, reading="eln2022_cri_either").category == "CRi"


def test_relapse_after_remission_and_mrd():
    after = {"prior_remission": True, "baseline": BASE}
    assert assess_response("aml_eln2022", _m(5.0, 2, 200), **after).category == "RELAPSE"
    assert assess_response("aml_eln2022", _m(1.0, 2, 200, circulating_blasts=True),
                           **after).category == "RELAPSE"
    assert assess_response("aml_eln2022", _m(1.0, 2, 200, emd=True), **after).category == "RELAPSE"
    r = assess_response("aml_eln2022", _m(1.0, 2, 200, mrd_negative=True), **after)
    assert (r.category, r.mrd_negative, r.label) == ("CR", True, "CR MRD-")
    assert assess_response("aml_eln2022", _m(30, 2, 200, mrd_negative=True)).mrd_negative is None


def test_missing_data_is_not_guessed():
    r = assess_response("aml_eln2022", {"anc": 2.0, "platelets": 200})
    assert r.category == "NE" and "bm_blasts_pct" in r.reasons[0]
    r = assess_response("aml_eln2022", {"bm_blasts_pct": 2.0, "circulating_blasts": False,
                                        "emd": False, "anc": 2.0, "marrow_adequate": True})
    assert r.category == "MLFS"
    assert any("CR not assessable" in x and "platelets" in x for x in r.reasons)


def test_registration_text_matches_protocol_file():
    """nct04762485's own definitions: ORR = CR + CRi + MLFS + PR; ANC '>1.0', platelets '>100'."""
    text = load("nct04762485").response_definitions or ""
    for phrase in ("ORR includes CR, CRi, MLFS and PR", "absolute neutrophil count \\>1.0",
                   "platelet count \\>100", "(\\<1.0x10\\^9/L)", "(\\<100x10\\^9/L)",
                   "decrease of bone marrow blast percentage to 5% to 25%",
                   "by at least 50%", "absence of blasts with Auer rods"):
        assert phrase in text, phrase


# ALL BBMT 2010: (assessment, baseline, prior remission, category)
ALL_ROWS = [
    (_m(4.9, 1.0, 100), BASE, False, "CR"),
    (_m(5.0, 1.0, 100), BASE, False, "PR"),
    (_m(4.9, 0.99, 100), BASE, False, "CRi"),
    (_m(4.9, 1.0, 99), BASE, False, "CRi"),
    (_m(25.0, 1.0, 100), BASE, False, "PR"),
    (_m(25.1, 1.0, 100), BASE, False, "SD"),
    (_m(74.9, 0.2, 10), BASE, False, "SD"),
    (_m(75.0, 0.2, 10), BASE, False, "PD"),   # +25% over baseline 60
    (_m(3.0, 2.0, 150, circulating_blasts=True), BASE, True, "RELAPSE"),
    (_m(5.0, 2.0, 150), BASE, True, "RELAPSE"),
    (_m(4.0, 2.0, 150), BASE, True, "CR"),
]


@pytest.mark.parametrize(("assessment", "baseline", "prior", "category"), ALL_ROWS)
def test_all_bbmt2010(assessment, baseline, prior, category):
    r = assess_response("all_bbmt2010", assessment, baseline=baseline, prior_remission=prior)
    assert r.category == category


@pytest.mark.parametrize(("mrd", "negative"), [(0.99e-4, True), (1e-4, False), (0.0, True)])
def test_all_mrd_flow_threshold(mrd, negative):
    r = assess_response("all_bbmt2010", _m(1.0, 2.0, 150, mrd_flow=mrd,
                                           mrd_molecular_negative=True))
    assert (r.mrd_negative, r.molecular_remission) == (negative, True)


def _les(*sizes, kind="nodal"):
    return [{"id": f"L{i}", "ldi_cm": a, "sdi_cm": b, "kind": kind} for i, (a, b) in
            enumerate(sizes)]


EMD_BASE = {"lesions": _les((4.0, 3.0), (2.0, 2.0))}  # SPD 16


@pytest.mark.parametrize(("lesions", "new", "nadir", "category"), [
    (_les((1.5, 1.0), (1.0, 1.0)), False, None, "CR"),
    (_les((1.6, 1.0), (1.0, 1.0)), False, None, "PR"),      # SPD 2.6 <= 8
    (_les((2.0, 2.0), (2.0, 2.0)), False, None, "PR"),      # SPD 8 = 50% of 16
    (_les((3.0, 2.7), (1.0, 0.1)), False, None, "SD"),      # SPD 8.2 > 8
    (_les((4.0, 3.0), (2.0, 2.0)), True, None, "PD"),       # new lesion
    (_les((2.0, 2.0), (2.0, 2.0)), False, {"spd": 5.34}, "PR"),  # 8 < 1.5 x 5.34 = 8.01
    (_les((2.0, 2.0), (2.0, 2.0)), False, {"spd": 5.33}, "PD"),  # 8 >= 7.995
    (_les((1.0, 1.0), (2.0, 2.0)), None, None, "NE"),
])
def test_extramedullary_lugano(lesions, new, nadir, category):
    a = {"lesions": lesions, "new_lesions": new}
    r = assess_response("extramedullary_lugano2014", a, baseline=EMD_BASE, nadir=nadir)
    assert r.category == category


def test_extramedullary_lesion_rule_and_extranodal():
    nadir = {"lesions": _les((1.2, 1.0), (1.0, 1.0))}
    grown = {"lesions": _les((1.8, 1.0), (1.0, 1.0)), "new_lesions": False}  # PPD 1.8 >= 1.8
    assert assess_response("extramedullary_lugano2014", grown, baseline=EMD_BASE,
                           nadir=nadir).category == "PD"
    small = {"lesions": _les((1.6, 1.0), (1.0, 1.0)), "new_lesions": False}  # +0.4 cm only
    assert assess_response("extramedullary_lugano2014", small, baseline=EMD_BASE,
                           nadir=nadir).category == "PR"
    base = {"lesions": _les((3.0, 2.0), kind="extranodal")}
    gone = {"lesions": _les((0.0, 0.0), kind="extranodal"), "new_lesions": False}
    left = {"lesions": _les((0.5, 0.5), kind="extranodal"), "new_lesions": False}
    assert assess_response("extramedullary_lugano2014", gone, baseline=base).category == "CR"
    assert assess_response("extramedullary_lugano2014", left, baseline=base).category == "PR"
    none = {"lesions": [], "new_lesions": False}
    assert assess_response("extramedullary_lugano2014", none,
                           baseline={"lesions": []}).category == "NO_EMD"


@pytest.mark.parametrize(("marrow", "emd", "overall"), [
    ("CR", None, "CR"), ("CR", "NO_EMD", "CR"), ("CR", "CR", "CR"), ("CRi", "PR", "PR"),
    ("CR", "PR", "PR"), ("PR", "PR", "PR"), ("NR", "PR", "NR"), ("CR", "SD", "NR"),
    ("CR", "PD", "PD"), ("RELAPSE", "PD", "RELAPSE"), ("CR", "NE", "NE"), (None, "CR", "NE"),
])
def test_overall_response(marrow, emd, overall):
    assert overall_response(marrow, emd) == overall


def test_patient_history_end_to_end():
    """AML with EMD: day 28 CRi with EMD PR -> PR; day 56 CR + EMD CR (MRD-); day 120 relapse."""
    base = {"bm_blasts_pct": 45.0, "emd": True}
    emd_base = {"lesions": _les((3.0, 2.0))}
    visits = [
        (28, _m(3.0, 0.8, 120, emd=True), {"lesions": _les((2.0, 1.4)), "new_lesions": False}),
        (56, _m(1.0, 1.6, 160, mrd_negative=True),
         {"lesions": _les((1.2, 1.0)), "new_lesions": False}),
        (120, _m(12.0, 1.6, 160), {"lesions": _les((1.2, 1.0)), "new_lesions": False}),
    ]
    series, prior = [], False
    for day, marrow, lesions in visits:
        m = assess_response("aml_eln2022", marrow, baseline=base, prior_remission=prior)
        e = assess_response("extramedullary_lugano2014", lesions, baseline=emd_base)
        series.append((day, overall_response(m, e)))
        prior = prior or m.category in ("CR", "CRh", "CRi")
    assert series == [(28, "NR"), (56, "CR"), (120, "RELAPSE")]
    assert best_overall_response(series) == "CR"
    assert first_response_day(series) == 56
    assert relapse_day(series) == 120


def test_best_response_stops_at_progression():
    series = [(14, "PR"), (28, "PD"), (56, "CR")]
    assert best_overall_response(series) == "PR"
    assert first_response_day([(14, "NR"), (28, "PD"), (56, "CR")]) is None
    assert relapse_day(series) is None
    assert best_overall_response([(7, "NE")]) == "NE"


@pytest.mark.parametrize(("call", "message"), [
    (lambda: assess_response("aml_eln2017", {}), "Invalid `criteria`"),
    (lambda: assess_response("aml_eln2022", {"blasts": 3}), "Invalid `assessment key`"),
    (lambda: assess_response("aml_eln2022", {"bm_blasts_pct": 130}), "Invalid `bm_blasts_pct`"),
    (lambda: assess_response("aml_eln2022", {"bm_blasts_pct": 3, "anc": -1}), "Invalid `anc`"),
    (lambda: assess_response("aml_eln2022", {"bm_blasts_pct": 3, "emd": "no"}), "Invalid `emd`"),
    (lambda: assess_response("aml_eln2022", {"bm_blasts_pct": 3}, reading="eln2017"),
     "Invalid `reading`"),
    (lambda: assess_response("extramedullary_lugano2014", {"lesions": [{"ldi_cm": 1.0}]},
                             baseline=EMD_BASE), "sdi_cm"),
    (lambda: best_overall_response([(1, "GOOD")]), "Invalid `category`"),
    (lambda: overall_response("CR", "MR"), "Invalid `EMD category`"),
])
def test_bad_input_names_it(call, message):
    with pytest.raises(InvalidValue, match=message):
        call()


def test_numpy_values_accepted():
    np = pytest.importorskip("numpy")
    a = {"bm_blasts_pct": np.float64(2.0), "circulating_blasts": np.float64(2.0) > 20,
         "emd": np.bool_(False), "anc": np.int64(2), "platelets": np.float32(150.0)}
    assert assess_response("aml_eln2022", a).category == "CR"

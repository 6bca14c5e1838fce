"""Lint as a medical reviewer (W240-W245, W249): the findings of issue 13 on the five shipped
protocols, each check on a broken copy, its boundary cases, and no alarm on clean text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from celltrial.protocols import lint
from celltrial.protocols.lint import _edit_distance, _one_edit_apart


@pytest.mark.parametrize(("a", "b", "distance"), [
    ("arrythmia", "arrhythmia", 1), ("atrial", "arterial", 2), ("infection", "infection", 0),
    ("immunodeficeincy", "immunodeficiency", 1), ("hepatitus", "hepatitis", 1)])
def test_edit_distance(a: str, b: str, distance: int) -> None:
    assert _edit_distance(a, b) == distance
    assert _one_edit_apart(a, b) == (distance == 1)


def test_one_edit_apart_is_edit_distance_one_on_every_pair_of_near_words() -> None:
    """The linear-time test equals the optimal-string-alignment distance being 1 on all
    pairs of a set of words and their one- and two-edit variants (both orders)."""
    import itertools

    base = ["neutropenia", "arrhythmia", "thrombosis", "atrial", "arterial", "ab", "ba"]
    words = set(base)
    for w in base:
        for i in range(len(w)):
            words |= {w[:i] + w[i + 1:], w[:i] + "x" + w[i + 1:], w[:i] + "e" + w[i:]}
            if i + 1 < len(w):
                words.add(w[:i] + w[i + 1] + w[i] + w[i + 2:])
    for a, b in itertools.product(sorted(words), repeat=2):
        assert _one_edit_apart(a, b) == (_edit_distance(a, b) == 1), (a, b)

REVIEWER = ("W240", "W241", "W242", "W243", "W244", "W245", "W246", "W249")

# (study, code, field path, words in the message, marked by the protocol)
SHIPPED = [
    ("nct04762485", "W240", "eligibility.inclusion[4] (I5).text", "LVEF 0.35 with NYHA II", True),
    ("nct04762485", "W240", "eligibility.inclusion[5] (I6).text", "joins safety criteria", True),
    ("nct04762485", "W241", "eligibility.exclusion[6] (E7).text", '"atrial" is probably "arterial"',
     True),
    ("nct04762485", "W241", "eligibility.exclusion[7] (E8).text",
     '"arrythmia" is probably a misspelling of "arrhythmia"', True),
    ("nct04762485", "W242", "endpoints[4].description", "is a cumulative incidence", True),
    ("nct04762485", "W243", "phase", "phase 1 (phase, design); phase 1/2 (design)", True),
    ("nct04762485", "W245", "endpoints[0].description", "CTCAE V5.0", True),
    ("cd7-tall-dlt", "W244", "endpoints[0].time_frame", "longer than the DLT window of 28 d", True),
    ("cd7-zz-phase1", "W244", "endpoints[0].time_frame", "longer than the DLT window of 28 d",
     True),
    ("cd7-aml-mll", "W246", "endpoints[9].params.analyte", 'a flow "peak" ("the peak '
     'concentration of Senl-T7 CAR-T cells', True),
]
STUDIES = ["nct04762485", "cd7-aml-mll", "cd7-tall-dlt", "cd7-tall-phase1", "cd7-zz-phase1"]


@pytest.mark.parametrize("study", STUDIES)
def test_shipped_protocols_print_exactly_the_reviewer_findings(study: str) -> None:
    found = {(m.code, m.where.split(": ", 1)[1]): m.message for m in lint(study)
             if m.code in REVIEWER}
    expected = {(c, w): (words, marked) for s, c, w, words, marked in SHIPPED if s == study}
    assert set(found) == set(expected), found
    for key, (words, marked) in expected.items():
        assert words in found[key]
        assert ("; marked: " in found[key]) is marked


# (inclusion rule of nct04762485 I5, W240 on the rule expected, words in the message)
RULES = [
    ("lvef >= 0.5 or nyha_class <= 2", True, ("admits lvef 0.35 (", "with nyha_class 2")),
    ("lvef >= 0.5 and nyha_class <= 2", False, ()),
    ("lvef >= 0.5", False, ()),
    ("(lvef >= 0.5 and nyha_class <= 2) or ecog <= 1", True,
     ("admits ecog 3 (ECOG 3", "with lvef 0.5, nyha_class 2")),
    ("lvef >= 0.5 or diagnosis == 'AML'", True, ("admits lvef 0.35 (", "with diagnosis AML")),
    ("lvef >= 0.36 and (nyha_class <= 2 or ecog <= 1)", True,
     ("admits ecog 3 (", "with lvef 0.36, nyha_class 2")),
    ("lvef >= 0.36 and nyha_class <= 2 and (age_years >= 18 or age_years <= 12)", False, ()),
    ("lvef >= 0.36 and nyha_class <= 2 and (ecog <= 2 or age_years <= 12)", True,
     ("admits ecog 3 (", "age_years")),
    ("ast_x_uln <= 3 or alt_x_uln <= 3", True, ("admits alt_x_uln 5.1 (", "with ast_x_uln 3")),
]


@pytest.mark.parametrize(("rule", "flagged", "words"), RULES)
def test_unsafe_or_rule(protocol_data: dict[str, Any], write_protocol: Callable[..., Path],
                        rule: str, flagged: bool, words: str) -> None:
    protocol_data["eligibility"]["inclusion"][4]["rule"] = rule
    found = [m for m in lint(write_protocol(protocol_data)) if m.code == "W240"
             and m.where.endswith("(I5).rule")]
    assert bool(found) is flagged, [m.message for m in found]
    for part in words:
        assert part in found[0].message


# (text of an exclusion criterion, W241 expected, words)
TEXTS = [
    ("Patients with atrial or venous thrombosis or embolism.", True, '"arterial"'),
    ("Patients with arterial or venous thrombosis or embolism.", False, ""),
    ("Patients with atrial fibrillation.", False, ""),          # atrial is right here
    ("Left atrial thrombus on echocardiography.", False, ""),
    ("Severe arrythmia in the last 6 months.", True, '"arrhythmia"'),
    ("Severe arrhythmias in the last 6 months.", False, ""),     # plural of a listed word
    ("Uncontrolled infections or relapses.", False, ""),
    ("Prior leukemic infiltration of the CNS.", False, ""),
    ("Congenital immunodeficeincy.", True, '"immunodeficiency"'),  # transposition
    ("Active hepatitus B.", True, '"hepatitis"'),                 # one substitution
    ("Active hepatitis B.", False, ""),
]


@pytest.mark.parametrize(("text", "flagged", "words"), TEXTS)
def test_misspelling(protocol_data: dict[str, Any], write_protocol: Callable[..., Path],
                     text: str, flagged: bool, words: str) -> None:
    protocol_data["eligibility"]["exclusion"][1]["text"] = text
    found = [m for m in lint(write_protocol(protocol_data)) if m.code == "W241"
             and "(E2)" in m.where]
    assert bool(found) is flagged, [m.message for m in found]
    if flagged:
        assert words in found[0].message


def test_no_false_alarm_on_clean_text(protocol_data: dict[str, Any],
                                      write_protocol: Callable[..., Path]) -> None:
    """Registration text with the reviewer's problems fixed gives no W240-W245 at all."""
    d = protocol_data
    d["phase"] = "1"
    d["design"] = "Open-label, single-arm phase 1 study of humanized CD7 CAR-T cells."
    inc = d["eligibility"]["inclusion"]
    inc[4].update(text="Left ventricular ejection fraction >= 0.5 by echocardiography and "
                       "NYHA class I/II.", rule="lvef >= 0.5 and nyha_class <= 2")
    inc[5].update(text="AST and ALT <= 3x upper limit of normal and bilirubin <= 2.0 mg/dL.")
    exc = d["eligibility"]["exclusion"]
    exc[6]["text"] = "Patients with arterial or venous thrombosis or embolism."
    exc[7]["text"] = ("Patients with myocardial infarction or severe arrhythmia in the last "
                      "6 months.")
    d["endpoints"][4]["description"] = "Cumulative incidence of relapse in remission."
    d["endpoints"][0]["description"] = ("Adverse events are graded by CTCAE v5.0, CRS and ICANS "
                                        "by ASTCT 2019")
    d["lint_readings"] = []
    d["dlt"]["rules"] = [r for r in d["dlt"]["rules"] if r["scale"] == "ctcae"]
    d["endpoints"][0]["derivation"] = "dlt_rate"
    d["endpoints"][0]["name"] = "Dose-limiting toxicity"
    d["endpoints"][0]["time_frame"] = "28 days"
    d["endpoints"][0]["time_frame_days"] = 28
    messages = lint(write_protocol(d))
    assert [m.format() for m in messages if m.code in REVIEWER] == []


def test_phase_and_dlt_window_boundaries(protocol_data: dict[str, Any],
                                         write_protocol: Callable[..., Path]) -> None:
    d = protocol_data
    d["lint_readings"] = []
    d["design"] = "Single arm phase I study; the recommended phase II dose is chosen at the end."
    d["endpoints"][0].update(name="DLT", derivation="dlt_rate", time_frame="28 days",
                             time_frame_days=28)
    codes = [m.code for m in lint(write_protocol(d))]
    assert "W243" not in codes and "W244" not in codes   # "phase II dose" is not a phase
    d["endpoints"][0].update(time_frame="29 days", time_frame_days=29)
    d["title"] = d["title"] + " (phase II)"
    codes = [m.code for m in lint(write_protocol(d))]
    assert "W243" in codes and "W244" in codes


def test_grading_scale_version(protocol_data: dict[str, Any],
                               write_protocol: Callable[..., Path]) -> None:
    d = protocol_data
    d["lint_readings"] = []
    d["endpoints"][0]["description"] = "Adverse events are evaluated with CTCAE v4.03"
    [w245] = [m for m in lint(write_protocol(d)) if m.code == "W245"]
    assert "grades by CTCAE v5.0" in w245.message and "ASTCT 2019" in w245.message
    assert "marked" not in w245.message


def test_duration_wording_for_a_rate(protocol_data: dict[str, Any],
                                     write_protocol: Callable[..., Path]) -> None:
    d = protocol_data
    d["endpoints"][3]["name"] = "Duration of remission"   # orr: a proportion
    found = [m for m in lint(write_protocol(d)) if m.code == "W242"]
    assert any(m.where.endswith("endpoints[3].name") for m in found)
    d["endpoints"][3]["name"] = "Overall response rate (ORR)"
    d["endpoints"][4]["description"] = "Cumulative incidence of relapse."
    assert not [m for m in lint(write_protocol(d)) if m.code == "W242"]


def test_unmarked_and_stale_readings(protocol_data: dict[str, Any],
                                     write_protocol: Callable[..., Path]) -> None:
    d = protocol_data
    d["lint_readings"] = [r for r in d["lint_readings"] if r["code"] != "W243"]
    d["lint_readings"].append({"code": "W244", "where": "endpoints[0].time_frame",
                               "reading": "nothing to read"})
    messages = lint(write_protocol(d))
    [w243] = [m for m in messages if m.code == "W243"]
    assert "marked" not in w243.message
    [w249] = [m for m in messages if m.code == "W249"]
    assert "W244 at `endpoints[0].time_frame` marks no finding" in w249.message
    assert [m for m in messages if m.level == "error"] == []


# (derivation, params.analyte, endpoint name, W246 expected)
FLOW_UNIT = [
    ("ck_cmax_flow", None, "Peak concentration of CAR-T cells by flow", True),
    ("ck_cmax_flow", "CARTPCT", "Peak concentration of CAR-T cells by flow", True),
    ("ck_cmax_flow", "CARTABS", "Peak concentration of CAR-T cells by flow", False),
    ("ck_auc_0_28d_flow", "CARTPCT", "CAR-T level over 28 days (AUC)", True),
    ("ck_cmax_flow", "CARTPCT", "Expansion of CAR-T cells by flow", False),   # no such wording
    ("ck_tmax_flow", "CARTPCT", "Time to peak concentration by flow", False),  # a time, no unit
    ("ck_cmax_qpcr", None, "Peak concentration by qPCR", False),               # copies/ug gDNA
]


@pytest.mark.parametrize(("derivation", "analyte", "name", "flagged"), FLOW_UNIT)
def test_flow_peak_unit(protocol_data: dict[str, Any], write_protocol: Callable[..., Path],
                        derivation: str, analyte: str | None, name: str, flagged: bool) -> None:
    d = protocol_data
    endpoint = dict(d["endpoints"][-1], id="flow_peak", name=name, description="",
                    derivation=derivation, params={"analyte": analyte} if analyte else {})
    if derivation.endswith("qpcr"):
        endpoint["params"] = {}
    d["endpoints"].append(endpoint)
    where = f"endpoints[{len(d['endpoints']) - 1}].params.analyte"
    messages = lint(write_protocol(d))
    assert [m for m in messages if m.level == "error"] == []
    found = [m for m in messages if m.code == "W246"]
    assert bool(found) is flagged, [m.message for m in found]
    if flagged:
        assert found[0].where.endswith(where)
        assert "cells/uL" in found[0].message and "marked" not in found[0].message
        assert (f"params.analyte `{analyte}`" if analyte else "no params.analyte") \
            in found[0].message

"""Split-infusion hold rules of nct04762485 (30% day 0, 70% day 1; rules H1-H3 assumed):
one case on each side of every rule."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from celltrial.cli.main import app
from celltrial.clinical import next_fraction
from celltrial.errors import CelltrialError
from celltrial.protocols import load


@pytest.fixture(scope="module")
def protocol():
    return load("nct04762485")


# (seen after fraction 1, fraction 2 given, deciding rule)
ROWS = [
    ({}, True, None),
    ({"crs_grade": 1}, True, None),
    ({"crs_grade": 2}, False, "H1"),
    ({"crs_grade": 4}, False, "H1"),
    ({"icans_grade": 0}, True, None),
    ({"icans_grade": 1}, False, "H2"),
    ({"uncontrolled_infection": False}, True, None),
    ({"uncontrolled_infection": True}, False, "H3"),
    ({"crs_grade": 1, "icans_grade": 0, "uncontrolled_infection": False}, True, None),
]


@pytest.mark.parametrize("seen, given, rule", ROWS)
def test_hold_rules(protocol, seen, given, rule):
    decision = next_fraction(protocol, 2, seen)
    assert (decision.give, decision.rule) == (given, rule)
    if rule:
        assert decision.reason.startswith(rule)


def test_the_first_fraction_is_always_given_and_a_withheld_one_stops_the_rest(protocol):
    assert next_fraction(protocol, 1, {"crs_grade": 4}).give
    assert not next_fraction(protocol, 2, {}, previous_withheld=True).give


def test_a_single_infusion_protocol_has_no_second_fraction():
    with pytest.raises(CelltrialError, match="fraction number 1..1"):
        next_fraction(load("cd7-aml-mll"), 2, {})


@pytest.mark.parametrize("seen", [{"crs_grade": 6}, {"crs_grade": "2"}, {"fever": 1},
                                  {"uncontrolled_infection": "yes"}])
def test_bad_observations_are_refused(protocol, seen):
    with pytest.raises(CelltrialError):
        next_fraction(protocol, 2, seen)


def test_dose_command_marks_the_withheld_fraction():
    args = ["dose", "--study", "nct04762485", "--level", "DL2", "--weight", "70",
            "--concentration", "1e6", "--volume", "100"]
    runner = CliRunner()
    out = json.loads(runner.invoke(app, [*args, "--crs-grade", "2", "--json"]).output)
    assert [h["give"] for h in out["hold"]] == [True, False]
    assert out["hold"][1]["rule"] == "H1"
    text = runner.invoke(app, [*args, "--crs-grade", "1"])
    assert text.exit_code == 0 and "withheld" not in text.output

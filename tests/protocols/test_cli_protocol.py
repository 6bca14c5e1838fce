"""`celltrial protocol list | show | lint` (src/celltrial/cli/protocol.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from celltrial.cli import common
from celltrial.cli.main import app

IDS = ["cd7-aml-mll", "cd7-tall-dlt", "cd7-tall-phase1", "cd7-zz-phase1", "nct04762485"]


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich wraps at the terminal width it found at import; make it wide so text stays whole."""
    monkeypatch.setattr(common.console, "width", 240)
    monkeypatch.setattr(common.err_console, "width", 240)


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["protocol", *args], env={"COLUMNS": "200"})


def test_list_shows_the_five_ids() -> None:
    result = _run("list")
    assert result.exit_code == 0, result.output
    for pid in IDS:
        assert pid in result.stdout
    assert "NCT04762485" in result.stdout


def test_list_json() -> None:
    rows = json.loads(_run("list", "--json").stdout)
    assert [r["id"] for r in rows] == IDS
    by_id = {r["id"]: r for r in rows}
    assert by_id["cd7-zz-phase1"]["target_enrollment"] == 9
    assert by_id["cd7-aml-mll"]["endpoints"] == 17


def test_lint_nct04762485_exits_0_with_both_warnings() -> None:
    result = _run("lint", "nct04762485")
    assert result.exit_code == 0, result.output
    assert "W201" in result.stdout and "> 3x upper limit of normal" in result.stdout
    assert "W202" in result.stdout and "CD38" in result.stdout
    assert "0 error(s)" in result.stdout


def test_lint_broken_file_exits_1_naming_each_field(
        protocol_data: dict[str, Any], write_protocol: Callable[..., Path]) -> None:
    protocol_data["eligibility"]["inclusion"][2]["rule"] = "ecog_score <= 2"        # unknown variable
    protocol_data["eligibility"]["inclusion"][1]["rule"] = "65 <= age_years <= 12"  # reversed range
    del protocol_data["endpoints"][4]["derivation"]                                 # no derivation
    path = write_protocol(protocol_data)
    result = _run("lint", str(path))
    assert result.exit_code == 1
    out = result.stderr
    assert "P110 broken.yaml: eligibility.inclusion[2] (I3).rule" in out and "ecog_score" in out
    assert "P120 broken.yaml: eligibility.inclusion[1] (I2).rule" in out
    assert "P130 broken.yaml: endpoints[4].derivation" in out and "`cir`" in out
    assert "3 error(s)" in out


def test_lint_schema_error_exits_1(protocol_data: dict[str, Any],
                                   write_protocol: Callable[..., Path]) -> None:
    protocol_data["intervention"]["bags"]["max_bags"] = "four"
    result = _run("lint", str(write_protocol(protocol_data)))
    assert result.exit_code == 1
    assert "intervention.bags.max_bags" in result.stderr


def test_lint_json(protocol_data: dict[str, Any], write_protocol: Callable[..., Path]) -> None:
    result = _run("lint", "nct04762485", "--json")
    codes = [m["code"] for m in json.loads(result.stdout)]
    assert {"W201", "W202"} <= set(codes)


def test_show_marks_assumed_values() -> None:
    result = _run("show", "nct04762485")
    assert result.exit_code == 0, result.output
    for section in ("eligibility", "intervention", "schedule", "DLT", "endpoints"):
        assert section in result.stdout
    assert "assumed" in result.stdout and "12 <= age_years <= 65" in result.stdout
    assert "Cumulative incidence of relapse(CIR)" in result.stdout


def test_show_json_is_the_protocol() -> None:
    data = json.loads(_run("show", "cd7-zz-phase1", "--json").stdout)
    assert data["id"] == "cd7-zz-phase1"
    assert data["intervention"]["bags"]["max_bags"] == 4
    assert len(data["endpoints"]) == 13


def test_show_unknown_id_exits_1() -> None:
    result = _run("show", "cd19-x")
    assert result.exit_code == 1
    assert "Invalid `protocol`" in result.stderr

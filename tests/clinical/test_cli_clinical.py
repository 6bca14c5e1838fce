"""`celltrial screen` and `celltrial dose` (src/celltrial/cli/clinical.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from celltrial.cli import common
from celltrial.cli.main import app


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.console, "width", 240)
    monkeypatch.setattr(common.err_console, "width", 240)


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture
def patient(tmp_path: Path, eligible: dict[str, Any]) -> Any:
    def write(**change: Any) -> str:
        path = tmp_path / "patient.json"
        path.write_text(json.dumps({**eligible, **change}), encoding="utf-8")
        return str(path)
    return write


def test_screen_names_exactly_the_failing_criterion(patient):
    result = _run("screen", "--study", "nct04762485", "--patient",
                  patient(cd7_blast_pct=20.0))
    assert result.exit_code == 0, result.output
    assert "NOT ELIGIBLE" in result.output
    failing = [line for line in result.output.splitlines()
               if line.strip().startswith(("not satisfied:", "present:"))]
    assert failing == ["  not satisfied: I4 (inclusion) cd7_blast_pct > 30"]


def _finding_of(output: str, criterion: str) -> str:
    row = next(line for line in output.splitlines() if line.startswith(f"│ {criterion} "))
    return [cell.strip() for cell in row.split("│")][3]


@pytest.mark.parametrize(("pregnant", "finding", "decision"), [
    (False, "absent", "ELIGIBLE"),
    (True, "present", "NOT ELIGIBLE"),
])
def test_screen_prints_an_exclusion_as_present_or_absent(patient, pregnant, finding, decision):
    """Issue 10: "pregnant_or_lactating=false -> E1 met" read as excluded; the table now says
    whether the excluding condition is present or absent."""
    result = _run("screen", "--study", "nct04762485", "--patient",
                  patient(pregnant_or_lactating=pregnant))
    assert result.exit_code == 0, result.output
    excl = next(c for c in json.loads(_run("screen", "--study", "nct04762485", "--patient",
                                            patient(pregnant_or_lactating=pregnant),
                                            "--json").output)["criteria"]
                if "pregnant_or_lactating" in c["values"])
    assert excl["kind"] == "exclusion" and excl["finding"] == finding
    assert _finding_of(result.output, excl["id"]) == finding
    assert f"Decision: {decision}" in result.output


def test_screen_json(patient):
    result = _run("screen", "--study", "nct04762485", "--patient", patient(), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["eligible"] is True and data["decision"] == "eligible"
    assert len(data["criteria"]) == 15 and {c["status"] for c in data["criteria"]} == {"met"}


def test_screen_bad_file_and_value(tmp_path, patient):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    result = _run("screen", "--study", "nct04762485", "--patient", str(bad))
    assert result.exit_code == 1 and "Invalid `patient file`" in result.output
    result = _run("screen", "--study", "nct04762485", "--patient",
                  patient(ecog="one"))
    assert result.exit_code == 1 and "Invalid `ecog`" in result.output


def test_dose_table_and_json():
    args = ["dose", "--study", "nct04762485", "--level", "DL2", "--weight", "70",
            "--concentration", "5e5", "--volume", "200"]
    result = _run(*args)
    assert result.exit_code == 0, result.output
    assert "49.0 + 49.0" in result.output and "7e+07 CAR+ cells" in result.output
    data = json.loads(_run(*args, "--json").output)
    assert [f["volume_ml"] for f in data["fractions"]] == [42.0, 98.0]
    assert data["total_cells"] == 7e7


def test_dose_refusal_says_why():
    result = _run("dose", "--study", "nct04762485", "--level", "DL2", "--weight", "70",
                  "--concentration", "5e5", "--volume", "100")
    assert result.exit_code == 1 and "too little product" in result.output


def test_screen_is_readable_at_80_columns(monkeypatch, tmp_path, eligible):
    monkeypatch.setattr(common.console, "width", 80)  # after the autouse wide console
    path = tmp_path / "patient.json"
    path.write_text(json.dumps(eligible), encoding="utf-8")
    result = CliRunner().invoke(app, ["screen", "--study", "nct04762485", "--patient",
                                      str(path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line.rstrip()) for line in result.output.splitlines()) <= 80
    assert re.search(r"finding +satisfied", result.output)
    assert re.search(r"finding +absent", result.output)


def test_screen_refuses_lvef_035_with_nyha_2(patient):
    result = _run("screen", "--study", "nct04762485", "--patient",
                  patient(lvef=0.35, nyha_class=2), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["eligible"] is False
    failed = [c for c in data["criteria"] if c["status"] == "not met"]
    assert [c["id"] for c in failed] == ["I5"]

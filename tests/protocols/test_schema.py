"""Schema validation: bad protocol input is refused with a message naming the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from celltrial.errors import ProtocolError
from celltrial.protocols import STANDARD_VARIABLES, Protocol, load, read


def test_shipped_protocol_round_trips_through_json(protocol_data: dict[str, Any]) -> None:
    p = load("nct04762485")
    again = Protocol.model_validate(p.model_dump(mode="json"))
    assert again == p


def test_protocol_is_frozen() -> None:
    p = load("nct04762485")
    with pytest.raises(Exception, match="frozen"):
        p.title = "x"  # type: ignore[misc]


def test_standard_variables_are_present_with_units() -> None:
    p = load("nct04762485")
    assert set(STANDARD_VARIABLES) <= set(p.variables)
    assert p.variables["lvef"].unit == "fraction" and p.variables["lvef"].max == 1
    assert p.variables["bilirubin_mg_dl"].unit == "mg/dL"
    assert "ETP-ALL" in (p.variables["diagnosis"].categories or [])


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[int(last) if last.isdigit() else last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "field", "says"), [
    ("title", _DELETE, "title", "Field required"),
    ("target_enrollment", -3, "target_enrollment", "greater than 0"),
    ("intervention.dose_levels.0.cells_per_kg", "lots", "intervention.dose_levels[0].cells_per_kg",
     "valid number"),
    ("intervention.dose_levels.0.cells_per_kg", 0, "intervention.dose_levels[0].cells_per_kg",
     "greater than 0"),
    ("intervention.dose_levels.0.rationale", None, "intervention.dose_levels[0]",
     "assumed value needs a one-line `rationale`"),
    ("eligibility.inclusion.1.rule", "age_years >= 12 +", "eligibility.inclusion[1].rule",
     "Invalid rule"),
    ("eligibility.inclusion.1.rule", "open('x')", "eligibility.inclusion[1].rule",
     "unsupported expression"),
    ("endpoints.0.kind", "tertiary", "endpoints[0].kind", "'primary' or 'secondary'"),
    ("response_criteria", ["recist"], "response_criteria[0]", "aml_eln2022"),
    ("dlt.rules.0.scale", "who", "dlt.rules[0].scale", "'ctcae' or 'astct'"),
    ("intervention.split.0.fraction", 1.5, "intervention.split[0].fraction", "less than or equal to 1"),
    ("unexpected_field", 1, "unexpected_field", "Extra inputs are not permitted"),
    ("intervention.cd7_editing", "talen", "intervention.cd7_editing", "'knockout'"),
    ("intervention.cd7_editing_rationale", None, "intervention",
     "an assumed `cd7_editing` needs a one-line `cd7_editing_rationale`"),
    ("id", "Bad Id", "id", "pattern"),
])
def test_bad_input_names_the_field(protocol_data: dict[str, Any],
                                   write_protocol: Callable[..., Path],
                                   path: str, value: Any, field: str, says: str) -> None:
    _set(protocol_data, path, value)
    target = write_protocol(protocol_data)
    with pytest.raises(ProtocolError) as info:
        read(target)
    assert f"{target}: {field}" in info.value.message
    assert says in info.value.message


def test_not_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ntitle: [unclosed\n", encoding="utf-8")
    with pytest.raises(ProtocolError, match=r"line \d+, column \d+"):
        read(bad)


def test_unknown_id_lists_the_known_ones() -> None:
    with pytest.raises(ProtocolError, match=r"Invalid `protocol`: got `'cd19-x'`, must be one of "
                                            r"cd7-aml-mll"):
        load("cd19-x")


def test_load_refuses_a_protocol_with_lint_errors(protocol_data: dict[str, Any],
                                                  write_protocol: Callable[..., Path]) -> None:
    protocol_data["eligibility"]["inclusion"][1]["rule"] = "65 <= age_years <= 12"
    with pytest.raises(ProtocolError, match=r"(?s)fails lint with 1 error.*impossible range"):
        load(write_protocol(protocol_data))

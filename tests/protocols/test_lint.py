"""Lint: errors (exit 1) and warnings (exit 0), each check exercised on a broken copy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from celltrial.protocols import lint
from celltrial.protocols.lint import ERROR_CHECKS, WARNING_CHECKS


def _codes(messages: list[Any], level: str) -> list[str]:
    return [m.code for m in messages if m.level == level]


def test_nct04762485_warns_about_i6_and_cd38_without_errors() -> None:
    messages = lint("nct04762485")
    assert _codes(messages, "error") == []
    i6 = [m for m in messages if m.code == "W201"]
    assert len(i6) == 1 and "eligibility.inclusion[5] (I6)" in i6[0].where
    assert "> 3x upper limit of normal" in i6[0].message and "intended reading" in i6[0].message
    cd38 = [m for m in messages if m.code == "W202"]
    assert len(cd38) == 1 and cd38[0].where.endswith("arm_label") and "CD38" in cd38[0].message


def test_cd7_aml_mll_condition_contradicts_eligibility() -> None:
    found = [m for m in lint("cd7-aml-mll") if m.code == "W203"]
    assert len(found) == 1 and "Leukemia, T Cell" in found[0].message


def test_check_codes_are_unique() -> None:
    codes = [c.code for c in (*ERROR_CHECKS, *WARNING_CHECKS)]
    assert len(codes) == len(set(codes))


def _at(data: dict[str, Any], *keys: Any) -> Any:
    for key in keys:
        data = data[key]
    return data


# (what to break, code expected, field path named, words in the message)
ERRORS: list[tuple[Callable[[dict[str, Any]], None], str, str, str]] = [
    (lambda d: _at(d, "eligibility", "inclusion", 1).update(rule="12 <= age_yrs <= 65"),
     "P110", "eligibility.inclusion[1] (I2).rule", "unknown variable `age_yrs`"),
    (lambda d: _at(d, "eligibility", "inclusion", 1).update(rule="65 <= age_years <= 12"),
     "P120", "eligibility.inclusion[1] (I2).rule", "impossible range for `age_years`"),
    (lambda d: _at(d, "eligibility", "inclusion", 2).update(rule="ecog <= 2 and ecog > 3"),
     "P120", "eligibility.inclusion[2] (I3).rule", "impossible range for `ecog`"),
    (lambda d: _at(d, "eligibility", "inclusion", 3).update(rule="cd7_blast_pct > 130"),
     "P121", "eligibility.inclusion[3] (I4).rule", "outside its possible range"),
    (lambda d: _at(d, "eligibility", "inclusion", 0).update(rule="diagnosis in ['AML', 'CLL']"),
     "P111", "eligibility.inclusion[0] (I1).rule", "no category ['CLL']"),
    (lambda d: _at(d, "eligibility", "inclusion", 0).update(rule="relapsed_refractory > 1"),
     "P111", "eligibility.inclusion[0] (I1).rule", "is True/False"),
    (lambda d: _at(d, "eligibility", "inclusion", 4).update(rule="lvef >= 50 or nyha_class <= 2"),
     "P140", "eligibility.inclusion[4] (I5).rule", "reads as %"),
    (lambda d: _at(d, "eligibility", "inclusion", 5).update(units={"bilirubin_mg_dl": "umol/L"}),
     "P140", "eligibility.inclusion[5] (I6).units.bilirubin_mg_dl", "unit mismatch"),
    (lambda d: _at(d, "intervention", "split", 1).update(fraction=0.6),
     "P122", "intervention.split", "sum to 0.9"),
    (lambda d: _at(d, "intervention", "bags").update(min_bags=5),
     "P123", "intervention.bags", "min_bags 5 > max_bags 4"),
    (lambda d: _at(d, "intervention", "bags").update(min_volume_ml=60),
     "P123", "intervention.bags", "min_volume_ml 60 > max_volume_ml 50"),
    (lambda d: _at(d, "endpoints", 0).pop("derivation"),
     "P130", "endpoints[0].derivation", "has no derivation"),
    (lambda d: _at(d, "endpoints", 0).update(derivation="orr@3mo"),
     "P130", "endpoints[0].derivation", "unknown derivation `orr@3mo`"),
    (lambda d: _at(d, "endpoints", 1).update(id="ae_number"),
     "P101", "endpoints", "id `ae_number` is used 2 times"),
    (lambda d: _at(d, "schedule").update(marrow_days=[28, -7]),
     "P125", "schedule.marrow_days", "strictly increasing"),
]


@pytest.mark.parametrize(("breaker", "code", "field", "words"), ERRORS,
                         ids=[f"{c}-{f}" for _, c, f, _ in ERRORS])
def test_error(protocol_data: dict[str, Any], write_protocol: Callable[..., Path],
               breaker: Callable[[dict[str, Any]], None], code: str, field: str,
               words: str) -> None:
    breaker(protocol_data)
    messages = lint(write_protocol(protocol_data))
    errors = [m for m in messages if m.level == "error"]
    assert [m.code for m in errors] == [code], [m.format() for m in errors]
    assert errors[0].where == f"broken.yaml: {field}"
    assert words in errors[0].message


def test_schema_error_is_a_lint_error_naming_file_and_field(
        protocol_data: dict[str, Any], write_protocol: Callable[..., Path]) -> None:
    protocol_data["intervention"]["dose_levels"][0]["cells_per_kg"] = "many"
    path = write_protocol(protocol_data)
    [message] = lint(path)
    assert (message.level, message.code) == ("error", "P100")
    assert message.where == f"{path}: intervention.dose_levels[0].cells_per_kg"


def test_library_file_must_be_named_for_its_id(protocol_data: dict[str, Any]) -> None:
    from celltrial.protocols import Protocol, library_dir

    p = Protocol.model_validate({**protocol_data, "id": "other-id"})
    found = [m for m in lint(p, path=library_dir() / "nct04762485.yaml") if m.code == "P150"]
    assert len(found) == 1


# (what to change, warning code expected, words in the message)
WARNINGS: list[tuple[Callable[[dict[str, Any]], None], str, str]] = [
    (lambda d: _at(d, "eligibility", "inclusion", 5).update(
        text="Bilirubin <= 2.0 mg/dL", rule="bilirubin_mg_dl > 2.0"),
     "W201", "admits only abnormal `bilirubin_mg_dl`"),
    (lambda d: d.update(conditions=["CD19 positive B-ALL"]), "W202", "names CD19"),
    (lambda d: d.update(conditions=["B lymphoblastic leukemia"]), "W203", "names B-ALL"),
    (lambda d: _at(d, "intervention", "dose_levels", 1).update(cells_per_kg=1.0e5),
     "W211", "not strictly increasing"),
    (lambda d: d.update(target_enrollment=6), "W212", "cannot give 3 per each of 5"),
    (lambda d: _at(d, "schedule").update(followup_days=[28, 365]), "W220", "beyond the last"),
    (lambda d: _at(d, "schedule").update(kinetics_days=[]), "W221", "needs schedule.kinetics_days"),
    (lambda d: _at(d, "endpoints", 3).update(params={"landmark": 90}), "W222", "no parameter"),
    (lambda d: _at(d, "endpoints", 0).update(time_frame_days=30), "W223", "does not match"),
    (lambda d: _at(d, "endpoints", 0).update(name="Cmaxï¼‰"), "W230", "garbled"),
]


@pytest.mark.parametrize(("changer", "code", "words"), WARNINGS, ids=[c for _, c, _ in WARNINGS])
def test_warning(protocol_data: dict[str, Any], write_protocol: Callable[..., Path],
                 changer: Callable[[dict[str, Any]], None], code: str, words: str) -> None:
    before = lint(write_protocol(protocol_data, "ok.yaml"))
    assert not [m for m in before if m.code == code and words in m.message]
    changer(protocol_data)
    messages = lint(write_protocol(protocol_data))
    assert _codes(messages, "error") == []
    found = [m for m in messages if m.code == code and words in m.message]
    assert found, [m.format() for m in messages]

"""The five shipped protocols: they load, and hold what their registrations say."""

from __future__ import annotations

from pathlib import Path

import pytest

from celltrial.protocols import DERIVATIONS, list_ids, lint, load
from celltrial.protocols.criteria import evaluate

SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"
IDS = ["cd7-aml-mll", "cd7-tall-dlt", "cd7-tall-phase1", "cd7-zz-phase1", "nct04762485"]

# id -> (registration file, registered outcome measures, endpoints after splitting multi-part ones)
REGISTERED = {
    "cd7-aml-mll": ("000_a62d0871cbea2cda.txt", 9, 17),
    "cd7-tall-phase1": ("001_43bc80a192156edd.txt", 4, 7),
    "nct04762485": ("002_310252d8081801c5.txt", 4, 5),
    "cd7-zz-phase1": ("003_08db03101628a513.txt", 12, 13),
    "cd7-tall-dlt": ("004_11b440b42624ca47.txt", 4, 4),
}


def test_list_ids_are_the_five_studies() -> None:
    assert list_ids() == IDS


@pytest.mark.parametrize("pid", IDS)
def test_loads_with_every_part(pid: str) -> None:
    p = load(pid)
    source, measures, endpoints = REGISTERED[pid]
    assert p.id == pid and p.source == source and p.target_antigen == "CD7"
    assert p.eligibility.inclusion and p.dose_levels and p.intervention.split
    assert sorted({e.measure for e in p.endpoints}) == list(range(1, measures + 1))
    assert len(p.endpoints) == endpoints
    assert len({e.id for e in p.endpoints}) == len(p.endpoints)
    assert any(e.kind == "primary" for e in p.endpoints)
    assert sum(f.fraction for f in p.intervention.split) == pytest.approx(1.0)


@pytest.mark.parametrize("pid", IDS)
def test_every_endpoint_has_a_known_derivation(pid: str) -> None:
    for e in load(pid).endpoints:
        assert e.derivation in DERIVATIONS, e.id


@pytest.mark.parametrize("pid", IDS)
def test_no_lint_errors(pid: str) -> None:
    assert [m.format() for m in lint(pid) if m.level == "error"] == []


@pytest.mark.parametrize("pid", IDS)
def test_every_assumed_value_has_a_rationale(pid: str) -> None:
    p = load(pid)
    items = [*p.eligibility.inclusion, *p.eligibility.exclusion, *p.dose_levels,
             *p.intervention.split, p.intervention.bags, p.schedule, p.dlt, *p.endpoints]
    assert all(i.rationale for i in items if i.assumed)
    assert not p.target_enrollment_assumed or p.target_enrollment_rationale


@pytest.mark.parametrize("pid", IDS)
def test_product_cd7_editing_is_stated_or_an_assumption_with_its_rationale(pid: str) -> None:
    """Product CD7 editing is protocol data (it sets the model's fratricide): none of the five
    registrations says whether CD7 is knocked out or blocked, so each file marks it assumed."""
    iv = load(pid).intervention
    assert iv.cd7_editing in ("knockout", "pebl", "natural_selection", "none", "unknown")
    assert "cd7_editing" in iv.model_fields_set                  # written in the file
    assert iv.cd7_editing_assumed and iv.cd7_editing_rationale
    assert iv.cd7_editing == "unknown"


def test_cd7_editing_defaults_to_unknown_and_takes_every_value(protocol_data) -> None:
    from celltrial.protocols import Protocol

    del protocol_data["intervention"]["cd7_editing"]
    del protocol_data["intervention"]["cd7_editing_assumed"]
    del protocol_data["intervention"]["cd7_editing_rationale"]
    assert Protocol.model_validate(protocol_data).intervention.cd7_editing == "unknown"
    for value in ("knockout", "pebl", "natural_selection", "none"):
        protocol_data["intervention"]["cd7_editing"] = value
        assert Protocol.model_validate(protocol_data).intervention.cd7_editing == value


@pytest.mark.parametrize("pid", IDS)
def test_endpoint_names_are_verbatim_from_the_registration(pid: str) -> None:
    if not SEEDS.is_dir():
        pytest.skip(f"registrations not found at {SEEDS}")
    p = load(pid)
    text = (SEEDS / p.source).read_text(encoding="utf-8")  # type: ignore[operator]
    for e in p.endpoints:
        assert e.name in text, e.id
        if e.description and e.id != "pk_cmax":
            assert e.description in text, e.id
    for c in [*p.eligibility.inclusion, *p.eligibility.exclusion]:
        if not c.assumed:
            assert c.text in text, c.id


def test_cmax_mojibake_is_normalised_and_recorded() -> None:
    ep = load("cd7-tall-dlt").endpoint("pk_cmax")
    assert ep.description == "The maximum concentration (Cmax)"
    assert "Cmaxï¼‰" in (ep.note or "")


def test_nct04762485_as_registered() -> None:
    p = load("nct04762485")
    assert p.registration == "NCT04762485" and p.target_enrollment == 20
    assert not p.target_enrollment_assumed
    assert p.arm_label == "CD38 positive relapsed or refractory acute leukemia"
    i6 = p.eligibility.inclusion[5]
    assert i6.id == "I6" and "> 3x upper limit of normal or bilirubin > 2.0 mg/dL" in i6.text
    assert "intended reading" in (i6.reading or "")
    # the rule uses the corrected reading: normal liver function is eligible
    assert evaluate(i6.rule, {"ast_x_uln": 1, "alt_x_uln": 1, "bilirubin_mg_dl": 0.8}) is True
    assert evaluate(i6.rule, {"ast_x_uln": 4, "alt_x_uln": 1, "bilirubin_mg_dl": 0.8}) is False
    assert [d.cells_per_kg for d in p.dose_levels][0] == 5.0e5
    assert [d.cells_per_kg for d in p.dose_levels][-1] == 1.0e7
    assert [(f.day, f.fraction) for f in p.intervention.split] == [(0, 0.3), (1, 0.7)]
    assert p.endpoint("orr").params["categories"] == ["CR", "CRh", "CRi", "MLFS", "PR"]
    assert [e.derivation for e in p.endpoints] == ["ae_incidence", "ck_persistence_qpcr",
                                                   "ck_expansion_qpcr", "orr", "cir"]


@pytest.mark.parametrize(("pid", "diagnosis", "eligible_by_diagnosis"), [
    ("cd7-aml-mll", "AML", True), ("cd7-aml-mll", "MPAL", True), ("cd7-aml-mll", "T-ALL", False),
    ("cd7-aml-mll", "T-LBL", False), ("cd7-tall-phase1", "T-ALL", True),
    ("cd7-tall-phase1", "AML", False), ("cd7-tall-dlt", "T-ALL", True),
    ("cd7-tall-dlt", "AML", False), ("nct04762485", "AML", True), ("nct04762485", "B-ALL", False),
])
def test_diagnosis_constraints(pid: str, diagnosis: str, eligible_by_diagnosis: bool) -> None:
    p = load(pid)
    values = {"diagnosis": diagnosis, "relapsed_refractory": True}
    failed = [c.id for c in p.eligibility.inclusion if evaluate(c.rule, values) is False]
    excluded = [c.id for c in p.eligibility.exclusion if evaluate(c.rule, values) is True]
    assert (not failed and not excluded) is eligible_by_diagnosis


def test_cd7_zz_phase1_registered_bags_and_enrollment() -> None:
    p = load("cd7-zz-phase1")
    b = p.intervention.bags
    assert (b.min_volume_ml, b.max_volume_ml, b.min_bags, b.max_bags, b.assumed) == (10, 50, 1, 4, False)
    assert p.target_enrollment == 9 and not p.target_enrollment_assumed
    assert [e.params.get("at_day") for e in p.endpoints if e.derivation == "orr"] == [90, 180]
    assert p.schedule.ada_days


def test_doses_are_cells_per_kg_floats() -> None:
    for pid in IDS:
        for d in load(pid).dose_levels:
            assert isinstance(d.cells_per_kg, float) and 1e5 <= d.cells_per_kg <= 1e7

"""Virtual trials: determinism, the SDTM contract of docs/data-model.md, eligibility,
enrolment by cohorts, split infusions and their hold rule, CRS/ICANS consistency, BLQ
convention, all five protocols, the store and the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from celltrial.clinical import grade_crs, grade_icans, next_fraction, screen
from celltrial.conduct import FIRST_INFUSION, run_virtual_trial, simulate_study, write_study
from celltrial.kinetics.virtual import (
    DOMAIN_COLUMNS, XC_DAYS, draw_patients, late_days, simulate_cohort,
)
from celltrial.protocols import list_ids, load

CUT = "2026-12-01"

DATA_MODEL = Path(__file__).parents[2] / "docs" / "data-model.md"


@pytest.fixture(scope="module")
def study():
    return simulate_study(load("nct04762485"), 30, 7, data_cut=CUT)


def contract() -> dict[str, set[str]]:
    """Domain -> variables, read from the store's table of docs/data-model.md (rows named
    "XX description"; the SDTM export table's rows name the dataset alone)."""
    out = {}
    for line in DATA_MODEL.read_text().splitlines():
        m = re.match(r"\|\s*([A-Z]{2}) [^|\s][^|]*\|([^|]*)\|", line)
        if m:
            cell = re.sub(r"\([^)]*\)", "", m.group(2))
            out[m.group(1)] = {"STUDYID", "USUBJID", *re.findall(r"\b[A-Z][A-Z0-9]{1,7}\b", cell)}
    return out


def test_same_seed_gives_identical_data_and_another_seed_does_not():
    protocol = load("cd7-tall-dlt")
    a, b = simulate_study(protocol, 12, 3, data_cut=CUT), simulate_study(protocol, 12, 3,
                                                                        data_cut=CUT)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    c = simulate_study(protocol, 12, 4, data_cut=CUT)
    assert not a["PC"].equals(c["PC"])


def test_every_domain_has_exactly_the_variables_of_the_data_model(study):
    expected = contract()
    assert set(expected) == set(DOMAIN_COLUMNS) == set(study)
    for name, frame in study.items():
        assert set(frame.columns) == expected[name], name


def test_seq_is_unique_per_subject_and_domain(study):
    for name, frame in study.items():
        if name != "DM" and len(frame):
            assert not frame.duplicated(["USUBJID", f"{name}SEQ"]).any(), name


def sc_values(study, protocol, usubjid):
    sc = study["SC"][study["SC"]["USUBJID"] == usubjid]
    values = {}
    for code, text in zip(sc["SCTESTCD"], sc["SCORRES"], strict=True):
        var = protocol.variables[code]
        values[code] = (text == "Y") if var.type == "bool" else \
            text if var.type == "category" else float(text)
    return values


def test_no_dosed_patient_fails_screening_and_screen_failures_are_not_dosed(study):
    protocol = load("nct04762485")
    dosed = set(study["EX"]["USUBJID"])
    failures = set(study["DS"].loc[study["DS"]["DSDECOD"] == "SCREEN FAILURE", "USUBJID"])
    assert dosed and failures and not dosed & failures
    # screening stops when enrolment closes: every screened patient is a failure or dosed
    assert dosed | failures == set(study["DM"]["USUBJID"])
    for usubjid in study["DM"]["USUBJID"]:
        eligible = screen(protocol, sc_values(study, protocol, usubjid)).eligible
        assert eligible == (usubjid in dosed), usubjid


def test_first_patient_infused_2025_01_06_and_the_first_cohort_at_dl1(study):
    dm = study["DM"][study["DM"]["ARMCD"] != ""].sort_values("RFSTDTC")
    assert dm["RFSTDTC"].iloc[0] == FIRST_INFUSION.isoformat()
    assert list(dm["ARMCD"].iloc[:3]) == ["DL1"] * 3


def test_split_infusion_follows_the_protocol(study):
    protocol = load("nct04762485")
    split = protocol.intervention.split
    ex = study["EX"].merge(study["DM"][["USUBJID", "ARMCD", "RFSTDTC"]], on="USUBJID")
    levels = {lv.id: lv.cells_per_kg for lv in protocol.dose_levels}
    for _, rows in ex.groupby("USUBJID"):
        assert list(rows["EXFRACN"]) == list(range(1, len(rows) + 1))
        for row, frac in zip(rows.itertuples(), split, strict=False):
            day = (pd.Timestamp(row.EXSTDTC) - pd.Timestamp(row.RFSTDTC)).days
            assert day == frac.day
            if row.EXDOSE == 0:
                assert row.EXADJ.startswith("WITHHELD: H"), row
            else:
                assert row.EXDOSE == pytest.approx(levels[row.ARMCD] * frac.fraction, rel=0.06)


def test_the_second_fraction_is_withheld_exactly_when_a_hold_rule_is_met():
    """nct04762485: 30% on day 0, 70% on day 1; H1 CRS >= 2, H2 any ICANS seen on days 0-1
    (before the day-1 infusion) withhold it. 300 patients at the top dose level."""
    protocol = load("nct04762485")
    rng = np.random.default_rng(11)
    patients = draw_patients(protocol, 300, rng)
    cohort = simulate_cohort(protocol, patients, len(protocol.dose_levels) - 1, rng,
                             late_days(protocol))
    seen_crs = cohort.crs_daily[:, :2].max(axis=1)
    seen_icans = cohort.icans_daily[:, :2].max(axis=1)
    for i in range(len(patients)):
        expected = next_fraction(protocol, 2, {"crs_grade": int(seen_crs[i]),
                                               "icans_grade": int(seen_icans[i])})
        assert (cohort.fractions_given[i] == 2) == expected.give, i
        assert (cohort.hold_reasons[i] is None) == expected.give
    assert (cohort.fractions_given == 1).any() and (cohort.fractions_given == 2).any()


def test_daily_crs_grades_are_one_episode_whose_worst_grade_is_the_calibrated_link():
    from celltrial.kinetics.mechanistic import CRS_LINK

    protocol = load("cd7-aml-mll")
    rng = np.random.default_rng(5)
    patients = draw_patients(protocol, 200, rng)
    cohort = simulate_cohort(protocol, patients, 2, rng, late_days(protocol))
    daily = cohort.crs_daily
    assert daily.shape == (200, XC_DAYS + 1) and (daily[:, 0] == 0).all()
    for row in daily:
        on = np.flatnonzero(row)
        if on.size:
            assert (row[on.min(): on.max() + 1] > 0).all()   # no gap: one episode
    il6 = cohort.early.state("IL6")[:, : XC_DAYS + 1]
    rise = np.maximum(il6 - il6[:, :1], 1e-9).max(axis=1)
    p_any = CRS_LINK.probabilities(rise)[:, 0].mean()
    assert (daily.max(axis=1) > 0).mean() == pytest.approx(p_any, abs=0.08)


def test_crs_and_icans_grades_are_those_of_the_clinical_rules(study):
    xc = study["XC"]
    for row in xc.itertuples():
        obs = {"temperature_c": row.XCTEMP, "hypotension": row.XCHYPOT, "oxygen": row.XCOXY}
        assert grade_crs(obs) == row.XCCRSGR
        ice = None if pd.isna(row.XCICE) else int(row.XCICE)
        assert grade_icans({"ice_score": ice, "consciousness": row.XCLOC,
                            "seizure": row.XCSEIZ, "motor": row.XCMOTOR,
                            "edema": row.XCEDEMA}) == row.XCICAGR
    ae = study["AE"]
    for term, column in (("Cytokine release syndrome", "XCCRSGR"),
                         ("Immune effector cell-associated neurotoxicity syndrome", "XCICAGR")):
        worst = xc.groupby("USUBJID")[column].max()
        graded = ae[ae["AEDECOD"] == term].set_index("USUBJID")["AETOXGR"]
        for usubjid, grade in worst.items():
            if grade > 0:
                assert graded[usubjid] in (grade, 5), usubjid
            else:
                assert usubjid not in graded.index


def test_kinetics_blq_convention(study):
    pc = study["PC"]
    blq = pc["PCORRES"] == "<LLOQ"
    assert blq.any() and (~blq).any()
    assert pc.loc[blq, "PCSTRESN"].isna().all()
    assert (pc.loc[~blq, "PCSTRESN"] >= pc.loc[~blq, "PCLLOQ"]).all()
    assert set(pc["PCTESTCD"]) == {"CARTQPCR", "CARTPCT", "CARTABS"}


def test_cd7_cells_fall_after_infusion(study):
    lb = study["LB"]
    cd7 = lb[lb["LBTESTCD"] == "CD7ABS"].merge(study["DM"][["USUBJID", "RFSTDTC"]])
    day = (pd.to_datetime(cd7["LBDTC"]) - pd.to_datetime(cd7["RFSTDTC"])).dt.days
    before = cd7.loc[day == 0, "LBSTRESN"].median()
    after = cd7.loc[day == 28, "LBSTRESN"].median()
    assert after < 0.2 * before


@pytest.mark.parametrize("study_id", list_ids())
def test_every_protocol_generates_a_study(study_id):
    protocol = load(study_id)
    data = simulate_study(protocol, 9, 1, data_cut=CUT)
    assert 1 <= len(data["DM"]) <= 9
    dosed = data["DM"][data["DM"]["ARMCD"] != ""]
    assert set(dosed["ARMCD"]) <= {lv.id for lv in protocol.dose_levels}
    assert set(data["RS"]["RSTESTCD"]) <= {"OVRLRESP", "MARROW", "EMRESP"}


def test_enrolment_stops_at_the_data_cut_and_the_study_is_ongoing():
    trial = run_virtual_trial(load("nct04762485"), 40, 3, data_cut="2025-06-30")
    assert all(s.first_infusion.isoformat() <= "2025-06-30" for s in trial.steps)
    assert trial.stopped.startswith(("the next", "the design stopped")), trial.stopped
    ds = trial.domains["DS"]
    infused = set(trial.domains["EX"]["USUBJID"])
    assert infused - set(ds["USUBJID"]), "some infused patients are still in follow-up"


def test_write_study_goes_through_the_store(tmp_path):
    store_module = pytest.importorskip("celltrial.store")
    if not hasattr(store_module, "write_domains"):
        pytest.skip("celltrial.store.write_domains has not landed yet")
    url = f"sqlite:///{tmp_path / 'virtual.db'}"
    protocol = load("cd7-zz-phase1")
    store_module.init_db(url)
    store = store_module.open_store(url)
    store_module.register_study(store, protocol)
    trial = write_study(store, protocol, 6, 2, data_cut=CUT)
    back = store_module.read_domains(store, protocol.id)
    for name, frame in trial.domains.items():
        assert len(back.get(name, [])) == len(frame), name


def test_simulate_study_command_writes_csv_and_json(tmp_path):
    import json

    from typer.testing import CliRunner

    from celltrial.cli.main import app

    result = CliRunner().invoke(app, ["simulate-study", "--study", "cd7-aml-mll", "-n", "6",
                                      "--seed", "5", "--no-db", "--json", "--data-cut", CUT,
                                      "--csv-out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["records"]["DM"] == out["screened"] <= 6
    assert out["data_cut"] == CUT and out["cohorts"][0]["level"] == "DL1"
    dm = pd.read_csv(tmp_path / "dm.csv")
    assert len(dm) == out["screened"] and list(dm.columns) == list(DOMAIN_COLUMNS["DM"])


def test_simulate_study_command_refuses_a_bad_data_cut():
    from typer.testing import CliRunner

    from celltrial.cli.main import app

    result = CliRunner().invoke(app, ["simulate-study", "--study", "cd7-aml-mll", "--no-db",
                                      "--data-cut", "2026-13-01"])
    assert result.exit_code == 1
    assert "an ISO 8601 date" in result.output


def test_simulate_study_command_refuses_a_study_that_holds_subjects(tmp_path):
    from typer.testing import CliRunner

    from celltrial.cli.main import app

    url = f"sqlite:///{tmp_path / 'twice.db'}"
    args = ["simulate-study", "--study", "cd7-zz-phase1", "-n", "4", "--seed", "1", "--db", url]
    assert CliRunner().invoke(app, args).exit_code == 0
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 1
    assert "must be a study without subjects" in " ".join(second.output.split())

"""The escalation a virtual trial ran is the one ``celltrial escalate`` derives from its stored
records, for every study and several seeds; the study's maximum is never exceeded, nothing is
dated after the data cut, every death has a cause; a cohort dosed where the design did not
allow it is a protocol deviation."""

from __future__ import annotations

import datetime as dt
import functools
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from celltrial.cli.main import app
from celltrial.conduct import (
    RECORD_DATE_COLUMNS, enrolment_cap, escalation_history, run_virtual_trial,
)
from celltrial.protocols import list_ids, load
from celltrial.store import init_db, open_store, read_domains, register_study, write_domains

CUT = dt.date(2026, 12, 1)
SEEDS = (1, 2)


@functools.lru_cache(maxsize=None)
def virtual_trial(study_id: str, seed: int):
    """The 40-referred virtual trial of a study (made once per test process: several tests
    read the same trial; none changes it)."""
    return run_virtual_trial(load(study_id), 40, seed, data_cut=CUT)


def stored(url: str, protocol, domains) -> dict[str, pd.DataFrame]:
    """The domains after a round trip through the store at ``url``."""
    init_db(url)
    store = open_store(url)
    register_study(store, protocol)
    write_domains(store, protocol.id, domains, user="test", source="virtual", reason="test")
    return read_domains(store, protocol.id)


def path(steps) -> list[tuple]:
    return [(s.dose, tuple(s.subjects)) for s in steps]


@pytest.mark.parametrize("study_id", list_ids())
@pytest.mark.parametrize("seed", SEEDS)
def test_escalate_reproduces_every_decision_of_the_virtual_trial(study_id, seed, tmp_path):
    protocol = load(study_id)
    trial = virtual_trial(study_id, seed)
    back = stored(f"sqlite:///{tmp_path / f'{seed}.db'}", protocol, trial.domains)
    history = escalation_history(back, protocol)
    assert [(s.cohort.dose, s.cohort.subjects) for s in history.steps] == \
        path(trial.steps)
    for sim, replay in zip(trial.steps, history.steps, strict=True):
        assert (replay.decision.action, replay.decision.dose, replay.decision.reason) == \
            (sim.action, sim.dose, sim.reason), (seed, sim.number)
        if sim.decided_on is not None:
            assert replay.decided_on == sim.decided_on
    assert not history.deviations, seed
    assert history.current.decision == trial.final.decision, seed
    # the design's maximum, the data cut, causes of death
    infused = back["DM"]["RFSTDTC"].notna().sum()
    assert infused == sum(len(s.subjects) for s in trial.steps) <= enrolment_cap(protocol)
    for name, frame in back.items():
        for column in RECORD_DATE_COLUMNS.get(name, ()):
            dates = frame[column].dropna().astype(str).str.slice(0, 10)
            assert (dates <= CUT.isoformat()).all(), (seed, name, column)
    dm, ds = back["DM"], back["DS"]
    dead = dm.loc[dm["DTHDTC"].notna(), "USUBJID"]
    causes = ds[ds["DSDECOD"] == "DEATH"].set_index("USUBJID")["DSTERM"]
    for usubjid in dead:
        assert isinstance(causes.get(usubjid), str) and causes[usubjid].strip(), usubjid


def test_a_cohort_dosed_above_the_design_is_a_deviation():
    protocol = load("cd7-tall-dlt")          # 3+3
    trial = virtual_trial(protocol.id, 2)
    assert len(trial.steps) >= 2
    allowed = trial.steps[1].dose
    given = 4 if allowed != 4 else 3
    second = set(trial.steps[1].subjects)
    dm = trial.domains["DM"].copy()
    dm.loc[dm["USUBJID"].isin(second), "ARMCD"] = f"DL{given}"
    history = escalation_history({**trial.domains, "DM": dm}, protocol)
    deviations = history.deviations
    assert deviations and deviations[0].cohort.number == 2
    assert deviations[0].decision.dose == allowed
    assert (f"cohort 2 dosed at dose {given} (DL{given}); the design allowed dose {allowed}"
            in deviations[0].deviation)


def test_escalate_command_prints_the_history_and_flags_deviations(tmp_path):
    protocol = load("cd7-tall-phase1")
    trial = virtual_trial(protocol.id, 1)
    dm = trial.domains["DM"].copy()
    first = set(trial.steps[0].subjects)
    dm.loc[dm["USUBJID"].isin(first), "ARMCD"] = "DL2"    # the design starts at DL1
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    stored(url, protocol, {**trial.domains, "DM": dm})
    runner = CliRunner()
    text = runner.invoke(app, ["escalate", "--study", protocol.id, "--db", url])
    assert text.exit_code == 0, text.output
    flat = " ".join(text.output.split())
    assert "escalation history" in flat and "protocol deviation" in flat
    out = runner.invoke(app, ["escalate", "--study", protocol.id, "--db", url, "--json"])
    data = json.loads(out.output)
    assert len(data["history"]["cohorts"]) == len(trial.steps)
    assert data["history"]["deviations"] and data["action"] in ("stop", "stay", "escalate",
                                                                "de-escalate")


def test_the_replay_is_the_same_from_postgresql_and_sqlite(db_url):
    """The records read back from either server give the simulator's escalation path."""
    protocol = load("nct04762485")       # BOIN, split infusion
    trial = virtual_trial(protocol.id, 3)
    history = escalation_history(stored(db_url, protocol, trial.domains), protocol)
    assert [(s.cohort.dose, s.cohort.subjects) for s in history.steps] == path(trial.steps)
    assert [s.decision.reason for s in history.steps[1:]] == [s.reason for s in trial.steps[1:]]
    assert history.current.decision == trial.final.decision

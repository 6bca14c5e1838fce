"""`celltrial design boundaries|simulate` and `celltrial escalate` through the CLI."""

import json

import pytest
from typer.testing import CliRunner

from celltrial.cli.main import app

runner = CliRunner()


def test_boundaries_json_and_csv(tmp_path):
    out = tmp_path / "table.csv"
    res = runner.invoke(app, ["design", "boundaries", "--target", "0.3", "--csv", str(out),
                              "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.output)
    assert round(body["lambda_e"], 4) == 0.2365 and round(body["lambda_d"], 4) == 0.3585
    row12 = [r for r in body["table"] if r["n"] == 12][0]
    assert (row12["escalate_if_dlt_le"], row12["deescalate_if_dlt_ge"],
            row12["eliminate_if_dlt_ge"]) == (2, 5, 7)
    assert out.read_text().splitlines()[0] == \
        "n,escalate_if_dlt_le,deescalate_if_dlt_ge,eliminate_if_dlt_ge"


def test_boundaries_bad_target_exits_1():
    res = runner.invoke(app, ["design", "boundaries", "--target", "1.5"])
    assert res.exit_code == 1
    assert "Invalid `target`" in res.output


def test_simulate_table_plot_and_json(tmp_path):
    png = tmp_path / "sel.png"
    res = runner.invoke(app, ["design", "simulate", "--design", "boin", "--design", "3+3",
                              "-n", "5000", "--seed", "3", "--plot", str(png)])
    assert res.exit_code == 0, res.output
    assert "selected %" in res.output and png.exists()
    res = runner.invoke(app, ["design", "simulate", "-n", "2000", "--json",
                              "--scenario", "0.1,0.3,0.5"])
    rows = json.loads(res.output)
    assert [r["dose"] for r in rows] == [1, 2, 3]
    assert sum(r["selection_pct"] for r in rows) + rows[0]["stop_pct"] == pytest.approx(100)


def test_simulate_rejects_unknown_design():
    res = runner.invoke(app, ["design", "simulate", "--design", "mtpi", "-n", "10"])
    assert res.exit_code == 1 and "Invalid `--design`" in res.output


def test_escalate_on_a_store(tmp_path):
    import pandas as pd

    from celltrial import store
    from celltrial.protocols import load

    url = f"sqlite:///{tmp_path / 'ct.db'}"
    subj = ["S1", "S2", "S3"]
    dm = pd.DataFrame({"STUDYID": "cd7-tall-phase1", "USUBJID": subj, "SUBJID": subj,
                       "SITEID": "01", "AGE": 30, "SEX": "M", "DISEASE": "T-ALL",
                       "ARMCD": "DL1", "ARM": "DL1", "RFICDTC": "2024-01-01",
                       "RFSTDTC": ["2024-01-10", "2024-01-12", "2024-01-14"],
                       "RFPENDTC": "2024-04-01"})
    ex = pd.DataFrame({"STUDYID": "cd7-tall-phase1", "USUBJID": subj, "EXTRT": "CD7 CAR-T",
                       "EXSTDTC": dm["RFSTDTC"], "EXDOSE": 1e6, "EXDOSU": "cells/kg"})
    store.init_db(url)
    handle = store.open_store(url)
    store.register_study(handle, load("cd7-tall-phase1"))
    store.write_domains(handle, "cd7-tall-phase1", {"DM": dm, "EX": ex}, user="test",
                        reason="fixture")
    res = runner.invoke(app, ["escalate", "--study", "cd7-tall-phase1", "--db", url, "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.output)
    assert body["counts"][0]["n_evaluable"] == 3
    assert body["action"] == "escalate" and body["dose"] == 2

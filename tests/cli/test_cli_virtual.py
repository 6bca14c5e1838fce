"""`celltrial design virtual` and `celltrial rp2d` through the CLI."""

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from celltrial.cli.main import app
from celltrial.design.virtual_bank import BANK_COLUMNS, PatientBank, save_bank

runner = CliRunner()


def synthetic_bank(study: str, n_doses: int, size: int = 20) -> PatientBank:
    rng = np.random.default_rng(1)
    rows = []
    for lv in range(n_doses):
        for i in range(size):
            auc = float(np.exp(rng.normal(11 + 0.2 * lv, 1)))
            rows.append({"level": lv, "dose": lv + 1, "chunk": 0, "subject": f"{lv}-{i}",
                         "evaluable": True, "dlt": int(rng.uniform() < 0.1 + 0.1 * lv),
                         "response": int(rng.uniform() < 0.5 + 0.05 * lv),
                         "cmax": auc / 8, "auc28": auc, "diagnosis": "T-ALL"})
    return PatientBank(study, 1, size, pd.DataFrame(rows, columns=list(BANK_COLUMNS)))


def test_design_virtual_table_plot_csv_json(tmp_path):
    bank = tmp_path / "bank.parquet"
    save_bank(synthetic_bank("nct04762485", 5), bank)
    png, csv = tmp_path / "oc.png", tmp_path / "oc.csv"
    res = runner.invoke(app, ["design", "virtual", "--study", "nct04762485", "--designs",
                              "3+3,boin,crm,boin12,protocol", "--trials", "300", "--max-n", "30",
                              "--bank", str(bank), "--plot", str(png), "--out", str(csv)])
    assert res.exit_code == 0, res.output
    assert "true curves of the virtual population" in res.output
    assert "protocol (boin)" in res.output and "RP2D %" in res.output
    assert png.exists() and png.stat().st_size > 10_000
    table = pd.read_csv(csv)
    assert set(table["design"]) == {"3+3", "boin", "crm", "boin12", "protocol (boin)"}
    assert len(table) == 25 and (table["n_trials"] == 300).all()
    sums = table.groupby("design").apply(
        lambda g: g["selection_pct"].sum() + g["stop_pct"].iloc[0], include_groups=False)
    assert np.allclose(sums, 100)
    # the protocol's own design stops at its enrolment cap (20), the others at --max-n 30
    patients = table.groupby("design")["mean_patients"].sum()
    assert patients["protocol (boin)"] <= 20 + 1e-9 and patients["boin"] > 20
    res = runner.invoke(app, ["design", "virtual", "--study", "nct04762485", "--designs",
                              "boin", "-n", "100", "--bank", str(bank), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) == 5 and rows[0]["design"] == "boin" and rows[0]["study"] == "nct04762485"


def test_design_virtual_rejects_wrong_bank_and_design(tmp_path):
    bank = tmp_path / "bank.parquet"
    save_bank(synthetic_bank("cd7-zz-phase1", 3), bank)
    res = runner.invoke(app, ["design", "virtual", "--study", "nct04762485", "--bank",
                              str(bank), "-n", "10"])
    assert res.exit_code == 1 and "a bank of nct04762485" in res.output
    res = runner.invoke(app, ["design", "virtual", "--study", "nct04762485", "--designs",
                              "boin,ewoc", "-n", "10", "--bank", str(bank)])
    assert res.exit_code == 1 and "--designs" in res.output


def test_rp2d_on_a_virtual_study():
    res = runner.invoke(app, ["rp2d", "--study", "cd7-tall-phase1", "--virtual", "12",
                              "--seed", "5", "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.output)
    assert body["study"] == "cd7-tall-phase1" and body["assumed"] is True
    assert body["rule"]["target"] == 0.3 and len(body["doses"]) == 4
    treated = [d for d in body["doses"] if d["n"] > 0]
    assert treated and body["reason"]
    if body["rp2d"] is not None:
        chosen = body["doses"][body["rp2d"] - 1]
        assert chosen["eligible"] and chosen["p_dlt_isotonic"] <= 0.3
    res = runner.invoke(app, ["rp2d", "--study", "cd7-tall-phase1", "--virtual", "12",
                              "--seed", "5"])
    assert res.exit_code == 0, res.output
    assert "RP2D" in res.output and "isotonic P(DLT)" in res.output

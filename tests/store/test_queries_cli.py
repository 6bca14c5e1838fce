"""`celltrial db export --queries`: queries.csv next to the data, with every query's state."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from celltrial.cli.main import app
from celltrial.store.queries import EXPORT_COLUMNS, answer_query, close_query, raise_query
from tests.store.conftest import STUDY
from tests.store.oversight import add_users

runner = CliRunner()


def test_export_with_queries_writes_queries_csv(filled, tmp_path):
    add_users(filled)
    q1 = raise_query(filled, STUDY, "AE", "101-001", 1, "Grade?", user="mon101",
                     field="AETOXGR")
    answer_query(filled, STUDY, q1.id, "Grade 2 per source", user="inv101")
    close_query(filled, STUDY, q1.id, user="mon101", note="agreed")
    raise_query(filled, STUDY, "VS", "102-001", 1, "Weight?", user="mon102")
    out = tmp_path / "out"
    result = runner.invoke(app, ["db", "export", "--study", STUDY, "--format", "csv",
                                 "--out", str(out), "--db", filled.url, "--queries", "--json"])
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    assert str(out / "queries.csv") in files
    frame = pd.read_csv(out / "queries.csv", dtype=str, keep_default_na=False)
    assert list(frame.columns) == list(EXPORT_COLUMNS)
    assert frame[["usubjid", "domain", "seq", "field", "status", "site_id"]].values.tolist() == [
        ["101-001", "AE", "1", "AETOXGR", "closed", "101"],
        ["102-001", "VS", "1", "", "open", "102"]]
    assert frame["answer"].tolist() == ["Grade 2 per source", ""]
    assert frame["closed_by"].tolist() == ["mon101", ""]
    without = runner.invoke(app, ["db", "export", "--study", STUDY, "--out",
                                  str(tmp_path / "plain"), "--db", filled.url])
    assert without.exit_code == 0 and not (tmp_path / "plain" / "queries.csv").exists()

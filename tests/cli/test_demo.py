"""`celltrial demo` end to end on a throwaway SQLite database: five studies, analysed and
reported; a second run reuses the stored studies and overwrites nothing."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from celltrial.cli.main import app
from celltrial.protocols import list_ids
from celltrial.store import count_records, open_store


def test_demo_builds_five_studies_and_is_rerunnable(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    out = tmp_path / "out"
    runner = CliRunner()
    first = runner.invoke(app, ["demo", "-n", "6", "--seed", "4", "--db", url, "--out", str(out)])
    assert first.exit_code == 0, first.output
    for study in list_ids():
        assert (out / study / "report" / "report.html").exists()
        endpoints = json.loads((out / study / "analysis" / "endpoints.json").read_text())
        assert len(endpoints["endpoints"]) > 0
    store = open_store(url)
    before = {study: count_records(store, study) for study in list_ids()}
    second = runner.invoke(app, ["demo", "-n", "6", "--seed", "99", "--db", url,
                                 "--out", str(out)])
    assert second.exit_code == 0, second.output
    assert {study: count_records(store, study) for study in list_ids()} == before

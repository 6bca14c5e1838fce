"""`celltrial analyze` end to end: hand-made frames through the store, files and table out."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from celltrial.cli.main import app
from celltrial.protocols import load

from .conftest import STUDY, make_domains


@pytest.fixture()
def study_db(tmp_path):
    store_api = pytest.importorskip("celltrial.store")
    if not hasattr(store_api, "write_domains"):
        pytest.skip("celltrial.store.write_domains is not there yet")
    url = f"sqlite:///{tmp_path / 'ct.db'}"
    store_api.init_db(url)
    store = store_api.open_store(url)
    store_api.register_study(store, load(STUDY))
    store_api.write_domains(store, STUDY, make_domains(), user="test", reason="fixture")
    return url


def test_analyze_writes_every_outcome(study_db, tmp_path):
    out = tmp_path / "analysis"
    result = CliRunner().invoke(app, ["analyze", "--study", STUDY, "--db", study_db,
                                      "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    protocol = load(STUDY)
    assert [e["name"] for e in payload["endpoints"]] == [e.name for e in protocol.endpoints]
    by_id = {e["id"]: e for e in payload["endpoints"]}
    assert (by_id["dlt"]["estimates"]["x"], by_id["dlt"]["n"]) == (1, 5)
    for name in ("adsl", "adae", "adrs", "adtte", "adpc", "adpp", "adlb", "adis"):
        assert (out / f"{name}.parquet").exists() and (out / f"{name}.csv").exists()
    assert (out / "summary.md").exists()


def test_analyze_prints_a_table(study_db, tmp_path):
    result = CliRunner().invoke(app, ["analyze", "--study", STUDY, "--db", study_db,
                                      "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "outcome measures computed" in result.stdout


def test_unknown_study_is_exit_1(tmp_path):
    result = CliRunner().invoke(app, ["analyze", "--study", "no-such-study",
                                      "--out", str(tmp_path / "a")])
    assert result.exit_code == 1

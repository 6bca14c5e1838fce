"""`celltrial dlt --study ID`: the DLT adjudication of a study in the store (SQLite)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from celltrial.cli.main import app
from tests.derive.dlt_cases import EXPECTED, STUDY, make_dlt_domains

runner = CliRunner()


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> str:
    from celltrial import store
    from celltrial.protocols import load

    url = f"sqlite:///{tmp_path_factory.mktemp('dlt') / 'ct.db'}"
    store.init_db(url)
    handle = store.open_store(url)
    store.register_study(handle, load(STUDY))
    store.write_domains(handle, STUDY, make_dlt_domains(), user="test", reason="DLT boundaries")
    handle.close()
    return url


def test_json_lists_every_infused_patient(url):
    res = runner.invoke(app, ["dlt", "--study", STUDY, "--db", url, "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.output)
    assert body["window_days"] == 28 and body["censored_by_assumed"]
    assert body["censored_by"] == ["hsct", "new_anticancer_therapy", "withdrawal"]
    patients = {p["usubjid"]: p for p in body["patients"]}
    assert set(patients) == set(EXPECTED)
    for subject, (dltfl, evaluable, rules, excused, event, _words) in EXPECTED.items():
        p = patients[subject]
        assert (p["dlt"], p["dlt_evaluable"]) == (dltfl == "Y", evaluable == "Y")
        assert (",".join(p["rules"]), ",".join(p["exceptions"])) == (rules, excused)
        assert p["censor_event"] == (event or None)
        assert p["dose_level"] == "DL1" and p["dose_index"] == 1
    (late,) = patients["ANC-D300"]["events"]
    assert (late["term"], late["grade"], late["met_day"], late["status"]) == \
        ("Neutrophil count decreased", 4, 300.0, "outside_window")
    (crs,) = patients["CRS-73H"]["events"]
    assert crs["rule"] == "D1" and crs["detail"] == "X1 not applied: grade <= 2 after 73 h > 72 h"
    censored = patients["HSCT-D20-CRS-D21"]
    assert censored["evaluable_reason"] == ("censored on day 20 (hsct) inside the 28-day window "
                                            "without a DLT")
    assert censored["censor_day"] == 20.0


def test_table(url, monkeypatch):
    from rich.console import Console

    monkeypatch.setattr("celltrial.cli.dlt.console", Console(width=250))
    res = runner.invoke(app, ["dlt", "--study", STUDY, "--db", url])
    assert res.exit_code == 0, res.output
    for words in ("DLT adjudication per infused patient", "CRS-73H", "after 73 h > 72 h",
                  "outside window (met on day 300)", "after censoring (day 20: hsct)",
                  "15 infused, 11 DLT-evaluable, 5 with a DLT"):
        assert words in res.output


@pytest.mark.parametrize(("args", "words"), [
    (["--study", "no-such-study"], "no-such-study"),
    (["--study", "cd7-aml-mll"], "cd7-aml-mll"),         # a protocol, not in this store
])
def test_bad_input_exits_1(url, args, words):
    res = runner.invoke(app, ["dlt", *args, "--db", url])
    assert res.exit_code == 1
    assert "error" in res.output and words in res.output

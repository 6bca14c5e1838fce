"""`celltrial db init | import | export`: summaries per domain, exit 1 on refused input."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from celltrial.cli.main import app
from celltrial.protocols import list_ids

from .conftest import STUDY, make_frames

runner = CliRunner()


def _csv_folder(path, frames=None):
    path.mkdir()
    for name, frame in (frames or make_frames()).items():
        frame.to_csv(path / f"{name}.csv", index=False)
    return path


def test_init_import_export(db_url, tmp_path):
    result = runner.invoke(app, ["db", "init", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "revision 0009" in result.output and all(i in result.output for i in list_ids())
    folder = _csv_folder(tmp_path / "in")
    result = runner.invoke(app, ["db", "import", str(folder), "--study", STUDY, "--db", db_url,
                                 "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["records"] == {name: len(f) for name, f in make_frames().items()}
    for fmt, suffix in (("csv", ".csv"), ("xpt", ".xpt"), ("dataset-json", ".json")):
        out = tmp_path / fmt
        result = runner.invoke(app, ["db", "export", "--study", STUDY, "--format", fmt,
                                     "--out", str(out), "--db", db_url])
        assert result.exit_code == 0, result.output
        assert "LB" in result.output and "total" in result.output
        # xpt/dataset-json: the SDTM datasets, SUPPDM, SUPPEX, SUPPAE, SUPPIS, and TE, TA, TI,
        # TS, TV (`db init` registered the study from its shipped protocol)
        supp = 0 if fmt == "csv" else 4 + 5
        assert len(list(out.glob(f"*{suffix}"))) == len(make_frames()) + supp
    # beside the XPT files: define.xml (Define-XML 2.1, one ItemGroupDef per XPT file)
    define = (tmp_path / "xpt" / "define.xml").read_text(encoding="utf-8")
    assert define.count("<ItemGroupDef ") == len(list((tmp_path / "xpt").glob("*.xpt")))
    assert (tmp_path / "xpt" / "define.html").exists()


def test_refused_import_exits_1_naming_file_row_column_value(sqlite_url, tmp_path):
    assert runner.invoke(app, ["db", "init", "--db", sqlite_url]).exit_code == 0
    frames = make_frames()
    frames["VS"].loc[0, "VSSTRESN"] = -70.2
    folder = _csv_folder(tmp_path / "bad", frames)
    result = runner.invoke(app, ["db", "import", str(folder), "--study", STUDY, "--db",
                                 sqlite_url])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "VS.csv row 1 (line 2), column VSSTRESN" in text and "-70.2" in text
    export = runner.invoke(app, ["db", "export", "--study", STUDY, "--format", "csv",
                                 "--out", str(tmp_path / "out"), "--db", sqlite_url, "--json"])
    assert json.loads(export.stdout)["records"] == {"DM": 0}


def test_unknown_study_exits_1(sqlite_url, tmp_path):
    runner.invoke(app, ["db", "init", "--db", sqlite_url, "--no-studies"])
    result = runner.invoke(app, ["db", "export", "--study", "nope", "--out", str(tmp_path),
                                 "--db", sqlite_url])
    assert result.exit_code == 1 and "Invalid `study`" in result.output


def test_validate_lists_each_rule_and_exits_1_on_an_error(sqlite_url, tmp_path):
    """`db validate`: the SDTM datasets of the study checked rule by rule (SD0001-SD0018);
    DM.COUNTRY is Req (SDTMIG 3.4 DM): without `--country` every DM row is an SD0001 error
    and the exit code is 1; with it the same data pass. `db init` registered the study from
    its shipped protocol: DM.ARM must be the TA.ARM of the dose level (SD0015), a screen
    failure has no arm (SD0014), and the
    hand-made doses (0.3, 0.7 in a second fraction, 1.0 x10^6/kg, of a 0.5 x10^6/kg level
    given at once +-30%) are SD0018 warnings, which do not fail the check."""
    from celltrial.protocols import load

    assert runner.invoke(app, ["db", "init", "--db", sqlite_url]).exit_code == 0
    frames = make_frames()
    labels = {level.id: level.label for level in load(STUDY).dose_levels}
    frames["DM"]["ARM"] = frames["DM"]["ARMCD"].map(labels)
    wrong_arm = make_frames()["DM"]["ARM"].tolist()
    # 102-001 is a DS screen failure never infused: no arm (SDTMIG 3.4 5.2, SD0014)
    failed = frames["DM"]["USUBJID"] == "102-001"
    frames["DM"].loc[failed, ["ARMCD", "ARM"]] = [None, "Screen failure"]
    folder = _csv_folder(tmp_path / "in", frames)
    assert runner.invoke(app, ["db", "import", str(folder), "--study", STUDY, "--db",
                               sqlite_url]).exit_code == 0
    result = runner.invoke(app, ["db", "validate", "--study", STUDY, "--db", sqlite_url,
                                 "--json"])
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout)
    dm_rows = len(make_frames()["DM"])
    country = [f for f in payload["findings"]
               if (f["rule"], f["dataset"], f["variable"]) == ("SD0001", "DM", "COUNTRY")]
    assert [f["row"] for f in country] == list(range(1, dm_rows + 1))
    assert all(f["severity"] == "error" and f["value"] is None for f in country)
    assert {"DM", "LB", "TS", "TV"} <= set(payload["datasets"])
    result = runner.invoke(app, ["db", "validate", "--study", STUDY, "--db", sqlite_url,
                                 "--country", "CHN", "--json"])
    payload = json.loads(result.stdout)
    assert payload["errors"] == 0, payload["findings"][:5]
    doses = [(f["rule"], f["severity"], f["dataset"], f["row"]) for f in payload["findings"]]
    assert doses == [("SD0018", "warning", "EX", row) for row in (1, 2, 3)]
    assert result.exit_code == 0
    table = runner.invoke(app, ["db", "validate", "--study", STUDY, "--db", sqlite_url,
                                "--country", "CHN"], env={"COLUMNS": "120"})
    assert table.exit_code == 0 and "0 error(s)" in table.output
    assert all(f"SD00{n:02d}" in table.output for n in range(1, 19))
    # the arm text the hand-made frames had is not the protocol's: SD0015, exit 1
    assert runner.invoke(app, ["db", "init", "--db", f"{sqlite_url}2"]).exit_code == 0
    frames["DM"]["ARM"] = [arm if ok else "Screen failure"
                           for arm, ok in zip(wrong_arm, ~failed, strict=True)]
    folder = _csv_folder(tmp_path / "wrong", frames)
    assert runner.invoke(app, ["db", "import", str(folder), "--study", STUDY, "--db",
                               f"{sqlite_url}2"]).exit_code == 0
    result = runner.invoke(app, ["db", "validate", "--study", STUDY, "--db", f"{sqlite_url}2",
                                 "--country", "CHN", "--json"])
    assert result.exit_code == 1
    assert {(f["rule"], f["variable"]) for f in json.loads(result.stdout)["findings"]
            if f["severity"] == "error"} == {("SD0015", "ARM"), ("SD0015", "ACTARM")}


def test_validate_passes_a_simulated_study(sqlite_url):
    """A virtual study written as `make demo` writes it (`write_study`, shipped protocol,
    DM.COUNTRY from the protocol): every rule, the arm and dose rules included, is quiet."""
    from celltrial.conduct import write_study
    from celltrial.protocols import load
    from celltrial.store import open_store

    study = "cd7-aml-mll"
    assert runner.invoke(app, ["db", "init", "--db", sqlite_url]).exit_code == 0
    store = open_store(sqlite_url)
    try:
        write_study(store, load(study), 6, 11, data_cut="2027-06-01")
    finally:
        store.close()
    result = runner.invoke(app, ["db", "validate", "--study", study, "--db", sqlite_url,
                                 "--country", load(study).country, "--json"])
    payload = json.loads(result.stdout)
    assert result.exit_code == 0 and payload["findings"] == [], payload["findings"][:5]
    assert {"DM", "EX", "TA", "SUPPEX"} <= set(payload["datasets"])

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
    """`db validate`: the SDTM datasets of the study checked rule by rule (SD0001-SD0011);
    DM.COUNTRY is Req (SDTMIG 3.4 DM): without `--country` every DM row is an SD0001 error
    and the exit code is 1; with it the same data pass."""
    assert runner.invoke(app, ["db", "init", "--db", sqlite_url]).exit_code == 0
    folder = _csv_folder(tmp_path / "in")
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
    assert result.exit_code == 0
    table = runner.invoke(app, ["db", "validate", "--study", STUDY, "--db", sqlite_url,
                                "--country", "CHN"], env={"COLUMNS": "120"})
    assert table.exit_code == 0 and "SD0011" in table.output and "0 error(s)" in table.output

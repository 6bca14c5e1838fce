"""Imports are complete or refused: a cut, short-rowed, empty or non-UTF-8 file writes nothing
and is named in one line (CSV, SAS XPT v5, Dataset-JSON; SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from celltrial.cli.main import app
from celltrial.errors import StoreError
from celltrial.store import export_dataset_json, export_xpt, import_csv_dir, write_domains
from celltrial.store.dataset_json import import_dataset_json_dir, read_dataset_json_dir
from celltrial.store.xpt import import_xpt_dir, read_xpt_dir

from .conftest import STUDY, make_frames
from .test_validate import _snapshot


def _csv_folder(path, frames=None):
    path.mkdir(exist_ok=True)
    for name, frame in (frames or make_frames()).items():
        frame.to_csv(path / f"{name}.csv", index=False)
    return path


def _cut_mid_row(text: str) -> str:
    """The text up to the third comma of its last row (a file cut while being written)."""
    last = text.rstrip("\n").rfind("\n") + 1
    return text[:last + [m.start() for m in re.finditer(",", text[last:])][2]]


def _short_row(text: str) -> str:
    """Row 2 keeps 4 of its fields (a record entered half)."""
    lines = text.split("\n")
    lines[2] = ",".join(lines[2].split(",")[:4])
    return "\n".join(lines)


def _long_row(text: str) -> str:
    lines = text.split("\n")
    lines[1] += ",extra"
    return "\n".join(lines)


# (case, file, change to its text, text the message must hold)
CSV_CASES = [
    ("cut mid-row", "AE.csv", _cut_mid_row, "AE.csv row 2 (line 3): Invalid `row`: got 3 "
     "fields, must be 11 fields"),
    ("cut in the last field", "AE.csv", lambda t: t[:-4],
     "AE.csv row 2 (line 3): Invalid `row`: got a last row without its line break"),
    ("short row (4 of 12 fields)", "AE.csv", _short_row,
     "AE.csv row 2 (line 3): Invalid `row`: got 4 fields, must be 11 fields"),
    ("long row (ragged)", "LB.csv", _long_row,
     "LB.csv row 1 (line 2): Invalid `row`: got 16 fields, must be 15 fields"),
    ("quote never closed", "DS.csv", lambda t: t.replace("completed", '"completed', 1),
     "DS.csv row 1"),
    ("column named twice", "VS.csv", lambda t: t.replace("VSDTC", "VSSEQ", 1),
     "VS.csv line 1: Invalid `header`: got `'VSSEQ'` twice"),
    ("empty file", "PR.csv", lambda t: "", "PR.csv: Invalid `file`: got an empty file"),
]


@pytest.mark.parametrize(("case", "file", "change", "expected"), CSV_CASES,
                         ids=[c[0] for c in CSV_CASES])
def test_incomplete_csv_is_refused_and_nothing_is_written(guarded, tmp_path, case, file,
                                                          change, expected):
    folder = _csv_folder(tmp_path / "in")
    path = folder / file
    path.write_text(change(path.read_text()))
    before = _snapshot(guarded)
    with pytest.raises(StoreError) as caught:
        import_csv_dir(guarded, STUDY, folder, user="u")
    message = str(caught.value)
    assert expected in message and message.endswith("nothing was written"), message
    assert "\n" not in message
    assert _snapshot(guarded) == before


def test_non_utf8_csv_names_file_line_and_byte(guarded, tmp_path):
    folder = _csv_folder(tmp_path / "in")
    text = (folder / "AE.csv").read_text().replace("pneumonitis", "pneumonit\u00e9")
    (folder / "AE.csv").write_bytes(text.encode("latin-1"))
    before = _snapshot(guarded)
    with pytest.raises(StoreError, match=r"^AE.csv line 3: Invalid `encoding`: got byte 0xe9, "
                                         r"must be UTF-8"):
        import_csv_dir(guarded, STUDY, folder, user="u")
    assert _snapshot(guarded) == before


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """XPT and Dataset-JSON exports of the hand-made frames (from a scratch SQLite store)."""
    from celltrial.store import init_db, open_store, register_study

    out = tmp_path_factory.mktemp("exported")
    url = f"sqlite:///{out / 'source.db'}"
    init_db(url)
    handle = open_store(url)
    register_study(handle, STUDY, "Exported")
    write_domains(handle, STUDY, make_frames(), user="u", reason="r")
    export_xpt(handle, STUDY, out / "xpt")
    export_dataset_json(handle, STUDY, out / "json")
    handle.close()
    return out


def _cut_half(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _cut_xpt_at_record(path):
    """Cut at an 80-byte record boundary inside the observations (size still a multiple)."""
    data = path.read_bytes()
    start = data.find(b"HEADER RECORD*******OBS     HEADER RECORD!!!!!!!") + 80
    path.write_bytes(data[:start + 80 * ((len(data) - start) // 160)])


def _json_short_row(path):
    document = json.loads(path.read_text())
    document["rows"][1] = document["rows"][1][:4]
    path.write_text(json.dumps(document))


def _json_rows_removed(path):
    document = json.loads(path.read_text())
    document["rows"] = document["rows"][:1]
    path.write_text(json.dumps(document))


# (case, folder, file, change, text the message must hold)
TRANSPORT_CASES = [
    ("XPT cut in half", "xpt", "lb.xpt", _cut_half, "lb.xpt: Invalid `XPT"),
    ("XPT cut at a record boundary", "xpt", "lb.xpt", _cut_xpt_at_record,
     "lb.xpt: Invalid `XPT size`"),
    ("XPT empty", "xpt", "ae.xpt", lambda p: p.write_bytes(b""),
     "ae.xpt: Invalid `file`: got an empty file"),
    ("Dataset-JSON cut in half", "json", "ae.json", _cut_half,
     "ae.json line 1: Invalid `JSON`"),
    ("Dataset-JSON short row", "json", "ae.json", _json_short_row,
     "ae.json row 2: Invalid `row`: got 4 items, must be an array of 12 items"),
    ("Dataset-JSON rows removed", "json", "lb.json", _json_rows_removed,
     "lb.json: Invalid `records`: got `4`, must be the number of rows (1)"),
    ("Dataset-JSON not UTF-8", "json", "suppdm.json",
     lambda p: p.write_bytes(p.read_bytes().replace(b"T-ALL", b"T-ALL\xe9")),
     "suppdm.json line 1: Invalid `encoding`: got byte 0xe9"),
]


@pytest.mark.parametrize(("case", "kind", "file", "change", "expected"), TRANSPORT_CASES,
                         ids=[c[0] for c in TRANSPORT_CASES])
def test_incomplete_transport_file_is_refused_and_nothing_is_written(
        guarded, exported, tmp_path, case, kind, file, change, expected):
    import shutil

    folder = tmp_path / kind
    shutil.copytree(exported / kind, folder)
    change(folder / file)
    importer = import_xpt_dir if kind == "xpt" else import_dataset_json_dir
    reader = read_xpt_dir if kind == "xpt" else read_dataset_json_dir
    before = _snapshot(guarded)
    for call in (lambda: importer(guarded, STUDY, folder, user="u"), lambda: reader(folder)):
        with pytest.raises(StoreError) as caught:
            call()
        assert expected in str(caught.value) and "\n" not in str(caught.value)
    assert _snapshot(guarded) == before


@pytest.mark.parametrize("kind", ["xpt", "json"])
def test_complete_transport_files_import(store, exported, kind):
    importer = import_xpt_dir if kind == "xpt" else import_dataset_json_dir
    summary = importer(store, STUDY, exported / kind, user="u")
    assert summary.records == {name: len(f) for name, f in make_frames().items()}


runner = CliRunner()


# (case, files to write as {name: bytes}, text the message must hold)
CLI_CASES = [
    ("empty CSV", {"DM.csv": b""}, "DM.csv: Invalid `file`: got an empty file"),
    ("latin-1 CSV", {"DM.csv": "USUBJID,SEX\nS\u00e9,M\n".encode("latin-1")},
     "DM.csv line 2: Invalid `encoding`: got byte 0xe9"),
    ("ragged CSV", {"DM.csv": b"USUBJID,SEX\nS1,M,extra\n"},
     "DM.csv row 1 (line 2): Invalid `row`: got 3 fields, must be 2 fields"),
    ("short Dataset-JSON", {"dm.json": json.dumps({
        "name": "DM", "columns": [{"name": "USUBJID"}, {"name": "SEX"}],
        "rows": [["S1", "M"], ["S2"]]}).encode()},
     "dm.json row 2: Invalid `row`: got 1 items, must be an array of 2 items"),
    ("not an XPT", {"dm.xpt": b"HEADER RECORD but not really\n"}, "dm.xpt: Invalid `XPT`"),
]


@pytest.mark.parametrize(("case", "files", "expected"), CLI_CASES,
                         ids=[c[0] for c in CLI_CASES])
def test_cli_refuses_unreadable_files_in_one_line(sqlite_url, tmp_path, case, files, expected):
    assert runner.invoke(app, ["db", "init", "--db", sqlite_url]).exit_code == 0
    folder = tmp_path / "in"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    result = runner.invoke(app, ["db", "import", str(folder), "--study", STUDY, "--db",
                                 sqlite_url])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    text = " ".join(result.output.split())
    assert "Traceback" not in text and expected in text, text
    assert text.startswith("error [CT300]") and text.endswith("nothing was written")


def test_xpt_cut_in_half_is_refused_although_pyreadstat_reads_part_of_it(guarded, tmp_path):
    """The review's case: 149 AE rows, the file cut in half; pyreadstat returns 60 rows."""
    import numpy as np
    import pandas as pd
    import pyreadstat

    ae = pd.DataFrame({"STUDYID": STUDY, "USUBJID": "101-001",
                       "AESEQ": np.arange(1.0, 150.0), "AETERM": "Pyrexia",
                       "AETOXGR": 1.0, "AESTDTC": "2024-01-12", "AESER": "N",
                       "AEREL": "RELATED"})
    pyreadstat.write_xport(ae, str(tmp_path / "ae.xpt"), table_name="AE",
                           file_format_version=5)
    data = (tmp_path / "ae.xpt").read_bytes()
    (tmp_path / "ae.xpt").write_bytes(data[:len(data) // 2])
    assert 0 < len(pyreadstat.read_xport(str(tmp_path / "ae.xpt"))[0]) < 149
    before = _snapshot(guarded)
    with pytest.raises(StoreError, match=r"^ae.xpt: Invalid `XPT size`: got \d+ bytes of "
                                         r"observations, .* after row \d+ not blank padding"):
        import_xpt_dir(guarded, STUDY, tmp_path, user="u")
    assert _snapshot(guarded) == before


@pytest.mark.parametrize(("kind", "fmt"), [("xpt", "auto"), ("json", "auto"),
                                           ("json", "dataset-json")])
def test_cli_imports_xpt_and_dataset_json_folders(sqlite_url, exported, kind, fmt):
    assert runner.invoke(app, ["db", "init", "--db", sqlite_url]).exit_code == 0
    result = runner.invoke(app, ["db", "import", str(exported / kind), "--study", STUDY,
                                 "--format", fmt, "--db", sqlite_url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["records"] == {
        name: len(f) for name, f in make_frames().items()}

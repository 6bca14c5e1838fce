"""Every Dataset-JSON file the store exports validates against the official CDISC
Dataset-JSON v1.1 JSON schema; CDISC's own example dm.json is read and imported.

The schema and the example are frozen in tests/store/fixtures/cdisc/ (SOURCE.md: repository,
commit, checksums)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from celltrial.errors import StoreError
from celltrial.store import (
    export_dataset_json,
    import_csv_dir,
    open_store,
    read_domain,
    register_study,
)
from celltrial.store.dataset_json import import_dataset_json_dir, read_dataset_json_dir

from .conftest import STUDY, make_frames

CDISC = Path(__file__).parent / "fixtures" / "cdisc"
SCHEMA = json.loads((CDISC / "dataset.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft201909Validator(SCHEMA)


@pytest.fixture()
def virtual(virtual_exports):
    return virtual_exports


def _errors(document) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in VALIDATOR.iter_errors(document)]


def test_schema_is_the_frozen_official_one():
    jsonschema.Draft201909Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == "https://cdisc.org/dataset-json/model"
    assert "isReferenceData" not in SCHEMA["properties"]
    assert SCHEMA["additionalProperties"] is False


def test_every_exported_file_of_every_study_validates(virtual):
    files = [f for study in virtual.studies for f in virtual.folder(study, "json").glob("*.json")]
    assert len(files) >= 5 * 12  # DM, SUPPDM, SC, EX, SUPPEX, AE, SUPPAE, LB, VS, XC, RS, DS...
    for file in files:
        document = json.loads(file.read_text(encoding="utf-8"))
        assert _errors(document) == [], file
        assert document["records"] == len(document["rows"]) > 0 or file.name == "dm.json"


def test_hand_made_frames_export_validates(store, tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    for name, frame in make_frames().items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    import_csv_dir(store, STUDY, folder, user="importer")
    for file in export_dataset_json(store, STUDY, tmp_path / "json", country="CHN"):
        assert _errors(json.loads(file.read_text(encoding="utf-8"))) == [], file.name


def test_the_validator_refuses_what_1_1_removed(virtual):
    document = json.loads((virtual.folder(virtual.studies[0], "json") / "ae.json").read_text())
    document["isReferenceData"] = False  # Dataset-JSON 1.0, written before this fix
    assert any("isReferenceData" in e for e in _errors(document))
    del document["isReferenceData"]
    document["columns"][0]["dataType"] = "text"
    assert _errors(document)


def test_cdisc_example_dm_validates_and_is_read(tmp_path):
    document = json.loads((CDISC / "dm.json").read_text(encoding="utf-8"))
    assert _errors(document) == []
    folder = tmp_path / "cdisc"
    folder.mkdir()
    shutil.copy(CDISC / "dm.json", folder / "dm.json")
    with pytest.raises(StoreError, match=r"^dm.json, column BRTHDTC: Invalid `BRTHDTC`.*"
                                         r"--drop-unkept"):
        read_dataset_json_dir(folder)
    dm = read_dataset_json_dir(folder, drop_unkept=True)["DM"]
    assert len(dm) == document["records"] == 18
    first = dm.iloc[0]
    assert (first["USUBJID"], first["AGE"], first["ARMCD"], first["RFSTDTC"]) == (
        "CDISC001", 84.0, "ZAN_LOW", "2012-11-30")
    failed = dm[dm["ARMCD"].isna()]
    assert len(failed) > 0 and set(failed["ARM"]) == {"Screen failure"}


def test_cdisc_example_dm_imports_into_a_study(sqlite_url, tmp_path):
    from celltrial.store import init_db

    init_db(sqlite_url)
    store = open_store(sqlite_url)
    try:
        register_study(store, "CDISCPILOT01", "CDISC SDTM MSG v2 pilot")
        folder = tmp_path / "cdisc"
        folder.mkdir()
        shutil.copy(CDISC / "dm.json", folder / "dm.json")
        with pytest.raises(StoreError, match="BRTHDTC"):
            import_dataset_json_dir(store, "CDISCPILOT01", folder, user="u")
        assert read_domain(store, "CDISCPILOT01", "DM").empty
        summary = import_dataset_json_dir(store, "CDISCPILOT01", folder, user="u",
                                          drop_unkept=True)
        assert summary.records["DM"] == 18
        dm = read_domain(store, "CDISCPILOT01", "DM")
        names = [c["name"] for c in json.loads((CDISC / "dm.json").read_text())["columns"]]
        rows = json.loads((CDISC / "dm.json").read_text())["rows"]
        assert dm["USUBJID"].tolist() == [r[names.index("USUBJID")] for r in rows]
        assert dm["SEX"].tolist() == [r[names.index("SEX")] for r in rows]
    finally:
        store.close()


def test_cli_imports_the_cdisc_example_only_with_drop_unkept(sqlite_url, tmp_path):
    from typer.testing import CliRunner

    from celltrial.cli.main import app
    from celltrial.store import init_db

    init_db(sqlite_url)
    store = open_store(sqlite_url)
    register_study(store, "CDISCPILOT01", "CDISC SDTM MSG v2 pilot")
    store.close()
    folder = tmp_path / "cdisc"
    folder.mkdir()
    shutil.copy(CDISC / "dm.json", folder / "dm.json")
    runner = CliRunner()
    base = ["db", "import", str(folder), "--study", "CDISCPILOT01", "--db", sqlite_url]
    refused = runner.invoke(app, base)
    assert refused.exit_code == 1 and "BRTHDTC" in " ".join(refused.output.split())
    done = runner.invoke(app, [*base, "--drop-unkept", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["records"] == {"DM": 18}
    bad = runner.invoke(app, ["db", "export", "--study", "CDISCPILOT01", "--format", "xpt",
                              "--out", str(tmp_path / "x"), "--country", "China", "--db",
                              sqlite_url])
    assert bad.exit_code == 1 and "Invalid `--country`" in bad.output

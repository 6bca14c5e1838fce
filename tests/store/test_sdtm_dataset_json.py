"""Dataset-JSON 1.1 import of standard files with and without the optional members the CDISC
schema allows (top-level fileOID, originator, sourceSystem, studyOID, metaDataVersionOID,
dbLastModifiedDateTime, metaDataRef; column length, keySequence, displayFormat): each variant
is valid against the frozen official schema and reads back to the same store domains."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pandas as pd

from celltrial.store.dataset_json import read_dataset_json_dir

SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "cdisc" / "dataset.schema.json")
                    .read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft201909Validator(SCHEMA)
OPTIONAL_TOP = ("fileOID", "originator", "sourceSystem", "studyOID", "metaDataVersionOID",
                "dbLastModifiedDateTime", "metaDataRef")
OPTIONAL_COLUMN = ("length", "keySequence", "displayFormat", "targetDataType")


def _variant(folder: Path, out: Path, edit) -> Path:
    out.mkdir()
    for file in folder.glob("*.json"):
        document = json.loads(file.read_text(encoding="utf-8"))
        edit(document)
        assert list(VALIDATOR.iter_errors(document)) == [], file.name
        (out / file.name).write_text(json.dumps(document), encoding="utf-8")
    return out


def _bare(document: dict) -> None:
    for key in OPTIONAL_TOP:
        document.pop(key, None)
    for column in document["columns"]:
        for key in OPTIONAL_COLUMN:
            column.pop(key, None)


def _full(document: dict) -> None:
    document["dbLastModifiedDateTime"] = "2027-06-01T12:00:00"
    document["metaDataRef"] = "define.xml"
    for column in document["columns"]:
        if column["name"].endswith("DTC"):
            column["displayFormat"] = "$20."


def test_standard_files_with_and_without_optional_members_read_the_same(virtual_exports,
                                                                         tmp_path):
    folder = virtual_exports.folder("nct04762485", "json")
    original = read_dataset_json_dir(folder)
    for name, edit in (("bare", _bare), ("full", _full)):
        variant = read_dataset_json_dir(_variant(folder, tmp_path / name, edit))
        assert set(variant) == set(original)
        for domain, frame in original.items():
            pd.testing.assert_frame_equal(variant[domain], frame, obj=f"{name} {domain}")
    bare = json.loads((tmp_path / "bare" / "dm.json").read_text(encoding="utf-8"))
    assert set(bare) == set(SCHEMA["required"]) | {"rows"}  # nothing optional left

"""SDTM export as CDISC Dataset-JSON v1.1, one file per dataset (``dm.json``, ``suppdm.json``).

The datasets are the SDTMIG 3.4 ones of :func:`celltrial.store.sdtm.to_sdtm` (DOMAIN, --TEST,
CDISC CT values, SUPP--). Each file is exactly as the CDISC Dataset-JSON v1.1 JSON schema
(cdisc-org/DataExchange-DatasetJson ``schema/dataset.schema.json``; frozen in
tests/store/fixtures/cdisc/) asks: top-level ``datasetJSONCreationDateTime``,
``datasetJSONVersion`` ``1.1.0``, ``fileOID``, ``originator``, ``sourceSystem``, ``studyOID``,
``metaDataVersionOID``, ``itemGroupOID``, ``records``, ``name``, ``label``, ``columns``
(itemOID ``IT.<DATASET>.<VAR>``, name, label, dataType, ``length`` for strings, ``keySequence``
for the dataset's key variables) and ``rows`` (arrays in column order, ``null`` = missing).
Data types: Char ``string`` (ISO 8601 --DTC values too: SDTM keeps them as character of
varying precision); --SEQ ``integer``; other Num ``double``.

Reading accepts the same files and standard ones from elsewhere (CDISC's example dm.json):
DOMAIN, optional top-level members, the derived SDTM variables and SUPP-- datasets
(:func:`celltrial.store.sdtm.from_sdtm`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from celltrial import __version__
from celltrial.errors import StoreError
from celltrial.store.conform import conform
from celltrial.store.engine import Store
from celltrial.store.readers import read_dataset_json_file
from celltrial.store.records import WriteSummary, write_domains
from celltrial.store.sdtm import SDTMIG_VERSION, dataset_spec, from_sdtm, sdtm_datasets
from celltrial.store.validate import Source

VERSION = "1.1.0"


def _cell(value: Any, kind: str) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if kind == "integer":
        return int(value)
    if kind == "double":
        return float(value)
    return str(value)


def _data_type(name: str, var_type: str) -> str:
    if var_type == "Char":
        return "string"
    return "integer" if name.endswith("SEQ") else "double"


def dataset_json(study_id: str, name: str, frame: pd.DataFrame) -> dict[str, Any]:
    """The Dataset-JSON v1.1 document of one SDTM dataset frame (as :func:`to_sdtm` gives)."""
    spec = dataset_spec(name)
    columns, kinds = [], []
    for var in spec.variables:
        kind = _data_type(var.name, var.type)
        column: dict[str, Any] = {"itemOID": f"IT.{name}.{var.name}", "name": var.name,
                                  "label": var.label, "dataType": kind}
        if kind == "string":
            lengths = frame[var.name].dropna().map(lambda v: len(str(v)))
            column["length"] = max(int(lengths.max()) if len(lengths) else 1, 1)
        if var.name in spec.key:
            column["keySequence"] = spec.key.index(var.name) + 1
        columns.append(column)
        kinds.append(kind)
    rows = [[_cell(v, k) for v, k in zip(row, kinds, strict=True)]
            for row in frame[list(spec.columns)].itertuples(index=False, name=None)]
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {
        "datasetJSONCreationDateTime": stamp,
        "datasetJSONVersion": VERSION,
        "fileOID": f"celltrial/{study_id}/{name}",
        "originator": "celltrial",
        "sourceSystem": {"name": "celltrial", "version": __version__},
        "studyOID": study_id,
        "metaDataVersionOID": f"MDV.celltrial.{__version__}.SDTMIG.{SDTMIG_VERSION}",
        "itemGroupOID": f"IG.{name}",
        "records": len(rows),
        "name": name,
        "label": spec.label,
        "columns": columns,
        "rows": rows,
    }


def export_dataset_json(store: Store, study_id: str, out_dir: str | Path, *,
                        country: str | None = None) -> list[Path]:
    """Write ``<dataset>.json`` for DM, every domain with records, their SUPP-- datasets and,
    for a study registered from a shipped protocol, TE/TA/TI/TS/TV (SDTMIG 3.4; ``country`` is
    DM.COUNTRY, ISO 3166-1 alpha-3); returns the files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in sdtm_datasets(store, study_id, country=country).items():
        file = out / f"{name.lower()}.json"
        file.write_text(json.dumps(dataset_json(study_id, name, frame), ensure_ascii=False),
                        encoding="utf-8")
        written.append(file)
    return written


def _json_files(path: str | Path) -> list[Path]:
    folder = Path(path)
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise StoreError(f"Invalid `folder`: got `{str(folder)!r}`, must be a folder holding "
                         "Dataset-JSON v1.1 files named by dataset (dm.json, ae.json, ...)")
    return files


def _read(path: str | Path) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    frames, origins = {}, {}
    for file in _json_files(path):
        name, frame = read_dataset_json_file(file)
        frames[name] = frame
        origins[name] = file.name
    return frames, origins


def read_dataset_json_dir(path: str | Path, *, drop_unkept: bool = False
                          ) -> dict[str, pd.DataFrame]:
    """Every ``*.json`` Dataset-JSON file of a folder as the store's domains, typed as
    :func:`read_domains` returns them (SUPP-- merged into their parent).

    A row with fewer or more items than ``columns`` is refused naming file and row."""
    frames, origins = _read(path)
    domains = from_sdtm(frames, origins, drop_unkept=drop_unkept)
    return {name: conform(name, frame, origins[name]) for name, frame in domains.items()}


def import_dataset_json_dir(store: Store, study_id: str, path: str | Path, *, user: str,
                            reason: str = "Dataset-JSON import",
                            drop_unkept: bool = False) -> WriteSummary:
    """Import every ``<dataset>.json`` of ``path`` into ``study_id`` in one transaction (values
    validated as written, ``null`` = missing; nothing is written on any problem). SDTM
    variables the store does not keep are refused, or left out with ``drop_unkept``."""
    frames, origins = _read(path)
    domains = from_sdtm(frames, origins, drop_unkept=drop_unkept)
    return write_domains(store, study_id, domains, user=user, reason=reason,
                         source=f"dataset-json:{path}",
                         sources={name: Source(origins[name]) for name in domains},
                         audit="subject")

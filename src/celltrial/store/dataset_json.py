"""SDTM export as CDISC Dataset-JSON v1.1, one file per domain (``dm.json``).

Dataset-JSON v1.1 (CDISC, 2024): top-level metadata (creation time, version ``1.1.0``, fileOID,
originator, source system, studyOID, metaDataVersionOID, itemGroupOID, records, name, label),
``columns`` (itemOID ``IT.<DOMAIN>.<VAR>``, name, label, dataType, length for strings,
keySequence for key variables) and ``rows`` (arrays in column order, ``null`` for missing).
Data types: text ``string``; ISO 8601 --DTC values ``string`` (SDTM keeps them as character
of varying precision); whole numbers ``integer``; real numbers ``double``.
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
from celltrial.store.domains import DOMAINS
from celltrial.store.engine import Store
from celltrial.store.readers import read_dataset_json_file
from celltrial.store.records import WriteSummary, read_domains, write_domains
from celltrial.store.validate import Source

VERSION = "1.1.0"
_TYPES = {"text": "string", "date": "string", "int": "integer", "float": "double"}


def _cell(value: Any, kind: str) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)


def dataset_json(study_id: str, name: str, frame: pd.DataFrame) -> dict[str, Any]:
    """The Dataset-JSON v1.1 document of one domain frame."""
    domain = DOMAINS[name]
    columns = []
    for var in domain.variables:
        column: dict[str, Any] = {"itemOID": f"IT.{name}.{var.name}", "name": var.name,
                                  "label": var.label, "dataType": _TYPES[var.type]}
        if var.type in ("text", "date"):
            lengths = frame[var.name].dropna().map(lambda v: len(str(v)))
            column["length"] = int(lengths.max()) if len(lengths) else 1
        key = ("STUDYID", *domain.key)
        if var.name in key:
            column["keySequence"] = key.index(var.name) + 1
        columns.append(column)
    kinds = [v.type for v in domain.variables]
    rows = [[_cell(v, k) for v, k in zip(row, kinds, strict=True)]
            for row in frame.itertuples(index=False, name=None)]
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {
        "datasetJSONCreationDateTime": stamp,
        "datasetJSONVersion": VERSION,
        "fileOID": f"celltrial/{study_id}/{name}",
        "originator": "celltrial",
        "sourceSystem": {"name": "celltrial", "version": __version__},
        "studyOID": study_id,
        "metaDataVersionOID": f"MDV.celltrial.{__version__}",
        "itemGroupOID": f"IG.{name}",
        "isReferenceData": False,
        "records": len(rows),
        "name": name,
        "label": domain.label,
        "columns": columns,
        "rows": rows,
    }


def export_dataset_json(store: Store, study_id: str, out_dir: str | Path) -> list[Path]:
    """Write ``<domain>.json`` for DM and every domain with records; returns the files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in read_domains(store, study_id).items():
        if frame.empty and name != "DM":
            continue
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
                         "Dataset-JSON v1.1 files named by domain (dm.json, ae.json, ...)")
    return files


def read_dataset_json_dir(path: str | Path) -> dict[str, pd.DataFrame]:
    """Every ``*.json`` Dataset-JSON file of a folder, typed as :func:`read_domains` returns.

    A row with fewer or more items than ``columns`` is refused naming file and row."""
    out = {}
    for file in _json_files(path):
        name, frame = read_dataset_json_file(file)
        out[name] = conform(name, frame, file.name)
    return out


def import_dataset_json_dir(store: Store, study_id: str, path: str | Path, *, user: str,
                            reason: str = "Dataset-JSON import") -> WriteSummary:
    """Import every ``<domain>.json`` of ``path`` into ``study_id`` in one transaction (values
    validated as written, ``null`` = missing; nothing is written on any problem)."""
    frames, sources = {}, {}
    for file in _json_files(path):
        name, frame = read_dataset_json_file(file)
        frames[name] = frame
        sources[name] = Source(file.name)
    return write_domains(store, study_id, frames, user=user, reason=reason,
                         source=f"dataset-json:{path}", sources=sources)

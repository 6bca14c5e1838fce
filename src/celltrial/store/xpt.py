"""SDTM export as SAS transport files, XPT version 5 (pyreadstat), one file per domain.

FDA Study Data Technical Conformance Guide: XPT v5, one dataset per file named by the domain
in lower case (``dm.xpt``), dataset and variable names <= 8 characters, labels <= 40, character
values <= 200 bytes. Missing text is written as blank (SAS has no character null) and read back
as ``None``; numbers as SAS doubles.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from celltrial.errors import StoreError
from celltrial.store.conform import conform
from celltrial.store.domains import DOMAINS
from celltrial.store.engine import Store
from celltrial.store.readers import blank_to_none, read_xpt_file
from celltrial.store.records import WriteSummary, read_domains, write_domains
from celltrial.store.validate import Source

MAX_TEXT = 200


def export_xpt(store: Store, study_id: str, out_dir: str | Path) -> list[Path]:
    """Write ``<domain>.xpt`` for DM and every domain with records; returns the files."""
    import pyreadstat

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in read_domains(store, study_id).items():
        if frame.empty and name != "DM":
            continue
        domain = DOMAINS[name]
        data = frame.copy()
        for var in domain.variables:
            if var.type in ("text", "date"):
                column = data[var.name].astype(object).where(data[var.name].notna(), "")
                too_long = column.map(lambda v: len(str(v).encode("utf-8")) > MAX_TEXT)
                if too_long.any():
                    row = int(too_long.to_numpy().argmax()) + 1
                    raise StoreError(f"{name} row {row}, column {var.name}: Invalid "
                                     f"`{var.name}`: got `{column[row - 1]!r}`, must be at "
                                     f"most {MAX_TEXT} bytes for XPT v5")
                data[var.name] = column.astype(str)
        file = out / f"{name.lower()}.xpt"
        pyreadstat.write_xport(data, str(file), file_label=domain.label[:40],
                               column_labels=[v.label[:40] for v in domain.variables],
                               table_name=name, file_format_version=5)
        written.append(file)
    return written


def _xpt_files(path: str | Path) -> list[Path]:
    folder = Path(path)
    files = sorted(folder.glob("*.xpt")) if folder.is_dir() else []
    if not files:
        raise StoreError(f"Invalid `folder`: got `{str(folder)!r}`, must be a folder holding "
                         "SAS XPT v5 files named by domain (dm.xpt, ae.xpt, ...)")
    return files


def read_xpt_dir(path: str | Path) -> dict[str, pd.DataFrame]:
    """Every ``*.xpt`` of a folder, typed as :func:`read_domains` returns, by domain name.

    A file cut short (its size not that of the rows read) is refused naming it."""
    out = {}
    for file in _xpt_files(path):
        name, frame = read_xpt_file(file)
        out[name] = conform(name, frame, file.name)
    return out


def import_xpt_dir(store: Store, study_id: str, path: str | Path, *, user: str,
                   reason: str = "XPT import") -> WriteSummary:
    """Import every ``<domain>.xpt`` of ``path`` into ``study_id`` in one transaction (values
    validated as written, blank text = missing; nothing is written on any problem)."""
    frames, sources = {}, {}
    for file in _xpt_files(path):
        name, frame = read_xpt_file(file)
        frames[name] = blank_to_none(frame)
        sources[name] = Source(file.name)
    return write_domains(store, study_id, frames, user=user, reason=reason,
                         source=f"xpt:{path}", sources=sources)

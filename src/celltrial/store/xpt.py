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
from celltrial.store.records import read_domains

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


def read_xpt_dir(path: str | Path) -> dict[str, pd.DataFrame]:
    """Every ``*.xpt`` of a folder, typed as :func:`read_domains` returns, by domain name."""
    import pyreadstat

    out = {}
    for file in sorted(Path(path).glob("*.xpt")):
        frame, meta = pyreadstat.read_xport(str(file))
        name = (meta.table_name or file.stem).upper()
        out[name] = conform(name, frame, file.name)
    return out

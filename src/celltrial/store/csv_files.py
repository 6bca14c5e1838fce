"""A folder of CSV files per study, one per domain (``DM.csv``, ``AE.csv``, ...), in and out.

Columns carry the SDTM variable names of docs/data-model.md; an empty cell is a missing value;
dates are ISO 8601 text. Import is one transaction: files are read in chunks of
:data:`~celltrial.store.readers.CHUNK_ROWS` rows, each validated and written as it comes
(:func:`~celltrial.store.records.write_chunks`), and a problem anywhere rolls everything back
(the message names the file, row, column and value). Files are read by
:mod:`celltrial.store.readers`: a short, long or cut row, an empty or non-UTF-8 file is
refused with one line naming the file and row.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from celltrial.errors import StoreError
from celltrial.store.domains import DOMAINS
from celltrial.store.engine import Store
from celltrial.store.readers import CHUNK_ROWS, iter_csv, read_csv_file
from celltrial.store.records import WriteSummary, read_domains, write_chunks
from celltrial.store.spreadsheet import neutralise_frame
from celltrial.store.validate import Source


def _csv_files(path: Path) -> dict[str, Path]:
    if not path.is_dir():
        raise StoreError(f"Invalid `folder`: got `{str(path)!r}`, must be a folder of CSV files "
                         "named by domain (DM.csv, AE.csv, ...)")
    files = {f.stem.upper(): f for f in sorted(path.iterdir())
             if f.is_file() and f.suffix.lower() == ".csv"}
    unknown = [f.name for name, f in files.items() if name not in DOMAINS]
    if unknown:
        raise StoreError(f"Invalid `file`: got `{unknown[0]!r}` in {path}, must be named by a "
                         f"domain: {', '.join(f'{d}.csv' for d in DOMAINS)}; nothing was written")
    if not files:
        raise StoreError(f"Invalid `folder`: got `{str(path)!r}`, must hold at least one CSV "
                         "file named by domain (DM.csv, ...)")
    return files


def read_csv_dir(path: str | Path) -> dict[str, pd.DataFrame]:
    """The CSV files of a folder as text frames by domain (cells as read; empty = missing);
    StoreError naming file and row for a file that is not complete (see
    :mod:`celltrial.store.readers`)."""
    return {name: read_csv_file(file) for name, file in _csv_files(Path(path)).items()}


def import_csv_dir(store: Store, study_id: str, path: str | Path, *, user: str,
                   reason: str = "CSV import", chunk_rows: int = CHUNK_ROWS) -> WriteSummary:
    """Import every ``<DOMAIN>.csv`` of ``path`` into ``study_id`` in one transaction,
    streaming each file in chunks of ``chunk_rows`` rows."""
    folder = Path(path)
    files = _csv_files(folder)
    chunks = {name: iter_csv(file, chunk_rows) for name, file in files.items()}
    sources = {name: Source(file.name, header_lines=1) for name, file in files.items()}
    return write_chunks(store, study_id, chunks, user=user, reason=reason,
                        source=f"csv:{folder}", sources=sources, audit="subject")


def export_csv_dir(store: Store, study_id: str, out_dir: str | Path) -> list[Path]:
    """Write ``<DOMAIN>.csv`` for DM and every domain with records; returns the files.

    Text cells a spreadsheet would run as formulas (``=...``, ``+...``, ``-...``, ``@...``)
    are written with a leading apostrophe (:mod:`celltrial.store.spreadsheet`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in read_domains(store, study_id).items():
        if frame.empty and name != "DM":
            continue
        domain = DOMAINS[name]
        text = frame.copy()
        for var in domain.variables:
            if var.type == "int":
                text[var.name] = text[var.name].astype("Int64")
        file = out / f"{name}.csv"
        neutralise_frame(text).to_csv(file, index=False)
        written.append(file)
    return written

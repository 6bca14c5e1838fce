"""SDTM export as SAS transport files, XPT version 5 (pyreadstat), one file per dataset.

The datasets are the SDTMIG 3.4 ones of :func:`celltrial.store.sdtm.to_sdtm` (DOMAIN, --TEST,
CDISC CT values, SUPP--). FDA Study Data Technical Conformance Guide: XPT v5, one dataset per
file named by the dataset in lower case (``dm.xpt``, ``suppdm.xpt``), dataset and variable
names <= 8 characters, labels <= 40, character values <= 200 bytes. Missing text is written as
blank (SAS has no character null) and read back as ``None``; numbers as SAS doubles.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from celltrial.errors import StoreError
from celltrial.store.conform import conform
from celltrial.store.engine import Store
from celltrial.store.readers import blank_to_none, read_xpt_file
from celltrial.store.records import WriteSummary, write_domains
from celltrial.store.sdtm import dataset_spec, from_sdtm, sdtm_datasets
from celltrial.store.validate import Source

MAX_TEXT = 200


def write_xpt(name: str, frame: pd.DataFrame, file: Path) -> None:
    """Write one SDTM dataset frame as an XPT v5 file (StoreError on text over 200 bytes)."""
    import pyreadstat

    spec = dataset_spec(name)
    data = frame[list(spec.columns)].copy()
    for var in spec.variables:
        if var.type == "Char":
            column = data[var.name].astype(object).where(data[var.name].notna(), "")
            too_long = column.map(lambda v: len(str(v).encode("utf-8")) > MAX_TEXT)
            if too_long.any():
                row = int(too_long.to_numpy().argmax()) + 1
                raise StoreError(f"{name} row {row}, column {var.name}: Invalid "
                                 f"`{var.name}`: got `{column.iloc[row - 1]!r}`, must be at "
                                 f"most {MAX_TEXT} bytes for XPT v5")
            data[var.name] = column.astype(str)
    pyreadstat.write_xport(data, str(file), file_label=spec.label[:40],
                           column_labels=[v.label[:40] for v in spec.variables],
                           table_name=name, file_format_version=5)


def export_xpt(store: Store, study_id: str, out_dir: str | Path, *,
               country: str | None = None) -> list[Path]:
    """Write ``<dataset>.xpt`` for DM, every domain with records, their SUPP-- datasets and,
    for a study registered from a shipped protocol, TE/TA/TI/TS/TV (SDTMIG 3.4; ``country`` is
    DM.COUNTRY, ISO 3166-1 alpha-3); returns the files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in sdtm_datasets(store, study_id, country=country).items():
        file = out / f"{name.lower()}.xpt"
        write_xpt(name, frame, file)
        written.append(file)
    return written


def _xpt_files(path: str | Path) -> list[Path]:
    folder = Path(path)
    files = sorted(folder.glob("*.xpt")) if folder.is_dir() else []
    if not files:
        raise StoreError(f"Invalid `folder`: got `{str(folder)!r}`, must be a folder holding "
                         "SAS XPT v5 files named by dataset (dm.xpt, ae.xpt, ...)")
    return files


def _read(path: str | Path) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    frames, origins = {}, {}
    for file in _xpt_files(path):
        name, frame = read_xpt_file(file)
        frames[name] = blank_to_none(frame)
        origins[name] = file.name
    return frames, origins


def read_xpt_dir(path: str | Path, *, drop_unkept: bool = False) -> dict[str, pd.DataFrame]:
    """Every ``*.xpt`` of a folder as the store's domains, typed as :func:`read_domains`
    returns them (SUPP-- merged into their parent).

    A file cut short (its size not that of the rows read) is refused naming it."""
    frames, origins = _read(path)
    domains = from_sdtm(frames, origins, drop_unkept=drop_unkept)
    return {name: conform(name, frame, origins[name]) for name, frame in domains.items()}


def import_xpt_dir(store: Store, study_id: str, path: str | Path, *, user: str,
                   reason: str = "XPT import", drop_unkept: bool = False) -> WriteSummary:
    """Import every ``<dataset>.xpt`` of ``path`` into ``study_id`` in one transaction (values
    validated as written, blank text = missing; nothing is written on any problem). SDTM
    variables the store does not keep are refused, or left out with ``drop_unkept``."""
    frames, origins = _read(path)
    domains = from_sdtm(frames, origins, drop_unkept=drop_unkept)
    return write_domains(store, study_id, domains, user=user, reason=reason,
                         source=f"xpt:{path}",
                         sources={name: Source(origins[name]) for name in domains},
                         audit="subject")

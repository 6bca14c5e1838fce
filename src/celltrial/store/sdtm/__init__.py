"""SDTMIG 3.4 export of the store's domains: dataset metadata (:mod:`.spec`), the shipped CDISC
Controlled Terminology subset (:mod:`.ct`), store <-> CT value maps (:mod:`.recode`) and the
conversion both ways (:mod:`.convert`). Used by the XPT and Dataset-JSON writers and readers;
CSV files keep the store's own columns (docs/data-model.md)."""

from typing import Any

import pandas as pd

from celltrial.store.sdtm.convert import from_sdtm, to_sdtm
from celltrial.store.sdtm.ct import CT_RELEASE
from celltrial.store.sdtm.spec import SDTM, SDTMIG_VERSION, dataset_spec

__all__ = ["CT_RELEASE", "SDTM", "SDTMIG_VERSION", "dataset_spec", "from_sdtm", "sdtm_datasets",
           "study_protocol", "to_sdtm"]


def study_protocol(store: Any, study_id: str) -> Any | None:
    """The shipped protocol a stored study was registered from (same id and content hash), or
    None (registered by id and title, or from a protocol changed since)."""
    from celltrial.store.sdtm.design import shipped_protocol
    from celltrial.store.studies import get_study

    return shipped_protocol(study_id, get_study(store, study_id).protocol_hash)


def sdtm_datasets(store: Any, study_id: str, *, country: str | None = None
                  ) -> dict[str, pd.DataFrame]:
    """Every SDTM dataset of a stored study: :func:`to_sdtm` of its domains and, when the study
    was registered from a shipped protocol (same content hash), TE, TA, TI, TS and TV of that
    protocol (TS with ACTSUB and SSTDTC from the exported DM)."""
    from celltrial.store.records import read_domains
    from celltrial.store.sdtm.design import trial_design

    out = to_sdtm(read_domains(store, study_id), country=country)
    protocol = study_protocol(store, study_id)
    if protocol is not None:
        out.update(trial_design(protocol, out.get("DM")))
    return out

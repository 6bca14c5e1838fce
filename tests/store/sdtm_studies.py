"""The five shipped protocols conducted as small virtual studies and exported as SDTMIG 3.4
XPT and Dataset-JSON files with TE, TA, TI, TS, TV of the protocol and a define.xml beside
the XPTs (shared by the SDTM, define.xml and Dataset-JSON schema tests).

The domains are the generator's frames typed as the store returns them
(:func:`celltrial.store.conform.conform`, the contract of ``read_domains``); the path through
the database (``export_xpt``/``export_dataset_json`` on a store) is tested with the hand-made
frames of conftest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

PATIENTS = 4
SEED = 7
DATA_CUT = "2027-06-01"
COUNTRY = "CHN"


@dataclass(frozen=True)
class Exported:
    """Where the studies were exported, and their domains as the store returns them."""

    root: Path
    domains: dict[str, dict[str, pd.DataFrame]]

    @property
    def studies(self) -> tuple[str, ...]:
        return tuple(self.domains)

    def folder(self, study: str, kind: str) -> Path:
        """The export folder of ``study`` (``xpt`` or ``json``)."""
        return self.root / study / kind


def export_studies(root: Path) -> Exported:
    """Conduct the five protocols' virtual studies and export them under ``root``."""
    from celltrial.conduct.virtual_trial import simulate_study
    from celltrial.protocols import list_ids, load
    from celltrial.store.conform import conform
    from celltrial.store.dataset_json import dataset_json
    from celltrial.store.sdtm import to_sdtm
    from celltrial.store.sdtm.define import write_define
    from celltrial.store.sdtm.design import trial_design
    from celltrial.store.xpt import write_xpt

    domains = {}
    for study in list_ids():
        protocol = load(study)
        frames = simulate_study(protocol, PATIENTS, SEED, data_cut=DATA_CUT)
        typed = {name: conform(name, frame, name) for name, frame in frames.items()}
        domains[study] = typed
        for kind in ("xpt", "json"):
            (root / study / kind).mkdir(parents=True)
        sdtm = to_sdtm(typed, country=COUNTRY)
        datasets = {**sdtm, **trial_design(protocol, sdtm["DM"])}
        for name, frame in datasets.items():
            write_xpt(name, frame, root / study / "xpt" / f"{name.lower()}.xpt")
            (root / study / "json" / f"{name.lower()}.json").write_text(
                json.dumps(dataset_json(study, name, frame), ensure_ascii=False),
                encoding="utf-8")
        write_define(datasets, study, root / study / "xpt", title=protocol.title)
    return Exported(root, domains)

"""What the study report reads: the files ``celltrial analyze`` wrote, and the protocol.

The report never touches the database and never re-derives an endpoint: estimates with their
CIs come from ``endpoints.json``, counts and summaries from the analysis datasets (ADaM-shaped
parquet files), the escalation history from ``escalation.json``. ``ReportData`` bundles them
with the helpers every section needs (dose levels in dose order, the safety set).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from celltrial.errors import CelltrialError


def load_analysis(analysis_dir: Path) -> tuple[dict[str, pd.DataFrame], list[dict[str, Any]]]:
    """Read the datasets (``<name>.parquet``) and ``endpoints.json`` written by ``celltrial analyze``."""
    analysis_dir = Path(analysis_dir)
    endpoints_file = analysis_dir / "endpoints.json"
    if not endpoints_file.exists():
        raise CelltrialError(f"Invalid `analysis_dir`: got `{analysis_dir}`, must hold "
                             "endpoints.json (run `celltrial analyze` first)")
    datasets = {p.stem.lower(): pd.read_parquet(p) for p in sorted(analysis_dir.glob("*.parquet"))}
    payload = json.loads(endpoints_file.read_text())
    endpoints = payload["endpoints"] if isinstance(payload, dict) else payload
    return datasets, endpoints


@dataclass(frozen=True)
class Assumption:
    """A protocol value that is assumed, not registered: where it is, the value, why."""

    where: str
    value: str
    rationale: str


def assumptions(protocol: Any) -> list[Assumption]:
    """Every assumed value of the protocol (``assumed: true`` blocks and ``<field>_assumed``
    flags, each with its rationale, as the protocol schema requires)."""
    found: list[Assumption] = []

    def short(value: Any) -> str:
        if isinstance(value, BaseModel):
            data = value.model_dump(exclude={"assumed", "rationale"})
            text = ", ".join(f"{k} {v}" for k, v in data.items()
                             if not isinstance(v, (list, dict)) and v not in (None, ""))
        else:
            text = str(value)
        return text if len(text) <= 140 else text[:137] + "..."

    def walk(obj: Any, path: str) -> None:
        if isinstance(obj, BaseModel):
            if getattr(obj, "assumed", False) is True:
                found.append(Assumption(path, short(obj), str(getattr(obj, "rationale", ""))))
            for name in type(obj).model_fields:
                value = getattr(obj, name)
                if name.endswith("_assumed") and value is True:
                    base = name[: -len("_assumed")]
                    found.append(Assumption(f"{path}.{base}".lstrip("."),
                                            short(getattr(obj, base, "")),
                                            str(getattr(obj, f"{base}_rationale", "") or "")))
                elif isinstance(value, (BaseModel, list, dict)):
                    walk(value, f"{path}.{name}".lstrip("."))
        elif isinstance(obj, list):
            for i, item in enumerate(obj):
                walk(item, f"{path}[{getattr(item, 'id', None) or i}]")
        elif isinstance(obj, dict):
            for key, item in obj.items():
                walk(item, f"{path}.{key}")

    walk(protocol, "")
    return found


@dataclass
class ReportData:
    """Protocol, analysis datasets, endpoint results and escalation history of one study."""

    protocol: Any
    datasets: dict[str, pd.DataFrame]
    endpoints: list[dict[str, Any]]
    escalation: dict[str, Any] | None = None
    simulated: bool = False
    data_note: str = ""
    rp2d: dict[str, Any] | None = None
    """The recommended phase II dose the analysis wrote (``endpoints.json`` "rp2d")."""
    persistence: dict[str, Any] | None = None
    """Time to loss of detectable CAR-T per analyte, Kaplan-Meier (``endpoints.json``
    "persistence", ``celltrial.derive.analysis.persistence_summary``); None when the analysis
    wrote none."""
    _levels: list[str] | None = field(default=None, repr=False)

    @classmethod
    def read(cls, protocol: Any, analysis_dir: Path, *, simulated: bool = False,
             data_note: str = "") -> ReportData:
        datasets, endpoints = load_analysis(analysis_dir)
        path = Path(analysis_dir) / "escalation.json"
        escalation = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        payload = Path(analysis_dir) / "endpoints.json"
        written = json.loads(payload.read_text(encoding="utf-8")) if payload.exists() else {}
        written = written if isinstance(written, dict) else {}
        return cls(protocol, datasets, endpoints, escalation, simulated, data_note,
                   written.get("rp2d"), written.get("persistence"))

    def ds(self, name: str) -> pd.DataFrame:
        """A dataset by lower-case name; an empty frame when it was not written."""
        return self.datasets.get(name, pd.DataFrame())

    @property
    def adsl(self) -> pd.DataFrame:
        return self.ds("adsl")

    @property
    def safety(self) -> pd.DataFrame:
        """The safety set: patients who received any CAR-T cells (ADSL SAFFL = Y)."""
        adsl = self.adsl
        return adsl[adsl["SAFFL"] == "Y"] if "SAFFL" in adsl else adsl.iloc[0:0]

    @property
    def levels(self) -> list[str]:
        """Dose levels given (ADSL TRT01A of the safety set), in dose order (TRT01AN)."""
        if self._levels is None:
            s = self.safety
            order = s.sort_values("TRT01AN")["TRT01A"].dropna().unique() if len(s) else []
            self._levels = [str(x) for x in order]
        return self._levels

    def groups(self, frame: pd.DataFrame | None = None) -> list[tuple[str, pd.DataFrame]]:
        """Safety-set patients (or ``frame`` rows) per dose level in dose order, then Total."""
        frame = self.safety if frame is None else frame
        out = [(lv, frame[frame["TRT01A"].astype(str) == lv]) for lv in self.levels]
        return [*out, ("Total", frame)] if len(self.levels) > 1 else out or [("Total", frame)]

    def endpoint(self, derivation: str) -> dict[str, Any] | None:
        """The first endpoint result of a derivation (e.g. ``"os"``), or None."""
        return next((e for e in self.endpoints if e.get("derivation") == derivation), None)

    @property
    def data_cut(self) -> str:
        """The data cut-off: from the escalation history, else the latest date known alive."""
        if self.escalation and self.escalation.get("data_cut"):
            return str(self.escalation["data_cut"])
        adsl = self.adsl
        if "LSTALVDT" in adsl and adsl["LSTALVDT"].notna().any():
            return pd.to_datetime(adsl["LSTALVDT"]).max().date().isoformat() + \
                " (latest date known alive; no cut-off recorded)"
        return "not recorded"

    def dose_label(self, level: str, sep: str = " ") -> str:
        """``DL1 (0.5×10⁶/kg)`` from the protocol's dose levels (``sep`` between id and dose)."""
        for d in self.protocol.intervention.dose_levels:
            if d.id == level:
                return f"{level}{sep}({pretty_power(d.label)})" if d.label else level
        return level


SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def pretty_power(text: str) -> str:
    """``0.5x10^6/kg`` -> ``0.5×10⁶/kg`` (powers of ten as printed in a CSR)."""
    return re.sub(r"x\s*10\^(-?\d+)", lambda m: "×10" + m.group(1).translate(SUPERSCRIPT), text)

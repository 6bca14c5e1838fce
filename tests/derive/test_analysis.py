"""Files written by the analysis: datasets (parquet + CSV), endpoints.json, summary.md."""

from __future__ import annotations

import json

import pandas as pd

from celltrial.derive import analyze, write_analysis
from celltrial.derive.analysis import DATASET_ORDER
from celltrial.protocols import load
from celltrial.report import load_analysis

from .conftest import make_domains


def test_files_round_trip(tmp_path):
    protocol = load("cd7-zz-phase1")
    analysis = analyze(make_domains(), protocol)
    write_analysis(analysis, tmp_path)
    for name in DATASET_ORDER:
        parquet = pd.read_parquet(tmp_path / f"{name}.parquet")
        assert len(parquet) == len(analysis.datasets[name])
        assert (tmp_path / f"{name}.csv").exists()
    payload = json.loads((tmp_path / "endpoints.json").read_text())
    assert payload["study"] == "cd7-zz-phase1"
    assert [e["id"] for e in payload["endpoints"]] == [e.id for e in protocol.endpoints]
    for entry in payload["endpoints"]:
        assert entry["status"] == "ok" or entry["reason"]
    summary = (tmp_path / "summary.md").read_text()
    for endpoint in protocol.endpoints:
        assert endpoint.name in summary
    assert "Not computable:" in summary
    datasets, endpoints = load_analysis(tmp_path)   # what the report reads
    assert set(datasets) == set(DATASET_ORDER)
    assert len(endpoints) == len(protocol.endpoints)

"""The study report: every outcome measure appears, figures are drawn or say why not."""

from __future__ import annotations

import html
import json

import pandas as pd
import pytest

from celltrial.derive.analysis import analyze, write_analysis
from celltrial.errors import CelltrialError
from celltrial.conduct import simulate_study
from celltrial.protocols import load
from celltrial.report import build_report
from celltrial.report.figures import FIGURES, render_all
from celltrial.report.tables import disposition, endpoint_table


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    protocol = load("cd7-zz-phase1")
    analysis = analyze(simulate_study(protocol, 12, seed=3), protocol)
    out = tmp_path_factory.mktemp("analysis")
    write_analysis(analysis, out)
    return protocol, analysis, out


def test_report_lists_every_outcome_measure(analysed, tmp_path):
    protocol, analysis, out = analysed
    files = build_report(protocol, out, tmp_path / "report")
    text = html.unescape(files.html.read_text(encoding="utf-8"))
    for endpoint in protocol.endpoints:
        assert endpoint.name in text
    assert files.pdf.read_bytes().startswith(b"%PDF")
    assert {p.stem for p in files.figures} <= {f.id for f in FIGURES}
    assert len(files.figures) >= 5


def test_endpoint_table_shows_reason_when_not_computable():
    table = endpoint_table([
        {"name": "ORR", "time_frame": "3 months", "status": "ok", "estimate": 0.5,
         "ci": [0.2, 0.8], "n": 10, "summary": "5/10"},
        {"name": "CIR", "time_frame": "2 years", "status": "not computable",
         "reason": "no patient reached remission"},
    ])
    assert table.loc[0, "95% CI"] == "0.2 - 0.8"
    assert table.loc[1, "Estimate"] == ""
    assert table.loc[1, "Note"] == "not computable: no patient reached remission"


def test_figure_without_data_carries_its_reason(analysed):
    _, analysis, _ = analysed
    datasets = dict(analysis.datasets)
    datasets["adpc"] = datasets["adpc"].iloc[0:0]
    reasons = {r.spec.id: r.reason for r in render_all(datasets)}
    assert reasons["kinetics_qpcr"] == "no ADPC dataset"
    assert reasons["overall_survival"] is None


def test_disposition_counts_match_adsl(analysed):
    _, analysis, _ = analysed
    adsl = analysis.datasets["adsl"]
    table = disposition(analysis.datasets).set_index("Dose level")
    assert table.loc["Total", "SAFFL"] == int((adsl["SAFFL"] == "Y").sum())
    assert table.loc["Total", "ENRLFL"] == int((adsl["ENRLFL"] == "Y").sum())


def test_missing_analysis_is_a_clear_error(tmp_path):
    with pytest.raises(CelltrialError, match="endpoints.json"):
        build_report(load("cd7-zz-phase1"), tmp_path, tmp_path / "r")


def test_endpoints_file_is_what_the_report_reads(analysed):
    _, analysis, out = analysed
    payload = json.loads((out / "endpoints.json").read_text())
    assert len(payload["endpoints"]) == len(analysis.endpoints)
    assert isinstance(pd.read_parquet(out / "adsl.parquet"), pd.DataFrame)

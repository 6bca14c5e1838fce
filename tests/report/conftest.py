"""Fixtures of the report tests: each library protocol simulated, analysed and reported once.

A study is the one `make demo` makes, smaller: a seeded virtual cohort of ``N_PATIENTS`` by the
protocol's own design (``celltrial.conduct.simulate_study``), analysed by ``celltrial.derive``
(``analyze`` + ``write_analysis`` + the escalation history of ``celltrial report``), then
reported by :func:`celltrial.report.build_report`. Nothing is mocked. Under pytest-xdist the
workers share one build per study (a file lock in the session's common temporary folder).
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from celltrial.cli.report import write_escalation
from celltrial.conduct import simulate_study
from celltrial.derive.analysis import analyze, write_analysis
from celltrial.protocols import list_ids, load
from celltrial.report import ReportFiles, build_report, load_analysis

N_PATIENTS = 9
STUDIES = tuple(list_ids())


@dataclass(frozen=True)
class Reported:
    """A built report with what it was built from (re-read from the analysis files)."""

    protocol: Any
    analysis_dir: Path
    files: ReportFiles
    datasets: dict[str, pd.DataFrame]
    endpoints: list[dict[str, Any]]


def _read(protocol: Any, out: Path) -> Reported:
    datasets, endpoints = load_analysis(out / "analysis")
    files = ReportFiles(out / "report" / "report.html", out / "report" / "report.pdf",
                        tuple(sorted((out / "report").glob("*.png"))))
    return Reported(protocol, out / "analysis", files, datasets, endpoints)


def report_of(domains: dict, protocol: Any, out: Path, **options: Any) -> Reported:
    """Analyse ``domains`` and build the report under ``out`` (as ``celltrial report`` does)."""
    analysis_dir = out / "analysis"
    write_analysis(analyze(domains, protocol), analysis_dir)
    write_escalation(domains, protocol, analysis_dir)
    build_report(protocol, analysis_dir, out / "report", simulated=True,
                 data_note="virtual cohort of the report tests", **options)
    return _read(protocol, out)


@pytest.fixture(scope="session", params=STUDIES)
def reported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Reported:
    """The report of one library protocol (parametrized over all five), built once."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    study = request.param
    out = root / f"report-{study}"
    protocol = load(study)
    with open(root / f"report-{study}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "built").exists():
            domains = simulate_study(protocol, N_PATIENTS, seed=11, data_cut="2026-06-30")
            report_of(domains, protocol, out)
            (out / "built").touch()
    return _read(protocol, out)


@pytest.fixture
def make_report():
    """:func:`report_of`, for tests that build a study of their own."""
    return report_of

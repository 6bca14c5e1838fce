"""`celltrial report` end to end on a throwaway SQLite database holding one virtual study."""

from __future__ import annotations

import pdfplumber
from typer.testing import CliRunner

from celltrial.cli.main import app
from celltrial.cli.report import is_simulated
from celltrial.conduct import write_study
from celltrial.protocols import load
from celltrial.store import init_db, open_store, register_study


def test_report_command_writes_letter_pdf_of_a_simulated_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    init_db(url)
    store = open_store(url)
    protocol = load("cd7-tall-phase1")
    register_study(store, protocol)
    assert not is_simulated(store, protocol.id)  # registered, no record yet
    write_study(store, protocol, 6, seed=2, data_cut="2026-06-30")
    assert is_simulated(store, protocol.id)
    result = CliRunner().invoke(app, ["report", "--study", protocol.id, "--db", url,
                                      "--out", str(tmp_path / "out"), "--page-size", "Letter"])
    assert result.exit_code == 0, result.output
    pdf_path = tmp_path / "out" / protocol.id / "report" / "report.pdf"
    assert str(pdf_path) in result.output.replace("\n", "")
    with pdfplumber.open(pdf_path) as pdf:
        assert {tuple(sorted((round(float(p.width)), round(float(p.height)))))
                for p in pdf.pages} == {(612, 792)}
        assert "SIMULATED DATA" in pdf.pages[0].extract_text()


def test_report_command_refuses_unknown_page_size(tmp_path):
    result = CliRunner().invoke(app, ["report", "--study", "cd7-tall-phase1", "--db",
                                      f"sqlite:///{tmp_path / 'x.db'}", "--page-size", "A3"])
    assert result.exit_code != 0
    assert "--page-size" in result.output

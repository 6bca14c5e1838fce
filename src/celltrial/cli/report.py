"""`celltrial report`: analysis datasets, endpoints and the study report (HTML + PDF) of one study."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from celltrial.cli.common import DB_OPTION, console, user_errors


def report_study(store: Any, protocol: Any, out_dir: Path) -> tuple[Any, Any]:
    """Derive, analyse and report one study from the store into ``out_dir``.

    Writes ``out_dir/analysis`` (datasets, endpoints.json, summary.md) and ``out_dir/report``
    (report.html, report.pdf, figures). Returns ``(analysis, report_files)``.
    """
    from celltrial.derive.analysis import analyze, write_analysis
    from celltrial.report import build_report
    from celltrial.store import read_domains

    domains = read_domains(store, protocol.id)
    analysis = analyze(domains, protocol)
    analysis_dir = out_dir / "analysis"
    write_analysis(analysis, analysis_dir)
    write_escalation(domains, protocol, analysis_dir)
    n_subjects = len(domains.get("DM", ()))
    files = build_report(protocol, analysis_dir, out_dir / "report",
                         data_note=f"{n_subjects} subjects read from the study database")
    return analysis, files


def write_escalation(domains: Any, protocol: Any, analysis_dir: Path) -> Path | None:
    """The escalation history (``celltrial.conduct.escalation_history``: every cohort with the
    decision in force before it, deviations, the decision now) as ``escalation.json``."""
    import json

    from celltrial.conduct import escalation_history
    from celltrial.errors import NotComputable

    try:
        history = escalation_history(domains, protocol)
    except NotComputable:
        return None
    path = analysis_dir / "escalation.json"
    path.write_text(json.dumps(history.as_dict(), indent=2, default=int), encoding="utf-8")
    return path


def report(
    study: str = typer.Option(..., "--study", help="Protocol id (see `celltrial protocol list`)."),
    out: Path = typer.Option(Path("out"), "--out", help="Output folder; the study gets a sub-folder."),
    db: str | None = DB_OPTION,
) -> None:
    """Analyse one study from the database and write its report (HTML and PDF)."""
    from celltrial.config import default_database_url
    from celltrial.protocols import load
    from celltrial.store import open_store

    with user_errors():
        protocol = load(study)
        store = open_store(db or default_database_url())
        _, files = report_study(store, protocol, out / protocol.id)
    console.print(f"[green]report[/] {files.html}\n[green]pdf[/]    {files.pdf}")


def register(app: typer.Typer) -> None:
    """Add `report` to the main app."""
    app.command("report")(report)

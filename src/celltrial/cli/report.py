"""`celltrial report`: analysis datasets, endpoints and the study report (HTML + PDF) of one study."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from celltrial.cli.common import DB_OPTION, console, user_errors

#: steps of one study's report, in the order ``report_study`` announces them
REPORT_STEPS = ("reading the study", "analysis datasets and endpoints", "escalation history",
                "reading the analysis", "tables", "figures", "HTML", "PDF")


def is_simulated(store: Any, study_id: str) -> bool:
    """Whether any record of the study was written by the virtual-patient generator (audit
    trail rows with source ``virtual``, as ``celltrial.conduct.write_study`` writes them)."""
    import sqlalchemy as sa

    from celltrial.store.schema import AuditRecord

    audit = AuditRecord.__table__
    query = (sa.select(audit.c.id).where(audit.c.study_id == study_id)
             .where(audit.c.source == "virtual").limit(1))
    with store.engine.connect() as connection:
        return connection.execute(query).first() is not None


def report_study(store: Any, protocol: Any, out_dir: Path, *, page_size: str = "A4",
                 progress: Callable[[str], None] | None = None) -> tuple[Any, Any]:
    """Derive, analyse and report one study from the store into ``out_dir``.

    Writes ``out_dir/analysis`` (datasets, endpoints.json, summary.md) and ``out_dir/report``
    (report.html, report.pdf, figures). ``progress`` is called with each step's name
    (``REPORT_STEPS``). Returns ``(analysis, report_files)``.
    """
    from celltrial.derive.analysis import analyze, write_analysis
    from celltrial.report import build_report
    from celltrial.store import read_domains

    step = progress or (lambda _name: None)
    step(REPORT_STEPS[0])
    domains = read_domains(store, protocol.id)
    step(REPORT_STEPS[1])
    analysis = analyze(domains, protocol)
    analysis_dir = out_dir / "analysis"
    write_analysis(analysis, analysis_dir)
    step(REPORT_STEPS[2])
    write_escalation(domains, protocol, analysis_dir, store=store)
    n_subjects = len(domains.get("DM", ()))
    files = build_report(protocol, analysis_dir, out_dir / "report",
                         data_note=f"{n_subjects} subjects read from the study database",
                         simulated=is_simulated(store, protocol.id), page_size=page_size,
                         progress=step)
    return analysis, files


def write_escalation(domains: Any, protocol: Any, analysis_dir: Path, *,
                     store: Any = None) -> Path | None:
    """The escalation history (``celltrial.conduct.escalation_history``: every cohort with the
    decision in force before it, deviations, the decision now) as ``escalation.json``; with
    ``store``, also the dose-escalation committee's decisions with their signers under
    ``"committee"`` (:mod:`celltrial.report.committee`)."""
    import json

    from celltrial.conduct import escalation_history
    from celltrial.errors import NotComputable

    try:
        history = escalation_history(domains, protocol)
    except NotComputable:
        return None
    body = history.as_dict()
    if store is not None:
        from celltrial.report.committee import decisions_json
        from celltrial.store.committee import committee_decisions

        body["committee"] = decisions_json(committee_decisions(store, str(protocol.id)))
    path = analysis_dir / "escalation.json"
    path.write_text(json.dumps(body, indent=2, default=int), encoding="utf-8")
    return path


def report(
    study: str = typer.Option(..., "--study", help="Protocol id (see `celltrial protocol list`)."),
    out: Path = typer.Option(Path("out"), "--out", help="Output folder; the study gets a sub-folder."),
    page_size: str = typer.Option("A4", "--page-size", help="Paper size of the PDF: A4 or Letter."),
    db: str | None = DB_OPTION,
) -> None:
    """Analyse one study from the database and write its clinical study report (HTML, and the
    PDF printed from that HTML)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from celltrial.config import default_database_url
    from celltrial.protocols import load
    from celltrial.report import PAGE_SIZES
    from celltrial.store import open_store

    with user_errors():
        if page_size not in PAGE_SIZES:
            raise typer.BadParameter(f"got `{page_size}`, must be one of {sorted(PAGE_SIZES)}",
                                     param_hint="--page-size")
        protocol = load(study)
        store = open_store(db or default_database_url())
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task(study, total=len(REPORT_STEPS))

            def step(name: str) -> None:
                bar.update(task, description=f"{study}: {name}",
                           completed=REPORT_STEPS.index(name) if name in REPORT_STEPS else None)

            _, files = report_study(store, protocol, out / protocol.id, page_size=page_size,
                                    progress=step)
    console.print(f"[green]report[/] {files.html}\n[green]pdf[/]    {files.pdf}")


def register(app: typer.Typer) -> None:
    """Add `report` to the main app."""
    app.command("report")(report)

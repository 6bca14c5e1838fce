"""`celltrial analyze`: analysis datasets and every outcome measure of a study, from the store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from celltrial.cli.common import DB_OPTION, console, user_errors

if TYPE_CHECKING:
    from celltrial.derive.analysis import Analysis


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("analyze")(analyze_command)


def analyze_command(
    study: str = typer.Option(..., "--study",
                              help="Protocol id of the study (celltrial protocol list)."),
    out: Path = typer.Option(..., "--out",
                             help="Directory for datasets, endpoints.json, summary.md."),
    db: str | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print endpoints.json to stdout."),
    adam_format: str | None = typer.Option(
        None, "--adam-format",
        help="Also export the ADaM datasets under OUT/adam as SAS transport files (xpt) or "
             "CDISC Dataset-JSON v1.1 (dataset-json), with an ADaM define.xml."),
) -> None:
    """Derive ADSL, ADAE, ADRS, ADTTE, ADPC, ADPP, ADLB, ADIS, ADTOX and every endpoint of
    the protocol; write parquet + CSV, endpoints.json, summary.md and escalation.json (the
    escalation history replayed from the records, with the dose-escalation committee's
    decisions recorded in the store); with --adam-format, the ADaM datasets as XPT or
    Dataset-JSON with define.xml under OUT/adam."""
    from rich.progress import Progress

    from celltrial import protocols
    from celltrial.config import default_database_url
    from celltrial.derive.analysis import analyze, write_analysis
    from celltrial.store import open_store, read_domains

    with user_errors():
        if adam_format not in (None, "xpt", "dataset-json"):
            from celltrial.errors import invalid

            raise invalid("--adam-format", adam_format, "xpt or dataset-json")
        protocol = protocols.load(study)
        started = time.perf_counter()
        with Progress(console=console, transient=True, disable=as_json) as progress:
            task = progress.add_task("reading the store", total=3)
            store = open_store(db or default_database_url())
            domains = read_domains(store, protocol.id)
            progress.update(task, advance=1, description="deriving datasets and endpoints")
            analysis = analyze(domains, protocol)
            progress.update(task, advance=1, description="writing files")
            write_analysis(analysis, out)
            from celltrial.cli.report import write_escalation

            write_escalation(domains, protocol, Path(out), store=store)
            if adam_format is not None:
                from celltrial.derive.adam_export import export_adam

                export_adam(analysis.datasets, Path(out) / "adam", fmt=adam_format,
                            study_id=protocol.id, title=getattr(protocol, "title", None))
            progress.update(task, advance=1)
        elapsed = time.perf_counter() - started
    if as_json:
        typer.echo((Path(out) / "endpoints.json").read_text(encoding="utf-8"))
        return
    _print_table(analysis, out, elapsed)


def _print_table(analysis: Analysis, out: Path, elapsed: float) -> None:
    from rich.table import Table

    table = Table(title=f"{analysis.study}: outcome measures", show_lines=False)
    for column in ("Outcome measure", "Time frame", "Estimate", "95% CI", "n", "Note"):
        table.add_column(column, overflow="fold")
    for r in analysis.endpoints:
        if r.status == "ok":
            est = "" if r.estimate is None else f"{r.estimate:.3g}"
            ci = "" if not r.ci or r.ci[0] is None else f"{r.ci[0]:.3g} - {r.ci[1]:.3g}"
            table.add_row(f"{r.name} [dim]({r.derivation})[/]", r.time_frame, est, ci,
                          str(r.n), r.summary.split("; ")[0])
        else:
            table.add_row(f"{r.name} [dim]({r.derivation})[/]", r.time_frame, "", "", "",
                          f"[yellow]not computable:[/] {r.reason}")
    console.print(table)
    ok = sum(r.status == "ok" for r in analysis.endpoints)
    console.print(f"{ok}/{len(analysis.endpoints)} outcome measures computed; "
                  f"files in {out} ({elapsed:.2f} s); details in {Path(out) / 'summary.md'}")

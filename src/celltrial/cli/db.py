"""`celltrial db`: create the database, import a folder of CSVs, export SDTM (CSV, XPT, JSON)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from celltrial.cli.common import DB_OPTION, console, user_errors

db_app = typer.Typer(help="The trial database: create, import, export.", no_args_is_help=True)


class ExportFormat(str, Enum):
    """SDTM transport formats."""

    csv = "csv"
    xpt = "xpt"
    dataset_json = "dataset-json"


def _records_table(title: str, records: dict[str, int]):  # type: ignore[no-untyped-def]
    from rich.table import Table

    table = Table(title=title)
    table.add_column("domain")
    table.add_column("records", justify="right")
    for name, count in records.items():
        table.add_row(name, str(count))
    table.add_row("[bold]total[/]", f"[bold]{sum(records.values())}[/]")
    return table


@db_app.command("init")
def init(
    db: str | None = DB_OPTION,
    studies: bool = typer.Option(True, "--studies/--no-studies",
                                 help="Register the five shipped protocols as studies."),
) -> None:
    """Create or upgrade the schema (Alembic upgrade head) and register the studies."""
    from celltrial.store import init_db, list_studies, open_store, register_study

    with user_errors():
        revision = init_db(db)
        store = open_store(db)
        try:
            if studies:
                from celltrial.protocols import list_ids, load

                for study_id in list_ids():
                    register_study(store, load(study_id))
            registered = list_studies(store)
        finally:
            store.close()
    console.print(f"Database [bold]{store.url}[/] at revision [bold]{revision}[/]; "
                  f"{len(registered)} studies: {', '.join(s.id for s in registered) or 'none'}")


@db_app.command("import")
def import_(
    folder: Path = typer.Argument(..., help="Folder of CSVs, one per domain (DM.csv, AE.csv)."),
    study: str = typer.Option(..., "--study", help="Study (protocol) id."),
    user: str = typer.Option("cli", "--user", help="Who imports (kept in the audit trail)."),
    reason: str = typer.Option("CSV import", "--reason", help="Why (kept in the audit trail)."),
    db: str | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Import a folder of CSVs into a study: all files in one transaction, or nothing."""
    from celltrial.store import get_study, import_csv_dir, open_store, register_study

    with user_errors():
        store = open_store(db)
        try:
            _ensure_study(store, study, get_study, register_study)
            summary = import_csv_dir(store, study, folder, user=user, reason=reason)
        finally:
            store.close()
    if as_json:
        typer.echo(json.dumps({"study": study, "records": summary.records,
                               "audit_rows": summary.audit_rows,
                               "sites_added": list(summary.sites_added)}))
        return
    console.print(_records_table(f"Imported {folder} into {study}", summary.records))
    console.print(f"{summary.audit_rows} audit rows written.")


def _ensure_study(store, study, get_study, register_study) -> None:  # type: ignore[no-untyped-def]
    """Register a shipped protocol on first use; other ids must be registered already."""
    from celltrial.errors import StoreError
    from celltrial.protocols import list_ids, load

    try:
        get_study(store, study)
    except StoreError:
        if study not in list_ids():
            raise
        register_study(store, load(study))


@db_app.command("export")
def export(
    study: str = typer.Option(..., "--study", help="Study (protocol) id."),
    fmt: ExportFormat = typer.Option(ExportFormat.csv, "--format",
                                     help="csv, xpt (SAS XPT v5) or dataset-json (v1.1)."),
    out: Path = typer.Option(..., "--out", help="Folder to write (created)."),
    db: str | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the files as JSON."),
) -> None:
    """Export a study's SDTM domains, one file per domain."""
    from celltrial.store import (
        count_records,
        export_csv_dir,
        export_dataset_json,
        export_xpt,
        open_store,
    )

    writers = {ExportFormat.csv: export_csv_dir, ExportFormat.xpt: export_xpt,
               ExportFormat.dataset_json: export_dataset_json}
    with user_errors():
        store = open_store(db)
        try:
            files = writers[fmt](store, study, out)
            records = {k: v for k, v in count_records(store, study).items()
                       if v or k == "DM"}
        finally:
            store.close()
    if as_json:
        typer.echo(json.dumps({"study": study, "format": fmt.value,
                               "files": [str(f) for f in files], "records": records}))
        return
    console.print(_records_table(f"{study} exported as {fmt.value} to {out}", records))


def register(app: typer.Typer) -> None:
    """Add `db` to the main app."""
    app.add_typer(db_app, name="db")

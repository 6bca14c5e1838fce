"""`celltrial db`: create the database, import a folder of CSV, XPT or Dataset-JSON files,
export the study data (CSV: the store's columns; XPT and Dataset-JSON: SDTMIG 3.4 datasets)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from celltrial.cli.common import DB_OPTION, console, user_errors

db_app = typer.Typer(help="The trial database: create, import, export, verify the audit trail.",
                    no_args_is_help=True)


class ExportFormat(str, Enum):
    """SDTM transport formats."""

    csv = "csv"
    xpt = "xpt"
    dataset_json = "dataset-json"


class ImportFormat(str, Enum):
    """Formats a folder can be imported from (auto: by the files it holds)."""

    auto = "auto"
    csv = "csv"
    xpt = "xpt"
    dataset_json = "dataset-json"


_REASONS = {ImportFormat.csv: "CSV import", ImportFormat.xpt: "XPT import",
            ImportFormat.dataset_json: "Dataset-JSON import"}
_SUFFIXES = {ImportFormat.csv: ".csv", ImportFormat.xpt: ".xpt",
             ImportFormat.dataset_json: ".json"}


def import_format(folder: Path, fmt: ImportFormat) -> ImportFormat:
    """The format to import ``folder`` as: ``fmt``, or for auto the first of CSV, XPT,
    Dataset-JSON whose files the folder holds (CSV when none, so the message names CSV)."""
    if fmt is not ImportFormat.auto or not folder.is_dir():
        return ImportFormat.csv if fmt is ImportFormat.auto else fmt
    suffixes = {f.suffix.lower() for f in folder.iterdir() if f.is_file()}
    for kind, suffix in _SUFFIXES.items():
        if suffix in suffixes:
            return kind
    return ImportFormat.csv


def import_folder(store, study: str, folder: Path, fmt: ImportFormat, *, user: str,
                  reason: str, drop_unkept: bool = False):  # type: ignore[no-untyped-def]
    """Import ``folder`` in one transaction; an unreadable file is a StoreError naming it.
    ``drop_unkept`` leaves out SDTM variables the store does not keep (XPT, Dataset-JSON)."""
    from celltrial.errors import StoreError
    from celltrial.store.csv_files import import_csv_dir
    from celltrial.store.dataset_json import import_dataset_json_dir
    from celltrial.store.xpt import import_xpt_dir

    importers = {ImportFormat.csv: import_csv_dir, ImportFormat.xpt: import_xpt_dir,
                 ImportFormat.dataset_json: import_dataset_json_dir}
    kind = import_format(folder, fmt)
    options = {"drop_unkept": drop_unkept} if kind is not ImportFormat.csv else {}
    try:
        return importers[kind](store, study, folder, user=user, reason=reason, **options)
    except OSError as exc:
        name = Path(exc.filename).name if exc.filename else str(folder)
        raise StoreError(f"{name}: Invalid `file`: got `{exc.strerror or exc}`, must be a "
                         "readable file; nothing was written") from exc


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
    folder: Path = typer.Argument(..., help="Folder of files, one per domain (DM.csv, AE.csv; "
                                  "dm.xpt; dm.json)."),
    study: str = typer.Option(..., "--study", help="Study (protocol) id."),
    fmt: ImportFormat = typer.Option(ImportFormat.auto, "--format",
                                     help="csv, xpt, dataset-json, or auto (by the files)."),
    user: str = typer.Option("cli", "--user", help="Who imports (kept in the audit trail)."),
    reason: str | None = typer.Option(None, "--reason",
                                      help="Why (kept in the audit trail; default "
                                           "'<FORMAT> import')."),
    drop_unkept: bool = typer.Option(
        False, "--drop-unkept",
        help="XPT/Dataset-JSON: leave out SDTM variables the store does not keep (e.g. RACE); "
             "without it such a file is refused naming the variable."),
    db: str | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Import a folder into a study: every file complete and valid, all in one transaction,
    or nothing (a cut, short-rowed, empty or non-UTF-8 file is refused naming it). XPT and
    Dataset-JSON files may be SDTM datasets (DOMAIN, SUPP--, CDISC CT values)."""
    from celltrial.store import get_study, open_store, register_study

    kind = import_format(folder, fmt)
    with user_errors():
        store = open_store(db)
        try:
            _ensure_study(store, study, get_study, register_study)
            summary = import_folder(store, study, folder, kind, user=user,
                                    reason=reason or _REASONS[kind], drop_unkept=drop_unkept)
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
    fmt: ExportFormat = typer.Option(
        ExportFormat.csv, "--format",
        help="csv (the store's columns, one file per domain), xpt (SAS XPT v5, with "
             "define.xml (Define-XML 2.1) and define.html) or dataset-json (v1.1): SDTMIG 3.4 "
             "datasets with CDISC CT values and SUPP--."),
    out: Path = typer.Option(..., "--out", help="Folder to write (created)."),
    country: str | None = typer.Option(
        None, "--country", help="DM.COUNTRY for xpt/dataset-json (ISO 3166-1 alpha-3, e.g. "
                                "CHN); the store keeps no country, so it is null without it."),
    queries: bool = typer.Option(
        False, "--queries", help="Also write queries.csv: every monitoring query of the "
                                 "study with its status, answer and closing note."),
    signatures: bool = typer.Option(
        False, "--signatures", help="Also write signatures.csv (every electronic signature "
                                    "with meaning, printed name, UTC time, content hash and "
                                    "whether it is still valid) and committee_decisions.csv "
                                    "(the dose-escalation committee's decisions)."),
    db: str | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the files as JSON."),
) -> None:
    """Export a study's data, one file per dataset (records counted per store domain)."""
    from celltrial.store import (
        count_records,
        export_csv_dir,
        export_dataset_json,
        export_xpt,
        open_store,
    )

    from celltrial.errors import StoreError

    writers = {ExportFormat.csv: export_csv_dir, ExportFormat.xpt: export_xpt,
               ExportFormat.dataset_json: export_dataset_json}
    with user_errors():
        if country is not None and not (len(country) == 3 and country.isalpha()
                                        and country.isupper()):
            raise StoreError(f"Invalid `--country`: got `{country!r}`, must be an ISO 3166-1 "
                             "alpha-3 code in upper case (e.g. CHN, USA)")
        store = open_store(db)
        try:
            options = {"country": country} if fmt is not ExportFormat.csv else {}
            files = writers[fmt](store, study, out, **options)
            if fmt is ExportFormat.xpt:  # the reviewer's metadata beside the XPT files
                from celltrial.store.sdtm.define import export_define

                define = export_define(store, study, out, country=country)
                files = [*files, define, define.with_suffix(".html")]
            if queries:
                from celltrial.store.queries import export_queries_csv

                files = [*files, export_queries_csv(store, study, out)]
            if signatures:
                from celltrial.store.committee import export_decisions_csv
                from celltrial.store.signatures import export_signatures_csv

                files = [*files, export_signatures_csv(store, study, out),
                         export_decisions_csv(store, study, out)]
            records = {k: v for k, v in count_records(store, study).items()
                       if v or k == "DM"}
        finally:
            store.close()
    if as_json:
        typer.echo(json.dumps({"study": study, "format": fmt.value,
                               "files": [str(f) for f in files], "records": records}))
        return
    console.print(_records_table(f"{study} exported as {fmt.value} to {out}", records))


@db_app.command("validate")
def validate(
    study: str = typer.Option(..., "--study", help="Study (protocol) id."),
    country: str | None = typer.Option(
        None, "--country", help="DM.COUNTRY as for `db export` (ISO 3166-1 alpha-3)."),
    db: str | None = DB_OPTION,
    limit: int = typer.Option(40, "--limit", min=1, help="Most findings printed."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> None:
    """Check a study's SDTM datasets (what `db export --format xpt` writes) against SDTMIG
    3.4, CDISC CT, the XPT v5 limits and, for a study registered from a shipped protocol, its
    trial design and dose levels: rules SD0001-SD0018 with their severity (docs/store.md);
    exit 1 on any error."""
    from rich.table import Table

    from celltrial.store import open_store
    from celltrial.store.sdtm import sdtm_datasets, study_protocol
    from celltrial.store.sdtm.check import RULES, check, severity

    with user_errors():
        store = open_store(db)
        try:
            datasets = sdtm_datasets(store, study, country=country)
            protocol = study_protocol(store, study)
        finally:
            store.close()
    findings = check(datasets, protocol)
    errors = sum(severity(f.rule) == "error" for f in findings)
    if as_json:
        typer.echo(json.dumps({
            "study": study, "datasets": sorted(datasets), "errors": errors,
            "warnings": len(findings) - errors,
            "findings": [{"rule": f.rule, "severity": severity(f.rule), "dataset": f.dataset,
                          "row": f.row, "variable": f.variable, "value": _plain(f.value),
                          "message": f.message} for f in findings]}))
    else:
        rules = Table(title=f"{study}: {len(datasets)} SDTM datasets checked, {errors} "
                            f"error(s), {len(findings) - errors} warning(s)")
        for column in ("rule", "severity", "checks", "found"):
            rules.add_column(column, justify="right" if column == "found" else "left")
        for rule, (level, text) in RULES.items():
            rules.add_row(rule, level, text, str(sum(f.rule == rule for f in findings)))
        console.print(rules)
        if findings:
            table = Table(title=f"Findings (first {min(limit, len(findings))} of "
                                f"{len(findings)})")
            for column in ("rule", "dataset", "row", "variable", "value", "message"):
                table.add_column(column, overflow="fold")
            for f in findings[:limit]:
                table.add_row(f.rule, f.dataset, "" if f.row is None else str(f.row),
                              f.variable, str(f.value), f.message)
            console.print(table)
    raise typer.Exit(1 if errors else 0)


def _plain(value: object) -> object:
    """A finding's value as JSON can hold it (numpy scalars, NaN as null)."""
    import math

    if hasattr(value, "item"):
        value = value.item()  # type: ignore[union-attr]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


@db_app.command("verify-audit")
def verify_audit_(
    db: str | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Recompute the audit trail's hash chain; exit 1 naming the first edited or missing row.

    Prints the head hash of an intact chain: keep it (e.g. with each data cut) to detect a
    later rewrite of the whole chain.
    """
    from celltrial.store import open_store, verify_audit

    with user_errors():
        store = open_store(db)
        try:
            check = verify_audit(store)
        finally:
            store.close()
    if as_json:
        typer.echo(json.dumps({"rows": check.rows, "intact": check.intact,
                               "broken_id": check.broken_id, "problem": check.problem,
                               "head": check.head}))
    elif check.intact:
        console.print(f"Audit trail intact: {check.rows} rows chained; head hash "
                      f"{check.head}")
    else:
        console.print(f"[bold red]Audit trail broken[/] at row {check.broken_id} (after "
                      f"{check.rows - 1} intact rows): {check.problem}. The row was edited, "
                      "or a row before it was deleted or inserted outside the application.",
                      soft_wrap=True)
    if not check.intact:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `db` to the main app."""
    app.add_typer(db_app, name="db")

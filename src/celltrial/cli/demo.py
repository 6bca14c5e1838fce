"""`celltrial demo`: the main job on the embedded default database.

For each of the five protocols: register the study, conduct a seeded virtual trial by the
protocol's own design (``celltrial.conduct``: mechanistic CD7 CAR-T patients, cohorts dosed
as the design decides from the derived DLTs, records up to the data cut) and write it through
the store (validated, audited, one transaction), derive the analysis datasets and every
endpoint, and write the study report.
A study that already holds subjects is analysed as it is, never overwritten.
"""

from __future__ import annotations

from pathlib import Path

import typer

from celltrial.cli.common import DB_OPTION, console, user_errors


def demo(
    n_patients: int = typer.Option(40, "-n", "--patients", min=3,
                                   help="Most virtual patients referred per study."),
    seed: int = typer.Option(1, "--seed", help="Seed of the virtual cohorts (study i uses seed + i)."),
    out: Path = typer.Option(Path("out"), "--out", help="Where analyses and reports are written."),
    db: str | None = DB_OPTION,
    data_cut: str | None = typer.Option(None, "--data-cut", help="Data cut-off date of the "
                                        "virtual trials (YYYY-MM-DD, default today)."),
) -> None:
    """Five CD7 CAR-T studies with virtual cohorts, analysed and reported."""
    from rich.progress import Progress
    from rich.table import Table

    from celltrial.cli.report import report_study
    from celltrial.config import default_database_url
    from celltrial.conduct import parse_cut, write_study
    from celltrial.protocols import list_ids, load
    from celltrial.store import init_db, open_store, read_domains, register_study
    from celltrial.store.sdtm import sdtm_datasets
    from celltrial.store.sdtm.check import check, severity

    url = db or default_database_url()
    summary = Table(title=f"celltrial demo — database {url}")
    for column in ("study", "subjects", "by dose level", "records", "endpoints ok / reasoned",
                   "SDTM check", "report"):
        summary.add_column(column)
    with user_errors():
        init_db(url)
        store = open_store(url)
        ids = list_ids()
        pdfs: list[Path] = []
        failed: list[str] = []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("studies", total=len(ids))
            for index, study_id in enumerate(ids):
                protocol = load(study_id)
                register_study(store, protocol)
                existing = read_domains(store, study_id).get("DM")
                if existing is None or existing.empty:
                    progress.update(task, description=f"{study_id}: virtual cohort")
                    write_study(store, protocol, n_patients, seed + index,
                                data_cut=parse_cut(data_cut))
                progress.update(task, description=f"{study_id}: analysis and report")
                analysis, files = report_study(
                    store, protocol, out / study_id,
                    progress=lambda name, sid=study_id: progress.update(
                        task, description=f"{sid}: report: {name}"))
                pdfs.append(files.pdf)
                domains = read_domains(store, study_id)
                adsl = analysis.datasets["adsl"]
                dosed = adsl[adsl["SAFFL"] == "Y"]
                by_level = ", ".join(f"{level}: {count}" for level, count in
                                     dosed["TRT01A"].value_counts().sort_index().items())
                records = ", ".join(f"{name} {len(frame)}" for name, frame in domains.items()
                                    if len(frame))
                ok = sum(r.status == "ok" for r in analysis.endpoints)
                progress.update(task, description=f"{study_id}: SDTM conformance check")
                sdtm = sdtm_datasets(store, study_id, country=protocol.country)
                findings = check(sdtm, protocol)
                errors = sum(severity(f.rule) == "error" for f in findings)
                failed += [study_id] if errors else []
                summary.add_row(study_id, f"{len(adsl)} screened, {len(dosed)} infused",
                                by_level, records, f"{ok} / {len(analysis.endpoints) - ok}",
                                f"{len(sdtm)} datasets: {errors} error(s), "
                                f"{len(findings) - errors} warning(s)", str(files.html))
                progress.advance(task)
    console.print(summary)
    console.print("Study reports (PDF):")
    for pdf in pdfs:
        console.print(f"  {pdf}")
    console.print(f"Reports under [bold]{out}/<study>/report/[/]; analysis datasets under "
                  f"{out}/<study>/analysis/. Try `celltrial escalate --study {ids[0]}`.")
    if failed:  # the SDTM export of a study breaks a conformance rule: `make demo` fails
        console.print(f"SDTM conformance errors in {', '.join(failed)}: see `celltrial db "
                      f"validate --study {failed[0]} --country ...`")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `demo` to the main app."""
    app.command("demo")(demo)

"""`celltrial simulate-study`: a virtual study from the mechanistic CD7 CAR-T model.

Conducts the study by its own protocol (``celltrial.conduct.run_virtual_trial``): referred
virtual patients are screened, cohorts are dosed at the level the protocol's design decides
from the DLTs derived from the generated records, until the design stops, the study's maximum
is dosed, ``-n`` referrals run out or the data cut is reached. Writes the SDTM domains through
the store (validated, audited, one transaction) and, with ``--csv-out``, one CSV per domain;
prints the escalation path.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from celltrial.cli.common import DB_OPTION, console, user_errors
from celltrial.errors import StoreError


def simulate_study_command(
    study: str = typer.Option(..., "--study", help="Protocol id (see `celltrial protocol list`)."),
    n_patients: int = typer.Option(40, "-n", "--patients", min=1,
                                   help="Most virtual patients referred for screening "
                                   "(screening stops when enrolment closes)."),
    seed: int = typer.Option(1, "--seed", help="Seed; the same seed and data cut give "
                             "identical data."),
    data_cut: str | None = typer.Option(None, "--data-cut", help="Data cut-off date "
                                        "(YYYY-MM-DD, default today): no record after it, "
                                        "patients still in follow-up are ongoing."),
    db: str | None = DB_OPTION,
    csv_out: Path | None = typer.Option(None, "--csv-out",
                                        help="Also write one CSV per SDTM domain here."),
    no_db: bool = typer.Option(False, "--no-db", help="Do not write to the database."),
    as_json: bool = typer.Option(False, "--json", help="Print the record counts as JSON."),
) -> None:
    """Generate a virtual study (mechanistic CD7 CAR-T model) and write it through the store."""
    from rich.progress import Progress
    from rich.table import Table

    from celltrial.conduct import VIRTUAL_USER, parse_cut, run_virtual_trial
    from celltrial.config import default_database_url
    from celltrial.protocols import load
    from celltrial.store.spreadsheet import neutralise_frame

    with user_errors():
        protocol = load(study)
        cut = parse_cut(data_cut)
        url, store = None, None
        if not no_db:
            from celltrial.store import (
                init_db, open_store, read_domains, register_study, write_domains,
            )

            url = db or default_database_url()
            init_db(url)
            store = open_store(url)
            register_study(store, protocol)
            existing = read_domains(store, protocol.id).get("DM")
            if existing is not None and len(existing):
                raise StoreError(f"Invalid `--study`: got `{study}`, must be a study without "
                                 f"subjects in {url} (it holds {len(existing)}); use another "
                                 "--db or --no-db")
        with Progress(console=console, transient=True, disable=as_json) as progress:
            task = progress.add_task(f"{study}: virtual trial", total=n_patients)
            trial = run_virtual_trial(protocol, n_patients, seed, data_cut=cut,
                                      progress=lambda done, _: progress.update(
                                          task, completed=done))
            domains = trial.domains
            if store is not None:
                progress.update(task, description=f"{study}: writing to {url}")
                write_domains(store, protocol.id, domains, user=VIRTUAL_USER, source="virtual",
                              reason=f"virtual study: mechanistic CD7 CAR-T model, "
                                     f"{n_patients} referred, seed {seed}, data cut "
                                     f"{cut.isoformat()}")
        if csv_out is not None:
            csv_out.mkdir(parents=True, exist_ok=True)
            for name, frame in domains.items():
                neutralise_frame(frame).to_csv(csv_out / f"{name.lower()}.csv", index=False)
    counts = {name: len(frame) for name, frame in domains.items()}
    if as_json:
        console.print_json(json.dumps({**trial.as_dict(), "database": url,
                                       "records": counts}))
        return
    table = Table(title=f"virtual study {study} (seed {seed}, {trial.screened} screened, "
                        f"data cut {cut.isoformat()})")
    table.add_column("domain")
    table.add_column("records", justify="right")
    for name, count in counts.items():
        table.add_row(name, str(count))
    console.print(table)
    print_trial(trial)
    dm = domains["DM"]
    infused = dm[dm["RFSTDTC"].notna()]
    console.print(f"{len(infused)} infused, {len(dm) - len(infused)} not infused; enrolment "
                  f"ended: {trial.stopped}."
                  + (f" Written to {url}." if url else "")
                  + (f" CSV under {csv_out}." if csv_out else ""))


def print_trial(trial: object) -> None:
    """The escalation path of a virtual trial as a rich table."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="escalation (decided by the protocol's design on the derived DLTs)")
    for column in ("cohort", "level", "patients", "first infusion", "decided on", "decision"):
        table.add_column(column, overflow="fold")
    for s in trial.steps:  # type: ignore[attr-defined]
        table.add_row(str(s.number), s.level, str(len(s.subjects)), s.first_infusion.isoformat(),
                      s.decided_on.isoformat() if s.decided_on else "-",
                      escape(f"{s.action}: {s.reason}"))
    console.print(table)
    final = trial.final  # type: ignore[attr-defined]
    if final is not None:
        console.print(f"at the data cut: {final.decision.action}"
                      + (f" -> dose {final.decision.dose}" if final.decision.dose else "")
                      + f" ({escape(final.decision.reason)})")


def register(app: typer.Typer) -> None:
    """Add `simulate-study` to the main app."""
    app.command("simulate-study")(simulate_study_command)

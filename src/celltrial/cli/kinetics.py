"""`celltrial simulate-study`: a virtual study from the mechanistic CD7 CAR-T model.

Screens ``-n`` virtual patients against the protocol, doses the eligible ones by 3+3 and
writes the SDTM domains through the store (validated, audited, one transaction) and, with
``--csv-out``, as one CSV per domain.
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
                                   help="Virtual patients screened."),
    seed: int = typer.Option(1, "--seed", help="Seed; the same seed gives identical data."),
    db: str | None = DB_OPTION,
    csv_out: Path | None = typer.Option(None, "--csv-out",
                                        help="Also write one CSV per SDTM domain here."),
    no_db: bool = typer.Option(False, "--no-db", help="Do not write to the database."),
    as_json: bool = typer.Option(False, "--json", help="Print the record counts as JSON."),
) -> None:
    """Generate a virtual study (mechanistic CD7 CAR-T model) and write it through the store."""
    from rich.progress import Progress
    from rich.table import Table

    from celltrial.config import default_database_url
    from celltrial.kinetics.virtual import VIRTUAL_USER, simulate_study
    from celltrial.protocols import load

    with user_errors():
        protocol = load(study)
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
            task = progress.add_task(f"{study}: virtual patients", total=n_patients)
            domains = simulate_study(protocol, n_patients, seed,
                                     progress=lambda done, _: progress.update(task,
                                                                              completed=done))
            if store is not None:
                progress.update(task, description=f"{study}: writing to {url}")
                write_domains(store, protocol.id, domains, user=VIRTUAL_USER, source="virtual",
                              reason=f"virtual study: mechanistic CD7 CAR-T model, "
                                     f"{n_patients} screened, seed {seed}")
        if csv_out is not None:
            csv_out.mkdir(parents=True, exist_ok=True)
            for name, frame in domains.items():
                frame.to_csv(csv_out / f"{name.lower()}.csv", index=False)
    counts = {name: len(frame) for name, frame in domains.items()}
    if as_json:
        console.print_json(json.dumps({"study": study, "seed": seed, "screened": n_patients,
                                       "database": url, "records": counts}))
        return
    table = Table(title=f"virtual study {study} (seed {seed}, {n_patients} screened)")
    table.add_column("domain")
    table.add_column("records", justify="right")
    for name, count in counts.items():
        table.add_row(name, str(count))
    console.print(table)
    dm = domains["DM"]
    dosed = dm[dm["ARMCD"].astype(str) != ""]
    levels = ", ".join(f"{k}: {v}" for k, v in sorted(dosed["ARMCD"].value_counts().items()))
    console.print(f"{len(dosed)} infused ({levels}); "
                  f"{len(dm) - len(dosed)} not infused."
                  + (f" Written to {url}." if url else "")
                  + (f" CSV under {csv_out}." if csv_out else ""))


def register(app: typer.Typer) -> None:
    """Add `simulate-study` to the main app."""
    app.command("simulate-study")(simulate_study_command)

"""`celltrial dlt --study ID`: the DLT adjudication of every infused patient of a study in the
store — dose level, DLT-evaluable (and why not), verdict, the rule or exception that decided,
and each event considered (term, grade, the day it met the DLT criterion)."""

from __future__ import annotations

import json
import math
from typing import Any

import typer

from celltrial.cli.common import DB_OPTION, console, user_errors


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("dlt")(dlt_command)


def dlt_command(
    study: str = typer.Option(..., "--study", help="Protocol id of the study."),
    db: str | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the adjudication as JSON."),
) -> None:
    """DLT adjudication per infused patient from the store (the protocol's DLT rules, window
    and censoring events; CTCAE v5.0 and ASTCT 2019 grades)."""
    from celltrial import protocols
    from celltrial.config import default_database_url
    from celltrial.derive import build_adsl
    from celltrial.derive.dlt import adjudicate
    from celltrial.store import open_store, read_domains

    with user_errors():
        protocol = protocols.load(study)
        store = open_store(db or default_database_url())
        try:
            domains = read_domains(store, protocol.id)
        finally:
            store.close()
        adsl = build_adsl(domains, protocol)
        table = adjudicate(domains, protocol, adsl)
    body = as_dict(protocol, table)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    print_adjudication(body)


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) \
        else float(value)


def as_dict(protocol: Any, table: Any) -> dict[str, Any]:
    """The adjudication as plain data (what ``--json`` prints)."""
    dlt = protocol.dlt
    censored_by = dlt.censored_by
    patients = []
    for row in table.itertuples(index=False):
        level = _number(row.TRT01AN)
        patients.append({
            "usubjid": row.USUBJID, "dose_level": row.TRT01A,
            "dose_index": None if level is None else int(level),
            "dlt_evaluable": row.DLTEVLFL == "Y", "evaluable_reason": row.DLTEVLRS,
            "dlt": row.DLTFL == "Y", "rules": [r for r in row.DLTRULE.split(",") if r],
            "exceptions": [x for x in row.DLTEXC.split(",") if x], "decision": row.DLTRSN,
            "censor_day": _number(row.CENSDY), "censor_event": row.CENSEVT or None,
            "events": [e.as_dict() for e in row.RESULT.considered],
        })
    return {"study": protocol.id, "window_days": dlt.window_days,
            "definition": dlt.definition, "assumed": dlt.assumed,
            "censored_by": list(censored_by.events) if censored_by else [],
            "censored_by_assumed": bool(censored_by and censored_by.assumed),
            "patients": patients}


_OUTCOME = {"dlt": "[bold red]DLT[/]: {}", "excused": "[green]excused[/]: {}",
            "outside_window": "[dim]{}[/]", "censored": "[dim]{}[/]"}


def _met(day: float | None) -> str:
    from celltrial.clinical.dlt import study_day_text

    return "-" if day is None else study_day_text(day)


def print_adjudication(body: dict[str, Any]) -> None:
    """Rich rendering of :func:`as_dict`: one line per event considered (a patient without
    events has one line)."""
    from rich.markup import escape
    from rich.table import Table

    censoring = ", ".join(body["censored_by"]) or "none"
    console.print(f"[bold]{escape(body['study'])}[/]: DLT window {body['window_days']} days"
                  f"{' (assumed)' if body['assumed'] else ''}; censored by {censoring}"
                  f"{' (assumed)' if body['censored_by_assumed'] else ''}")
    table = Table(title="DLT adjudication per infused patient")
    for column in ("patient", "dose", "evaluable", "verdict", "event", "grade", "met day",
                   "rule", "outcome"):
        table.add_column(column, overflow="fold")
    for p in body["patients"]:
        evaluable = "Y" if p["dlt_evaluable"] else f"N: {escape(p['evaluable_reason'])}"
        if p["dlt"]:
            verdict = f"[bold red]DLT[/] ({', '.join(p['rules'])})"
        elif p["exceptions"]:
            verdict = f"no DLT (excused: {', '.join(p['exceptions'])})"
        else:
            verdict = "no DLT"
        first = [escape(p["usubjid"]), escape(str(p["dose_level"] or "-")), evaluable, verdict]
        if not p["events"]:
            table.add_row(*first, "-", "", "", "", "no toxicity met a DLT rule",
                          end_section=True)
        for i, e in enumerate(p["events"]):
            lead = first if i == 0 else ["", "", "", ""]
            table.add_row(*lead, escape(e["term"]), str(e["grade"]), _met(e["met_day"]),
                          e["rule"], _OUTCOME[e["status"]].format(escape(e["detail"])),
                          end_section=i == len(p["events"]) - 1)
    console.print(table)
    evaluable_n = sum(p["dlt_evaluable"] for p in body["patients"])
    console.print(f"{len(body['patients'])} infused, {evaluable_n} DLT-evaluable, "
                  f"{sum(p['dlt'] for p in body['patients'])} with a DLT")

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


_VERDICT = {"dlt": "[bold red]DLT[/]", "excused": "[green]excused[/]",
            "outside_window": "[dim]outside window[/]", "censored": "[dim]after censoring[/]"}


def print_adjudication(body: dict[str, Any]) -> None:
    """Rich rendering of :func:`as_dict`."""
    from rich.markup import escape
    from rich.table import Table

    censoring = ", ".join(body["censored_by"]) or "none"
    console.print(f"[bold]{escape(body['study'])}[/]: DLT window {body['window_days']} days"
                  f"{' (assumed)' if body['assumed'] else ''}; censored by {censoring}"
                  f"{' (assumed)' if body['censored_by_assumed'] else ''}")
    table = Table(title="DLT adjudication per infused patient", show_lines=True)
    for column in ("patient", "dose", "DLT-evaluable", "verdict", "decided by",
                   "events considered (grade, day met)"):
        table.add_column(column, overflow="fold")
    for p in body["patients"]:
        evaluable = "Y" if p["dlt_evaluable"] else f"N: {escape(p['evaluable_reason'])}"
        verdict = "[bold red]DLT[/]" if p["dlt"] else "no DLT"
        decided = ", ".join(p["rules"]) if p["dlt"] else (
            "excused by " + ", ".join(p["exceptions"]) if p["exceptions"] else "no rule met")
        events = "\n".join(
            f"{escape(e['term'])} g{e['grade']}"
            + ("" if e["met_day"] is None else f" d{e['met_day']:g}")
            + f": {_VERDICT[e['status']]} {escape(e['reason'])}" for e in p["events"]) or "-"
        table.add_row(escape(p["usubjid"]), escape(str(p["dose_level"] or "-")), evaluable,
                      verdict, escape(decided), events)
    console.print(table)
    evaluable = [p for p in body["patients"] if p["dlt_evaluable"]]
    console.print(f"{len(body['patients'])} infused, {len(evaluable)} DLT-evaluable, "
                  f"{sum(p['dlt'] for p in evaluable)} with a DLT")

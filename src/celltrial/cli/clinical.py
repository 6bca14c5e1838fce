"""`celltrial screen` (eligibility, criterion by criterion) and `celltrial dose` (dose and bags).

Both read the protocol library (``--study ID`` or a protocol file path) and print a rich
table, or JSON with ``--json``. Exit codes: 0 ok (also for a patient who is not eligible:
the table names the failing criteria), 1 bad input or an infeasible dose (message names it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from celltrial.cli.common import console, user_errors

_FINDING_STYLE = {"satisfied": "green", "absent": "green", "not satisfied": "bold red",
                  "present": "bold red", "missing data": "yellow"}


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("screen")(screen_command)
    app.command("dose")(dose_command)


def _read_patient(path: Path) -> dict[str, Any]:
    from celltrial.errors import invalid

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise invalid("patient file", str(path), f"a readable JSON file ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise invalid("patient file", str(path),
                      f"valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise invalid("patient file", str(path), "a JSON object of variable -> value")
    return data


def screen_command(
    study: str = typer.Option(..., "--study", help="Protocol id (see `celltrial protocol list`) "
                              "or path to a protocol file."),
    patient: Path = typer.Option(..., "--patient", help="JSON file: variable -> value."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Screen a patient against every eligibility criterion of a study."""
    from rich.markup import escape
    from rich.table import Table

    from celltrial.clinical import screen
    from celltrial.protocols import load

    with user_errors():
        protocol = load(study)
        result = screen(protocol, _read_patient(patient))
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2, default=str))
        return
    table = Table(title=f"Eligibility: {protocol.id}",
                  caption="Inclusion criteria: satisfied / not satisfied. Exclusion criteria: "
                  "the excluding condition is absent / present (present excludes).")
    for column in ("id", "kind", "finding", "rule", "values used"):
        table.add_column(column, no_wrap=column in ("id", "kind", "finding"))
    table.add_column("criterion", overflow="fold")
    for c in result.criteria:
        style = _FINDING_STYLE[c.finding]
        used = ", ".join(f"{k}={v}" for k, v in c.values.items())
        if c.missing:
            used += (", " if used else "") + "missing: " + ", ".join(c.missing)
        table.add_row(c.id, c.kind, f"[{style}]{c.finding}[/]", escape(c.rule), escape(used),
                      escape(c.text))
    console.print(table)
    verdict = {"eligible": "[bold green]ELIGIBLE[/]", "not eligible": "[bold red]NOT ELIGIBLE[/]",
               "incomplete": "[bold yellow]INCOMPLETE[/] (missing data)"}[result.decision]
    console.print(f"Decision: {verdict}")
    for c in result.failed:
        console.print(f"  {c.finding}: {c.id} ({c.kind}) {escape(c.rule)}")
    for c in result.incomplete:
        console.print(f"  missing data: {c.id} needs {', '.join(c.missing)}")


def dose_command(
    study: str = typer.Option(..., "--study", help="Protocol id or path to a protocol file."),
    level: str = typer.Option(..., "--level", help="Dose level id, e.g. DL2."),
    weight: float = typer.Option(..., "--weight", help="Body weight (kg)."),
    concentration: float = typer.Option(..., "--concentration",
                                        help="Product CAR+ viable cells per mL."),
    volume: float = typer.Option(..., "--volume", help="Product volume available (mL)."),
    crs_grade: int | None = typer.Option(None, "--crs-grade", min=0, max=5,
                                         help="Worst ASTCT 2019 CRS grade seen since the first "
                                         "fraction (split-infusion hold rules)."),
    icans_grade: int | None = typer.Option(None, "--icans-grade", min=0, max=5,
                                           help="Worst ASTCT 2019 ICANS grade seen since the "
                                           "first fraction."),
    infection: bool = typer.Option(False, "--uncontrolled-infection",
                                   help="An infection is uncontrolled before the next fraction."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Plan a patient's dose: total CAR+ cells, split fractions, bags and volumes; with what was
    seen after the first fraction, which later fractions the protocol's hold rules withhold."""
    from rich.markup import escape
    from rich.table import Table

    from celltrial.clinical import Product, next_fraction, plan_dose
    from celltrial.protocols import load

    with user_errors():
        protocol = load(study)
        plan = plan_dose(protocol, level, weight, Product(concentration, volume))
        seen = {"crs_grade": crs_grade, "icans_grade": icans_grade,
                "uncontrolled_infection": infection}
        decisions, withheld = [], False
        for number in range(1, len(plan.fractions) + 1):
            d = next_fraction(protocol, number, seen, previous_withheld=withheld)
            withheld = withheld or not d.give
            decisions.append(d)
    if as_json:
        out = plan.as_dict()
        out["hold"] = [d.as_dict() for d in decisions]
        typer.echo(json.dumps(out, indent=2))
        return
    cap = f" (capped from {plan.weight_kg:g} kg)" if plan.weight_capped else ""
    console.print(f"[bold]{protocol.id}[/] {plan.dose_level}: {plan.cells_per_kg:.3g} CAR+ cells/kg"
                  f" x {plan.weight_used_kg:g} kg{cap} = {plan.total_cells:.4g} CAR+ cells")
    table = Table(title="Infusions")
    for column in ("day", "fraction", "cells", "cells/kg", "volume (mL)", "bags",
                   "mL per bag"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("given", no_wrap=True)
    for f, d in zip(plan.fractions, decisions, strict=True):
        table.add_row(str(f.day), f"{f.fraction:.0%}", f"{f.cells:.4g}", f"{f.cells_per_kg:.4g}",
                      f"{f.volume_ml:.1f}", str(f.bags),
                      " + ".join(f"{v:.1f}" for v in f.bag_volumes_ml),
                      "yes" if d.give else f"[bold red]withheld ({d.rule or 'hold'})[/]")
    console.print(table)
    for d in decisions:
        if not d.give:
            console.print(f"fraction {d.fraction} withheld: {escape(d.reason)}")
    console.print(f"Total volume {plan.total_volume_ml:.1f} mL of {volume:g} mL available. "
                  f"Rounding: {plan.rounding}.")

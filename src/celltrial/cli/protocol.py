"""`celltrial protocol list | show ID | lint ID-or-PATH`: the protocol library on the command line."""

from __future__ import annotations

import json
from typing import Any

import typer

from celltrial.cli.common import console, err_console, user_errors

protocol_app = typer.Typer(help="Protocols as code: list, show and lint the study protocols.",
                           no_args_is_help=True)

_ASSUMED = "[yellow]assumed[/]"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(protocol_app, name="protocol")


@protocol_app.command("list")
def list_protocols(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the shipped protocols: id, title, registration, phase, enrollment, endpoints."""
    from rich.table import Table

    from celltrial.protocols import list_ids, load

    with user_errors():
        protocols = [load(i) for i in list_ids()]
    rows = [{"id": p.id, "title": p.title, "registration": p.registration, "phase": p.phase,
             "target_enrollment": p.target_enrollment,
             "target_enrollment_assumed": p.target_enrollment_assumed,
             "endpoints": len(p.endpoints)} for p in protocols]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Protocols")
    table.add_column("id", no_wrap=True)
    table.add_column("title", overflow="fold")
    for column in ("registration", "phase", "enrollment", "endpoints"):
        table.add_column(column, no_wrap=True)
    for r in rows:
        enrollment = str(r["target_enrollment"]) + (" (assumed)" if r["target_enrollment_assumed"]
                                                    else "")
        table.add_row(r["id"], r["title"], r["registration"] or "-", r["phase"], enrollment,
                      str(r["endpoints"]))
    console.print(table)


def _mark(assumed: bool, rationale: str | None) -> str:
    """Rich markup marking an assumed value, with its rationale escaped."""
    from rich.markup import escape

    return f"  {_ASSUMED}: {escape(rationale or '')}" if assumed else ""


def _show(p: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    e = escape
    console.rule(f"[bold]{e(p.id)}[/]  {e(p.title)}")
    console.print(f"registration: {e(p.registration or 'not stated')}   phase: {e(p.phase)}   "
                  f"source: {e(p.source or '-')}")
    console.print(f"target enrollment: {p.target_enrollment}"
                  + _mark(p.target_enrollment_assumed, p.target_enrollment_rationale))
    console.print(f"design: {e(p.design)}")
    console.print(f"conditions: {e('; '.join(p.conditions))}   target antigen: {e(p.target_antigen)}"
                  + (f"   arm: {e(p.arm_label)}" if p.arm_label else ""))
    for note in p.notes:
        console.print(f"  note: {e(note)}")

    console.rule("eligibility")
    for title, items in (("inclusion (met when the rule is true)", p.eligibility.inclusion),
                         ("exclusion (excluded when the rule is true)", p.eligibility.exclusion)):
        table = Table(title=title, show_lines=True)
        for column in ("id", "registered wording", "rule", "reading / assumption"):
            table.add_column(column, overflow="fold")
        for c in items:
            note = (f"[yellow]assumed[/]: {e(c.rationale or '')}" if c.assumed else "") + \
                   (e(c.reading) if c.reading else "")
            table.add_row(c.id, e(c.text), e(c.rule), note)
        console.print(table)

    console.rule("intervention")
    iv = p.intervention
    console.print(f"product: {e(iv.product)}")
    for d in iv.dose_levels:
        console.print(f"  {d.id}: {d.cells_per_kg:.3g} cells/kg ({e(d.label)})"
                      + _mark(d.assumed, d.rationale))
    for f in iv.split:
        console.print(f"  split: day {f.day} fraction {f.fraction:g}" + _mark(f.assumed, f.rationale))
    for h in iv.hold_rules:
        console.print(f"  hold {h.id}: {e(h.description)} (next fraction withheld)"
                      + _mark(h.assumed, h.rationale))
    b = iv.bags
    console.print(f"  bags: {b.min_bags}-{b.max_bags} bags of {b.min_volume_ml:g}-{b.max_volume_ml:g} mL"
                  + _mark(b.assumed, b.rationale))
    console.print(f"  weight cap: {iv.weight_cap_kg or 'none'}"
                  + _mark(iv.weight_cap_assumed, iv.weight_cap_rationale))
    console.print(f"  dose tolerance: +-{iv.dose_tolerance:.0%}"
                  + _mark(iv.dose_tolerance_assumed, iv.dose_tolerance_rationale))

    console.rule("schedule (study day 0 = first infusion)")
    s = p.schedule
    for field in ("kinetics_days", "cytokine_days", "cd7_days", "marrow_days", "ada_days",
                  "followup_days"):
        console.print(f"  {field}: {getattr(s, field) or '-'}")
    if s.assumed:
        console.print(f"  {_ASSUMED}: {e(s.rationale or '')}")

    console.rule("DLT")
    console.print(f"window: {p.dlt.window_days} days" + _mark(p.dlt.assumed, p.dlt.rationale))
    console.print(e(p.dlt.definition))
    for r in p.dlt.rules:
        console.print(f"  rule {r.id}: {e(r.description)} ({r.scale}, grade >= {r.min_grade})")
    for x in p.dlt.exceptions:
        console.print(f"  except {x.id}: {e(x.description)}")
    censoring = getattr(p.dlt, "censored_by", None)
    if censoring is not None:
        events = getattr(censoring, "events", censoring)
        console.print(f"  censored by: {', '.join(events)}"
                      + _mark(getattr(censoring, "assumed", False),
                                getattr(censoring, "rationale", None)))

    console.rule("response criteria")
    console.print(", ".join(p.response_criteria))
    if p.response_definitions:
        console.print(e(p.response_definitions))

    console.rule("endpoints")
    table = Table(show_lines=True)
    for column in ("#", "id", "kind", "name (as registered)", "time frame", "days", "derivation",
                   "notes"):
        table.add_column(column, overflow="fold")
    for ep in p.endpoints:
        notes = " ".join(x for x in (
            f"[yellow]assumed[/]: {e(ep.rationale or '')}" if ep.assumed else "",
            e(ep.note or ""), e(json.dumps(ep.params)) if ep.params else "") if x)
        table.add_row(str(ep.measure), ep.id, ep.kind, e(ep.name), e(ep.time_frame),
                      str(ep.time_frame_days), ep.derivation or "-", notes)
    console.print(table)

    console.rule("options")
    o = p.options
    console.print(f"censor at transplant: {o.censor_at_transplant} ({e(o.censor_at_transplant_rationale)})")
    console.print(f"death in remission competing: {o.death_in_remission_competing}")
    console.print(f"efficacy evaluable: {e(o.efficacy_evaluable)}")


@protocol_app.command("show")
def show(
    protocol_id: str = typer.Argument(..., metavar="ID", help="Protocol id or path to a YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print the protocol as JSON."),
) -> None:
    """Show one protocol by section; values not in the registration are marked 'assumed'."""
    from celltrial.protocols import load

    with user_errors():
        p = load(protocol_id)
    if as_json:
        typer.echo(json.dumps(p.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return
    _show(p)


@protocol_app.command("lint")
def lint_command(
    target: str = typer.Argument(..., metavar="ID-or-PATH", help="Protocol id or YAML path."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> None:
    """Check a protocol: errors exit 1 (unknown variable, impossible range, endpoint without a
    derivation, unit mismatch, schema errors); warnings print and exit 0."""
    from dataclasses import asdict

    from rich.markup import escape

    from celltrial.protocols import lint

    messages = lint(target)
    errors = [m for m in messages if m.level == "error"]
    if as_json:
        typer.echo(json.dumps([asdict(m) for m in messages], indent=2, ensure_ascii=False))
    else:
        for m in messages:
            colour = "bold red" if m.level == "error" else "yellow"
            (err_console if m.level == "error" else console).print(
                f"[{colour}]{m.level}[/] {m.code} {escape(m.where)}: {escape(m.message)}",
                soft_wrap=True)
        warnings = len(messages) - len(errors)
        summary = f"{target}: {len(errors)} error(s), {warnings} warning(s)"
        (err_console if errors else console).print(summary)
    if errors:
        raise typer.Exit(1)

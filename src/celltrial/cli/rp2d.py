"""`celltrial rp2d`: the recommended phase II dose of a study from safety, efficacy and CAR-T
exposure per dose (rule: `celltrial.design.rp2d`; its parameters: the protocol's ``rp2d``)."""

from __future__ import annotations

import json
from typing import Any

import typer

from celltrial.cli.common import DB_OPTION, console, user_errors


def register(app: typer.Typer) -> None:
    """Add this module's command to the main app."""
    app.command("rp2d")(rp2d_command)


def rp2d_command(
    study: str = typer.Option(..., "--study", help="Protocol id of the study."),
    db: str | None = DB_OPTION,
    virtual: int | None = typer.Option(None, "--virtual", help="Instead of the stored "
                                       "records: a virtual study of this many referred "
                                       "patients (simulate-study, in memory)."),
    seed: int = typer.Option(1, "--seed", help="Seed of the virtual study."),
    as_json: bool = typer.Option(False, "--json", help="Print the recommendation as JSON."),
) -> None:
    """Recommend the phase II dose: isotonic DLT estimate <= target, response rate with its
    exact CI, median AUC0-28d per dose, then the highest BOIN12 utility with the protocol's
    weights (assumed where the registration is silent)."""
    from celltrial import protocols
    from celltrial.derive import build_adpc, build_adpp, build_adrs, build_adsl
    from celltrial.design.rp2d import recommend_from_adam, rule_of

    with user_errors():
        protocol = protocols.load(study)
        if virtual is not None:
            from celltrial.conduct.virtual_trial import simulate_study

            domains = simulate_study(protocol, virtual, seed)
            source = f"virtual study ({virtual} referred, seed {seed})"
        else:
            from celltrial.config import default_database_url
            from celltrial.store import open_store, read_domains

            domains = read_domains(open_store(db or default_database_url()), protocol.id)
            source = "stored records"
        adsl = build_adsl(domains, protocol)
        adrs = build_adrs(domains, adsl)
        adpp = build_adpp(build_adpc(domains, adsl))
        rec = recommend_from_adam(protocol, adsl, adrs, adpp)
        rule, assumed, note = rule_of(protocol)
    if as_json:
        body = rec.as_dict()
        body.update(study=protocol.id, source=source, assumed=assumed, note=note,
                    rule=rule.__dict__)
        typer.echo(json.dumps(body, default=_plain))
        return
    _print(protocol, rec, rule, assumed, note, source)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


def _print(protocol: Any, rec: Any, rule: Any, assumed: bool, note: str, source: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    console.print(f"[bold]{protocol.id}[/] ({source}): RP2D rule {escape(note)}"
                  + (" [yellow](assumed)[/]" if assumed else ""))
    t = Table(title=f"per dose: DLT target {rule.target:g}, lowest acceptable response "
              f"{rule.min_response:g}, utility weights u2 {rule.u2:g} / u3 {rule.u3:g}")
    for col in ("dose", "level", "n", "DLT", "isotonic P(DLT)", "responders",
                f"response [{100 * rule.conf_level:g}% exact CI]", "median AUC0-28d",
                "utility", "eligible"):
        t.add_column(col, justify="right")
    levels = [lv.id for lv in protocol.dose_levels]
    for r in rec.table.itertuples():
        treated = r.n > 0
        t.add_row(str(r.dose), levels[r.dose - 1], str(r.n), str(r.dlt),
                  f"{r.p_dlt_isotonic:.3f}" if treated else "-", str(r.responders),
                  f"{r.response_rate:.2f} [{r.response_lo:.2f}, {r.response_hi:.2f}]"
                  if treated else "-",
                  "-" if r.auc28_median != r.auc28_median else f"{r.auc28_median:.3g}",
                  f"{r.utility:.1f}" if treated else "-",
                  "[green]yes[/]" if r.eligible else "no")
    console.print(t)
    console.print(f"[bold]RP2D[/]: {'dose ' + str(rec.dose) if rec.dose else 'none'}")
    console.print(f"reason: {escape(rec.reason)}")

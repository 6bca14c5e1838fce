"""`celltrial design simulate|virtual|boundaries` and `celltrial escalate`: dose-escalation designs,
their operating characteristics, and the next-cohort decision of a running study."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from celltrial.cli.common import DB_OPTION, console, user_errors

if TYPE_CHECKING:
    from celltrial.design.data import DoseDesign

ISSUE_SCENARIO = "0.05,0.12,0.30,0.45,0.60"

design_app = typer.Typer(help="Dose-escalation designs: BOIN boundaries, simulated operating "
                         "characteristics (3+3, BOIN, CRM, BOIN12) on probability tables and "
                         "on virtual trials of mechanistic patients.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(design_app, name="design")
    app.command("escalate")(escalate_command)


def _floats(text: str, what: str) -> tuple[float, ...]:
    from celltrial.errors import invalid

    try:
        return tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise invalid(what, text, "comma-separated numbers, e.g. 0.05,0.12,0.30") from None


def _build(name: str, n_doses: int, target: float, cohort_size: int, n_cohorts: int,
           skeleton: str | None) -> DoseDesign:
    from celltrial.design.live import DESIGN_NAMES, EscalationSpec, make_design
    from celltrial.errors import invalid

    key = name.lower()
    if key not in DESIGN_NAMES:
        raise invalid("--design", name, f"one of {', '.join(DESIGN_NAMES)}")
    spec = EscalationSpec(key, target, cohort_size, cohort_size * n_cohorts,
                          _floats(skeleton, "--skeleton") if skeleton else None)
    return make_design(spec, n_doses)


@design_app.command("simulate")
def simulate_command(
    design: list[str] = typer.Option(["boin"], "--design", help="boin, 3+3, crm or boin12 "
                                     "(repeat to compare)."),
    scenario: list[str] = typer.Option([ISSUE_SCENARIO], "--scenario",
                                       help="True DLT probability per dose, comma-separated "
                                       "(repeat for several scenarios)."),
    efficacy: str | None = typer.Option(None, "--efficacy", help="True response probability "
                                        "per dose (boin12)."),
    target: float = typer.Option(0.3, "--target", help="Target DLT rate."),
    cohort_size: int = typer.Option(3, "--cohort-size"),
    n_cohorts: int = typer.Option(10, "--n-cohorts"),
    skeleton: str | None = typer.Option(None, "--skeleton", help="CRM skeleton, comma-separated."),
    n_trials: int = typer.Option(10000, "--n-trials", "-n"),
    seed: int = typer.Option(1, "--seed"),
    backend: str = typer.Option("numpy", "--backend", help="numpy, jax (GPU when present) "
                                "or python."),
    dask: str | None = typer.Option(None, "--dask", help="Run the sweep on Dask: 'local' for a "
                                    "local cluster or a scheduler address."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of selection % per dose."),
    csv: Path | None = typer.Option(None, "--csv", help="Write the long table as CSV."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Simulate trials of one or more designs over scenarios: selection %, patients and DLTs
    per dose, % stopped without a selection."""
    import pandas as pd
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from celltrial.design.simulate import simulate

    with user_errors():
        scenarios = {f"S{i + 1}": _floats(s, "--scenario") for i, s in enumerate(scenario)}
        sizes = {len(v) for v in scenarios.values()}
        if len(sizes) != 1:
            from celltrial.errors import invalid

            raise invalid("--scenario", scenario, "the same number of doses in every scenario")
        n_doses = sizes.pop()
        designs = {d: _build(d, n_doses, target, cohort_size, n_cohorts, skeleton)
                   for d in design}
        pe = _floats(efficacy, "--efficacy") if efficacy else None
        if dask is not None:
            from celltrial.design.sweep import sweep

            with console.status("running the sweep on Dask", spinner="dots"):
                table = sweep(designs, scenarios, n_trials, seed=seed,
                              client=None if dask == "local" else dask, backend=backend)
        else:
            rows = []
            total = n_trials * len(designs) * len(scenarios)
            with Progress("[progress.description]{task.description}", BarColumn(),
                          MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                          transient=True, disable=as_json) as progress:
                task = progress.add_task("simulating trials", total=total)
                for dn, d in designs.items():
                    for sn, p in scenarios.items():
                        res = simulate(d, p, n_trials, seed=seed, backend=backend,
                                       p_efficacy=pe if dn == "boin12" else None,
                                       progress=lambda k: progress.advance(task, k))
                        for i in range(n_doses):
                            rows.append({"design": dn, "scenario": sn, "dose": i + 1,
                                         "p_true": p[i], "selection_pct": res.selection_pct[i],
                                         "mean_patients": res.mean_patients[i],
                                         "mean_dlts": res.mean_dlts[i],
                                         "stop_pct": res.stop_pct, "n_trials": n_trials,
                                         "seed": seed, "seconds": res.seconds})
            table = pd.DataFrame(rows)
        if csv is not None:
            table.to_csv(csv, index=False)
        if plot is not None:
            from celltrial.design.figures import plot_selection

            plot_selection(table, plot, title=f"{n_trials} trials per design and scenario, "
                           f"seed {seed}")
    if as_json:
        typer.echo(json.dumps(table.to_dict(orient="records")))
        return
    _print_oc(table)
    for path in (csv, plot):
        if path is not None:
            console.print(f"wrote {path}")


def _print_oc(table: Any) -> None:
    from rich.table import Table

    for (dn, sn), part in table.groupby(["design", "scenario"], sort=False):
        t = Table(title=f"{dn}, scenario {sn}: {int(part['n_trials'].iloc[0])} trials, seed "
                  f"{int(part['seed'].iloc[0])}, {float(part['stop_pct'].iloc[0]):.2f}% stopped "
                  "without a selection")
        for col in ("dose", "true P(DLT)", "selected %", "mean patients", "mean DLTs"):
            t.add_column(col, justify="right")
        for row in part.itertuples():
            t.add_row(str(row.dose), f"{row.p_true:.2f}", f"{row.selection_pct:.1f}",
                      f"{row.mean_patients:.2f}", f"{row.mean_dlts:.2f}")
        console.print(t)


@design_app.command("virtual")
def virtual_command(
    study: str = typer.Option(..., "--study", help="Protocol id (its doses, DLT rules, "
                              "eligibility, escalation target and cohort size)."),
    designs: str = typer.Option("3+3,boin,crm,boin12", "--designs",
                                help="Comma-separated: 3+3, boin, crm, boin12, protocol "
                                "(the protocol's own design and enrolment cap)."),
    trials: int = typer.Option(1000, "--trials", "-n", help="Virtual trials per design."),
    max_n: int | None = typer.Option(None, "--max-n", help="Maximum patients per trial "
                                     "(default: the protocol's enrolment cap)."),
    bank_size: int = typer.Option(100, "--bank-size", help="Virtual patients banked per dose "
                                  "level (made by the per-patient path; the true curves)."),
    bank: Path | None = typer.Option(None, "--bank", help="Parquet file of the patient bank: "
                                     "read when it exists, else built and written there."),
    seed: int = typer.Option(1, "--seed"),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Run on Dask: 'local' for a "
                                         "local cluster of 2 processes, or a scheduler "
                                         "address tcp://HOST:PORT."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG: selection and RP2D % "
                                     "per dose against the true curves."),
    out: Path | None = typer.Option(None, "--out", help="Write the OC table (.csv or "
                                    ".parquet)."),
    as_json: bool = typer.Option(False, "--json", help="Print the OC table as JSON."),
) -> None:
    """Operating characteristics of escalation designs on virtual trials of mechanistic
    patients: % selecting each dose (and as RP2D), % stopped, patients, DLTs, response and
    AUC0-28d per dose, trial duration, with the true curves of the virtual population."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from celltrial import protocols
    from celltrial.design.rp2d import rule_of
    from celltrial.design.virtual_bank import build_bank, load_bank, save_bank
    from celltrial.design.virtual_oc import comparison_designs, virtual_oc
    from celltrial.errors import invalid

    with user_errors():
        protocol = protocols.load(study)
        chosen = comparison_designs(protocol, [d for d in designs.split(",") if d.strip()],
                                    max_n)
        client: Any = "synchronous" if scheduler is None else (
            None if scheduler == "local" else scheduler)
        if out is not None and out.suffix.lower() not in (".csv", ".parquet"):
            raise invalid("--out", str(out), "a .csv or .parquet file")
        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                      transient=True, disable=as_json) as progress:
            if bank is not None and bank.exists():
                patients = load_bank(bank)
                if patients.study != protocol.id:
                    raise invalid("--bank", str(bank), f"a bank of {protocol.id} (it holds "
                                  f"{patients.study})")
            else:
                task = progress.add_task("banking virtual patients",
                                         total=bank_size * len(protocol.dose_levels))
                patients = build_bank(protocol, bank_size, seed, client=client,
                                      progress=lambda k: progress.advance(task, k))
                if bank is not None:
                    save_bank(patients, bank)
            task = progress.add_task("virtual trials", total=trials * len(chosen))
            table = virtual_oc(patients, chosen, trials, seed, rp2d_rule=rule_of(protocol)[0],
                               window_days=int(protocol.dlt.window_days), client=client,
                               progress=lambda k: progress.advance(task, k))
        table.insert(0, "study", protocol.id)
        if out is not None:
            (table.to_parquet(out, index=False) if out.suffix.lower() == ".parquet"
             else table.to_csv(out, index=False))
        if plot is not None:
            from celltrial.design.figures import plot_virtual_oc

            plot_virtual_oc(table, plot, title=f"{protocol.id}: {trials} virtual trials per "
                            f"design, bank {patients.n_per_dose}/dose, seed {seed}")
    if as_json:
        typer.echo(json.dumps(table.to_dict(orient="records"), default=float))
        return
    _print_virtual(table, patients)
    for path in (out, plot, bank):
        if path is not None:
            console.print(f"wrote {path}" if path != bank else f"patient bank: {path}")


def _print_virtual(table: Any, bank: Any) -> None:
    from rich.table import Table

    truth = bank.truth()
    t = Table(title=f"true curves of the virtual population ({bank.study}, DLT-evaluable "
              f"patients banked per dose)")
    for col in ("dose", "n", "P(DLT) [95% CI]", "P(response) [95% CI]", "median AUC0-28d",
                "median Cmax"):
        t.add_column(col, justify="right")
    for r in truth.itertuples():
        t.add_row(str(r.dose), str(r.n), f"{r.p_dlt:.2f} [{r.p_dlt_lo:.2f}, {r.p_dlt_hi:.2f}]",
                  f"{r.p_response:.2f} [{r.p_response_lo:.2f}, {r.p_response_hi:.2f}]",
                  f"{r.auc28_median:.3g}", f"{r.cmax_median:.3g}")
    console.print(t)
    for dn, part in table.groupby("design", sort=False):
        first = part.iloc[0]
        t = Table(title=f"{dn}: {int(first['n_trials'])} trials, seed {int(first['seed'])}; "
                  f"no dose selected {first['stop_pct']:.1f}%, no RP2D "
                  f"{first['rp2d_none_pct']:.1f}%, mean duration "
                  f"{first['duration_days'] / 30.44:.1f} months")
        for col in ("dose", "true P(DLT)", "selected %", "RP2D %", "mean patients",
                    "mean DLTs", "response rate", "mean AUC0-28d"):
            t.add_column(col, justify="right")
        for r in part.itertuples():
            t.add_row(str(r.dose), f"{r.p_dlt_true:.2f}", f"{r.selection_pct:.1f}",
                      f"{r.rp2d_pct:.1f}", f"{r.mean_patients:.2f}", f"{r.mean_dlts:.2f}",
                      "-" if r.response_rate != r.response_rate else f"{r.response_rate:.2f}",
                      "-" if r.auc28_mean != r.auc28_mean else f"{r.auc28_mean:.3g}")
        console.print(t)


@design_app.command("boundaries")
def boundaries_command(
    target: float = typer.Option(0.3, "--target", help="Target DLT rate."),
    max_n: int = typer.Option(30, "--max-n", help="Table for n = 1..max-n patients at a dose."),
    phi1: float | None = typer.Option(None, "--phi1", help="Default 0.6 x target."),
    phi2: float | None = typer.Option(None, "--phi2", help="Default 1.4 x target."),
    csv: Path | None = typer.Option(None, "--csv", help="Write the decision table as CSV."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """BOIN boundaries lambda_e / lambda_d and the decision table (Liu & Yuan 2015)."""
    import pandas as pd
    from rich.table import Table

    from celltrial.design.boundaries import boin_boundaries, decision_table

    with user_errors():
        lam_e, lam_d = boin_boundaries(target, phi1, phi2)
        table = decision_table(target, max_n, phi1, phi2)
        if csv is not None:
            table.to_csv(csv, index=False)
    if as_json:
        records = [{k: None if pd.isna(v) else int(v) for k, v in r.items()}
                   for r in table.to_dict(orient="records")]
        typer.echo(json.dumps({"target": target, "lambda_e": lam_e, "lambda_d": lam_d,
                               "table": records}))
        return
    console.print(f"BOIN target {target:g}: lambda_e = {lam_e:.4f}, lambda_d = {lam_d:.4f}")
    t = Table(title="decision by number of DLTs among n patients at the current dose")
    for col in ("n", "escalate if DLT <=", "de-escalate if DLT >=", "eliminate if DLT >="):
        t.add_column(col, justify="right")
    for r in table.itertuples(index=False):
        elim = r.eliminate_if_dlt_ge
        t.add_row(str(r.n), str(r.escalate_if_dlt_le), str(r.deescalate_if_dlt_ge),
                  "-" if pd.isna(elim) else str(elim))
    console.print(t)
    if csv is not None:
        console.print(f"wrote {csv}")


def escalate_command(
    study: str = typer.Option(..., "--study", help="Protocol id of the study."),
    db: str | None = DB_OPTION,
    data_cut: str | None = typer.Option(None, "--data-cut", help="Decide on the records as of "
                                        "this day (YYYY-MM-DD; default: all records)."),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    """Next-cohort decision of a running study from its DLT data (ADSL through derivation),
    the escalation history cohort by cohort with the decision that applied to each, and the
    protocol deviations (a cohort dosed where the design did not allow it)."""
    from celltrial import protocols
    from celltrial.conduct import escalation_history, parse_cut
    from celltrial.config import default_database_url
    from celltrial.store import open_store, read_domains

    with user_errors():
        protocol = protocols.load(study)
        cut = parse_cut(data_cut) if data_cut else None
        store = open_store(db or default_database_url())
        domains = read_domains(store, protocol.id)
        history = escalation_history(domains, protocol, cut)
    result = history.current.live
    if as_json:
        out = result.as_dict()
        out.update(action=history.current.decision.action, dose=history.current.decision.dose,
                   reason=history.current.decision.reason, phase=history.current.phase,
                   history=history.as_dict())
        typer.echo(json.dumps(out, default=int))
        return
    print_history(history)
    print_live(result, history.current.decision)


def print_history(history: Any) -> None:
    """The cohorts of a study with the decision in force before each, and deviations."""
    from rich.markup import escape
    from rich.table import Table

    if not history.steps:
        console.print("no patient infused yet")
        return
    t = Table(title="escalation history (each decision replayed on the records as of the day "
                    "before the cohort)")
    for col in ("cohort", "level", "patients", "first infusion", "decision in force",
                "followed"):
        t.add_column(col, overflow="fold")
    for step in history.steps:
        d = step.decision
        allowed = f"{d.action} -> dose {d.dose}" if d.dose else d.action
        t.add_row(str(step.cohort.number), step.cohort.level, str(len(step.cohort.subjects)),
                  step.cohort.first_infusion.isoformat(), escape(f"{allowed}: {d.reason}"),
                  "[green]yes[/]" if step.deviation is None else "[bold red]DEVIATION[/]")
    console.print(t)
    for step in history.deviations:
        console.print(f"[bold red]protocol deviation[/]: {escape(step.deviation)}")


def print_live(result: Any, decision: Any = None) -> None:
    """Rich rendering of a `LiveDecision` (``decision``: the study's decision when it differs
    from the design's, e.g. the study's maximum reached)."""
    from rich.table import Table

    spec = result.spec
    console.print(f"[bold]{result.study}[/]: {result.design} (target {spec.target:g}, cohorts "
                  f"of {spec.cohort_size})" + (f" [yellow]assumed: {spec.note}[/]"
                                               if spec.assumed else ""))
    t = Table(title="DLT-evaluable patients per dose")
    for col in ("dose", "level", "evaluable", "DLT", "pending"):
        t.add_column(col, justify="right")
    current = result.data.current_dose
    for r in result.counts.itertuples(index=False):
        mark = " <- current" if r.dose == current else ""
        t.add_row(f"{r.dose}{mark}", str(r.level), str(r.n_evaluable), str(r.n_dlt),
                  str(r.n_pending))
    console.print(t)
    d = decision or result.decision
    where = f"dose {d.dose}" if d.dose is not None else "no further cohort"
    console.print(f"[bold]decision[/]: {d.action} -> {where}")
    console.print(f"rule: {d.reason}")
    sel = result.selection
    console.print(f"current recommendation: "
                  f"{'dose ' + str(sel.dose) if sel.dose else 'none'} ({sel.reason})")

"""Study-report figures, declared as data: one row per figure (id, title, datasets, function).

Each function takes the analysis datasets (ADaM-shaped pandas DataFrames keyed by lower-case
name, e.g. ``"adpc"``) and a matplotlib ``Axes``; it draws and returns ``None``, or returns the
reason the figure cannot be drawn (a missing dataset or no data). The same figures feed the HTML
and the PDF report. matplotlib is imported lazily, with the non-interactive Agg backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

Datasets = Mapping[str, pd.DataFrame]
DrawFn = Callable[[Datasets, Any], str | None]


@dataclass(frozen=True)
class FigureSpec:
    """A report figure: its id (file stem), title, the datasets it reads and how it is drawn."""

    id: str
    title: str
    datasets: tuple[str, ...]
    draw: DrawFn


def _by_dose(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Groups of a dataset by actual dose level (TRT01A), in dose order (TRT01AN) when present."""
    if "TRT01A" not in df.columns:
        return [("all", df)]
    order = (df.sort_values("TRT01AN")["TRT01A"].dropna().unique()
             if "TRT01AN" in df.columns else sorted(df["TRT01A"].dropna().unique()))
    return [(str(level), df[df["TRT01A"] == level]) for level in order]


def _kinetics(ds: Datasets, ax: Any, paramcd: str, ylabel: str) -> str | None:
    adpc = ds.get("adpc")
    if adpc is None or adpc.empty:
        return "no ADPC dataset"
    data = adpc[(adpc["PARAMCD"] == paramcd) & adpc["AVAL"].notna() & (adpc["AVAL"] > 0)]
    if data.empty:
        return f"no quantifiable {paramcd} samples"
    colors = _colors(len(_by_dose(data)))
    for color, (level, group) in zip(colors, _by_dose(data), strict=True):
        for _, subject in group.groupby("USUBJID"):
            subject = subject.sort_values("TIME")
            ax.plot(subject["TIME"], subject["AVAL"], color=color, alpha=0.35, lw=0.8)
        median = group.groupby("TIME")["AVAL"].median()
        ax.plot(median.index, median.values, color=color, lw=2.2, label=f"{level} (median)")
    ax.set_yscale("log")
    ax.set_xscale("symlog", linthresh=28)
    ax.set_xlim(left=0)
    ax.set_xlabel("Days since first infusion")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return None


def _colors(n: int) -> list[Any]:
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis")
    return [cmap(x) for x in np.linspace(0.05, 0.85, max(n, 1))][:n]


def kinetics_qpcr(ds: Datasets, ax: Any) -> str | None:
    """CAR transgene in blood by qPCR over time, one line per patient, median per dose level."""
    return _kinetics(ds, ax, "CARTQPCR", "CAR transgene (copies/ug gDNA)")


def kinetics_flow(ds: Datasets, ax: Any) -> str | None:
    """CAR+ T cells by flow cytometry (% of CD3+) over time."""
    return _kinetics(ds, ax, "CARTPCT", "CAR+ cells (% of CD3+)")


def _lab_course(ds: Datasets, ax: Any, paramcd: str, ylabel: str, log: bool) -> str | None:
    adlb = ds.get("adlb")
    if adlb is None or adlb.empty:
        return "no ADLB dataset"
    data = adlb[(adlb["PARAMCD"] == paramcd) & adlb["AVAL"].notna()]
    if data.empty:
        return f"no {paramcd} results"
    colors = _colors(len(_by_dose(data)))
    for color, (level, group) in zip(colors, _by_dose(data), strict=True):
        stats = group.groupby("ADY")["AVAL"].median()
        ax.plot(stats.index, stats.values, marker="o", ms=3, color=color, label=str(level))
    if log:
        ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("Study day")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return None


def cd7_cells(ds: Datasets, ax: Any) -> str | None:
    """Median absolute CD7+ cells in blood by study day and dose level (CD7+ cell clearance)."""
    return _lab_course(ds, ax, "CD7ABS", "CD7+ cells/uL (median)", log=True)


def il6(ds: Datasets, ax: Any) -> str | None:
    """Median IL-6 by study day and dose level."""
    return _lab_course(ds, ax, "IL6", "IL-6 pg/mL (median)", log=True)


def _km_step(ax: Any, time: np.ndarray, event: np.ndarray, label: str, color: Any) -> None:
    from celltrial.stats import kaplan_meier

    fit = kaplan_meier(time, event)
    table = fit.table
    t = np.concatenate([[0.0], table["time"].to_numpy()])
    s = np.concatenate([[1.0], table["surv"].to_numpy()])
    ax.step(t, s, where="post", color=color, label=label)
    censored = table[table["n_censor"] > 0]
    ax.plot(censored["time"], censored["surv"], "|", color=color, ms=8)


def _survival(ds: Datasets, ax: Any, paramcd: str) -> str | None:
    adtte = ds.get("adtte")
    if adtte is None or adtte.empty:
        return "no ADTTE dataset"
    data = adtte[(adtte["PARAMCD"] == paramcd) & adtte["AVAL"].notna()]
    if data.empty:
        return f"no {paramcd} records"
    colors = _colors(len(_by_dose(data)) + 1)
    _km_step(ax, data["AVAL"].to_numpy(float), (data["CNSR"] == 0).to_numpy(int), "all", "black")
    for color, (level, group) in zip(colors, _by_dose(data), strict=False):
        _km_step(ax, group["AVAL"].to_numpy(float), (group["CNSR"] == 0).to_numpy(int),
                 str(level), color)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Days")
    ax.set_ylabel(f"{paramcd} probability")
    ax.legend(fontsize=7)
    return None


def overall_survival(ds: Datasets, ax: Any) -> str | None:
    """Kaplan-Meier overall survival from first infusion, all patients and by dose level."""
    return _survival(ds, ax, "OS")


def progression_free_survival(ds: Datasets, ax: Any) -> str | None:
    """Kaplan-Meier progression-free survival from first infusion."""
    return _survival(ds, ax, "PFS")


def ae_max_grade(ds: Datasets, ax: Any) -> str | None:
    """Patients by worst adverse-event grade (CTCAE v5.0 / ASTCT) and dose level."""
    adae, adsl = ds.get("adae"), ds.get("adsl")
    if adae is None or adsl is None or adsl.empty:
        return "no ADAE/ADSL dataset"
    grade_col = "ATOXGRN" if "ATOXGRN" in adae.columns else "AETOXGR"
    worst = adae.groupby("USUBJID")[grade_col].max() if not adae.empty else pd.Series(dtype=float)
    safety = adsl[adsl.get("SAFFL", "Y") == "Y"] if "SAFFL" in adsl.columns else adsl
    levels = _by_dose(safety)
    bottom = np.zeros(len(levels))
    for grade, color in zip(range(0, 6), _colors(6), strict=True):
        counts = np.array([
            int((worst.reindex(group["USUBJID"]).fillna(0).astype(int) == grade).sum())
            for _, group in levels
        ])
        ax.bar([name for name, _ in levels], counts, bottom=bottom, color=color,
               label="no AE" if grade == 0 else f"grade {grade}")
        bottom += counts
    ax.set_ylabel("Patients (safety set)")
    ax.legend(fontsize=7)
    return None


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("kinetics_qpcr", "CAR-T expansion and persistence (qPCR)", ("adpc",), kinetics_qpcr),
    FigureSpec("kinetics_flow", "CAR-T expansion and persistence (flow)", ("adpc",), kinetics_flow),
    FigureSpec("cd7_cells", "CD7+ cells in peripheral blood", ("adlb",), cd7_cells),
    FigureSpec("il6", "IL-6 (cytokine release)", ("adlb",), il6),
    FigureSpec("overall_survival", "Overall survival", ("adtte",), overall_survival),
    FigureSpec("pfs", "Progression-free survival", ("adtte",), progression_free_survival),
    FigureSpec("ae_max_grade", "Worst adverse-event grade per patient", ("adae", "adsl"),
               ae_max_grade),
)


@dataclass(frozen=True)
class RenderedFigure:
    """A drawn figure (PNG bytes) or the reason it could not be drawn."""

    spec: FigureSpec
    png: bytes | None
    reason: str | None


def render_all(datasets: Datasets, *, pdf: Any | None = None) -> list[RenderedFigure]:
    """Draw every figure to PNG (and onto ``pdf``, a ``PdfPages``, when given)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rendered = []
    for spec in FIGURES:
        fig, ax = plt.subplots(figsize=(7.0, 4.2))
        reason = spec.draw(datasets, ax)
        png = None
        if reason is None:
            ax.set_title(spec.title)
            fig.tight_layout()
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=110)
            png = buffer.getvalue()
            if pdf is not None:
                pdf.savefig(fig)
        plt.close(fig)
        rendered.append(RenderedFigure(spec, png, reason))
    return rendered

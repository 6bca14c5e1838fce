"""Study-report figures, declared as data: one row per figure (id, title, size, function).

Each function takes the analysis datasets (ADaM-shaped pandas DataFrames keyed by lower-case
name, e.g. ``"adpc"``) and a matplotlib ``Figure``; it draws and returns ``None``, or returns the
reason the figure cannot be drawn (a missing dataset or no data). Figures are sized for an A4 /
Letter text block (16 cm wide), every axis is labelled with its unit (micro sign for
\u00b5g/\u00b5L), dose levels get the colour-blind-safe Okabe-Ito palette (Okabe & Ito 2008,
"Color Universal Design") and legends sit outside the data. Survival curves are the
Kaplan-Meier estimates of :func:`celltrial.stats.kaplan_meier` (the estimator the analysis
uses) with censor marks and numbers at risk; the cumulative incidence of relapse is the
Aalen-Johansen estimate of :func:`celltrial.stats.cumulative_incidence` with death in
remission as competing risk (ADTTE CIR, EVNTTYPE 1 relapse / 2 death in remission).
matplotlib is imported lazily, with the non-interactive Agg backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from celltrial.errors import CelltrialError

Datasets = Mapping[str, pd.DataFrame]
DrawFn = Callable[[Datasets, Any], str | None]

#: Okabe-Ito colour-blind-safe palette (black first for "all patients")
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
             "#000000")
MICRO = "\u00b5"
WIDTH_IN = 6.3  # 16 cm text block


@dataclass(frozen=True)
class FigureSpec:
    """A report figure: its id (file stem), title, the datasets it reads, size and drawing."""

    id: str
    title: str
    datasets: tuple[str, ...]
    draw: DrawFn
    height_in: float = 3.4
    bottom_in: float = 0.5


def _by_dose(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Groups of a dataset by actual dose level (TRT01A), in dose order (TRT01AN) when present."""
    if "TRT01A" not in df.columns:
        return [("all", df)]
    order = (df.sort_values("TRT01AN")["TRT01A"].dropna().unique()
             if "TRT01AN" in df.columns else sorted(df["TRT01A"].dropna().unique()))
    return [(str(level), df[df["TRT01A"] == level]) for level in order]


def _colors(n: int) -> list[str]:
    return [OKABE_ITO[i % (len(OKABE_ITO) - 1)] for i in range(n)]


def _legend(ax: Any, **kw: Any) -> None:
    """Legend outside the axes, to the right, so it never covers data."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, **kw)


def _kinetics(ds: Datasets, fig: Any, paramcd: str, ylabel: str) -> str | None:
    adpc = ds.get("adpc")
    if adpc is None or adpc.empty:
        return "no ADPC dataset"
    data = adpc[(adpc["PARAMCD"] == paramcd) & adpc["AVAL"].notna() & (adpc["AVAL"] > 0)]
    if data.empty:
        return f"no quantifiable {paramcd} samples"
    ax = fig.add_subplot(111)
    groups = _by_dose(data)
    for color, (level, group) in zip(_colors(len(groups)), groups, strict=True):
        for _, subject in group.groupby("USUBJID"):
            subject = subject.sort_values("TIME")
            ax.plot(subject["TIME"], subject["AVAL"], color=color, alpha=0.3, lw=0.7)
        logs = np.log(group["AVAL"].astype(float)).groupby(group["TIME"])
        gm, gsd = np.exp(logs.mean()), np.exp(logs.std(ddof=1).fillna(0.0))
        ax.fill_between(gm.index, gm / gsd, gm * gsd, color=color, alpha=0.15, lw=0)
        ax.plot(gm.index, gm.values, color=color, lw=2.0, label=f"{level} (geo. mean)")
    ax.set_yscale("log")
    ax.set_xscale("symlog", linthresh=28)
    ticks = [t for t in (0, 7, 14, 28, 90, 180, 365, 730) if t <= data["TIME"].max() * 1.5]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlim(left=0)
    ax.set_xlabel("Days after first infusion (linear to day 28, log after)")
    ax.set_ylabel(ylabel)
    _legend(ax)
    ax.text(0.0, -0.22, "Thin lines: patients; band: geometric mean x/÷ geometric SD; "
            "samples below the LLOQ not drawn.", transform=ax.transAxes, fontsize=6.5)
    return None


def kinetics_qpcr(ds: Datasets, fig: Any) -> str | None:
    """CAR transgene in blood by qPCR over time: patients and geometric mean per dose level."""
    return _kinetics(ds, fig, "CARTQPCR", f"CAR transgene (copies/{MICRO}g gDNA)")


def kinetics_flow(ds: Datasets, fig: Any) -> str | None:
    """CAR+ T cells by flow cytometry (% of CD3+) over time."""
    return _kinetics(ds, fig, "CARTPCT", "CAR+ T cells (% of CD3+)")


def _lab_course(ax: Any, adlb: pd.DataFrame, paramcd: str, ylabel: str) -> bool:
    data = adlb[(adlb["PARAMCD"] == paramcd) & adlb["AVAL"].notna()]
    if data.empty:
        ax.text(0.5, 0.5, f"no {paramcd} results", ha="center", transform=ax.transAxes)
        return False
    groups = _by_dose(data)
    for color, (level, group) in zip(_colors(len(groups)), groups, strict=True):
        stats = group.groupby("ADY")["AVAL"].median()
        ax.plot(stats.index, stats.values, marker="o", ms=2.5, lw=1.2, color=color, label=level)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("Study day")
    ax.set_ylabel(ylabel)
    return True


def cd7_cells(ds: Datasets, fig: Any) -> str | None:
    """Median absolute CD7+ cells in blood by study day and dose level (CD7+ cell clearance)."""
    adlb = ds.get("adlb")
    if adlb is None or adlb.empty:
        return "no ADLB dataset"
    if adlb[(adlb["PARAMCD"] == "CD7ABS") & adlb["AVAL"].notna()].empty:
        return "no CD7ABS results"
    ax = fig.add_subplot(111)
    _lab_course(ax, adlb, "CD7ABS", f"CD7+ cells/{MICRO}L (median)")
    _legend(ax)
    return None


#: cytokines drawn (ADLB PARAMCD, label with unit)
CYTOKINES = (("IL6", "IL-6 (pg/mL)"), ("IL10", "IL-10 (pg/mL)"), ("IFNG", "IFN-\u03b3 (pg/mL)"),
             ("TNFA", "TNF-\u03b1 (pg/mL)"))


def cytokines(ds: Datasets, fig: Any) -> str | None:
    """Median IL-6, IL-10, IFN-gamma and TNF-alpha by study day and dose level."""
    adlb = ds.get("adlb")
    if adlb is None or adlb.empty:
        return "no ADLB dataset"
    if adlb[adlb["PARAMCD"].isin([c for c, _ in CYTOKINES])].empty:
        return "no cytokine results"
    axes = fig.subplots(2, 2, sharex=True)
    for ax, (code, label) in zip(axes.ravel(), CYTOKINES, strict=True):
        _lab_course(ax, adlb[adlb["ADY"] <= 28], code, label + ", median")
        ax.tick_params(labelsize=7)
        ax.yaxis.label.set_size(7)
        ax.xaxis.label.set_size(7)
    _legend(axes[0, 1])
    return None


def exposure_response(ds: Datasets, fig: Any) -> str | None:
    """Cmax (qPCR, ADPP CMAX_QPCR) against best overall response and against worst CRS grade."""
    adpp, adrs, adae = ds.get("adpp"), ds.get("adrs"), ds.get("adae")
    if adpp is None or adpp.empty:
        return "no ADPP dataset"
    cmax = adpp[adpp["PARAMCD"] == "CMAX_QPCR"].set_index("USUBJID")["AVAL"].dropna()
    cmax = cmax[cmax > 0]
    if cmax.empty:
        return "no Cmax (qPCR) in ADPP"
    level = adpp.drop_duplicates("USUBJID").set_index("USUBJID")["TRT01A"]
    bor = adrs[adrs["PARAMCD"] == "BOR"].set_index("USUBJID")["AVALC"] \
        if adrs is not None and len(adrs) else pd.Series(dtype=str)
    crs = adae[adae["ACAT"] == "crs"].groupby("USUBJID")["ATOXGRN"].max() \
        if adae is not None and len(adae) else pd.Series(dtype=float)
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    levels = list(dict.fromkeys(level.reindex(cmax.index).astype(str)))
    colors = dict(zip(levels, _colors(len(levels)), strict=True))
    cats = list(dict.fromkeys([c for c in ("CR", "CRh", "CRi", "MLFS", "PR", "NR", "PD")
                               if c in set(bor)] + sorted(set(bor.dropna()))))
    cats = cats + ["not assessed"]
    for k, (uid, value) in enumerate(cmax.items()):
        lv = str(level.get(uid))
        b = bor.get(uid, "not assessed")
        x1 = cats.index(b if b in cats else "not assessed")
        jitter = ((k * 7) % 11 - 5) / 40.0  # deterministic horizontal spread
        ax1.plot(x1 + jitter, value, "o", ms=4, color=colors[lv])
        ax2.plot(float(crs.get(uid, 0)) + jitter, value, "o", ms=4, color=colors[lv])
    ax1.set_xticks(range(len(cats)), cats, fontsize=7, rotation=30)
    ax1.set_yscale("log")
    ax1.set_xlabel("Best overall response")
    ax1.set_ylabel(f"Cmax, CAR transgene (copies/{MICRO}g gDNA)")
    ax2.set_xticks(range(0, 6))
    ax2.set_xlabel("Worst CRS grade (ASTCT; 0 = none)")
    for lv in levels:
        ax2.plot([], [], "o", color=colors[lv], label=lv)
    _legend(ax2)
    return None


def _at_risk_times(tmax: float) -> np.ndarray:
    step = next(s for s in (30, 90, 180, 365, 730, 1e9) if tmax / s <= 6)
    return np.arange(0.0, tmax + 1e-9, step)


def _km_panel(fig: Any, data: pd.DataFrame, xlabel: str, ylabel: str) -> None:
    """KM curves (all patients and per dose level) with censor marks and a numbers-at-risk
    table under the axes."""
    from celltrial.stats import kaplan_meier

    ax = fig.add_axes((0.11, 0.36, 0.66, 0.58))
    groups = [("All patients", data, "#000000")]
    by = _by_dose(data)
    if len(by) > 1:
        groups += [(lv, g, c) for (lv, g), c in zip(by, _colors(len(by)), strict=True)]
    tmax = float(data["AVAL"].max())
    ticks = _at_risk_times(tmax)
    for row, (label, group, color) in enumerate(groups):
        time = group["AVAL"].to_numpy(float)
        event = (group["CNSR"] == 0).to_numpy(int)
        table = kaplan_meier(time, event).table
        t = np.concatenate([[0.0], table["time"].to_numpy()])
        s = np.concatenate([[1.0], table["surv"].to_numpy()])
        ax.step(t, s, where="post", color=color, lw=1.4, label=label)
        censored = table[table["n_censor"] > 0]
        ax.plot(censored["time"], censored["surv"], "|", color=color, ms=7)
        at_risk = [int((time >= x).sum()) for x in ticks]
        y = -0.30 - 0.085 * row
        ax.text(-0.02, y, label, transform=ax.transAxes, ha="right", fontsize=6.5, color=color)
        for x, n in zip(ticks, at_risk, strict=True):
            ax.text(x, y, str(n), transform=ax.get_xaxis_transform(), ha="center", fontsize=6.5)
    ax.text(-0.02, -0.22, "At risk", transform=ax.transAxes, ha="right", fontsize=6.5,
            weight="bold")
    ax.set_xticks(ticks)
    ax.set_xlim(0, max(tmax, ticks[-1]) * 1.02)
    ax.set_ylim(0, 1.03)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel)
    _legend(ax)


def _survival(ds: Datasets, fig: Any, paramcd: str, ylabel: str,
              xlabel: str = "Days after first infusion") -> str | None:
    adtte = ds.get("adtte")
    if adtte is None or adtte.empty:
        return "no ADTTE dataset"
    data = adtte[(adtte["PARAMCD"] == paramcd) & adtte["AVAL"].notna()]
    if data.empty:
        return f"no {paramcd} records"
    _km_panel(fig, data, xlabel, ylabel)
    return None


def overall_survival(ds: Datasets, fig: Any) -> str | None:
    """Kaplan-Meier overall survival from first infusion, all patients and by dose level."""
    return _survival(ds, fig, "OS", "Overall survival probability")


def progression_free_survival(ds: Datasets, fig: Any) -> str | None:
    """Kaplan-Meier progression-free survival from first infusion."""
    return _survival(ds, fig, "PFS", "Progression-free survival probability")


def duration_of_response(ds: Datasets, fig: Any) -> str | None:
    """Kaplan-Meier duration of response, from first response (responders only)."""
    return _survival(ds, fig, "DOR", "Probability of remaining in response",
                     "Days after first response")


def persistence(ds: Datasets, fig: Any) -> str | None:
    """Kaplan-Meier of the time to loss of detectable CAR transgene by qPCR (ADTTE LOSSQPCR,
    ``celltrial.derive.persistence``: death and HSCT while detectable censored), all patients
    and by dose level, with numbers at risk."""
    adtte = ds.get("adtte")
    if adtte is None or adtte.empty:
        return "no ADTTE dataset"
    if not ((adtte["PARAMCD"] == "LOSSQPCR") & adtte["AVAL"].notna()).any():
        return "no LOSSQPCR records (no infused patient with a quantifiable qPCR sample)"
    return _survival(ds, fig, "LOSSQPCR", "Probability CAR transgene detectable")


def cumulative_incidence_relapse(ds: Datasets, fig: Any) -> str | None:
    """Cumulative incidence of relapse with death in remission as competing risk (ADTTE CIR)."""
    from celltrial.stats import cumulative_incidence

    adtte = ds.get("adtte")
    if adtte is None or adtte.empty:
        return "no ADTTE dataset"
    data = adtte[(adtte["PARAMCD"] == "CIR") & adtte["AVAL"].notna()]
    if data.empty:
        return "no CIR records (no patient reached remission)"
    if not (data["EVNTTYPE"] != 0).any():
        return "no relapse and no death in remission yet (every remission censored)"
    fit = cumulative_incidence(data["AVAL"].to_numpy(float), data["EVNTTYPE"].to_numpy(int))
    ax = fig.add_subplot(111)
    for cause, label, color in ((1, "Relapse", OKABE_ITO[5]), (2, "Death in remission",
                                                                OKABE_ITO[0])):
        if cause in fit.causes:
            curve = fit.curve(cause)
            ax.step(curve["time"], curve["est"], where="post", color=color, label=label)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("Days after first remission")
    ax.set_ylabel("Cumulative incidence")
    _legend(ax)
    return None


#: swimmer-plot markers: (ADTTE/ADSL event, marker, colour, label)
SWIM_MARKS = (("response", "o", OKABE_ITO[2], "first response"),
              ("relapse", "X", OKABE_ITO[5], "relapse / progression"),
              ("hsct", "s", OKABE_ITO[6], "allogeneic HSCT"),
              ("death", "D", "#000000", "death"))


def swimmer(ds: Datasets, fig: Any) -> str | None:
    """Per patient: follow-up bar coloured by dose level, first response, relapse, HSCT, death,
    arrow when ongoing (ADSL, ADRS, ADTTE)."""
    adsl, adrs, adtte = ds.get("adsl"), ds.get("adrs"), ds.get("adtte")
    if adsl is None or adsl.empty:
        return "no ADSL dataset"
    s = adsl[adsl["SAFFL"] == "Y"].copy()
    if s.empty:
        return "no infused patient"
    start = pd.to_datetime(s["TRTSDT"])
    s["END"] = (pd.to_datetime(s["LSTALVDT"]) - start).dt.days
    s["DEATH"] = (pd.to_datetime(s["DTHDT"]) - start).dt.days
    s["HSCT"] = (pd.to_datetime(s["HSCTDT"]) - start).dt.days
    ovr = adrs[(adrs["PARAMCD"] == "OVRLRESP")] if adrs is not None and len(adrs) else None
    resp = (ovr[ovr["AVALC"].isin(["CR", "CRh", "CRi", "MLFS", "PR"])].groupby("USUBJID")["ADY"]
            .min() if ovr is not None else pd.Series(dtype=float))
    pfs = adtte[(adtte["PARAMCD"] == "PFS") & (adtte["CNSR"] == 0)] \
        if adtte is not None and len(adtte) else None
    relapse = pfs[pfs["EVNTDESC"] != "DEATH"].set_index("USUBJID")["AVAL"] \
        if pfs is not None else pd.Series(dtype=float)
    s = s.sort_values(["TRT01AN", "END"])
    levels = list(dict.fromkeys(s["TRT01A"].astype(str)))
    colors = dict(zip(levels, _colors(len(levels)), strict=True))
    fig.set_size_inches(WIDTH_IN, max(2.6, 0.6 + 0.2 * len(s)))
    ax = fig.add_subplot(111)
    for y, r in enumerate(s.itertuples()):
        ax.barh(y, r.END, color=colors[str(r.TRT01A)], height=0.6, alpha=0.45)
        marks = {"response": resp.get(r.USUBJID), "relapse": relapse.get(r.USUBJID),
                 "hsct": r.HSCT, "death": r.DEATH}
        for key, marker, color, _ in SWIM_MARKS:
            if marks[key] is not None and pd.notna(marks[key]):
                ax.plot(marks[key], y, marker, color=color, ms=5, mec="black", mew=0.5)
        if r.EOSSTT == "ONGOING":
            ax.annotate("", xy=(r.END + 25, y), xytext=(r.END, y),
                        arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.set_yticks(range(len(s)), [str(u).rsplit("-", 1)[-1] for u in s["USUBJID"]], fontsize=6)
    ax.set_xlabel("Days after first infusion")
    ax.set_ylabel("Patient")
    for lv in levels:
        ax.barh([], [], color=colors[lv], alpha=0.45, label=lv)
    for _, marker, color, label in SWIM_MARKS:
        ax.plot([], [], marker, color=color, ls="", mec="black", mew=0.5, label=label)
    ax.plot([], [], ls="", marker=r"$\rightarrow$", color="black", label="ongoing")
    _legend(ax)
    return None


def ae_max_grade(ds: Datasets, fig: Any) -> str | None:
    """Patients by worst adverse-event grade (CTCAE v5.0 / ASTCT) and dose level."""
    adae, adsl = ds.get("adae"), ds.get("adsl")
    if adae is None or adsl is None or adsl.empty:
        return "no ADAE/ADSL dataset"
    safety = adsl[adsl["SAFFL"] == "Y"] if "SAFFL" in adsl.columns else adsl
    if safety.empty:
        return "no infused patient"
    worst = adae.groupby("USUBJID")["ATOXGRN"].max() if not adae.empty else pd.Series(dtype=float)
    levels = _by_dose(safety)
    ax = fig.add_subplot(111)
    bottom = np.zeros(len(levels))
    grade_colors = ("#DDDDDD", "#56B4E9", "#0072B2", "#E69F00", "#D55E00", "#000000")
    for grade, color in enumerate(grade_colors):
        counts = np.array([
            int((worst.reindex(group["USUBJID"]).fillna(0).astype(int) == grade).sum())
            for _, group in levels
        ])
        ax.bar([name for name, _ in levels], counts, bottom=bottom, color=color,
               label="no AE" if grade == 0 else f"grade {grade}")
        bottom += counts
    ax.set_xlabel("Dose level")
    ax.set_ylabel("Patients (safety set)")
    _legend(ax)
    return None


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("ae_max_grade", "Worst adverse-event grade per patient by dose level",
               ("adae", "adsl"), ae_max_grade, 2.8),
    FigureSpec("swimmer", "Swimmer plot: follow-up, response, relapse, transplant and death",
               ("adsl", "adrs", "adtte"), swimmer),
    FigureSpec("overall_survival", "Overall survival (Kaplan-Meier)", ("adtte",),
               overall_survival, 3.6),
    FigureSpec("pfs", "Progression-free survival (Kaplan-Meier)", ("adtte",),
               progression_free_survival, 3.6),
    FigureSpec("dor", "Duration of response (Kaplan-Meier)", ("adtte",), duration_of_response, 3.6),
    FigureSpec("cir", "Cumulative incidence of relapse (death in remission competing)",
               ("adtte",), cumulative_incidence_relapse, 2.8),
    FigureSpec("persistence", "Persistence: time to loss of detectable CAR transgene (qPCR, "
               "Kaplan-Meier)", ("adtte",), persistence, 3.6),
    FigureSpec("kinetics_qpcr", "CAR-T expansion and persistence (qPCR)", ("adpc",),
               kinetics_qpcr, 3.6, 0.8),
    FigureSpec("kinetics_flow", "CAR-T expansion and persistence (flow cytometry)", ("adpc",),
               kinetics_flow, 3.6, 0.8),
    FigureSpec("cd7_cells", "CD7+ cells in peripheral blood", ("adlb",), cd7_cells, 2.8),
    FigureSpec("cytokines", "Cytokines to day 28: IL-6, IL-10, IFN-\u03b3, TNF-\u03b1", ("adlb",),
               cytokines, 4.2),
    FigureSpec("exposure_response", "Exposure-response: Cmax against best response and CRS grade",
               ("adpp", "adrs", "adae"), exposure_response, 3.0, 0.75),
)


@dataclass(frozen=True)
class RenderedFigure:
    """A drawn figure (PNG bytes) or the reason it could not be drawn."""

    spec: FigureSpec
    png: bytes | None
    reason: str | None


def _png(fig: Any, dpi: int) -> bytes:
    """The figure as an RGB PNG (no alpha channel, light compression): WeasyPrint embeds an RGB
    PNG without the alpha split and re-encoding an RGBA one costs."""
    import io

    from PIL import Image

    fig.set_dpi(dpi)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba[..., :3])).save(buffer, format="PNG",
                                                             compress_level=3)
    return buffer.getvalue()


def _margins(fig: Any, spec: FigureSpec) -> None:
    """Fixed margins in inches (no ``tight_layout``, which draws the figure once more): room
    for tick labels and axis labels left and below, for the legend on the right."""
    if not all(a.get_subplotspec() is not None for a in fig.axes):
        return  # laid out by the drawing function itself (Kaplan-Meier with numbers at risk)
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=0.75 / width, right=1 - 1.6 / width,
                        bottom=spec.bottom_in / height, top=1 - 0.12 / height,
                        wspace=0.35, hspace=0.25)


def render_all(datasets: Datasets, *, dpi: int = 120) -> list[RenderedFigure]:
    """Draw every figure of ``FIGURES`` to PNG, or keep the reason it cannot be drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rendered = []
    with plt.rc_context({"font.size": 8, "axes.titlesize": 9, "axes.spines.top": False,
                         "axes.spines.right": False}):
        for spec in FIGURES:
            fig = plt.figure(figsize=(WIDTH_IN, spec.height_in))
            try:
                try:
                    reason = spec.draw(datasets, fig)
                except CelltrialError as exc:  # an estimator refusing the data says why
                    reason = exc.message
                png = None
                if reason is None:
                    _margins(fig, spec)
                    png = _png(fig, dpi)
            finally:
                plt.close(fig)
            rendered.append(RenderedFigure(spec, png, reason))
    return rendered

"""The study report: outcome measures, tables, listings and figures as one HTML file and one PDF.

The report reads only what ``celltrial analyze`` wrote (analysis datasets as parquet,
``endpoints.json`` and, when present, ``escalation.json``, the escalation history), never the
database: analysis datasets are the single source of the numbers.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from celltrial import __version__
from celltrial.errors import CelltrialError
from celltrial.report.figures import render_all
from celltrial.report.tables import TABLES, endpoint_table

PDF_TABLE_ROWS = 28


@dataclass(frozen=True)
class ReportFiles:
    """Paths of the written report."""

    html: Path
    pdf: Path
    figures: tuple[Path, ...]


def load_analysis(analysis_dir: Path) -> tuple[dict[str, pd.DataFrame], list[dict[str, Any]]]:
    """Read the datasets (``<name>.parquet``) and ``endpoints.json`` written by ``celltrial analyze``."""
    analysis_dir = Path(analysis_dir)
    endpoints_file = analysis_dir / "endpoints.json"
    if not endpoints_file.exists():
        raise CelltrialError(f"Invalid `analysis_dir`: got `{analysis_dir}`, must hold "
                             "endpoints.json (run `celltrial analyze` first)")
    datasets = {p.stem.lower(): pd.read_parquet(p) for p in sorted(analysis_dir.glob("*.parquet"))}
    payload = json.loads(endpoints_file.read_text())
    endpoints = payload["endpoints"] if isinstance(payload, dict) else payload
    return datasets, endpoints


def _pdf_table(pdf: Any, title: str, table: pd.DataFrame) -> None:
    import matplotlib.pyplot as plt

    if table.empty:
        table = pd.DataFrame({"": ["No records."]})
    for start in range(0, len(table), PDF_TABLE_ROWS):
        chunk = table.iloc[start:start + PDF_TABLE_ROWS].astype(str)
        chunk = chunk.apply(lambda col: col.str.slice(0, 60))
        fig, ax = plt.subplots(figsize=(11.0, 8.5))
        ax.axis("off")
        ax.set_title(title if start == 0 else f"{title} (continued)", loc="left")
        cells = ax.table(cellText=chunk.to_numpy(), colLabels=list(chunk.columns),
                         loc="upper left", cellLoc="left")
        cells.auto_set_font_size(False)
        cells.set_fontsize(7)
        cells.auto_set_column_width(list(range(len(chunk.columns))))
        pdf.savefig(fig)
        plt.close(fig)


@dataclass(frozen=True)
class _Titled:
    title: str


def escalation_table(analysis_dir: Path) -> tuple[_Titled, pd.DataFrame] | None:
    """The escalation history written by the analysis (``escalation.json``): one row per
    cohort with the decision in force before it and whether it was followed."""
    path = Path(analysis_dir) / "escalation.json"
    if not path.exists():
        return None
    history = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for c in history["cohorts"]:
        d = c["decision"]
        rows.append({"Cohort": c["cohort"], "Dose level": c["level"],
                     "Patients": len(c["subjects"]), "First infusion": c["first_infusion"],
                     "Decision in force": f"{d['action']}"
                     + (f" -> dose {d['dose']}" if d["dose"] else "") + f": {d['reason']}",
                     "Followed": "yes" if c["deviation"] is None else
                     f"DEVIATION: {c['deviation']}"})
    nxt = history["next"]
    rows.append({"Cohort": "next", "Dose level": "", "Patients": "",
                 "First infusion": "", "Followed": "",
                 "Decision in force": f"{nxt['action']}"
                 + (f" -> dose {nxt['dose']}" if nxt["dose"] else "") + f": {nxt['reason']}"})
    return _Titled("Dose escalation history (decisions replayed from the records)"), \
        pd.DataFrame(rows)


def build_report(protocol: Any, analysis_dir: Path, out_dir: Path, *,
                 data_note: str = "") -> ReportFiles:
    """Write ``report.html`` (self-contained) and ``report.pdf`` and the figures as PNG files."""
    import jinja2
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_pdf import PdfPages

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    datasets, endpoints = load_analysis(analysis_dir)
    outcome = endpoint_table(endpoints)
    tables = [(spec, spec.build(datasets)) for spec in TABLES]
    history = escalation_table(analysis_dir)
    if history is not None:
        tables.insert(0, history)

    pdf_path = out_dir / "report.pdf"
    with PdfPages(pdf_path) as pdf:
        _pdf_table(pdf, f"{protocol.id}: outcome measures", outcome)
        figures = render_all(datasets, pdf=pdf)
        for spec, table in tables:
            _pdf_table(pdf, spec.title, table)

    figure_paths = []
    for figure in figures:
        if figure.png is not None:
            path = out_dir / f"{figure.spec.id}.png"
            path.write_bytes(figure.png)
            figure_paths.append(path)

    env = jinja2.Environment(loader=jinja2.PackageLoader("celltrial.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]))
    html = env.get_template("report.html").render(
        protocol=protocol,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        data_note=data_note,
        endpoints_html=outcome.to_html(index=False, border=0),
        tables=[{"title": spec.title, "html": table.to_html(index=False, border=0)
                 if not table.empty else ""} for spec, table in tables],
        figures=[{"title": f.spec.title, "reason": f.reason,
                  "png": base64.b64encode(f.png).decode() if f.png else None} for f in figures],
    )
    html_path = out_dir / "report.html"
    html_path.write_text(html, encoding="utf-8")
    return ReportFiles(html=html_path, pdf=pdf_path, figures=tuple(figure_paths))

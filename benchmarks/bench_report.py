"""Benchmark: `celltrial report` work per study, for the five studies `make demo` makes
(goal, issue 11: under 5 s of work per study).

Usage: .venv/bin/python benchmarks/bench_report.py [-n 40] [--repeat 3] [--study ID ...]

Data: each library protocol's virtual trial as `celltrial demo` conducts it
(``celltrial.conduct.simulate_study(protocol, n, seed=1 + i, data_cut=...)``, i the study's
index in ``list_ids()``), analysed once (``analyze`` + ``write_analysis`` + the escalation
history). Timed: ``celltrial.report.build_report`` (read the analysis files, tables, figures,
HTML, WeasyPrint PDF), the report step of `celltrial report`; the first build of the process
is reported apart (it pays the one-time import and font set-up). CPU is the process time
(user + system) of the timed call, wall the elapsed time; the median over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _pages(pdf: Path) -> str:
    """Page count of the PDF (pypdfium2, installed with the test extras), else "-"."""
    try:
        import pypdfium2
    except ImportError:
        return "-"
    doc = pypdfium2.PdfDocument(pdf)
    try:
        return str(len(doc))
    finally:
        doc.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40, help="virtual patients referred per study")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-cut", default="2026-12-01")
    parser.add_argument("--study", nargs="*", default=None)
    args = parser.parse_args(argv)

    from celltrial.cli.report import write_escalation
    from celltrial.conduct import simulate_study
    from celltrial.derive.analysis import analyze, write_analysis
    from celltrial.protocols import list_ids, load
    from celltrial.report import build_report

    ids = list_ids()
    studies = args.study or ids
    print(f"# bench_report: n={args.n}, repeat={args.repeat}, data cut {args.data_cut}; "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| study | infused | pages | first build CPU / wall s | median CPU s | median wall s |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for study in studies:
            protocol = load(study)
            domains = simulate_study(protocol, args.n, seed=1 + ids.index(study),
                                     data_cut=args.data_cut)
            analysis = analyze(domains, protocol)
            analysis_dir = Path(tmp) / study / "analysis"
            write_analysis(analysis, analysis_dir)
            write_escalation(domains, protocol, analysis_dir)
            infused = int((analysis.datasets["adsl"]["SAFFL"] == "Y").sum())
            cpu, wall = [], []
            for _ in range(args.repeat + 1):
                c0, w0 = time.process_time(), time.perf_counter()
                files = build_report(protocol, analysis_dir, Path(tmp) / study / "report",
                                     simulated=True)
                cpu.append(time.process_time() - c0)
                wall.append(time.perf_counter() - w0)
            pages = _pages(files.pdf)
            print(f"| {study} | {infused} | {pages} | {cpu[0]:.2f} / {wall[0]:.2f} | "
                  f"{statistics.median(cpu[1:]):.2f} | {statistics.median(wall[1:]):.2f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

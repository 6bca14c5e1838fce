"""Make the page images of docs/report.md: one study reported, the first page of each section.

Usage: .venv/bin/python docs/report/make_pages.py [--study cd7-tall-dlt] [-n 40]

The study is the virtual trial `celltrial demo` conducts for the protocol (seed 1 + its index
in ``list_ids()``, data cut 2026-12-01), analysed and reported as `celltrial report` does; the
pages are rendered with pypdfium2 (installed with the test extras) at 60 dpi.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="cd7-tall-dlt")
    parser.add_argument("-n", type=int, default=40)
    args = parser.parse_args()

    import pypdfium2

    from celltrial.cli.report import write_escalation
    from celltrial.conduct import simulate_study
    from celltrial.derive.analysis import analyze, write_analysis
    from celltrial.protocols import list_ids, load
    from celltrial.report import build_report

    protocol = load(args.study)
    domains = simulate_study(protocol, args.n, seed=1 + list_ids().index(args.study),
                             data_cut="2026-12-01")
    with tempfile.TemporaryDirectory() as tmp:
        analysis_dir = Path(tmp) / "analysis"
        write_analysis(analyze(domains, protocol), analysis_dir)
        write_escalation(domains, protocol, analysis_dir)
        files = build_report(protocol, analysis_dir, Path(tmp) / "report", simulated=True)
        doc = pypdfium2.PdfDocument(files.pdf)
        wanted = {"Title page": 0}
        for mark in doc.get_toc():
            title = mark.get_title()
            if mark.level == 0:
                wanted.setdefault(title, mark.get_dest().get_index())
        for old in HERE.glob("page-*.png"):
            old.unlink()
        for title, index in wanted.items():
            stem = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")
            stem = "-".join(filter(None, stem.split("-")))[:40]
            image = doc[index].render(scale=60 / 72).to_pil()
            image.save(HERE / f"page-{index + 1:02d}-{stem}.png", optimize=True)
            print(f"page {index + 1}: {title}")
        doc.close()


if __name__ == "__main__":
    main()

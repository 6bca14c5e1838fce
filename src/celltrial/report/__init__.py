"""celltrial.report: the clinical study report of one study (HTML, printed to PDF by WeasyPrint)."""

from celltrial.report.build import PAGE_SIZES, ReportFiles, build_report, load_analysis

__all__ = ["PAGE_SIZES", "ReportFiles", "build_report", "load_analysis"]

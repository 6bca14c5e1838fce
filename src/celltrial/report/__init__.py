"""celltrial.report: the study report (tables, listings and figures; HTML and PDF)."""

from celltrial.report.build import ReportFiles, build_report, load_analysis

__all__ = ["ReportFiles", "build_report", "load_analysis"]

"""The self-contained HTML report: one file, inline CSS and SVG, works offline."""

from connector.report.render import render_report, write_report

__all__ = ["render_report", "write_report"]
